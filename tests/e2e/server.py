"""A real `tpc serve` in a subprocess on a temp SQLite file and a free port, for e2e tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.eventually import eventually

TPC = shutil.which("tpc", path=str(Path(sys.executable).parent)) or "tpc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def in_process(app: Any, port: int) -> Iterator[str]:
    """A real uvicorn server for `app` in a thread of this process, so that what a test
    patches reaches it. Yields its address."""
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started or not thread.is_alive(), what="the server started")
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


# A developer's real provider keys must never reach a test server: tests that need a provider
# point these at the loopback fake themselves.
PROVIDER_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "TPC_CLUSTER_MODEL",
    # The operator's consents: a test server gets only those its test gives it.
    "TPC_ALLOW_COMMANDS",
    "TPC_PROVIDER_BASE_URLS",
)


class Server:
    def __init__(
        self,
        home: Path,
        token: str = "e2e-token",
        port: int | None = None,
        database_url: str | None = None,
        args: tuple[str, ...] = (),
        environ: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.token = token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = home / "tpc.db"
        self.database_url = database_url or f"sqlite:///{self.db}"
        self.args = args
        # Added to the server's and the CLI's environment (a fake provider's URLs and keys).
        self.environ = environ or {}
        self.process: subprocess.Popen[str] | None = None

    @property
    def env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
        return {
            **inherited,
            "HOME": str(self.home),
            "TPC_API_URL": self.url,
            "TPC_API_TOKEN": self.token,
            "TPC_DATABASE_URL": self.database_url,
            "TPC_POLL_INTERVAL": "0.2",
            "COLUMNS": "200",
            "NO_COLOR": "1",
            **self.environ,
        }

    def start(self) -> Server:
        # The server's output goes to a file: a pipe nobody reads would block it when full.
        self.log = self.home / "server.log"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [TPC, "serve", "--port", str(self.port), *self.args],
                env=self.env,
                text=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
            )
        eventually(self._answers, what="tpc serve answering", interval=0.1)
        return self

    def _answers(self) -> bool:
        """Whether the server answers its health check (an exit is an error at once)."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"tpc serve exited: {self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=30,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def dashboard_session(self, token: str | None = None) -> str:
        """Sign in to the dashboard as a browser would; the session cookie's value."""
        signed = httpx.post(
            f"{self.url}/login",
            data={"token": token or self.token, "next": "/"},
            headers={"Origin": self.url},
            follow_redirects=False,
            timeout=30,
        )
        assert signed.status_code == 303, signed.text
        session: str = signed.cookies["tpc_session"]
        return session

    def tpc(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [TPC, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.home,
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done


def as_json(server: Server, *args: str) -> Any:
    """Run `tpc --format json ARGS` against the server; its one JSON document (exit 0 asserted)."""
    done = server.tpc("--format", "json", *args)
    assert done.returncode == 0, f"tpc {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout)


def iteration_ended(client: httpx.Client, path: str, timeout: float = 60) -> dict[str, Any]:
    """The iteration at `path` (`/v1/experiments/E/iterations/N`) once it is no longer running."""

    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(path).json()
        return status if status["status"] != "running" else None

    return eventually(ended, what=f"{path} ended", timeout=timeout, interval=0.2)
