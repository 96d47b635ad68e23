"""The application: the store, its views and the command parts built on them, by caller.

A command loads aggregates, calls their methods (which check the rules), saves every new event
in one atomic batch, then brings the views up to date so the caller reads its own write.
Commands are synchronous (the eventsourcing API is): async callers use a thread.

- `catalog` (CatalogCommands): products, tokens, dashboard sessions, tasks, environments,
  secrets: the routes, the dashboard's sign-in, the operator's CLI commands;
- `experiments` (ExperimentCommands): experiments and their iterations: the routes and the
  dashboard;
- `runs` (RunRecording): the executors and queue workers;
- `transcripts` (TranscriptReads): a run's transcript and live log: the routes and dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.catalog_commands import CatalogCommands
from application.experiment_commands import ExperimentCommands
from application.operator_rules import OperatorRules
from application.run_recording import RunRecording
from application.saving import Saver
from application.transcript_reads import TranscriptReads
from infra.command_policy import CommandPolicy
from infra.dashboard_sessions import DashboardSessions
from infra.llm.cluster_writer import ClusterWriter, configured_model
from infra.llm.key_policy import ProviderKeyPolicy
from infra.runners.sandbox import SandboxSettings
from infra.settings import Settings
from infra.store.blobs import BlobStore
from infra.store.events import EventStore
from infra.store.migrations import apply_migrations
from infra.store.opening import open_database
from infra.store.secrets import SecretStore
from infra.token_hashing import TokenHasher, load_token_key
from projections.follower import VIEWS_VERSION, Projector
from projections.queries import Views


class Service:
    """The application on the store `settings.database_url` names (SQLite or PostgreSQL).

    Any number of processes may each build one on the same PostgreSQL database (servers,
    workers): saves are atomic with optimistic concurrency, and the projector's lock lets each
    of them follow the log and write the views. Opening one creates the schema, or brings it
    up to date (`schema_report` says what was done), then catches the views up.
    """

    def __init__(
        self,
        settings: Settings,
        cluster_writer: ClusterWriter | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # `environ`: where provider keys are looked up at trigger time and the operator's
        # TPC_ALLOW_COMMANDS and TPC_PROVIDER_BASE_URLS are read (default: this process).
        # Read before the store opens: a bad setting fails with nothing left open.
        command_policy = CommandPolicy.from_env(environ)
        key_policy = ProviderKeyPolicy.from_env(environ)
        network_cap = SandboxSettings.from_env(environ).network_max
        cluster_writer = cluster_writer or ClusterWriter(configured_model(environ), None, environ)
        self.database = open_database(settings)
        try:
            with self.database.schema_lock():
                self.store = EventStore(self.database)
                applied = apply_migrations(self.database)
                token_hasher = TokenHasher(load_token_key(self.database, settings.token_key))
                self.projector = Projector(self.store, self.database)
        except BaseException:
            if hasattr(self, "store"):
                self.store.close()
            self.database.close()
            raise
        self._applied = applied
        self.blobs = BlobStore(self.database)
        self.views = Views(self.database)
        secrets = SecretStore(self.database)
        saver = Saver(self.store, self.projector)
        rules = OperatorRules(command_policy, key_policy, network_cap, secrets, settings.limits)
        self.catalog = CatalogCommands(
            self.store,
            saver,
            self.views,
            self.blobs,
            secrets,
            DashboardSessions(self.database),
            token_hasher,
            rules,
        )
        self.experiments = ExperimentCommands(
            self.store, saver, self.views, self.blobs, rules, environ
        )
        self.runs = RunRecording(
            self.store,
            saver,
            self.projector,
            self.views,
            self.blobs,
            secrets,
            cluster_writer,
        )
        self.transcripts = TranscriptReads(self.views, self.blobs)
        self.projector.catch_up()

    def close(self) -> None:
        self.projector.close()
        self.store.close()
        self.database.close()

    def schema_report(self) -> dict[str, Any]:
        """What opening this service did to the schema (`tpc db migrate` prints it)."""
        return {
            "store": self.database.kind,
            "events_table": self.store.events_table,
            "events": self.store.last_position(),
            "migrations_applied": [{"number": m.number, "name": m.name} for m in self._applied],
            "views": {
                "version": VIEWS_VERSION,
                "found_version": self.projector.found_version or None,
                "rebuilt": self.projector.rebuilt_on_start,
                "position": self.projector.position(),
            },
        }

    def rebuild_projections(self) -> int:
        return self.projector.rebuild()
