"""`tpc worker`: execute runs from the PostgreSQL job queue, on any machine that reaches it."""

from __future__ import annotations

import asyncio
import logging

import click

from infra.settings import Settings, SettingsError


@click.command("worker")
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Runs executed at once by this worker (default 16, or TPC_CONCURRENCY).",
)
def worker(concurrency: int | None) -> None:
    """Execute runs from the job queue until stopped (SIGTERM or Ctrl-C finish the runs in
    flight, up to a grace period, and requeue the rest).

    Needs TPC_DATABASE_URL=postgresql://… (the embedded SQLite store executes runs inside
    `tpc serve`). Start as many workers as you like, on as many machines; a worker that dies
    mid-run has its runs retried by another.

    Example: TPC_DATABASE_URL=postgresql://tpc@db/tpc tpc worker --concurrency 32
    """
    from application.worker_process import run_worker

    settings = Settings.from_env(concurrency=concurrency)
    if not settings.is_postgres:
        raise SettingsError(
            "tpc worker needs the PostgreSQL store: set TPC_DATABASE_URL=postgresql://… "
            "(with the embedded SQLite store, `tpc serve` executes the runs itself)"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # The HTTP clients under the model SDKs log every request at INFO: thousands of lines an
    # iteration that say nothing a run's own record does not.
    for chatty in ("httpx", "httpx2"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    click.echo(f"tpc worker: executing runs from {settings.redacted_database_url}", err=True)
    asyncio.run(run_worker(settings))
