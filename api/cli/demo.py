"""`tpc demo`: an embedded server on a fresh SQLite store, a real experiment through the real
HTTP API, watched to completion, its results printed.

The experiment: three tasks of a fictional payments SDK × three environments (two scripted
agents of different skill, and a replay of recorded Claude transcripts from `examples/`),
repeated twice, with the example signal config (pattern and stats signals).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from api.cli.client import ApiClient, Connection
from api.cli.output import Output, current_output
from api.cli.results_view import render_results
from api.cli.signals_view import render_signals_report
from infra.settings import Settings

if TYPE_CHECKING:
    import uvicorn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The replayed environment's recorded runs: task name -> example transcript stem.
REPLAYED = (
    ("install-sdk", "install-sdk"),
    ("webhook-setup", "webhook"),
    ("refund-payment", "refund"),
)
TASKS = [
    ("install-sdk", "Install the Acme SDK and create a customer named Ada."),
    ("webhook-setup", "Register a webhook for payment.succeeded events."),
    ("refund-payment", "Refund half of payment pay_42."),
]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _EmbeddedServer:
    """uvicorn in a background thread, stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from api.http.app import create_app

        config = uvicorn.Config(
            create_app(settings), host=settings.host, port=settings.port, log_level="warning"
        )
        self.server: uvicorn.Server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _EmbeddedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise click.ClickException("the embedded server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _setup(api: ApiClient) -> str:
    """Tasks, environments and the experiment; returns the experiment id."""
    success = {"final_answer_regex": "^Done"}
    task_ids = [
        api.post("/v1/tasks", {"name": name, "prompt": prompt, "success": success})["id"]
        for name, prompt in TASKS
    ]
    replayed = {
        name: json.loads((EXAMPLES / "transcripts" / f"{stem}__sonnet-docs.json").read_text())
        for name, stem in REPLAYED
    }
    environments = [
        {
            "name": "Careful agent (scripted)",
            "agent": {"kind": "scripted", "skill": 0.85, "step_latency_s": 0.05},
        },
        {
            "name": "Hasty agent (scripted)",
            "agent": {"kind": "scripted", "skill": 0.45, "step_latency_s": 0.05},
        },
        {
            "name": "Claude Sonnet + docs (replayed)",
            "agent": {"kind": "replay", "transcripts": replayed},
        },
    ]
    env_ids = [api.post("/v1/environments", env)["id"] for env in environments]
    experiment = api.post(
        "/v1/experiments",
        {
            "name": "Onboarding friction (demo)",
            "task_ids": task_ids,
            "env_ids": env_ids,
            "repeats": 2,
            "signal_config": (EXAMPLES / "signals.yaml").read_text(),
        },
    )
    return str(experiment["id"])


def _run(api: ApiClient, exp_id: str, output: Output) -> dict[str, Any]:
    """Trigger an iteration and follow it to the end with a progress bar."""
    status: dict[str, Any] = api.post(f"/v1/experiments/{exp_id}/iterations")
    number = status["iteration"]
    total = status["runs"]["total"]
    with output.progress(f"Iteration {number}", total) as advance:
        done = 0
        while status["status"] == "running":
            time.sleep(0.3)
            status = api.get(f"/v1/experiments/{exp_id}/iterations/{number}")
            finished = total - status["runs"]["queued"] - status["runs"]["running"]
            for _ in range(finished - done):
                advance()
            done = finished
    return status


@click.command("demo")
@click.option("--port", type=int, default=None, help="Port for the embedded server (a free one).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path(".tpc/demo"),
    show_default=True,
    help="Where the demo's fresh SQLite store lives.",
)
@click.option(
    "--keep-serving/--exit",
    default=None,
    help="Keep the server up after the results (default: when run at a terminal).",
)
def demo(port: int | None, data_dir: Path, keep_serving: bool | None) -> None:
    """Start an embedded server, run a real experiment end to end and print its results.

    No API keys needed: the agents are scripted (a deterministic simulation) and replayed.

    Example: tpc demo
    """
    output = current_output()
    shutil.rmtree(data_dir, ignore_errors=True)
    host = "127.0.0.1"
    token = f"tpc_demo_{secrets.token_urlsafe(12)}"
    settings = Settings(
        database_url=f"sqlite:///{data_dir / 'tpc.db'}",
        api_token=token,
        host=host,
        port=port or _free_port(host),
        credentials_path=data_dir / "credentials",
    )
    with _EmbeddedServer(settings), ApiClient(Connection(settings.api_url, token)) as api:
        output.errors.print(f"Embedded server at {settings.api_url} (store {data_dir}/tpc.db)")
        exp_id = _setup(api)
        status = _run(api, exp_id, output)
        base = f"/v1/experiments/{exp_id}/iterations/{status['iteration']}"
        results = api.get(f"{base}/results")
        signals = api.get(f"{base}/signals")

        def render(console: Console) -> None:
            render_results(console, results)
            render_signals_report(console, {**signals, "runs": []}, False, by_environment=False)

        output.emit({"status": status, "results": results, "signals": signals}, render)
        # Never wrapped: the command must survive a copy and paste from a narrow terminal.
        output.errors.print(
            f"\nDashboard: {settings.api_url}/ (sign in with the token below)\n"
            f"API: {settings.api_url}/v1 (OpenAPI: {settings.api_url}/openapi.json)\n"
            f"Explore: TPC_API_URL={settings.api_url} TPC_API_TOKEN={token} "
            f"{tpc_command()} sim experiment results {exp_id}",
            soft_wrap=True,
        )
        if keep_serving is None:
            keep_serving = sys.stdin.isatty() and sys.stdout.isatty()
        if keep_serving:
            output.errors.print("Serving until Ctrl-C.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)


def tpc_command() -> str:
    """How to call `tpc` again from this shell: by name when PATH finds this very program,
    else by the path it was started with (`make demo` runs `.venv/bin/tpc`)."""
    started = Path(sys.argv[0])
    on_path = shutil.which("tpc")
    if started.name != "tpc" or (on_path and Path(on_path).resolve() == started.resolve()):
        return "tpc"
    return str(started)
