"""The operator's limits on a real server, each refused with its status and a message naming
the setting: request body size, signal config size, runs per iteration, running iterations;
and heavy parsing kept off the event loop."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Limits, Settings, SettingsError
from tests.conftest import STORES
from tests.e2e.api_servers import serve_store
from tests.e2e.server import Server, iteration_ended

LIMITS = {
    "TPC_MAX_BODY_BYTES": "65536",
    "TPC_MAX_SIGNAL_CONFIG_BYTES": "16384",
    "TPC_MAX_RUNS_PER_ITERATION": "6",
    "TPC_MAX_RUNNING_ITERATIONS": "1",
}
SLOW = {"name": "slow", "agent": {"kind": "scripted", "step_latency_s": 60, "max_steps": 200}}


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve_store(request, tmp_path_factory.mktemp("limits"), LIMITS)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def refused(response: httpx.Response, status: int, setting: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert setting in error["message"]
    return error


def raw_request(server: Server, head: str, body: bytes = b"") -> bytes:
    """Send bytes as they are (a Content-Length no client library would lie about)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    answer = raw_request(
        server,
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000000\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    error = json.loads(body)["error"]
    assert error["code"] == "too_large"
    assert "limit of 65536 bytes (TPC_MAX_BODY_BYTES)" in error["message"]


def test_a_streamed_body_over_the_limit_is_refused(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "prompt": "'
        for _ in range(8):
            yield b"x" * 12_000
        yield b'"}'

    # No Content-Length: the body is counted as it arrives.
    response = api.post("/v1/tasks", content=chunks(), headers={"content-type": "application/json"})
    refused(response, 413, "TPC_MAX_BODY_BYTES")
    assert api.get("/v1/tasks").json()["items"] == []


def test_a_signal_config_over_the_limit_is_413(api: httpx.Client) -> None:
    config = "version: 1\n" + "#" * 16_384
    refused(
        api.post("/v1/experiments", json={"name": "x", "signal_config": config}),
        413,
        "TPC_MAX_SIGNAL_CONFIG_BYTES",
    )
    refused(
        api.post("/v1/signal-configs/validate", json={"signal_config": config}),
        413,
        "TPC_MAX_SIGNAL_CONFIG_BYTES",
    )
    exp = api.post("/v1/experiments", json={"name": "x"}).json()["id"]
    patch = api.patch(f"/v1/experiments/{exp}", json={"signal_config": config})
    refused(patch, 413, "TPC_MAX_SIGNAL_CONFIG_BYTES")
    assert api.get(f"/v1/experiments/{exp}").json()["signal_config"] is None


def _task(api: httpx.Client, name: str) -> str:
    response = api.post("/v1/tasks", json={"name": name, "prompt": "p"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_runs_per_iteration_are_capped_whatever_changes(api: httpx.Client) -> None:
    tasks = [_task(api, f"t{i}") for i in range(3)]
    env = api.post("/v1/environments", json=SLOW).json()["id"]
    too_many = {"name": "x", "task_ids": tasks, "env_ids": [env], "repeats": 3}
    error = refused(api.post("/v1/experiments", json=too_many), 422, "TPC_MAX_RUNS_PER_ITERATION")
    assert "3 tasks × 1 environments × 3 repeats = 9 runs per iteration" in error["message"]
    exp = api.post("/v1/experiments", json={**too_many, "task_ids": tasks[:2]}).json()["id"]
    # 2 × 1 × 3 = 6 is the limit: more repeats, or one more task, would pass it.
    refused(
        api.patch(f"/v1/experiments/{exp}", json={"repeats": 4}), 422, "TPC_MAX_RUNS_PER_ITERATION"
    )
    attach = api.post(f"/v1/experiments/{exp}/tasks", json={"task_id": tasks[2]})
    assert refused(attach, 422, "TPC_MAX_RUNS_PER_ITERATION")["problems"][0]["loc"] == "task_id"
    stored = api.get(f"/v1/experiments/{exp}").json()
    assert (len(stored["task_ids"]), stored["repeats"]) == (2, 3)


def test_running_iterations_per_product_are_capped(api: httpx.Client) -> None:
    env = api.post("/v1/environments", json=SLOW).json()["id"]
    exp = api.post(
        "/v1/experiments", json={"name": "busy", "task_ids": [_task(api, "t")], "env_ids": [env]}
    ).json()["id"]
    first = api.post(f"/v1/experiments/{exp}/iterations")
    assert first.status_code == 201, first.text
    error = refused(
        api.post(f"/v1/experiments/{exp}/iterations"), 429, "TPC_MAX_RUNNING_ITERATIONS"
    )
    assert error["code"] == "too_many_requests"
    assert api.get(f"/v1/experiments/{exp}").json()["iterations"] == 1
    # Once it is cancelled (no longer running), the product may trigger again.
    assert api.post(f"/v1/experiments/{exp}/iterations/1/cancel").status_code == 200
    iteration_ended(api, f"/v1/experiments/{exp}/iterations/1")
    again = api.post(f"/v1/experiments/{exp}/iterations")
    assert again.status_code == 201, again.text
    assert api.post(f"/v1/experiments/{exp}/iterations/2/cancel").status_code == 200
    iteration_ended(api, f"/v1/experiments/{exp}/iterations/2")


@pytest.mark.parametrize("value", ["0", "-1", "lots", "16MiB", "²", "99999999999999999999999"])
def test_a_bad_limit_setting_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    for name in LIMITS:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(SettingsError, match=f"{name} must be a positive number"):
                Settings.from_env()


def test_limits_default_to_sane_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LIMITS:
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().limits == Limits(
        max_body_bytes=16 * 1024 * 1024,
        max_signal_config_bytes=1024 * 1024,
        max_runs_per_iteration=10_000,
        max_running_iterations=20,
    )


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    environ = {"TPC_MAX_SIGNAL_CONFIG_BYTES": str(32 * 1024 * 1024)}
    running = Server(tmp_path_factory.mktemp("roomy"), environ=environ).start()
    yield running
    running.stop()


def test_healthz_answers_while_a_large_config_is_validated(roomy: Server) -> None:
    config = "version: 1\nsignals:\n" + "".join(
        f"  - id: s{i}\n    type: boolean\n    extract: {{method: stats}}\n" for i in range(10_000)
    )
    body = json.dumps({"signal_config": config}).encode()
    finished = threading.Event()
    answers: list[httpx.Response] = []

    def validate() -> None:
        with roomy.client() as api:
            answers.append(api.post("/v1/signal-configs/validate", content=body, timeout=300))
        finished.set()

    big = threading.Thread(target=validate)
    big.start()
    try:
        healthy = 0
        # While the config is validated, the server keeps answering: healthz returns (more
        # than once) before the validation does.
        while not finished.is_set() and healthy < 3:
            assert httpx.get(f"{roomy.url}/healthz", timeout=60).status_code == 200
            healthy += 1
        assert healthy == 3
        assert not finished.is_set()
    finally:
        big.join()
    assert answers[0].status_code == 200
    assert answers[0].json()["valid"] is False
