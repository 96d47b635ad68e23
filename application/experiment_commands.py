"""Experiment commands: create and change experiments, and start their iterations (trigger,
re-score, import) or cancel one. Called by the routes and the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from application.operator_rules import OperatorRules
from application.saving import Saver
from domain.definitions import EnvironmentDefinition, TaskDefinition
from domain.errors import Conflict, InvalidInput, NotFound
from domain.experiments import (
    Experiment,
    name_problems,
    repeats_problems,
    require_no_problems,
)
from domain.ids import has_prefix, iteration_stream_id, stream_id
from domain.imports import LogToImport, check_import_format, plan_import, resolve_keys
from domain.iterations import FrozenSignalConfig, Iteration, plan_rescore, plan_runs
from domain.safe_text import unsafe_text_problems
from domain.signals.validation import load_signal_config
from domain.transcripts import InvalidTranscript, transcript_from_object
from infra.ids import new_id
from infra.llm.credentials import check_credentials
from infra.store.blobs import BlobStore
from infra.store.events import EventStore
from projections.queries import Views
from projections.read_models import ExperimentView, IterationStatus


class ExperimentCommands:
    """An experiment's definition and its iterations' starts; every start is one save."""

    def __init__(
        self,
        store: EventStore,
        saver: Saver,
        views: Views,
        blobs: BlobStore,
        rules: OperatorRules,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # `environ`: where provider keys are looked up at trigger time (default: this process).
        self._store = store
        self._saver = saver
        self._views = views
        self._blobs = blobs
        self._rules = rules
        self._environ = environ

    def _experiment(self, product: str, exp_id: str, version: int | None = None) -> Experiment:
        if not has_prefix(exp_id, "exp"):
            raise NotFound(f"experiment {exp_id} not found")
        experiment = self._store.load(
            Experiment, stream_id(exp_id), f"experiment {exp_id}", version
        )
        if experiment.product_id != product:
            raise NotFound(f"experiment {exp_id} not found")
        return experiment

    def _check_task(self, product: str, task_id: str) -> None:
        self._views.task(product, task_id)

    def _check_environment(self, product: str, env_id: str) -> None:
        self._views.environment(product, env_id)

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
    ) -> ExperimentView:
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
        tasks, environments = self._views.definitions_found(product, task_ids, env_ids)
        for kind, ids, found in (("task", task_ids, tasks), ("environment", env_ids, environments)):
            for unknown in (i for i in ids if i not in found):
                raise NotFound(f"{kind} {unknown} not found")
        config_hash = config.content_hash if config else None
        for task_id in dict.fromkeys(task_ids):
            experiment.attach_task(task_id)
        for env_id in dict.fromkeys(env_ids):
            experiment.attach_environment(env_id)
        if signal_config and config_hash:
            experiment.set_signal_config(signal_config, config_hash)
        self._rules.require_runs_within_limit(experiment, "repeats")
        self._saver.save(experiment)
        return self._views.experiment(product, experiment.public_id)

    def update_experiment(
        self, product: str, exp_id: str, changes: dict[str, Any]
    ) -> ExperimentView:
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
                self._rules.require_runs_within_limit(experiment, "repeats")
            self._saver.save(experiment)

        self._saver.retrying(command)
        return self._views.experiment(product, exp_id)

    def attach(self, product: str, exp_id: str, kind: str, item_id: str) -> ExperimentView:
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
            self._rules.require_runs_within_limit(
                experiment, "task_id" if kind == "task" else "env_id"
            )
            self._saver.save(experiment)

        self._saver.retrying(command)
        return self._views.experiment(product, exp_id)

    def detach(self, product: str, exp_id: str, kind: str, item_id: str) -> ExperimentView:
        def command() -> None:
            experiment = self._experiment(product, exp_id)
            if kind == "task":
                experiment.detach_task(item_id)
            else:
                experiment.detach_environment(item_id)
            self._saver.save(experiment)

        self._saver.retrying(command)
        return self._views.experiment(product, exp_id)

    def experiment_as_of(self, product: str, exp_id: str, position: int) -> ExperimentView:
        version = self._views.experiment_version_at(product, exp_id, position)
        experiment = self._experiment(product, exp_id, version)
        return ExperimentView.model_validate(
            {
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
        )

    # -- iterations -------------------------------------------------------------------------

    def trigger(self, product: str, exp_id: str) -> IterationStatus:
        """Freeze config, definitions and run list, and take the next number, in one save.

        Raises `InvalidInput` when an agent, a success judge or a simulated user needs a
        provider key this server does not have; llm signals without their key only warn
        (`warnings`): their values will be missing, with the reason."""

        def command() -> int:
            experiment = self._experiment(product, exp_id)
            number = experiment.start_iteration()
            self._rules.require_runs_within_limit(experiment, "")
            running, stored_tasks, stored_environments = (
                self._views.running_iterations_and_definitions(
                    product, experiment.task_ids, experiment.env_ids
                )
            )
            self._rules.require_running_iterations_within_limit(running)
            tasks = {tid: self._frozen(task) for tid, task in stored_tasks.items()}
            environments = {eid: self._frozen(env) for eid, env in stored_environments.items()}
            signal_config = None
            config = None
            if experiment.config_text is not None:
                config = load_signal_config(experiment.config_text).require_valid()
                signal_config = FrozenSignalConfig(
                    text=experiment.config_text, parsed=config, hash=experiment.config_hash or ""
                )
            self._rules.check(product, environments.values(), tasks.values())
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
            self._saver.save(experiment, iteration)
            return number

        warnings: list[str] = []
        number = self._saver.retrying(command)
        status = self._views.iteration_status(product, exp_id, number)
        return status.model_copy(update={"warnings": sorted(set(warnings))}) if warnings else status

    def rescore(
        self, product: str, exp_id: str, source: int | str, signal_config: str | None = None
    ) -> IterationStatus:
        """A new iteration (the next number, as a trigger takes it) that re-scores iteration
        `source` from its recorded transcripts: the experiment's current signal config, or
        `signal_config` (YAML, validated; the experiment's own is left as it is), the source's
        frozen task and environment definitions and one run per source run. No agent runs:
        the executors give each run its source's recorded outcome and extract, judge and
        aggregate again. 409 while the source is running; the runs and running-iterations
        limits apply as to a trigger."""
        config_hash = self._validated_config(signal_config) if signal_config else None
        # 404 for another product's experiment or an unknown iteration.
        number = self._views.iteration_status(product, exp_id, source).iteration

        def command() -> int:
            experiment = self._experiment(product, exp_id)
            origin = self._iteration(exp_id, number)
            if origin.status == "running":
                raise Conflict(
                    f"{origin.label} is still running: only a completed or cancelled "
                    "iteration can be re-scored (wait for it, or cancel it)"
                )
            new_number = experiment.start_rescore()
            self._rules.require_rescore_within_limit(len(origin.runs))
            self._rules.require_running_iterations_within_limit(
                self._views.count_running_iterations(product)
            )
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
            self._saver.save(experiment, iteration)
            return new_number

        warnings: list[str] = []
        created = self._saver.retrying(command)
        status = self._views.iteration_status(product, exp_id, created)
        return status.model_copy(update={"warnings": sorted(set(warnings))}) if warnings else status

    def import_logs(
        self, product: str, exp_id: str, format: str, logs: Sequence[LogToImport]
    ) -> IterationStatus:
        """A new iteration (the next number, as a trigger takes it) whose runs are recorded
        transcripts (`format` names what they were read from): one run per log, its task and
        environment those of the experiment its keys name (an id or exact name; 422 naming
        every unknown key). No agent runs: the executors give each run its transcript, then
        judge, extract, cluster and aggregate as for any iteration. The runs and
        running-iterations limits apply as to a trigger; nothing is recorded on any error."""
        check_import_format(format)
        self._rules.require_import_size(len(logs))
        documents = self._import_documents(logs)

        def command() -> int:
            experiment = self._experiment(product, exp_id)
            running, tasks, environments = self._views.running_iterations_and_definitions(
                product, experiment.task_ids, experiment.env_ids
            )
            resolved = resolve_keys(
                [log.keys for log in logs],
                {tid: task["name"] for tid, task in tasks.items()},
                {eid: env["name"] for eid, env in environments.items()},
                exp_id,
            )
            number = experiment.start_iteration()
            self._rules.require_running_iterations_within_limit(running)
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
            refs = [self._blobs.put(document) for document in documents]
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
            self._saver.save(experiment, iteration)
            return number

        warnings: list[str] = []
        created = self._saver.retrying(command)
        status = self._views.iteration_status(product, exp_id, created)
        return status.model_copy(update={"warnings": sorted(set(warnings))}) if warnings else status

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

    @staticmethod
    def _frozen(definition: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in definition.items() if k not in ("id", "created_at")}

    def _iteration(self, exp_id: str, number: int) -> Iteration:
        return self._store.load(
            Iteration, iteration_stream_id(exp_id, number), f"{exp_id} iteration {number}"
        )

    def cancel(self, product: str, exp_id: str, number: int | str) -> IterationStatus:
        status = self._views.iteration_status(product, exp_id, number)

        def command() -> None:
            iteration = self._iteration(exp_id, status.iteration)
            iteration.request_cancel()
            self._saver.save(iteration)

        self._saver.retrying(command)
        return self._views.iteration_status(product, exp_id, status.iteration)
