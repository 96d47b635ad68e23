"""Product secrets and who may run commands, through the service on both stores: secrets are a
table of their own (set, listed without values, rotated, erased, per product), `${VAR}` in a
command agent's env comes only from the product's secrets (refused at creation and at trigger
otherwise; never the server's environment), and `TPC_ALLOW_COMMANDS` decides which products
may run commands at all (403 at creation and at trigger)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.errors import Forbidden, InvalidInput, NotFound
from domain.secrets import MAX_VALUE_BYTES
from infra.command_policy import CommandPolicy
from infra.runners.command import CommandRunner
from infra.settings import Settings, SettingsError

ALLOW_ALL = {"TPC_ALLOW_COMMANDS": "all"}
# Prints its env's S and whatever it can see of the server's token, as a tpc transcript.
AGENT = (
    "import json, os; print(json.dumps({'version': 1, 'messages': ["
    "{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': "
    "'S=' + os.environ.get('S', '') + ' server=' + os.environ.get('TPC_API_TOKEN', 'none')}]}))"
)


def command_env(env: dict[str, str], name: str = "cmd") -> dict[str, Any]:
    return {
        "name": name,
        "agent": {"kind": "command", "command": [sys.executable, "-c", AGENT], "env": env},
        "limits": {"timeout_s": 60},
    }


def open_service(store_url: str, environ: dict[str, str] | None = None) -> Service:
    settings = Settings(database_url=store_url)
    return Service(settings, environ=ALLOW_ALL if environ is None else environ)


@pytest.fixture
def service(store_url: str) -> Iterator[Service]:
    svc = open_service(store_url)
    yield svc
    svc.close()


def first_product(service: Service) -> str:
    created = service.catalog.bootstrap("token-a")
    assert created is not None
    return created.product_id


def second_product(service: Service) -> str:
    product_id: str = service.catalog.create_product("b")["product"]["id"]
    return product_id


# -- the secrets themselves -------------------------------------------------------------------


def test_secrets_are_set_listed_without_values_rotated_and_erased_per_product(
    service: Service,
) -> None:
    a, b = first_product(service), second_product(service)
    first = service.catalog.set_secret(a, "API_TOKEN", "sv-one")
    assert set(first) == {"name", "updated_at"}
    service.catalog.set_secret(a, "OTHER", "x")
    service.catalog.set_secret(b, "API_TOKEN", "b's own")
    rotated = service.catalog.set_secret(a, "API_TOKEN", "sv-two")
    assert rotated["updated_at"] >= first["updated_at"]

    listed = service.catalog.list_secrets(a)
    assert [item["name"] for item in listed["items"]] == ["API_TOKEN", "OTHER"]
    assert "sv-two" not in json.dumps(listed)
    assert service.runs.product_secrets(a) == {"API_TOKEN": "sv-two", "OTHER": "x"}
    assert service.runs.product_secrets(b) == {"API_TOKEN": "b's own"}

    assert service.catalog.remove_secret(a, "OTHER") == {"name": "OTHER", "removed": True}
    assert service.runs.product_secrets(a) == {"API_TOKEN": "sv-two"}
    with pytest.raises(NotFound, match="secret OTHER not found"):
        service.catalog.remove_secret(a, "OTHER")
    with pytest.raises(NotFound, match="product prd_nobody not found"):
        service.catalog.set_secret("prd_nobody", "X", "y")
    # Not events: nothing of a value is in the log.
    with service.database.write() as db:
        rows = db.execute(f"SELECT state FROM {service.store.events_table}").fetchall()
    assert rows
    assert not any(b"sv-one" in bytes(row[0]) or b"sv-two" in bytes(row[0]) for row in rows)


@pytest.mark.parametrize(
    ("name", "value", "where"),
    [
        ("1ABC", "x", "name"),
        ("A-B", "x", "name"),
        ("A" * 129, "x", "name"),
        ("A\x00", "x", "name"),
        ("OK", "a\x00b", "value"),
        ("OK", "\ud800", "value"),
        ("OK", "x" * (MAX_VALUE_BYTES + 1), "value"),
        ("OK", "", "value"),
    ],
)
def test_bad_names_and_values_are_refused(
    service: Service, name: str, value: str, where: str
) -> None:
    product = first_product(service)
    with pytest.raises(InvalidInput) as refused:
        service.catalog.set_secret(product, name, value)
    assert [loc for loc, _ in refused.value.problems] == [where]
    assert service.catalog.list_secrets(product) == {"items": []}


# -- `${VAR}` comes only from the product's secrets -------------------------------------------


def test_a_server_variable_is_refused_at_creation_naming_it_and_how_to_set_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The regression: `env: {S: "${TPC_API_TOKEN}"}` put the server's token in a transcript."""
    monkeypatch.setenv("TPC_API_TOKEN", "the-operators-token")
    service = open_service(store_url, {**ALLOW_ALL, "TPC_API_TOKEN": "the-operators-token"})
    try:
        product = first_product(service)
        with pytest.raises(InvalidInput) as refused:
            service.catalog.create_environment(product, command_env({"S": "${TPC_API_TOKEN}"}))
        message = str(refused.value)
        assert "${TPC_API_TOKEN}" in message
        assert "tpc product secret set PRODUCT TPC_API_TOKEN" in message
        assert "PUT /v1/secrets/TPC_API_TOKEN" in message
        assert refused.value.problems[0][0] == "agent.env.S"
        assert service.views.environments(product).items == []
    finally:
        service.close()


