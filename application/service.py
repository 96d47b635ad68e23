"""The application service: every command the API, the CLI and the executor can give.

A command loads aggregates, calls their methods (which check the rules), saves every new event
in one atomic batch, then brings the views up to date so the caller reads its own write.
Commands are synchronous (the eventsourcing API is): async callers use a thread.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eventsourcing.persistence import IntegrityError

from application.live_log import LiveBatch
from domain.api_tokens import check_label, normalise_token, token_problem
from domain.catalog import LEGACY_TOKEN_NAME, Environment, Product, Task
from domain.clusters import FailingRun, cluster_failures, suggestions
from domain.definitions import (
    EnvironmentDefinition,
    TaskDefinition,
    parse_environment,
    parse_task,
    secret_references,
)
from domain.errors import Conflict, InvalidInput, NotFound, StorageFull, TooManyRequests
from domain.experiments import (
    Experiment,
    name_problems,
    repeats_problems,
    require_no_problems,
)
from domain.ids import has_prefix, iteration_stream_id, stream_id
from domain.imports import LogToImport, plan_import, resolve_keys
from domain.iterations import FrozenSignalConfig, Iteration, plan_rescore, plan_runs
from domain.network_policy import check_network
from domain.runs import RecordedStats, Run
from domain.safe_text import unsafe_text_problems
from domain.secrets import check_secret, check_secret_name, how_to_set
from domain.signals.extraction import SignalValue
from domain.signals.validation import load_signal_config
from domain.transcripts import InvalidTranscript, parse_transcript, transcript_from_object
from infra.command_policy import CommandPolicy
from infra.dashboard_sessions import DashboardSessions
from infra.ids import new_id
from infra.llm.cluster_writer import ClusterWriter, configured_model
from infra.llm.credentials import check_credentials
from infra.llm.key_policy import ProviderKeyPolicy
from infra.runners.sandbox import SandboxSettings
from infra.settings import Settings
from infra.store.blobs import BlobStore
from infra.store.database import open_database
from infra.store.events import EventStore
from infra.store.migrations import apply_migrations
from infra.store.secrets import SecretStore
from infra.token_hashing import TokenHasher, legacy_hash, load_token_key, new_token, token_hint
from projections.follower import VIEWS_VERSION, Projector
from projections.queries import Views

T = TypeVar("T")
# How often a command is retried when another writer changed the same stream first, and the
# longest pause between two tries.
CONFLICT_RETRIES = 20
CONFLICT_BACKOFF_MAX_S = 0.05
VIEWS_FULL = (
    "the store is out of space: the change was saved, but the views cannot show it until "
    "space is freed (do not send it again)"
)


def token_hash(token: str) -> str:
    """The plain SHA-256 that products registered before keyed hashes hold (`legacy_hash`)."""
    return legacy_hash(token)


@dataclass(frozen=True)
class Bootstrap:
    product_id: str
    token: str | None  # set only when the server generated it


class Service:
    """Every command, on the store `settings.database_url` names (SQLite or PostgreSQL).

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
        self._environ = environ
        self.limits = settings.limits
        self.command_policy = CommandPolicy.from_env(environ)
        self.key_policy = ProviderKeyPolicy.from_env(environ)
        self.network_cap = SandboxSettings.from_env(environ).network_max
        self.cluster_writer = cluster_writer or ClusterWriter(
            configured_model(environ), None, environ
        )
        self.database = open_database(settings)
        try:
            with self.database.schema_lock():
                self.store = EventStore(self.database)
                applied = apply_migrations(self.database)
                self.token_hasher = TokenHasher(load_token_key(self.database, settings.token_key))
                self.projector = Projector(self.store, self.database)
        except BaseException:
            if hasattr(self, "store"):
                self.store.close()
            self.database.close()
            raise
        self.blobs = BlobStore(self.database)
        self.secrets = SecretStore(self.database)
        self.views = Views(self.database)
        self.sessions = DashboardSessions(self.database)
        self._applied = applied
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

    def _save(self, *aggregates: Any) -> None:
        """Save, then bring the views up to date: the caller reads its own write."""
        recordings = self.store.save(*aggregates)
        try:
            self.projector.catch_up(
                until=max((r.notification.id for r in recordings), default=None)
            )
        except StorageFull:
            # The events are in the log, whole; only the views (written next) found no room.
            raise StorageFull(VIEWS_FULL) from None

    def _retrying(self, command: Callable[[], T]) -> T:
        """Run a command again on a write conflict (optimistic concurrency, no lost update)."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return command()
            except IntegrityError:
                # A random pause, growing: writers that lost together do not collide again in
                # lockstep, and a busy stream's losers cannot all run out of tries.
                time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_MAX_S, 0.001 * 2**attempt)))
        return command()

    # -- products and tokens ----------------------------------------------------------------

    def bootstrap(self, token: str | None) -> Bootstrap | None:
        """On an empty store, create the first product; its token is `token` or a new one."""
        if token is not None:
            token = normalise_token(token, "TPC_API_TOKEN")
        if self.views.has_products():
            if token is not None and self.authenticate(token) is None:
                # A token given for a store that already has products must be one of theirs.
                raise InvalidInput(
                    "TPC_API_TOKEN does not belong to any product in this store (or was revoked)"
                )
            return None
        generated = token is None
        token = token or new_token()
        product = Product(public_id=new_id("prd"), name="default")
        self._issue(product, LEGACY_TOKEN_NAME, token)
        self._save(product)
        return Bootstrap(product.public_id, token if generated else None)

    def authenticate(self, token: str) -> tuple[str, str] | None:
        """(product id, token id) of a live token; None for an unknown, revoked or malformed
        one. The token is normalised exactly as when it was made."""
        if token_problem(token) is not None:
            return None
        return self.views.token_owner(self.token_hasher.candidates(token.strip()))

    def product_for_token(self, token: str) -> str | None:
        owner = self.authenticate(token)
        return owner[0] if owner else None

    def _issue(self, product: Product, name: str, token: str) -> dict[str, Any]:
        token_id = new_id("tok")
        hasher = self.token_hasher
        product.issue_token(token_id, name, hasher.keyed(token), token_hint(token), hasher.key_id)
        return {"id": token_id, "product_id": product.public_id, "name": name.strip()}

    def tokens(self, product_id: str) -> list[dict[str, Any]]:
        """The product's tokens as `tpc token list` shows them (never the tokens)."""
        return [self._shown(token) for token in self.views.tokens(product_id)]

    def _token(self, token_id: str) -> dict[str, Any]:
        return self._shown(self.views.token(token_id))

    def _shown(self, token: dict[str, Any]) -> dict[str, Any]:
        """A token's row with `current_key` (false when its hash was made under another
        token key: it cannot authenticate) in place of the key's fingerprint."""
        shown = {k: v for k, v in token.items() if k != "key_id"}
        shown["current_key"] = token["key_id"] in ("", self.token_hasher.key_id)
        return shown

    def tokens_under_other_keys(self) -> int:
        """Live tokens that the current token key cannot check (TPC_TOKEN_KEY changed)."""
        return self.views.live_tokens_under_other_keys(self.token_hasher.key_id)

    def _product(self, product_id: str) -> Product:
        if not has_prefix(product_id, "prd"):
            raise NotFound(f"product {product_id} not found")
        return self.store.load(Product, stream_id(product_id), f"product {product_id}")

    def create_product(self, name: str) -> dict[str, Any]:
        """A new product and its first token (named "default"); the token is shown once."""
        name = check_label(name)
        token = new_token()
        product = Product(public_id=new_id("prd"), name=name)
        issued = self._issue(product, "default", token)
        self._save(product)
        return {
            "product": self.views.product(product.public_id),
            "token": {**self._token(issued["id"]), "token": token},
        }

    def issue_token(self, product_id: str, name: str) -> dict[str, Any]:
        """A new named token for the product; the token itself is in the answer only."""
        token = new_token()

        def command() -> str:
            product = self._product(product_id)
            issued = self._issue(product, name, token)
            self._save(product)
            return str(issued["id"])

        token_id = self._retrying(command)
        return {**self._token(token_id), "token": token}

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token: API calls with it fail from now on and its dashboard sessions end."""
        if not has_prefix(token_id, "tok"):
            raise NotFound(f"token {token_id} not found")
        product_id = self.views.token(token_id)["product_id"]

        def command() -> None:
            product = self._product(product_id)
            product.revoke_token(token_id)
            self._save(product)

        self._retrying(command)
        ended = self.sessions.end_for_token(token_id)
        return {**self._token(token_id), "sessions_ended": ended}

    # -- dashboard sessions -----------------------------------------------------------------

    def open_session(self, token: str) -> tuple[str, str] | None:
        """(session id, product id) for a live token; None when it does not authenticate."""
        owner = self.authenticate(token)
        if owner is None:
            return None
        product_id, token_id = owner
        return self.sessions.open(product_id, token_id), product_id

    def product_for_session(self, session_id: str) -> str | None:
        return self.sessions.product(session_id)

    def end_session(self, session_id: str) -> None:
        self.sessions.end(session_id)

    # -- tasks and environments -------------------------------------------------------------

    def create_task(self, product: str, data: Any) -> dict[str, Any]:
        definition = parse_task(data)
        self.command_policy.require(product, tasks=[definition.model_dump(mode="json")])
        task = Task(
            public_id=new_id("task"),
            product_id=product,
            definition=definition.model_dump(mode="json"),
        )
        self._save(task)
        return self.views.task(product, task.public_id)

    def create_environment(self, product: str, data: Any) -> dict[str, Any]:
        data = self._store_replay_transcripts(data)
        parsed = parse_environment(data)
        check_network(parsed, self.network_cap)
        definition = parsed.model_dump(mode="json")
        self._check_operator_rules(product, [definition], [])
        environment = Environment(
            public_id=new_id("env"), product_id=product, definition=definition
        )
        self._save(environment)
        return self.views.environment(product, environment.public_id)

    def _check_operator_rules(
        self,
        product: str,
        environments: Iterable[Mapping[str, Any]],
        tasks: Iterable[Mapping[str, Any]],
    ) -> None:
        """What the operator allows this product (when a definition is created, and again at
        trigger since settings and secrets change): commands (403), where the server's
        provider keys go, and that every `${NAME}` names one of the product's secrets (422)."""
        environments, tasks = list(environments), list(tasks)
        self.command_policy.require(product, environments, tasks)
        self.key_policy.check_environments(environments)
        references = [
            (definition.get("name"), where, name)
            for definition in environments
            for where, name in secret_references(definition)
        ]
        if not references:
            return
        known = {secret["name"] for secret in self.secrets.names(product)}
        missing = [(env, where, name) for env, where, name in references if name not in known]
        if missing:
            env, where, name = missing[0]
            raise InvalidInput(
                f"environment {env!r}: {where} uses ${{{name}}}, which is not a secret of this "
                f"product (variables come only from the product's secrets, never from the "
                f"server's environment): set it with {how_to_set(name)}",
                tuple(
                    (where, f"${{{name}}} is not a secret of this product")
                    for _, where, name in missing
                ),
            )

    # -- secrets ----------------------------------------------------------------------------

    def _require_product(self, product: str) -> None:
        if not self.views.has_product(product):
            raise NotFound(f"product {product} not found")

    def set_secret(self, product: str, name: str, value: str) -> dict[str, Any]:
        """Create or replace a product's secret; returns its name and time, never the value."""
        check_secret(name, value)
        self._require_product(product)
        return self.secrets.set(product, name, value)

    def list_secrets(self, product: str) -> dict[str, Any]:
        self._require_product(product)
        return {"items": self.secrets.names(product)}

    def remove_secret(self, product: str, name: str) -> dict[str, Any]:
        check_secret_name(name)
        self._require_product(product)
        if not self.secrets.remove(product, name):
            raise NotFound(f"secret {name} not found")
        return {"name": name, "removed": True}

    def product_secrets(self, product: str) -> dict[str, str]:
        """The values, for the runners of this product's runs (never shown by any route)."""
        return self.secrets.values(product)

    def _store_replay_transcripts(self, data: Any) -> Any:
        """Replay transcripts arrive inline; they are validated, stored as blobs, and the
        environment keeps only their references (events stay small)."""
        agent = data.get("agent") if isinstance(data, dict) else None
        if not isinstance(agent, dict) or agent.get("kind") != "replay":
            return data
        transcripts = agent.get("transcripts")
        if not isinstance(transcripts, dict):
            return data
        documents: dict[str, list[bytes]] = {}
        problems: list[tuple[str, str]] = []
        for key, value in transcripts.items():
            items = value if isinstance(value, list) else [value]
            documents[key] = []
            for i, item in enumerate(items):
                where = f"agent.transcripts.{key}" + (f"[{i}]" if isinstance(value, list) else "")
                # Uploaded by a product, so a request: text no store can keep is refused
                # (they become blobs, which the event store's guard never sees).
                unsafe = unsafe_text_problems(item, (where,))
                if unsafe:
                    problems.extend(unsafe)
                    continue
                try:
                    transcript = transcript_from_object(item, where)
                except InvalidTranscript as error:
                    problems.extend(
                        (f"{where}.{loc}" if loc else where, msg) for loc, msg in error.problems
                    )
                    continue
                documents[key].append(transcript.model_dump_json(exclude_none=True).encode())
        if problems:
            summary = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:3])
            raise InvalidInput(f"invalid replay transcripts: {summary}", tuple(problems))
        refs = {key: [self.blobs.put(doc) for doc in docs] for key, docs in documents.items()}
        return {**data, "agent": {**agent, "transcripts": refs}}

    # -- experiments ------------------------------------------------------------------------

    def _experiment(self, product: str, exp_id: str, version: int | None = None) -> Experiment:
        if not has_prefix(exp_id, "exp"):
            raise NotFound(f"experiment {exp_id} not found")
        experiment = self.store.load(Experiment, stream_id(exp_id), f"experiment {exp_id}", version)
        if experiment.product_id != product:
            raise NotFound(f"experiment {exp_id} not found")
        return experiment

    def _check_task(self, product: str, task_id: str) -> None:
        self.views.task(product, task_id)

    def _check_environment(self, product: str, env_id: str) -> None:
        self.views.environment(product, env_id)

    def _validated_config(self, text: str) -> str:
        report = load_signal_config(text)
        report.require_valid()
        assert report.content_hash is not None
        return report.content_hash

    def create_experiment(
        self,
        product: str,
        name: str,
        task_ids: list[str],
        env_ids: list[str],
        repeats: int = 1,
        signal_config: str | None = None,
    ) -> dict[str, Any]:
        # Every problem of the name, the repeats and the config at once (one pass fixes
        # them all); the aggregate checks name and repeats again.
        config = load_signal_config(signal_config) if signal_config else None
        require_no_problems(
            name_problems(name)
            + repeats_problems(repeats)
            + [(p.loc, p.message) for p in (config.errors if config else ())]
        )
        experiment = Experiment.new(
            public_id=new_id("exp"), product_id=product, name=name, repeats=repeats
        )
        for task_id in task_ids:
            self._check_task(product, task_id)
        for env_id in env_ids:
            self._check_environment(product, env_id)
        config_hash = config.content_hash if config else None
        for task_id in dict.fromkeys(task_ids):
            experiment.attach_task(task_id)
        for env_id in dict.fromkeys(env_ids):
            experiment.attach_environment(env_id)
        if signal_config and config_hash:
            experiment.set_signal_config(signal_config, config_hash)
        self._require_runs_within_limit(experiment, "repeats")
        self._save(experiment)
        return self.views.experiment(product, experiment.public_id)

    def update_experiment(
        self, product: str, exp_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """`changes` may hold `signal_config` (YAML text, or None to clear), `name`, `repeats`."""
        config_hash = None
        if changes.get("signal_config"):
            config_hash = self._validated_config(changes["signal_config"])

        def command() -> None:
            experiment = self._experiment(product, exp_id)
            if "signal_config" in changes:
                if changes["signal_config"] and config_hash:
                    experiment.set_signal_config(changes["signal_config"], config_hash)
                else:
                    experiment.clear_signal_config()
            if "name" in changes:
                experiment.rename(changes["name"])
            if "repeats" in changes:
                experiment.change_repeats(changes["repeats"])
                self._require_runs_within_limit(experiment, "repeats")
            self._save(experiment)

        self._retrying(command)
        return self.views.experiment(product, exp_id)

    def attach(self, product: str, exp_id: str, kind: str, item_id: str) -> dict[str, Any]:
        if kind == "task":
            self._check_task(product, item_id)
        else:
            self._check_environment(product, item_id)

        def command() -> None:
            experiment = self._experiment(product, exp_id)
            if kind == "task":
                experiment.attach_task(item_id)
            else:
                experiment.attach_environment(item_id)
            self._require_runs_within_limit(experiment, "task_id" if kind == "task" else "env_id")
            self._save(experiment)

        self._retrying(command)
        return self.views.experiment(product, exp_id)

    def detach(self, product: str, exp_id: str, kind: str, item_id: str) -> dict[str, Any]:
        def command() -> None:
            experiment = self._experiment(product, exp_id)
            if kind == "task":
                experiment.detach_task(item_id)
            else:
                experiment.detach_environment(item_id)
            self._save(experiment)

        self._retrying(command)
        return self.views.experiment(product, exp_id)

    def experiment_as_of(self, product: str, exp_id: str, position: int) -> dict[str, Any]:
        version = self.views.experiment_version_at(product, exp_id, position)
        experiment = self._experiment(product, exp_id, version)
        return {
            "id": experiment.public_id,
            "name": experiment.name,
            "task_ids": list(experiment.task_ids),
            "env_ids": list(experiment.env_ids),
            "repeats": experiment.repeats,
            "signal_config": (
                {"hash": experiment.config_hash, "text": experiment.config_text}
                if experiment.config_hash
                else None
            ),
            "iterations": experiment.iterations,
            "created_at": experiment.created_on.isoformat(),
            "version": experiment.version,
            "as_of": position,
        }

    # -- iterations -------------------------------------------------------------------------

    def trigger(self, product: str, exp_id: str) -> dict[str, Any]:
        """Freeze config, definitions and run list, and take the next number, in one save.

        Raises `InvalidInput` when an agent, a success judge or a simulated user needs a
        provider key this server does not have; llm signals without their key only warn
        (`warnings`): their values will be missing, with the reason."""

        def command() -> int:
            experiment = self._experiment(product, exp_id)
            number = experiment.start_iteration()
            self._require_runs_within_limit(experiment, "")
            self._require_running_iterations_within_limit(product)
            tasks = {
                tid: self._frozen(self.views.task(product, tid)) for tid in experiment.task_ids
            }
            environments = {
                eid: self._frozen(self.views.environment_definition(product, eid))
                for eid in experiment.env_ids
            }
            signal_config = None
            config = None
            if experiment.config_text is not None:
                config = load_signal_config(experiment.config_text).require_valid()
                signal_config = FrozenSignalConfig(
                    text=experiment.config_text, parsed=config, hash=experiment.config_hash or ""
                )
            self._check_operator_rules(product, environments.values(), tasks.values())
            warnings[:] = check_credentials(
                environments.values(), config, tasks.values(), self._environ
            )
            count = len(experiment.task_ids) * len(experiment.env_ids) * experiment.repeats
            runs = plan_runs(
                experiment.task_ids,
                experiment.env_ids,
                experiment.repeats,
                [new_id("run") for _ in range(count)],
            )
            iteration = Iteration(
                experiment_id=exp_id,
                product_id=product,
                number=number,
                signal_config=signal_config,
                tasks={tid: TaskDefinition.model_validate(d) for tid, d in tasks.items()},
                environments={
                    eid: EnvironmentDefinition.model_validate(d) for eid, d in environments.items()
                },
                runs=runs,
            )
            self._save(experiment, iteration)
            return number

        warnings: list[str] = []
        number = self._retrying(command)
        status = self.views.iteration_status(product, exp_id, number)
        return {**status, "warnings": sorted(set(warnings))} if warnings else status

    def rescore(
        self, product: str, exp_id: str, source: int | str, signal_config: str | None = None
    ) -> dict[str, Any]:
        """A new iteration (the next number, as a trigger takes it) that re-scores iteration
        `source` from its recorded transcripts: the experiment's current signal config, or
        `signal_config` (YAML, validated; the experiment's own is left as it is), the source's
        frozen task and environment definitions and one run per source run. No agent runs:
        the executors give each run its source's recorded outcome and extract, judge and
        aggregate again. 409 while the source is running; the runs and running-iterations
        limits apply as to a trigger."""
        config_hash = self._validated_config(signal_config) if signal_config else None
        # 404 for another product's experiment or an unknown iteration.
        number = self.views.iteration_status(product, exp_id, source)["iteration"]

        def command() -> int:
            experiment = self._experiment(product, exp_id)
            origin = self._iteration(exp_id, number)
            if origin.status == "running":
                raise Conflict(
                    f"{origin.label} is still running: only a completed or cancelled "
                    "iteration can be re-scored (wait for it, or cancel it)"
                )
            new_number = experiment.start_rescore()
            self._require_rescore_within_limit(len(origin.runs))
            self._require_running_iterations_within_limit(product)
            text = signal_config if signal_config else experiment.config_text
            text_hash = config_hash if signal_config else experiment.config_hash
            frozen_config = None
            config = None
            if text is not None:
                config = load_signal_config(text).require_valid()
                frozen_config = FrozenSignalConfig(text=text, parsed=config, hash=text_hash or "")
            # No agent, success judge or simulated user runs: only the signals' judges.
            warnings[:] = check_credentials([], config, [], self._environ)
            runs = plan_rescore(origin.runs, [new_id("run") for _ in origin.runs])
            iteration = Iteration(
                experiment_id=exp_id,
                product_id=product,
                number=new_number,
                signal_config=frozen_config,
                tasks=origin.tasks,
                environments=origin.environments,
                runs=runs,
            )
            iteration.derive_from(origin)
            self._save(experiment, iteration)
            return new_number

        warnings: list[str] = []
        created = self._retrying(command)
        status = self.views.iteration_status(product, exp_id, created)
        return {**status, "warnings": sorted(set(warnings))} if warnings else status

    def import_logs(
        self, product: str, exp_id: str, format: str, logs: Sequence[LogToImport]
    ) -> dict[str, Any]:
        """A new iteration (the next number, as a trigger takes it) whose runs are recorded
        transcripts (`format` names what they were read from): one run per log, its task and
        environment those of the experiment its keys name (an id or exact name; 422 naming
        every unknown key). No agent runs: the executors give each run its transcript, then
        judge, extract, cluster and aggregate as for any iteration. The runs and
        running-iterations limits apply as to a trigger; nothing is recorded on any error."""
        self._require_import_size(len(logs))
        documents = self._import_documents(logs)

        def command() -> int:
            experiment = self._experiment(product, exp_id)
            tasks = {tid: self.views.task(product, tid) for tid in experiment.task_ids}
            environments = {
                eid: self.views.environment_definition(product, eid) for eid in experiment.env_ids
            }
            resolved = resolve_keys(
                [log.keys for log in logs],
                {tid: task["name"] for tid, task in tasks.items()},
                {eid: env["name"] for eid, env in environments.items()},
                exp_id,
            )
            number = experiment.start_iteration()
            self._require_running_iterations_within_limit(product)
            used_tasks = {tid for tid, _ in resolved}
            used_envs = {eid for _, eid in resolved}
            frozen_config = None
            config = None
            if experiment.config_text is not None:
                config = load_signal_config(experiment.config_text).require_valid()
                frozen_config = FrozenSignalConfig(
                    text=experiment.config_text, parsed=config, hash=experiment.config_hash or ""
                )
            # No agent, success judge or simulated user runs: only the signals' judges.
            warnings[:] = check_credentials([], config, [], self._environ)
            planned = plan_import(
                resolved,
                experiment.task_ids,
                experiment.env_ids,
                [new_id("run") for _ in logs],
            )
            refs = [self.blobs.put(document) for document in documents]
            iteration = Iteration(
                experiment_id=exp_id,
                product_id=product,
                number=number,
                signal_config=frozen_config,
                # Only what the logs name: an import says nothing of the others.
                tasks={
                    t: TaskDefinition.model_validate(self._frozen(d))
                    for t, d in tasks.items()
                    if t in used_tasks
                },
                environments={
                    e: EnvironmentDefinition.model_validate(self._frozen(d))
                    for e, d in environments.items()
                    if e in used_envs
                },
                runs=[run for run, _ in planned],
            )
            iteration.import_logs(
                format,
                [refs[index] for _, index in planned],
                [[logs[index].file, logs[index].sample] for _, index in planned],
            )
            self._save(experiment, iteration)
            return number

        warnings: list[str] = []
        created = self._retrying(command)
        status = self.views.iteration_status(product, exp_id, created)
        return {**status, "warnings": sorted(set(warnings))} if warnings else status

    def _require_import_size(self, count: int) -> None:
        """422 for an import of nothing, or of more runs than the operator allows."""
        limit = self.limits.max_runs_per_iteration
        if count == 0:
            raise InvalidInput(
                "nothing to import: give at least one transcript", (("runs", "must not be empty"),)
            )
        if count > limit:
            raise InvalidInput(
                f"the import would plan {count} runs, over the server's limit of {limit} "
                "(TPC_MAX_RUNS_PER_ITERATION): import the logs in several iterations",
                (("runs", f"{count} runs per iteration > {limit}"),),
            )

    @staticmethod
    def _import_documents(logs: Sequence[LogToImport]) -> list[bytes]:
        """Each log's transcript validated (every problem located at `runs[i].transcript`)
        and as it will be stored. Uploaded by a product, so a request: text no store can keep
        is refused (transcripts become blobs, which the event store's guard never sees)."""
        documents: list[bytes] = []
        problems: list[tuple[str, str]] = []
        for index, log in enumerate(logs):
            where = f"runs[{index}].transcript"
            posted = {
                "task": log.keys.task,
                "environment": log.keys.environment,
                "file": log.file,
                "sample": log.sample,
                "transcript": log.transcript,
            }
            unsafe = unsafe_text_problems(posted, ("runs", index))
            if unsafe:
                problems.extend(unsafe)
                continue
            try:
                transcript = transcript_from_object(log.transcript, where)
            except InvalidTranscript as error:
                problems.extend(
                    (f"{where}.{loc}" if loc else where, msg) for loc, msg in error.problems
                )
                continue
            documents.append(transcript.model_dump_json(exclude_none=True).encode())
        if problems:
            summary = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:3])
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise InvalidInput(f"invalid transcripts to import: {summary}{more}", tuple(problems))
        return documents

    def _require_rescore_within_limit(self, count: int) -> None:
        """422 when a re-score would plan more runs than the operator allows (its source
        may have been planned under a higher limit)."""
        limit = self.limits.max_runs_per_iteration
        if count > limit:
            raise InvalidInput(
                f"the re-score would plan {count} runs, over the server's limit of {limit} "
                "(TPC_MAX_RUNS_PER_ITERATION)",
                (("iteration", f"{count} runs per iteration > {limit}"),),
            )

    def _require_runs_within_limit(self, experiment: Experiment, loc: str) -> None:
        """422 when the experiment's next iteration would plan more runs than the operator
        allows (checked when tasks, environments or repeats change, and at trigger)."""
        limit = self.limits.max_runs_per_iteration
        count = experiment.runs_per_iteration
        if count > limit:
            sizes = (
                f"{len(experiment.task_ids)} tasks × {len(experiment.env_ids)} environments × "
                f"{experiment.repeats} repeats"
            )
            message = (
                f"{sizes} = {count} runs per iteration, over the server's limit of {limit} "
                "(TPC_MAX_RUNS_PER_ITERATION)"
            )
            raise InvalidInput(message, ((loc, f"{count} runs per iteration > {limit}"),))

    def _require_running_iterations_within_limit(self, product: str) -> None:
        """429 while the product already has as many iterations running as the operator
        allows (a soft limit: two racing triggers may both pass it)."""
        limit = self.limits.max_running_iterations
        if self.views.count_running_iterations(product) >= limit:
            raise TooManyRequests(
                f"{limit} iterations of this product are already running, the server's limit "
                "(TPC_MAX_RUNNING_ITERATIONS): wait for one to complete, or cancel one"
            )

    @staticmethod
    def _frozen(definition: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in definition.items() if k not in ("id", "created_at")}

    def _iteration(self, exp_id: str, number: int) -> Iteration:
        return self.store.load(
            Iteration, iteration_stream_id(exp_id, number), f"{exp_id} iteration {number}"
        )

    def cancel(self, product: str, exp_id: str, number: int | str) -> dict[str, Any]:
        status = self.views.iteration_status(product, exp_id, number)

        def command() -> None:
            iteration = self._iteration(exp_id, status["iteration"])
            iteration.request_cancel()
            self._save(iteration)

        self._retrying(command)
        return self.views.iteration_status(product, exp_id, status["iteration"])

    def load_iteration(self, exp_id: str, number: int) -> Iteration:
        return self._iteration(exp_id, number)

    def complete_iteration_if_done(self, exp_id: str, number: int) -> bool:
        """Close the iteration when no run is left queued or running: its failing runs are
        clustered and the clusters recorded in the same save as the completion."""
        self.projector.catch_up_to_head()
        if self.views.count_unfinished_runs(exp_id, number):
            return False
        iteration = self._iteration(exp_id, number)
        found = [c.to_json() for c in cluster_failures(self._failing_runs(iteration))]
        # With a cluster model configured, it names the clusters and writes causes and fixes.
        clusters = self.cluster_writer.write_blocking(found).clusters

        def command() -> bool:
            iteration = self._iteration(exp_id, number)
            if iteration.status != "running":
                return False
            iteration.record_clusters(clusters, suggestions(clusters))
            iteration.complete()
            self._save(iteration)
            return True

        return self._retrying(command)

    def _failing_runs(self, iteration: Iteration) -> list[FailingRun]:
        """What clustering needs of each failed, errored or timed-out run. Stats signals are
        not "fired": every run has a duration; patterns and judges tell something."""
        frozen = iteration.signal_config
        telling = {
            signal.id
            for signal in (frozen.parsed.signals if frozen else [])
            if signal.extract.method != "stats"
        }
        failing = []
        for row in self.views.failing_runs(iteration.experiment_id, iteration.number):
            ref = row["transcript_ref"]
            values = json.loads(row["signal_values"] or "{}")
            failing.append(
                FailingRun(
                    run_id=row["id"],
                    task_id=row["task_id"],
                    environment_id=row["environment_id"],
                    status=row["status"],
                    termination_reason=row["termination_reason"],
                    error=row["error"],
                    task_name=iteration.tasks[row["task_id"]].name,
                    environment_name=iteration.environments[row["environment_id"]].name,
                    transcript=parse_transcript(self.blobs.get(ref), ref) if ref else None,
                    fired_signals=tuple(
                        sorted(
                            sid
                            for sid, value in values.items()
                            if sid in telling
                            and (value is True or (type(value) in (int, float) and value > 0))
                        )
                    ),
                )
            )
        return failing

    # -- runs (the executor's side) ---------------------------------------------------------

    def _run(self, iteration: Iteration, run_id: str) -> Run:
        stream = stream_id(run_id)
        if self.store.exists(stream):
            return self.store.load(Run, stream, f"run {run_id}")
        planned = iteration.planned(run_id)
        return Run(
            run_id=run_id,
            experiment_id=iteration.experiment_id,
            number=iteration.number,
            task_id=planned.task_id,
            environment_id=planned.environment_id,
            repeat=planned.repeat,
        )

    # The executor's saves skip the catch-up: nobody waits to read them at once, and the log
    # follower folds them into the views in batches (one transaction for many runs).

    def start_run(self, iteration: Iteration, run_id: str) -> Run:
        run = self._run(iteration, run_id)
        run.start()
        self.store.save(run)
        return run

    def record_live_messages(self, batch: LiveBatch) -> list[Run]:
        """Save live messages of running attempts (`Run.MessagesRecorded`), every run's in one
        transaction. A conflict means another attempt took a run over: then each run's are
        saved alone, and the runs refused are returned (their live logs stop)."""
        events_by_run, refused = [], []
        for run, first, messages in batch:
            try:
                run.record_messages(first, messages)
            except Conflict:  # it ended meanwhile (cancelled)
                refused.append(run)
                continue
            events_by_run.append((run, run.collect_events()))
        try:
            self.store.save(*(event for _, events in events_by_run for event in events))
            return refused
        except IntegrityError:
            for run, events in events_by_run:
                try:
                    self.store.save(*events)
                except IntegrityError:
                    refused.append(run)
            return refused

    def finish_run(
        self,
        run: Run,
        status: str,
        termination_reason: str | None,
        stats: RecordedStats,
        transcript: bytes | None,
        error: str | None,
        signals: tuple[str, dict[str, SignalValue]] | None,
        transcript_ref: str | None = None,
    ) -> None:
        """Record the outcome and the extracted signals of an attempt, in one save.
        `transcript_ref`: a transcript already stored (a re-score's), in place of `transcript`."""
        ref = self.blobs.put(transcript) if transcript is not None else transcript_ref
        run.complete(status, termination_reason, stats, ref, error)
        if signals is not None:
            run.record_signals(*signals)
        self.store.save(run)

    def recorded_run(self, run_id: str) -> Run | None:
        """A run as its stream records it (a re-score's source run); None if never opened."""
        stream = stream_id(run_id)
        if not self.store.exists(stream):
            return None
        return self.store.load(Run, stream, f"run {run_id}")

    def run_is_terminal(self, iteration: Iteration, run_id: str) -> bool:
        """Whether the run has its final outcome, from its own stream (the log, not the views,
        which another process may not have caught up yet)."""
        return self._run(iteration, run_id).is_terminal

    def cancel_run(self, iteration: Iteration, run_id: str) -> None:
        run = self._run(iteration, run_id)
        if not run.is_terminal:
            run.cancel()
            self.store.save(run)

    def transcript(self, product: str, run_id: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.blobs.get(self.views.transcript_ref(product, run_id))
        )
        return document

    def run_logs(
        self, product: str, run_id: str, after: int = 0, limit: int | None = None
    ) -> dict[str, Any]:
        """A run's messages from index `after` on, to follow it live: while it runs, the live
        messages of its current attempt; once it has its transcript, the transcript's.
        `{"run_id", "status", "attempt", "messages", "next", "done"}`: `next` is the `after` of
        the next call, `done` is true once the run is terminal and every message was given."""
        after, limit = max(0, after), self.views.log_limit(limit)
        log = self.views.live_log(product, run_id, after, limit)
        ref = log.pop("transcript_ref")
        if ref is not None:
            everything = json.loads(self.blobs.get(ref)).get("messages", [])
            shown = everything[after : after + limit]
            log["messages"] = [
                {"index": index, **message} for index, message in enumerate(shown, start=after)
            ]
            log["next"] = after + len(shown)
            log["done"] = log["next"] >= len(everything)
        return log

    def rebuild_projections(self) -> int:
        return self.projector.rebuild()
