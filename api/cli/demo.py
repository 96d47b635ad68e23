"""`tpc demo`: an embedded server on a fresh SQLite store, a real experiment through the real
HTTP API, watched to completion, its results printed.

The experiment: three tasks of a fictional payments SDK × three environments (two scripted
agents of different skill, and a replay of recorded Claude transcripts from `examples/`),
repeated twice, with the example signal config (pattern and stats signals).
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from api.cli.output import Output
from api.cli.signals_view import format_value, render_signals_report
from api.http.app import create_app
from infra.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
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
        config = uvicorn.Config(
            create_app(settings), host=settings.host, port=settings.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
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


def _check(response: httpx.Response) -> Any:
    if response.is_error:
        raise click.ClickException(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    return response.json()


def _setup(api: httpx.Client) -> str:
    """Tasks, environments and the experiment; returns the experiment id."""
    success = {"final_answer_regex": "^Done"}
    task_ids = [
        _check(api.post("/v1/tasks", json={"name": name, "prompt": prompt, "success": success}))[
            "id"
        ]
        for name, prompt in TASKS
    ]
    careful = {
        "name": "Careful agent (scripted)",
        "agent": {"kind": "scripted", "skill": 0.85, "step_latency_s": 0.05},
    }
    hasty = {
        "name": "Hasty agent (scripted)",
        "agent": {"kind": "scripted", "skill": 0.45, "step_latency_s": 0.05},
    }
    recorded = {
        "name": "Claude Sonnet + docs (replayed)",
        "agent": {
            "kind": "replay",
            "transcripts": {
                name: json.loads(
                    (EXAMPLES / "transcripts" / f"{stem}__sonnet-docs.json").read_text()
                )
                for name, stem in (
                    ("install-sdk", "install-sdk"),
                    ("webhook-setup", "webhook"),
                    ("refund-payment", "refund"),
                )
            },
        },
    }
    env_ids = [
        _check(api.post("/v1/environments", json=env))["id"] for env in (careful, hasty, recorded)
    ]
    experiment = _check(
        api.post(
            "/v1/experiments",
            json={
                "name": "Onboarding friction (demo)",
                "task_ids": task_ids,
                "env_ids": env_ids,
                "repeats": 2,
                "signal_config": (EXAMPLES / "signals.yaml").read_text(),
            },
        )
    )
    return str(experiment["id"])


def _watch(api: httpx.Client, exp_id: str, output: Output) -> dict[str, Any]:
    status: dict[str, Any] = _check(api.post(f"/v1/experiments/{exp_id}/iterations"))
    number = status["iteration"]
    total = status["runs"]["total"]
    with output.progress(f"Iteration {number}", total) as advance:
        done = 0
        while status["status"] == "running":
            time.sleep(0.3)
            status = _check(api.get(f"/v1/experiments/{exp_id}/iterations/{number}"))
            finished = total - status["runs"]["queued"] - status["runs"]["running"]
            for _ in range(finished - done):
                advance()
            done = finished
    return status


def _render_results(output: Output, results: dict[str, Any], signals: dict[str, Any]) -> None:
    from rich.table import Table

    console = output.console
    summary = results["summary"]
    runs = ", ".join(f"{count} {status}" for status, count in summary["runs"].items() if count)
    console.print(
        f"\n[bold]Results[/] — {results['experiment_id']} iteration "
        f"{results['iteration']}: score {format_value(summary['score'], 'rate')} ({runs})"
    )
    table = Table(title="Environments", title_justify="left")
    for column in ("environment", "score", "Δ best", "median s", "mean tokens"):
        table.add_column(column, justify="left" if column == "environment" else "right")
    for env in summary["environments"]:
        table.add_row(
            env["name"],
            format_value(env["score"], "rate"),
            format_value(env["score_delta_to_best"]),
            format_value(env["median_duration"]),
            format_value(env["mean_tokens"]),
        )
    console.print(table)
    tasks = Table(title="Tasks", title_justify="left")
    tasks.add_column("task")
    tasks.add_column("score", justify="right")
    for task in summary["tasks"]:
        tasks.add_row(task["name"], format_value(task["score"], "rate"))
    console.print(tasks)
    names = {env["environment_id"]: env["name"] for env in summary["environments"]}
    render_signals_report(console, {**signals, "runs": []}, evidence=False, env_names=names)


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
    from api.cli.output import current_output

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
    with _EmbeddedServer(settings):
        api = httpx.Client(
            base_url=settings.api_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        output.errors.print(f"Embedded server at {settings.api_url} (store {data_dir}/tpc.db)")
        exp_id = _setup(api)
        status = _watch(api, exp_id, output)
        number = status["iteration"]
        results = _check(api.get(f"/v1/experiments/{exp_id}/iterations/{number}/results"))
        signals = _check(api.get(f"/v1/experiments/{exp_id}/iterations/{number}/signals"))
        output.emit(
            {"status": status, "results": results, "signals": signals},
            lambda _: _render_results(output, results, signals),
        )
        output.errors.print(
            f"\nAPI: {settings.api_url}/v1 (OpenAPI: {settings.api_url}/openapi.json)\n"
            f"Explore: TPC_API_URL={settings.api_url} TPC_API_TOKEN={token} "
            f"tpc sim experiment results {exp_id}"
        )
        if keep_serving is None:
            keep_serving = sys.stdin.isatty() and sys.stdout.isatty()
        if keep_serving:
            output.errors.print("Serving until Ctrl-C.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