def test_another_products_secret_cannot_be_used(service: Service) -> None:
    a, b = first_product(service), second_product(service)
    service.catalog.set_secret(a, "S", "a's secret")
    service.catalog.create_environment(a, command_env({"S": "${S}"}))
    with pytest.raises(InvalidInput, match=r"\$\{S\}, which is not a secret of this product"):
        service.catalog.create_environment(b, command_env({"S": "${S}"}))


def experiment_with(service: Service, product: str, env: dict[str, Any], **task: Any) -> str:
    task_id = service.catalog.create_task(product, {"name": "t", "prompt": "hi", **task}).id
    env_id = service.catalog.create_environment(product, env).id
    exp_id: str = service.experiments.create_experiment(product, "e", [task_id], [env_id]).id
    return exp_id


def test_a_secret_removed_since_creation_is_refused_at_trigger(service: Service) -> None:
    product = first_product(service)
    service.catalog.set_secret(product, "S", "value")
    exp_id = experiment_with(service, product, command_env({"S": "x-${S}", "L": "$${S}"}))
    service.catalog.remove_secret(product, "S")
    with pytest.raises(InvalidInput, match=r"agent.env.S uses \$\{S\}") as refused:
        service.experiments.trigger(product, exp_id)
    assert "tpc product secret set PRODUCT S" in str(refused.value)
    service.catalog.set_secret(product, "S", "again")
    assert service.experiments.trigger(product, exp_id).iteration == 1


