"""`tpc demo`: an embedded server on a fresh SQLite store, a real experiment through the real
HTTP API, watched to completion, its results printed.

The experiment: three tasks of a fictional payments SDK × three environments (two scripted
agents of different skill, and a replay of recorded Claude transcripts from `examples/`),
repeated twice, with the example signal config (pattern and stats signals). It prints a short
story (api/cli/demo_story.py) and, at a terminal or with --keep, serves until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import errno
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

from api.cli.client import ApiClient, Connection, parse
from api.cli.demo_story import NextSteps, render_next_steps, render_story
from api.cli.output import Output, current_output
from infra.settings import Settings
from projections.read_models import IterationStatus, Results

if TYPE_CHECKING:
    import uvicorn

# Fixed, so the dashboard's address is the same from one demo to the next; not `tpc serve`'s
# 8642, so a demo can run beside a server.
DEFAULT_PORT = 8765
EXPERIMENT_NAME = "Onboarding friction (demo)"
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


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR as uvicorn sets it, so the
    port of a demo that just ended (its sockets in TIME_WAIT) counts as free."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def choose_port(host: str, requested: int | None) -> tuple[int, str | None]:
    """The port to serve on, and a note when it is not the default. A port asked for with
    --port must be free; the default one falls back to any free port."""
    if requested is not None:
        if not port_is_free(host, requested):
            raise click.ClickException(
                f"port {requested} is in use on {host}: choose another with --port, or stop "
                "what listens there"
            )
        return requested, None
    if port_is_free(host, DEFAULT_PORT):
        return DEFAULT_PORT, None
    port = _free_port(host)
    return port, (
        f"Port {DEFAULT_PORT} is in use (another demo or server?): serving on {port} instead; "
        "choose one with --port."
    )


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
            "name": EXPERIMENT_NAME,
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
@click.option(
    "--port",
    type=int,
    default=None,
    help=f"Port for the embedded server (default {DEFAULT_PORT}, or a free one if it is taken).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path(".tpc/demo"),
    show_default=True,
    help="Where the demo's fresh SQLite store lives.",
)
@click.option(
    "--keep/--exit",
    "--keep-serving/--no-keep-serving",
    "keep",
    default=None,
    help="Keep serving after the results until Ctrl-C (default: only at a terminal).",
)
def demo(port: int | None, data_dir: Path, keep: bool | None) -> None:
    """Start an embedded server, run a real experiment end to end and tell how it went: what
    ran, who won, the top failure clusters, where to look next.

    No API keys needed: the agents are scripted (a deterministic simulation) and replayed.

    Example: tpc demo --keep
    """
    output = current_output()
    host = "127.0.0.1"
    chosen, note = choose_port(host, port)
    shutil.rmtree(data_dir, ignore_errors=True)
    token = f"tpc_demo_{secrets.token_urlsafe(12)}"
    settings = Settings(
        database_url=f"sqlite:///{data_dir / 'tpc.db'}",
        api_token=token,
        host=host,
        port=chosen,
        credentials_path=data_dir / "credentials",
    )
    if keep is None:
        keep = sys.stdin.isatty() and sys.stdout.isatty()
    if note:
        output.errors.print(note)
    with _EmbeddedServer(settings), ApiClient(Connection(settings.api_url, token)) as api:
        output.errors.print(f"Embedded server at {settings.api_url} (store {data_dir}/tpc.db)")
        exp_id = _setup(api)
        status = _run(api, exp_id, output)
        results = api.get(f"/v1/experiments/{exp_id}/iterations/{status['iteration']}/results")
        steps = NextSteps(
            api_url=settings.api_url,
            token=token,
            experiment_id=exp_id,
            iteration=status["iteration"],
            tpc=tpc_command(),
            database_url=settings.database_url,
            port=chosen,
            serving=keep,
        )

        story = parse(IterationStatus, status), parse(Results, results)

        def render(console: Console) -> None:
            render_story(console, EXPERIMENT_NAME, *story, steps)

        output.emit({"status": status, "results": results}, render)
        if output.is_json:
            render_next_steps(output.errors, story[1], steps)
        if keep:
            # Flushed now: a reader of a pipe (`tpc demo --keep | tee`) sees the story while
            # the server runs.
            sys.stdout.flush()
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
