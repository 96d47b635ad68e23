"""`tpc product secret set|list|remove`, the operator's commands, in a subprocess on a SQLite
store: the value comes from stdin or a named variable (never argv), lists show names and times
only, and the product's runs are what can use it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from application.service import Service
from infra.settings import Settings
from tests.e2e.server import TPC


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    """(TPC_DATABASE_URL, the product's id) of a store with one product."""
    url = f"sqlite:///{tmp_path / 'tpc.db'}"
    service = Service(Settings(database_url=url), environ={})
    try:
        created = service.catalog.bootstrap("token")
        assert created is not None
        return url, created.product_id
    finally:
        service.close()


def tpc(
    url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TPC, *args],
        env={
            **os.environ,
            "TPC_DATABASE_URL": url,
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **(env or {}),
        },
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def values(url: str, product: str) -> dict[str, str]:
    service = Service(Settings(database_url=url), environ={})
    try:
        return service.runs.product_secrets(product)
    finally:
        service.close()


def test_set_list_and_remove_a_products_secrets(store: tuple[str, str]) -> None:
    url, product = store
    done = tpc(
        url,
        "--format",
        "json",
        "product",
        "secret",
        "set",
        product,
        "API_TOKEN",
        stdin="from-stdin\n",
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads(done.stdout)
    assert saved["product_id"] == product and saved["name"] == "API_TOKEN"
    assert "from-stdin" not in done.stdout

    from_env = tpc(
        url,
        "product",
        "secret",
        "set",
        product,
        "OTHER",
        "--value-from-env",
        "MY_VAR",
        env={"MY_VAR": "from-a-variable"},
    )
    assert from_env.returncode == 0, from_env.stderr
    assert "Secret OTHER of" in from_env.stdout
    assert values(url, product) == {"API_TOKEN": "from-stdin", "OTHER": "from-a-variable"}

    listed = tpc(url, "product", "secret", "list", product, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert [item["name"] for item in document["items"]] == ["API_TOKEN", "OTHER"]
    assert all(set(item) == {"name", "updated_at"} for item in document["items"])
    table = tpc(url, "product", "secret", "list", product)
    assert "API_TOKEN" in table.stdout and "from-stdin" not in table.stdout

    removed = tpc(url, "--format", "json", "product", "secret", "remove", product, "OTHER")
    assert json.loads(removed.stdout) == {"product_id": product, "name": "OTHER", "removed": True}
    assert values(url, product) == {"API_TOKEN": "from-stdin"}
    again = tpc(url, "product", "secret", "remove", product, "OTHER")
    assert again.returncode == 1 and "secret OTHER not found" in again.stderr


def test_refusals_are_clear_and_the_value_is_never_an_argument(store: tuple[str, str]) -> None:
    url, product = store
    unknown = tpc(url, "product", "secret", "set", "prd_nobody", "X", stdin="v")
    assert unknown.returncode == 1 and "product prd_nobody not found" in unknown.stderr
    bad = tpc(url, "product", "secret", "set", product, "1X", stdin="v")
    assert bad.returncode == 1 and "secret name '1X' is not valid" in bad.stderr
    unset = tpc(url, "product", "secret", "set", product, "X", "--value-from-env", "NOT_SET_HERE")
    assert unset.returncode == 1 and "NOT_SET_HERE" in unset.stderr
    empty = tpc(url, "product", "secret", "set", product, "X", stdin="")
    assert empty.returncode == 1 and "the value of secret X is empty" in empty.stderr
    argv = tpc(url, "product", "secret", "set", product, "X", "the-value")
    assert argv.returncode == 2  # no such argument: a value in argv would show in `ps`
    assert values(url, product) == {}