def test_the_run_sees_the_products_secret_and_never_the_servers_environment(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPC_API_TOKEN", "the-operators-token")
    a, b = first_product(service), second_product(service)
    service.catalog.set_secret(a, "S", "a's secret")
    service.catalog.set_secret(b, "S", "b's secret")
    exp_id = experiment_with(service, a, command_env({"S": "${S}"}))
    service.catalog.set_secret(a, "S", "rotated")  # read when the run starts, not frozen at trigger
    number = service.experiments.trigger(a, exp_id).iteration

    async def go() -> None:
        executor = Executor(service.runs, {"command": CommandRunner()}, 2)
        await executor.submit(exp_id, number)
        await executor.drain()

    asyncio.run(go())
    [run] = service.views.runs(a, exp_id, number).items
    transcript = json.dumps(service.transcripts.transcript(a, run.id))
    assert "S=rotated server=none" in transcript
    assert "the-operators-token" not in transcript
    assert "secret" not in transcript  # neither a's old value nor b's


# -- who may run commands ---------------------------------------------------------------------

SHELL_ENV = {
    "name": "llm with shell",
    "agent": {"kind": "llm", "provider": "openai", "model": "gpt-4.1", "tools": ["shell"]},
}


@pytest.mark.parametrize(
    ("what", "create"),
    [
        ("a `command` agent", lambda s, p: s.catalog.create_environment(p, command_env({}))),
        ("the llm agent's `shell` tool", lambda s, p: s.catalog.create_environment(p, SHELL_ENV)),
        (
            "a `success.command`",
            lambda s, p: s.catalog.create_task(
                p, {"name": "t", "prompt": "p", "success": {"command": "true"}}
            ),
        ),
    ],
)
def test_commands_are_refused_unless_the_operator_allows_the_product(
    store_url: str, what: str, create: Any
) -> None:
    refused = open_service(store_url, {})
    try:
        product = first_product(refused)
        with pytest.raises(Forbidden) as error:
            create(refused, product)
        assert what in str(error.value)
        assert "TPC_ALLOW_COMMANDS" in str(error.value)
        other = open_service(store_url, {"TPC_ALLOW_COMMANDS": "prd_someone_else"})
        with pytest.raises(Forbidden):
            create(other, product)
        other.close()
        for setting in ("all", product, f"prd_x, {product}"):
            allowed = open_service(store_url, {"TPC_ALLOW_COMMANDS": setting})
            assert create(allowed, product).id
            allowed.close()
    finally:
        refused.close()


def test_plain_definitions_need_no_consent(store_url: str) -> None:
    service = open_service(store_url, {})
    try:
        product = first_product(service)
        scripted = {"name": "s", "agent": {"kind": "scripted"}}
        exp_id = experiment_with(service, product, scripted)
        assert service.experiments.trigger(product, exp_id).iteration == 1
    finally:
        service.close()


def test_a_trigger_is_refused_once_the_operator_withdrew_consent(
    service: Service, store_url: str
) -> None:
    product = first_product(service)
    exp_id = experiment_with(
        service,
        product,
        {"name": "s", "agent": {"kind": "scripted"}},
        success={"command": "true"},
    )
    withdrawn = open_service(store_url, {})
    try:
        with pytest.raises(Forbidden, match=r"task 't' uses a `success.command`"):
            withdrawn.experiments.trigger(product, exp_id)
        assert withdrawn.views.iterations(product, exp_id).items == []
    finally:
        withdrawn.close()
    assert service.experiments.trigger(product, exp_id).iteration == 1


@pytest.mark.parametrize("raw", ["all,prd_x", "prd x", ",", "none,prd_y"])
def test_a_bad_setting_is_a_clear_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="TPC_ALLOW_COMMANDS must be none, all, or"):
        CommandPolicy.from_env({"TPC_ALLOW_COMMANDS": raw})


def test_the_setting_defaults_to_none() -> None:
    assert not CommandPolicy.from_env({}).allows("prd_a")
    assert not CommandPolicy.from_env({"TPC_ALLOW_COMMANDS": "none"}).allows("prd_a")
    assert CommandPolicy.from_env({"TPC_ALLOW_COMMANDS": " prd_a ,prd_b"}).allows("prd_b")


def test_more_network_than_the_operator_allows_is_refused_at_creation(store_url: str) -> None:
    """TPC_AGENT_NETWORK_MAX caps what an environment may ask for: a 422 when it is created
    (naming the setting), not a page of errored runs later."""
    environ = {**ALLOW_ALL, "TPC_AGENT_NETWORK_MAX": "loopback"}
    service = open_service(store_url, environ)
    try:
        product = first_product(service)
        asking = command_env({})
        asking["agent"]["network"] = "full"
        with pytest.raises(InvalidInput) as refused:
            service.catalog.create_environment(product, asking)
        assert "TPC_AGENT_NETWORK_MAX" in str(refused.value)
        assert refused.value.problems[0][0] == "agent.network"
        within = command_env({}, name="within")
        within["agent"]["network"] = "loopback"
        assert service.catalog.create_environment(product, within).name == "within"
    finally:
        service.close()
