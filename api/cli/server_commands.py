"""Commands that run tpc sim itself: the server, the demo, projection maintenance."""

from __future__ import annotations

import socket

import click
from rich.console import Console

from api.cli.demo import demo
from api.cli.output import plural
from api.cli.worker_commands import worker
from domain.errors import DomainError
from infra.settings import Settings


class AddressInUse(DomainError):
    """Another process listens on the address `tpc serve` was asked to use."""


def refuse_a_taken_address(host: str, port: int) -> None:
    """Fail before anything is created (a store, a product, credentials) when the address is
    taken: a server that cannot listen must leave the running one's token where it was."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise AddressInUse(f"cannot serve on {host}:{port}: {error.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: a port whose last connections are still closing is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise AddressInUse(
                f"cannot serve on {host}:{port}: {error.strerror or error} (is another "
                "`tpc serve` running there? choose another --port). Nothing was created or "
                "changed."
            ) from None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8642,
    show_default=True,
    type=int,
    envvar="TPC_PORT",
    help="Port to listen on (or TPC_PORT).",
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Runs executed at once (default 16, or TPC_CONCURRENCY).",
)
@click.option(
    "--no-workers",
    is_flag=True,
    help="Serve only the API and dashboard; `tpc worker` processes execute the runs.",
)
def serve(host: str, port: int, concurrency: int | None, no_workers: bool) -> None:
    """Run the API, the dashboard, the projections and (unless --no-workers) a worker.

    The store is TPC_DATABASE_URL (default sqlite:///.tpc/tpc.db). On PostgreSQL, runs go
    through a job queue that this server and any `tpc worker` share. On an empty store the
    first product is created with TPC_API_TOKEN as its token, or a generated one that is
    printed and saved to ~/.tpc/credentials under this server's URL. A taken --port fails
    before anything is created or changed.

    Example: tpc serve --port 8642
    """
    import uvicorn

    from api.http.app import bootstrap, create_app
    from application.service import Service

    refuse_a_taken_address(host, port)
    settings = Settings.from_env(
        host=host, port=port, concurrency=concurrency, run_workers=not no_workers
    )
    # Open the store once before serving, so a bad store or token fails here with a clear
    # message instead of a traceback from the server's startup.
    service = Service(settings)
    try:
        bootstrap(service, settings)
        stale = service.catalog.tokens_under_other_keys()
    finally:
        service.close()
    if stale:
        click.echo(
            f"tpc serve: warning: {plural(stale, 'live API token')} issued under another token "
            "key cannot authenticate: was TPC_TOKEN_KEY changed? (`tpc token list` says "
            "which)",
            err=True,
        )
    click.echo(
        f"tpc serve: API {settings.api_url}/v1 (OpenAPI at {settings.api_url}/openapi.json), "
        f"store {settings.redacted_database_url}",
        err=True,
    )
    if no_workers and not settings.is_postgres:
        click.echo(
            "tpc serve: --no-workers on the embedded SQLite store: no process will execute runs "
            "(tpc worker needs TPC_DATABASE_URL=postgresql://…)",
            err=True,
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@click.group("projections")
def projections() -> None:
    """Maintain the read models."""


@projections.command("rebuild")
def rebuild() -> None:
    """Rebuild every read model from the event log (with the server running or not).

    The views are dropped and replayed in one transaction: readers see the old views or the
    new ones, never a half-built state. Every event is tried again; those that still cannot be
    applied are recorded and skipped (`tpc projections status` lists them).

    Example: tpc projections rebuild
    """
    from api.cli.output import current_output
    from application.service import Service

    settings = Settings.from_env()
    service = Service(settings)
    try:
        position = service.rebuild_projections()
        failures = service.projector.status()["failure_count"]
    finally:
        service.close()

    def render(console: Console) -> None:
        console.print(f"Rebuilt every view up to position {position}.")
        if failures:
            console.print(
                f"{plural(failures, 'event')} could not be applied and "
                f"{'was' if failures == 1 else 'were'} skipped: "
                "see `tpc projections status`."
            )

    current_output().emit({"rebuilt": True, "position": position, "failures": failures}, render)


@projections.command("status")
def status() -> None:
    """Show how far the read models follow the event log, and the events they could not apply.

    Prints the position the views reached, the log's head, the lag between them, and every
    event skipped because it could not be applied (position, event type, error). Opening the
    store first brings the views up to date, as a server does. After fixing the cause (a
    newer tpc), `tpc projections rebuild` tries every event again.

    Example: tpc projections status --format json
    """
    from api.cli.output import current_output
    from application.service import Service

    settings = Settings.from_env()
    service = Service(settings)
    try:
        report = service.projector.status()
    finally:
        service.close()

    def render(console: Console) -> None:
        console.print(
            f"Views at position {report['position']:,} of {report['head']:,} "
            f"(lag {report['lag']:,})."
        )
        count = report["failure_count"]
        if not count:
            console.print("No event failed to apply.")
            return
        console.print(
            f"{plural(count, 'event')} could not be applied and "
            f"{'was' if count == 1 else 'were'} skipped:"
        )
        for failure in report["failures"]:
            console.print(
                f"  {failure['position']}  {failure['topic']}  {failure['error']}"
                f"  ({failure['recorded_at']})",
                markup=False,
                highlight=False,
            )
        if count > len(report["failures"]):
            console.print(f"  … and {count - len(report['failures']):,} more")

    current_output().emit(report, render)


@click.group("db")
def db() -> None:
    """Maintain the store's schema."""


@db.command("migrate")
def migrate() -> None:
    """Create the store's schema, or bring it up to date with this version of tpc.

    Idempotent: run it as often as you like; a current store is left as it is. Tables that
    hold data get the migrations they lack; the views, when their shape changed, are rebuilt
    from the event log. `tpc serve` does the same on start, but with several servers and
    workers on PostgreSQL run this once before starting the new version, so that none of
    them waits for a rebuild.

    Example: TPC_DATABASE_URL=postgresql://tpc@db:5432/tpc tpc db migrate
    """
    from api.cli.output import current_output
    from application.service import Service

    settings = Settings.from_env()
    service = Service(settings)
    try:
        report = service.schema_report()
    finally:
        service.close()
    report = {"database": settings.redacted_database_url, **report}

    def render(console: Console) -> None:
        console.print(
            f"Store: {report['store']} {report['database']} "
            f"(events table {report['events_table']}, {report['events']:,} events)"
        )
        for migration in report["migrations_applied"]:
            console.print(f"Applied migration {migration['number']}: {migration['name']}")
        if not report["migrations_applied"]:
            console.print("Tables: up to date, no migration to apply.")
        views = report["views"]
        position = f"{views['position']:,}"
        if not views["rebuilt"]:
            state = f"version {views['version']}, up to date at position {position}"
        elif views["found_version"] is None:
            state = f"created (version {views['version']}), built up to position {position}"
        else:
            state = (
                f"rebuilt as version {views['version']} (were version {views['found_version']})"
                f" up to position {position}"
            )
        console.print(f"Views: {state}.")

    current_output().emit(report, render)


SERVER_COMMANDS: tuple[click.Command, ...] = (serve, worker, demo, projections, db)
