"""The real `tpc` console script as an HTTP client (docs/spec.md §8, docs/api.md).

Input checks must fail before any request; connection, credentials and error handling must
say what to do. Where a request is needed, a loopback stub HTTP server records what the CLI
sends and answers with documents shaped as docs/api.md says; our own code is never patched.
The end-to-end suite against the real server lives elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest

from api.cli.exit_codes import ExitCode
from projections.read_models import ExperimentView, RunRow, TaskView, document
from tests.conftest import FIXTURES, ROOT

EXAMPLES = ROOT / "examples"
TPC = shutil.which("tpc", path=str(Path(os.sys.executable).parent)) or "tpc"
UNREACHABLE = "http://127.0.0.1:9"
CANNOT_REACH = (
    f"cannot reach the tpc server at {UNREACHABLE}: is `tpc serve` running? (set TPC_API_URL)"
)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


@dataclass
class StubApi:
    """A loopback HTTP server: canned answers per (method, path), every request recorded."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)

    def answer(self, method: str, path: str, status: int, *documents: Any) -> None:
        """Answer with each document in turn, repeating the last one."""
        self.answers[(method, path)] = [(status, document) for document in documents]

    def reply(self, method: str, path: str) -> tuple[int, Any]:
        queue = self.answers.get((method, path))
        if not queue:
            return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _handler(stub: StubApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            stub.requests.append(
                Recorded(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    self.headers.get("Authorization"),
                    json.loads(raw) if raw else None,
                )
            )
            status, document = stub.reply(self.command, parts.path)
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def api() -> Iterator[StubApi]:
    stub = StubApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory: no ~/.tpc/credentials unless a test writes one."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def tpc(
    *args: str,
    home: Path,
    url: str | None = UNREACHABLE,
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"TPC_API_URL", "TPC_API_TOKEN", "TPC_POLL_INTERVAL"}
    }
    env.update({"HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", **(extra or {})})
    if url is not None:
        env["TPC_API_URL"] = url
    if token is not None:
        env["TPC_API_TOKEN"] = token
    return subprocess.run(
        [TPC, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
    )


def status_document(state: str, finished: int, total: int = 4, iteration: int = 4) -> Any:
    return {
        "experiment_id": "exp_1",
        "iteration": iteration,
        "status": state,
        "runs": {
            "total": total,
            "queued": total - finished,
            "running": 0,
            "passed": finished,
            "failed": 0,
            "errored": 0,
            "timed_out": 0,
            "cancelled": 0,
        },
        "config_hash": None,
        "cancel_requested": False,
        "created_at": "2026-11-21T10:00:00+00:00",
        "completed_at": None,
        "rescore_of": None,
        "imported": None,
    }


# The stub answers as the real server does: each document is its read model's.
CREATED_AT = "2026-11-21T10:00:00+00:00"


def experiment_document(**fields: Any) -> Any:
    defaults = {
        "id": "exp_1",
        "name": "Onboarding",
        "task_ids": [],
        "env_ids": [],
        "repeats": 1,
        "signal_config": None,
        "iterations": 0,
        "created_at": CREATED_AT,
        "version": 1,
    }
    return document(ExperimentView.model_validate({**defaults, **fields}))


def task_document(**fields: Any) -> Any:
    return document(TaskView.model_validate({"created_at": CREATED_AT, **fields}))


def run_document(**fields: Any) -> Any:
    defaults = {
        "experiment_id": "exp_1",
        "iteration": 1,
        "task_id": "task_a",
        "environment_id": "env_x",
        "repeat": 0,
        "attempts": 1,
        "error": None,
        "signals": {},
        "started_at": CREATED_AT,
        "ended_at": CREATED_AT,
    }
    return document(RunRow.model_validate({**defaults, **fields}))


# -- input checks: usage errors and local validation, before any request -----------------------


@pytest.mark.parametrize(
    "flags",
    [[], ["--clear-signal-config", "--signal-config", str(EXAMPLES / "signals.yaml")]],
    ids=["neither", "both"],
)
def test_update_needs_exactly_one_of_the_config_flags(home: Path, flags: list[str]) -> None:
    done = tpc("sim", "experiment", "update", "exp_1", *flags, home=home)
    assert done.returncode == 2
    assert "give exactly one of --signal-config F and --clear-signal-config" in done.stderr
    assert done.stdout == ""


def test_env_create_needs_exactly_one_source(home: Path, tmp_path: Path) -> None:
    neither = tpc("sim", "env", "create", "--name", "x", home=home)
    both = tpc("sim", "env", "create", "--file", "e.yaml", "--replay-dir", str(tmp_path), home=home)
    for done in (neither, both):
        assert done.returncode == 2
        assert "give exactly one of --file and --replay-dir" in done.stderr


def test_replay_dir_names_every_bad_file_and_sends_nothing(
    home: Path, tmp_path: Path, api: StubApi
) -> None:
    folder = tmp_path / "replay"
    folder.mkdir()
    shutil.copy(EXAMPLES / "transcripts" / "refund__gpt-nodocs.json", folder / "refund.json")
    (folder / "robot.json").write_text('{"messages": [{"role": "robot", "content": "x"}]}')
    (folder / "truncated.json").write_text('{"messages": [')
    good = json.loads((FIXTURES / "golden_transcript.json").read_text())
    (folder / "listed.json").write_text(json.dumps([good, {"messages": 3}]))
    done = tpc(
        "sim", "env", "create", "--name", "recorded", "--replay-dir", str(folder),
        home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"3 of 4 files in {folder} are not valid tpc transcripts" in done.stderr
    assert f"{folder / 'robot.json'}: not a valid tpc transcript: messages[0].role" in done.stderr
    assert f"{folder / 'truncated.json'}: not valid JSON" in done.stderr
    assert f"{folder / 'listed.json'}[1]: not a valid tpc transcript: messages" in done.stderr
    assert "refund.json" not in done.stderr
    assert api.requests == []


def test_replay_dir_missing_or_empty_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    missing = tpc(
        "sim", "env", "create", "--name", "r", "--replay-dir", str(tmp_path / "nope"), home=home
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = tpc(
        "sim", "env", "create", "--name", "r", "--replay-dir", str(tmp_path / "empty"), home=home
    )
    assert empty.returncode == 2
    assert f"no *.json transcripts in {tmp_path / 'empty'}" in empty.stderr


@pytest.mark.parametrize("command", [["create", "--name", "x"], ["update", "exp_1"]])
def test_invalid_signal_config_fails_locally_with_located_errors(
    home: Path, tmp_path: Path, api: StubApi, command: list[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsignals:\n  - {id: X, name: X, type: number, "
        "extract: {method: stats, stat: cost}}\n"
    )
    done = tpc("sim", "experiment", *command, "--signal-config", str(bad), home=home, url=api.url)
    assert done.returncode == 1
    assert f"{bad}: invalid signal config (1 problem; nothing was sent)" in done.stderr
    assert "  signals[0].id: must be kebab-case" in done.stderr
    assert api.requests == []


def test_signal_config_that_is_not_yaml_exits_2(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsignals: [\n")
    done = tpc("sim", "experiment", "create", "--name", "x", "--signal-config", str(bad), home=home)
    assert done.returncode == 2
    assert f"{bad}: not valid YAML: line 3" in done.stderr


def test_task_create_needs_a_name_and_a_prompt(home: Path) -> None:
    done = tpc("sim", "task", "create", "--name", "x", home=home)
    assert done.returncode == 1
    assert "prompt: required (give --prompt or set prompt in the file)" in done.stderr


# -- reaching the server and credentials --------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["task", "list"],
        ["experiment", "run", "exp_1"],
        ["experiment", "run", "status", "exp_1", "--watch"],
        ["experiment", "results", "exp_1"],
        ["run", "logs", "run_1"],
    ],
)
def test_unreachable_server_without_credentials_says_what_to_do(
    home: Path, command: list[str]
) -> None:
    done = tpc("--format", "json", "sim", *command, home=home)
    assert done.returncode == 1
    assert CANNOT_REACH in " ".join(done.stderr.split())
    assert done.stdout == ""


def test_credentials_file_gives_the_url_and_the_token(home: Path, api: StubApi) -> None:
    (home / ".tpc").mkdir()
    (home / ".tpc" / "credentials").write_text(
        json.dumps({"api_url": api.url, "token": "tpc_saved"})
    )
    api.answer("GET", "/v1/tasks", 200, {"items": [], "next_cursor": None})
    done = tpc("--format", "json", "sim", "task", "list", home=home, url=None)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"items": [], "next_cursor": None}
    assert [r.authorization for r in api.requests] == ["Bearer tpc_saved"]
    assert api.requests[0].query == {"limit": ["50"]}


def test_environment_token_wins_over_the_credentials_file(home: Path, api: StubApi) -> None:
    (home / ".tpc").mkdir()
    (home / ".tpc" / "credentials").write_text(
        json.dumps({"api_url": UNREACHABLE, "token": "tpc_saved"})
    )
    api.answer("GET", "/v1/tasks", 200, {"items": [], "next_cursor": None})
    done = tpc("sim", "task", "list", home=home, url=api.url, token="tpc_env")
    assert done.returncode == 0, done.stderr
    assert "No tasks yet" in done.stdout
    assert [r.authorization for r in api.requests] == ["Bearer tpc_env"]


def test_a_malformed_credentials_file_is_a_clear_error(home: Path) -> None:
    (home / ".tpc").mkdir()
    (home / ".tpc" / "credentials").write_text("token=abc")
    done = tpc("sim", "task", "list", home=home, url=None)
    assert done.returncode == 1
    assert f"{home / '.tpc' / 'credentials'} is not a JSON object" in done.stderr


def test_an_api_url_without_a_scheme_is_a_clear_error(home: Path) -> None:
    done = tpc("sim", "task", "list", home=home, url="localhost:8642")
    assert done.returncode == 1
    assert "'localhost:8642' is not an http(s) URL" in done.stderr


# -- server errors ------------------------------------------------------------------------------


def test_a_rejected_token_says_how_to_get_one(home: Path, api: StubApi) -> None:
    api.answer(
        "GET", "/v1/tasks", 401, {"error": {"code": "unauthorized", "message": "unknown API token"}}
    )
    done = tpc("sim", "task", "list", home=home, url=api.url, token="tpc_wrong")
    assert done.returncode == 1
    assert "the server rejected the token (set TPC_API_TOKEN or run `tpc serve` once" in (
        " ".join(done.stderr.split())
    )
    missing = tpc("sim", "task", "list", home=home, url=api.url)
    assert "no API token was found" in missing.stderr
    assert [r.authorization for r in api.requests] == ["Bearer tpc_wrong", None]


def test_not_found_and_conflict_print_the_server_message(home: Path, api: StubApi) -> None:
    api.answer(
        "GET", "/v1/experiments/exp_x", 404, {"error": {"code": "not_found", "message": "gone"}}
    )
    api.answer(
        "POST",
        "/v1/experiments/exp_x/iterations",
        409,
        {"error": {"code": "conflict", "message": "exp_x has no tasks"}},
    )
    got = tpc("sim", "experiment", "get", "exp_x", home=home, url=api.url, token="t")
    assert (got.returncode, got.stderr.strip()) == (1, "error: gone")
    ran = tpc("sim", "experiment", "run", "exp_x", home=home, url=api.url, token="t")
    assert (ran.returncode, ran.stderr.strip()) == (1, "error: exp_x has no tasks")


def test_invalid_content_prints_every_located_problem(home: Path, api: StubApi) -> None:
    api.answer(
        "POST",
        "/v1/tasks",
        422,
        {
            "error": {
                "code": "invalid",
                "message": "invalid task: name: must not be empty",
                "problems": [
                    {"loc": "name", "message": "must not be empty"},
                    {"loc": "user.max_turns", "message": "must be at most 50"},
                ],
            }
        },
    )
    # A task the CLI finds valid: the server's own problems are printed as it sent them.
    done = tpc("sim", "task", "create", "--name", "n", "--prompt", "p", home=home, url=api.url)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: invalid task: name: must not be empty",
        "  name: must not be empty",
        "  user.max_turns: must be at most 50",
    ]


# -- what is sent, and what is printed ----------------------------------------------------------


def test_task_create_merges_the_file_under_the_flags(
    home: Path, tmp_path: Path, api: StubApi
) -> None:
    spec = tmp_path / "task.yaml"
    spec.write_text(
        "name: from-file\nprompt: Install the SDK.\ntags: [onboarding]\n"
        "success: {final_answer_regex: 'cus_\\w+'}\n"
    )
    created = task_document(id="task_1", name="install-sdk", prompt="Install the SDK.")
    api.answer("POST", "/v1/tasks", 201, created)
    done = tpc(
        "sim", "task", "create", "--file", str(spec), "--name", "install-sdk", "--format", "json",
        home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == created
    assert api.requests[0].body == {
        "name": "install-sdk",
        "prompt": "Install the SDK.",
        "tags": ["onboarding"],
        "success": {"final_answer_regex": "cus_\\w+"},
    }


def test_replay_dir_embeds_each_file_under_its_stem(
    home: Path, tmp_path: Path, api: StubApi
) -> None:
    folder = tmp_path / "replay"
    folder.mkdir()
    one = json.loads((EXAMPLES / "transcripts" / "refund__gpt-nodocs.json").read_text())
    two = json.loads((EXAMPLES / "transcripts" / "refund__sonnet-docs.json").read_text())
    (folder / "install-sdk.json").write_text(json.dumps(one))
    (folder / "task_abc.json").write_text(json.dumps([one, two]))
    (folder / "notes.txt").write_text("not a transcript")
    api.answer(
        "POST",
        "/v1/environments",
        201,
        {
            "id": "env_1",
            "name": "recorded",
            "agent": {"kind": "replay", "transcripts": {"install-sdk": 1, "task_abc": 2}},
            "limits": {"timeout_s": 600.0, "max_cost_usd": None},
            "created_at": "2026-11-21T10:00:00+00:00",
        },
    )
    done = tpc(
        "sim", "env", "create", "--name", "recorded", "--replay-dir", str(folder),
        home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert api.requests[0].body == {
        "name": "recorded",
        "agent": {"kind": "replay", "transcripts": {"install-sdk": one, "task_abc": [one, two]}},
    }
    assert "replay: 3 transcripts for 2 keys" in done.stdout


def test_experiment_create_sends_ids_repeats_and_the_config_text(home: Path, api: StubApi) -> None:
    config = EXAMPLES / "signals.yaml"
    created = experiment_document(task_ids=["task_a", "task_b"], env_ids=["env_x"], repeats=3)
    api.answer("POST", "/v1/experiments", 201, created)
    done = tpc(
        "--format", "json", "sim", "experiment", "create", "--name", "Onboarding",
        "--task-ids", "task_a, task_b", "--env-ids", "env_x", "--repeats", "3",
        "--signal-config", str(config),
        home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == created
    assert api.requests[0].body == {
        "name": "Onboarding",
        "task_ids": ["task_a", "task_b"],
        "env_ids": ["env_x"],
        "repeats": 3,
        "signal_config": config.read_text(),
    }


def test_update_can_clear_the_config(home: Path, api: StubApi) -> None:
    api.answer("PATCH", "/v1/experiments/exp_1", 200, experiment_document())
    done = tpc(
        "sim", "experiment", "update", "exp_1", "--clear-signal-config", "--format", "json",
        home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert api.requests[0].body == {"signal_config": None}


def test_membership_commands_use_the_documented_routes(home: Path, api: StubApi) -> None:
    experiment = experiment_document(task_ids=["task_a"])
    for method, path in [
        ("POST", "/v1/experiments/exp_1/tasks"),
        ("DELETE", "/v1/experiments/exp_1/tasks/task_a"),
        ("POST", "/v1/experiments/exp_1/environments"),
        ("DELETE", "/v1/experiments/exp_1/environments/env_x"),
    ]:
        api.answer(method, path, 200, experiment)
    for command in (
        ["task", "add", "exp_1", "task_a"],
        ["task", "remove", "exp_1", "task_a"],
        ["env", "add", "exp_1", "env_x"],
        ["env", "remove", "exp_1", "env_x"],
    ):
        done = tpc("--format", "json", "sim", "experiment", *command, home=home, url=api.url)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == experiment
    assert [(r.method, r.path, r.body) for r in api.requests] == [
        ("POST", "/v1/experiments/exp_1/tasks", {"task_id": "task_a"}),
        ("DELETE", "/v1/experiments/exp_1/tasks/task_a", None),
        ("POST", "/v1/experiments/exp_1/environments", {"env_id": "env_x"}),
        ("DELETE", "/v1/experiments/exp_1/environments/env_x", None),
    ]


def test_run_is_both_a_trigger_and_a_group(home: Path, api: StubApi) -> None:
    api.answer("POST", "/v1/experiments/exp_1/iterations", 201, status_document("running", 0))
    api.answer("GET", "/v1/experiments/exp_1/iterations/2", 200, status_document("running", 1))
    api.answer(
        "POST", "/v1/experiments/exp_1/iterations/latest/cancel", 200, status_document("running", 1)
    )
    trigger = tpc("--format", "json", "sim", "experiment", "run", "exp_1", home=home, url=api.url)
    assert trigger.returncode == 0, trigger.stderr
    assert {"experiment_id", "iteration", "status", "runs"} <= set(json.loads(trigger.stdout))
    status = tpc(
        "sim", "experiment", "run", "status", "exp_1", "--iteration", "2", home=home, url=api.url
    )
    assert status.returncode == 0, status.stderr
    assert "exp_1 iteration 4: running — 1/4 runs finished" in status.stdout
    cancel = tpc("sim", "experiment", "run", "cancel", "exp_1", home=home, url=api.url)
    assert cancel.returncode == 0, cancel.stderr
    assert [(r.method, r.path) for r in api.requests] == [
        ("POST", "/v1/experiments/exp_1/iterations"),
        ("GET", "/v1/experiments/exp_1/iterations/2"),
        ("POST", "/v1/experiments/exp_1/iterations/latest/cancel"),
    ]
    usage = tpc("sim", "experiment", "run", "exp_1", "--help", home=home)
    assert "Usage: tpc sim experiment run [OPTIONS] EXP" in usage.stdout


def test_watch_polls_the_same_iteration_until_it_stops_running(home: Path, api: StubApi) -> None:
    api.answer("GET", "/v1/experiments/exp_1/iterations/latest", 200, status_document("running", 1))
    api.answer(
        "GET",
        "/v1/experiments/exp_1/iterations/4",
        200,
        status_document("running", 3),
        status_document("completed", 4),
    )
    done = tpc(
        "--format", "json", "sim", "experiment", "run", "status", "exp_1", "--watch",
        home=home, url=api.url, extra={"TPC_POLL_INTERVAL": "0.01"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == status_document("completed", 4)
    assert [r.path for r in api.requests] == [
        "/v1/experiments/exp_1/iterations/latest",
        "/v1/experiments/exp_1/iterations/4",
        "/v1/experiments/exp_1/iterations/4",
    ]


def test_results_pass_the_filters_and_render_every_section(home: Path, api: StubApi) -> None:
    results = {
        "experiment_id": "exp_1",
        "iteration": 2,
        "status": "completed",
        "config_hash": "sha256:abc",
        "rescore_of": None,
        "imported": None,
        "confidence": 0.95,
        "summary": {
            "runs": {"passed": 3, "failed": 1, "errored": 0, "timed_out": 0, "cancelled": 0},
            "score": 0.75,
            "tasks": [
                {
                    "task_id": "task_a",
                    "name": "install-sdk",
                    "score": 0.75,
                    "runs": 4,
                    "by_environment": {"env_x": 1.0, "env_y": 0.5},
                }
            ],
            "environments": [
                {
                    "environment_id": "env_x",
                    "name": "sonnet-docs",
                    "score": 1.0,
                    "runs": 2,
                    "median_duration": 12.5,
                    "mean_tokens": 1500.0,
                    "mean_cost": 0.0123,
                    "score_delta_to_best": 0.0,
                    "aggregates": {"fabrication-rate": 0.0},
                },
                {
                    "environment_id": "env_y",
                    "name": "gpt-nodocs",
                    "score": 0.5,
                    "runs": 2,
                    "median_duration": 30.0,
                    "mean_tokens": 4000.0,
                    "mean_cost": None,
                    "score_delta_to_best": -0.5,
                    "aggregates": {"fabrication-rate": 0.5},
                },
            ],
        },
        "failure_clusters": [
            {
                "id": "cl_1",
                "key": "auth",
                "category": "Auth failures",
                "root_cause": {"area": "docs", "explanation": "The quickstart omits the key."},
                "recommended_fix": "Show the API key setup first.",
                "run_ids": ["run_9"],
                "size": 1,
                "places": [{"kind": "host", "name": "api.acme.com", "runs": 1}],
                "evidence": [{"run_id": "run_9", "event": 4, "snippet": "401 Unauthorized"}],
            }
        ],
        "suggestions": [
            {
                "fix": "Document API keys in the quickstart.",
                "runs": 1,
                "cluster_ids": ["cl_1"],
                "area": "docs",
            }
        ],
        "compare": {
            "iteration": 1,
            "score_delta": 0.25,
            "tasks": [{"task_id": "task_a", "score": 0.75, "previous": 0.5, "delta": 0.25}],
            "environments": [
                {"environment_id": "env_y", "score": 0.5, "previous": 0.5, "delta": 0.0}
            ],
            "aggregates": [
                {"id": "fabrication-rate", "value": 0.25, "previous": 0.5, "delta": -0.25}
            ],
            "clusters": [
                {
                    "key": "auth",
                    "category": "Auth failures",
                    "change": "new",
                    "runs": 1,
                    "previous_runs": 0,
                    "delta": 1,
                },
                {
                    "key": "doc_loop",
                    "category": "Agents re-reading the same docs page to the step limit",
                    "change": "resolved",
                    "runs": 0,
                    "previous_runs": 3,
                    "delta": -3,
                },
            ],
        },
    }
    api.answer("GET", "/v1/experiments/exp_1/iterations/2/results", 200, results)
    args = ("sim", "experiment", "results", "exp_1", "--iteration", "2")
    filters = ("--compare", "1", "--error-category", "Auth failures")
    as_json = tpc("--format", "json", *args, *filters, home=home, url=api.url)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == results
    assert api.requests[0].query == {"compare": ["1"], "error_category": ["Auth failures"]}
    human = tpc(*args, home=home, url=api.url)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    # A document without intervals (an older server) still renders, scores as 0.75.
    assert lines[0] == "exp_1 iteration 2 (completed): overall score 0.75 (95% intervals)"
    for expected in (
        "Task scores",
        "Environments",
        "-50 pts",
        "$0.0123",
        "Signal aggregates by environment",
        "Auth failures",
        "root cause docs: The quickstart omits the key.",
        "fix: Show the API key setup first.",
        "run_9 event 4: 401 Unauthorized",
        "Document API keys in the quickstart.",
        "Compared with iteration 1: overall score +0.25",
        "where: api.acme.com 1",
        "Failure clusters",
        "resolved",
    ):
        assert expected in human.stdout, expected
    assert any(
        "install-sdk" in line and "0.75" in line and "100%" in line and "50%" in line
        for line in lines
    )


def test_signals_print_the_server_report(home: Path, api: StubApi) -> None:
    report = {
        "experiment_id": "exp_1",
        "iteration": 1,
        "config_hash": "sha256:abc",
        "aggregates": [],
        "runs": [
            {
                "run_id": "run_1",
                "task_id": "task_a",
                "environment_id": "env_x",
                "status": "passed",
                "signals": {"docs-lookups": {"value": 3, "evidence": []}},
            }
        ],
    }
    api.answer("GET", "/v1/experiments/exp_1/iterations/latest/signals", 200, report)
    api.answer("GET", "/v1/tasks", 200, {"items": [{"id": "task_a", "name": "install-sdk"}]})
    api.answer("GET", "/v1/environments", 200, {"items": [{"id": "env_x", "name": "sonnet"}]})
    as_json = tpc(
        "--format", "json", "sim", "experiment", "signals", "exp_1", home=home, url=api.url
    )
    assert json.loads(as_json.stdout) == report
    human = tpc("sim", "experiment", "signals", "exp_1", home=home, url=api.url)
    assert "Runs (1)" in human.stdout
    assert "docs-lookups" in human.stdout
    assert "install-sdk" in human.stdout and "sonnet" in human.stdout  # names, not ids


def test_history_reads_every_page(home: Path, api: StubApi) -> None:
    first = {"position": 1, "time": "2026-11-21T10:00:00+00:00", "type": "Experiment.Created"}
    second = {"position": 2, "time": "2026-11-21T10:00:01+00:00", "type": "Experiment.Renamed"}
    for event in (first, second):
        event.update({"summary": f"event {event['position']}", "stream": "experiment", "id": "e"})
    api.answer(
        "GET",
        "/v1/experiments/exp_1/history",
        200,
        {"items": [first], "next_cursor": "1"},
        {"items": [second], "next_cursor": None},
    )
    done = tpc("--format", "json", "sim", "experiment", "history", "exp_1", home=home, url=api.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"items": [first, second], "next_cursor": None}
    assert [r.query.get("cursor") for r in api.requests] == [None, ["1"]]


def test_run_logs_render_the_conversation(home: Path, api: StubApi) -> None:
    transcript = json.loads((FIXTURES / "golden_transcript.json").read_text())
    api.answer("GET", "/v1/runs/run_1/transcript", 200, transcript)
    as_json = tpc("--format", "json", "sim", "run", "logs", "run_1", home=home, url=api.url)
    assert json.loads(as_json.stdout) == transcript
    human = tpc("sim", "run", "logs", "run_1", home=home, url=api.url)
    assert human.returncode == 0, human.stderr
    for expected in (
        "task_golden × env_golden  failed (max_steps)",
        "[1] user",
        "Install the SDK and create a customer.",
        '→ shell {"command": "pip install acme", "timeout": 30}',
        "← Successfully installed acme-2.1",
        "← error: wrote",
    ):
        assert expected in human.stdout, expected


def test_run_logs_follow_restarts_with_a_new_attempt(home: Path, api: StubApi) -> None:
    def page(attempt: int, status: str, messages: list[Any], done: bool = False) -> Any:
        items = [{"index": i, "role": role, "content": text} for i, role, text in messages]
        next_index = items[-1]["index"] + 1 if items else 3
        return {
            "run_id": "run_1",
            "status": status,
            "attempt": attempt,
            "messages": items,
            "next": next_index,
            "done": done,
        }

    first = [(0, "system", "You are an agent."), (1, "user", "Install it.")]
    api.answer(
        "GET",
        "/v1/runs/run_1/logs",
        200,
        page(1, "running", first),
        page(1, "running", [(2, "assistant", "Crashing soon.")]),
        page(2, "running", []),  # asked from 3: the new attempt is read again from 0
        page(2, "passed", [*first, (2, "assistant", "Installed.")], done=True),
    )
    run = run_document(id="run_1", status="passed", termination_reason="completed", stats={})
    api.answer("GET", "/v1/runs/run_1", 200, run)
    extra = {"TPC_POLL_INTERVAL": "0"}
    follow = ("sim", "run", "logs", "run_1", "--follow")
    done = tpc("--format", "json", *follow, home=home, url=api.url, extra=extra)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line.get("attempt"), line.get("index")) for line in lines] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
        (None, None),
    ]
    assert lines[-1] == run
    logs_asked = [r.query.get("after") for r in api.requests if r.path.endswith("/logs")]
    assert logs_asked == [["0"], ["2"], ["3"], ["0"]]

    api.requests.clear()
    api.answer("GET", "/v1/runs/run_1/logs", 200, page(2, "passed", [*first], done=True))
    human = tpc(*follow, home=home, url=api.url, extra=extra)
    assert human.returncode == 0, human.stderr
    assert human.stdout.index("[1] user") < human.stdout.index("run_1 passed (completed)")


def test_an_answer_that_is_not_the_read_model_is_a_clear_error(home: Path, api: StubApi) -> None:
    """Both for people and for JSON: the answer is parsed before anything is printed."""
    api.answer("GET", "/v1/runs/run_1", 200, {"id": "run_1", "status": "passed"})
    for json_format in ((), ("--format", "json")):
        done = tpc(*json_format, "sim", "run", "get", "run_1", home=home, url=api.url)
        assert done.returncode == ExitCode.FAILED
        assert done.stdout == ""
        assert done.stderr.startswith(
            "error: the server answered something that is not a RunRow (experiment_id: Field "
            "required)"
        )
        assert "Traceback" not in done.stderr


def test_run_actions_are_a_table(home: Path, api: StubApi) -> None:
    actions = {
        "run_id": "run_1",
        "actions": [
            {
                "event": 2,
                "name": "shell",
                "input": {"command": "pip install acme"},
                "result": "Successfully installed acme-2.1",
                "is_error": False,
            }
        ],
    }
    api.answer("GET", "/v1/runs/run_1/actions", 200, actions)
    done = tpc("sim", "run", "actions", "run_1", home=home, url=api.url)
    assert done.returncode == 0, done.stderr
    assert "Tool calls of run_1 (1)" in done.stdout
    assert "Successfully installed acme-2.1" in done.stdout


def test_ids_are_escaped_into_one_path_segment(home: Path, api: StubApi) -> None:
    done = tpc("sim", "task", "get", "../experiments", home=home, url=api.url)
    assert done.returncode == 1
    assert [r.path for r in api.requests] == ["/v1/tasks/..%2Fexperiments"]


def test_every_command_help_has_an_example() -> None:
    from api.cli.main import cli

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    sim = cli.commands["sim"]
    assert isinstance(sim, click.Group)
    commands = list(walk(sim, "tpc sim"))
    lacking = [
        path
        for path, command in commands
        if not isinstance(command, click.Group) and "Example:" not in (command.help or "")
    ]
    assert lacking == []
    names = {path for path, _ in commands}
    assert {
        "tpc sim task create",
        "tpc sim env get",
        "tpc sim experiment run status",
        "tpc sim experiment run cancel",
        "tpc sim experiment history",
        "tpc sim run actions",
    } <= names


def test_fail_on_regression_reads_the_previous_iteration_and_exits_4(
    home: Path, api: StubApi
) -> None:
    """The gate over a results document with significance fields: a significant
    environment drop against the previous iteration (the default comparison) fails it."""
    entry = {"ci": [-0.5, -0.1], "p_value": 0.004, "p_adjusted": 0.012}
    current = {
        "experiment_id": "exp_1",
        "iteration": 2,
        "status": "completed",
        "config_hash": None,
        "rescore_of": None,
        "imported": None,
        "confidence": 0.95,
        "summary": {"runs": {}, "score": 0.5, "tasks": [], "environments": []},
        "suggestions": [],
        "failure_clusters": [{"category": "Auth failures", "size": 2, "run_ids": []}],
        "compare": {
            "iteration": 1,
            "score_delta": -0.2,
            "score": {**entry, "delta": -0.2, "verdict": "not significant"},
            "tasks": [],
            "environments": [
                {"environment_id": "env_y", **entry, "delta": -0.3, "verdict": "significant"}
            ],
            "aggregates": [],
        },
    }
    previous = {**current, "iteration": 1, "failure_clusters": [{"category": "Auth failures"}]}
    api.answer("GET", "/v1/experiments/exp_1/iterations/latest/results", 200, current)
    api.answer("GET", "/v1/experiments/exp_1/iterations/2/results", 200, current)
    api.answer("GET", "/v1/experiments/exp_1/iterations/1/results", 200, previous)
    args = ("sim", "experiment", "results", "exp_1", "--fail-on", "regression")
    done = tpc("--format", "json", *args, "--fail-on", "cluster:new", home=home, url=api.url)
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines() == [
        "gate failed: regression: significant drop against iteration 1: "
        "environment env_y -30 pts (p_adj 0.012)"
    ]
    gate = json.loads(done.stdout)["gate"]
    assert gate["passed"] is False and [f["expr"] for f in gate["failed"]] == ["regression"]
    # Latest first, then pinned to its number with the comparison, then iteration 1's clusters.
    assert [(r.path, r.query) for r in api.requests] == [
        ("/v1/experiments/exp_1/iterations/latest/results", {}),
        ("/v1/experiments/exp_1/iterations/2/results", {"compare": ["1"]}),
        ("/v1/experiments/exp_1/iterations/1/results", {}),
    ]


def test_a_malformed_fail_on_makes_no_request(home: Path, api: StubApi) -> None:
    args = ("sim", "experiment", "results", "exp_1", "--fail-on", "score < 0.8")
    done = tpc(*args, "--fail-on", "signal:x.rate ~ 2", home=home, url=api.url)
    assert done.returncode == 2
    assert "'signal:x.rate ~ 2'" in done.stderr and "OP is one of" in done.stderr
    assert api.requests == []


def test_replay_dir_from_agent_logs_converts_each_file_under_its_key(
    home: Path, tmp_path: Path, api: StubApi
) -> None:
    corpus = FIXTURES / "formats"
    folder = tmp_path / "replay"
    folder.mkdir()
    shutil.copy(corpus / "claude_code_session.jsonl", folder / "count-customers.jsonl")
    shutil.copy(corpus / "inspect_log.eval", folder / "install-cli.eval")
    shutil.copy(corpus / "mini_swe_agent.traj.json", folder / "fix-slug.traj.json")
    (folder / "notes.txt").write_text("not a log")
    api.answer(
        "POST",
        "/v1/environments",
        201,
        {
            "id": "env_1",
            "name": "recorded",
            "agent": {
                "kind": "replay",
                "transcripts": {"count-customers": 1, "fix-slug": 1, "install-cli": 3},
            },
            "limits": {"timeout_s": 600.0, "max_cost_usd": None},
            "created_at": "2026-11-21T10:00:00+00:00",
        },
    )
    done = tpc(
        "sim", "env", "create", "--name", "recorded", "--replay-dir", str(folder),
        "--from", "auto", home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sent = api.requests[0].body["agent"]["transcripts"]
    assert {key: len(value) for key, value in sent.items()} == {
        "count-customers": 1,
        "fix-slug": 1,
        "install-cli": 3,
    }
    first = sent["count-customers"][0]
    assert first["version"] == 1
    assert first["stats"]["model"] == "claude-sonnet-4-5-20250929"
    assert f"{folder / 'install-cli.eval'}: detected inspect-log (3 transcripts)" in done.stderr


def test_replay_dir_from_a_wrong_format_names_the_file_and_sends_nothing(
    home: Path, tmp_path: Path, api: StubApi
) -> None:
    corpus = FIXTURES / "formats"
    folder = tmp_path / "replay"
    folder.mkdir()
    shutil.copy(corpus / "codex_exec.jsonl", folder / "good.jsonl")
    shutil.copy(corpus / "claude_stream_json.jsonl", folder / "claude.jsonl")
    done = tpc(
        "sim", "env", "create", "--name", "recorded", "--replay-dir", str(folder),
        "--from", "codex-jsonl", home=home, url=api.url,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    stderr = " ".join(done.stderr.split())
    assert f"1 of 2 files in {folder} could not be read as codex-jsonl" in stderr
    assert f"{folder / 'claude.jsonl'}: codex-jsonl line 1: `type` 'system'" in stderr
    assert api.requests == []
