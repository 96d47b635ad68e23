"""The `/v1` endpoints (docs/api.md). Each one parses the request, makes one service call
and returns JSON; `@documented` describes it in `/openapi.json` (api/http/openapi.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.http.bodies import (
    EnvironmentAttach,
    EnvironmentCreate,
    ExperimentCreate,
    ExperimentUpdate,
    ImportRequest,
    RescoreRequest,
    SecretValue,
    SignalConfigUpload,
    TaskAttach,
    TaskCreate,
)
from api.http.openapi import Param, documented
from api.http.requests import (
    PAGE_LIMIT,
    call,
    for_owner,
    for_owner_with_body,
    iteration_number,
    json_body,
    limits,
    paging,
    parse,
    product,
    query_number,
    service,
    start_runs,
)
from domain.errors import InvalidInput, PayloadTooLarge
from domain.imports import LogKeys, LogToImport
from domain.signals.validation import SignalConfigSyntaxError, load_signal_config
from domain.statistics import CONFIDENCES, DEFAULT_CONFIDENCE, confidence_key
from domain.transcripts import transcript_from_object
from projections.read_models import (
    EnvironmentView,
    ExperimentView,
    ReadModel,
    TaskView,
    json_document,
)


def ok(answer: ReadModel | dict[str, Any], status: int = 200) -> Response:
    """The answer as JSON: a read model serialised as every route serialises them (by
    pydantic-core straight to bytes: on the event loop, Python's encoder was a fifth of its
    time under load)."""
    if isinstance(answer, ReadModel):
        return Response(json_document(answer), status, media_type="application/json")
    return JSONResponse(answer, status_code=status)


def _within_config_limit(request: Request, text: str | None) -> str | None:
    """413 when a signal config's text is over the operator's limit (checked before parsing)."""
    limit = limits(request).max_signal_config_bytes
    if text is not None and (len(text) > limit or len(text.encode("utf-8")) > limit):
        raise PayloadTooLarge(
            f"the signal config is larger than the server's limit of {limit} bytes "
            "(TPC_MAX_SIGNAL_CONFIG_BYTES)"
        )
    return text


@contextlib.contextmanager
def _config_syntax_located() -> Iterator[None]:
    """A signal config that is not YAML at all is a 422 located at `signal_config`."""
    try:
        yield
    except SignalConfigSyntaxError as error:
        raise InvalidInput(str(error), (("signal_config", str(error)),)) from None


PAGING = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT}, "Items per page"),
    Param("cursor", {"type": "string", "pattern": "^[0-9]+$"}, "`next_cursor` of the last page"),
)
AS_OF = Param("as_of", {"type": "integer", "minimum": 0}, "A log position (see `history`)")
COMPARE = Param("compare", {"type": "integer", "minimum": 1}, "An iteration to compare with")
ERROR_CATEGORY = Param("error_category", {"type": "string"}, "Only runs of this error category")
CONFIDENCE = Param(
    "confidence",
    {"type": "string", "enum": [confidence_key(c) for c in CONFIDENCES]},
    "The intervals' confidence level (default 0.95; alpha = 1 - confidence for verdicts)",
)
BASELINE = Param(
    "baseline",
    {"type": "string"},
    "The environment (id or exact name) every other is compared with (default: the best)",
)
STATUS = Param("status", {"type": "string"}, "Only runs with this status")
AFTER = Param("after", {"type": "integer", "minimum": 0}, "The first message index wanted")
RUN_LOGS = (
    "While the run is queued or running, the messages of its current attempt reported so far "
    "(texts cut to 2,000 characters); once it has its transcript, the transcript's. Ask again "
    "with `after` = `next` until `done`; a new `attempt` starts again from index 0."
)


def _confidence(request: Request) -> float:
    """`?confidence=` as one of the levels results store intervals for (else a located 422)."""
    raw = request.query_params.get("confidence")
    if raw is None:
        return DEFAULT_CONFIDENCE
    for level in CONFIDENCES:
        if raw.strip() in (confidence_key(level), f"{level:.2f}"):
            return level
    allowed = ", ".join(confidence_key(c) for c in CONFIDENCES)
    raise InvalidInput(
        f"confidence must be one of {allowed} (got {raw[:40]!r})",
        (("confidence", f"must be one of {allowed}"),),
    )


# -- tasks and environments -------------------------------------------------------------------


@documented(
    summary="Create a task",
    returns="Task",
    body=TaskCreate,
    status=201,
    answer="The task",
    errors=(403, 507),
)
async def create_task(request: Request) -> Response:
    """Create a task."""
    catalog = service(request).catalog

    def answer(owner: str, body: dict[str, Any]) -> TaskView:
        parse(TaskCreate, body, "invalid task")
        return catalog.create_task(owner, body)

    return ok(await for_owner_with_body(request, answer), 201)


@documented(summary="List tasks", returns="Task", query=PAGING, paged=True)
async def list_tasks(request: Request) -> Response:
    """List tasks."""
    views = service(request).views
    return ok(await for_owner(request, lambda owner: views.tasks(owner, *paging(request))))


@documented(summary="Get a task", returns="Task", answer="The task", errors=(404,))
async def get_task(request: Request) -> Response:
    """Get a task."""
    views = service(request).views
    return ok(
        await for_owner(request, lambda owner: views.task(owner, request.path_params["task_id"]))
    )


@documented(
    summary="Create an environment (replay transcripts inline)",
    returns="Environment",
    body=EnvironmentCreate,
    status=201,
    answer="The environment",
    errors=(403, 507),
)
async def create_environment(request: Request) -> Response:
    """Create an environment."""
    catalog = service(request).catalog

    def answer(owner: str, body: dict[str, Any]) -> EnvironmentView:
        parse(EnvironmentCreate, body, "invalid environment")
        return catalog.create_environment(owner, body)

    return ok(await for_owner_with_body(request, answer), 201)


@documented(summary="List environments", returns="Environment", query=PAGING, paged=True)
async def list_environments(request: Request) -> Response:
    """List environments."""
    views = service(request).views
    return ok(await for_owner(request, lambda owner: views.environments(owner, *paging(request))))


@documented(
    summary="Get an environment", returns="Environment", answer="The environment", errors=(404,)
)
async def get_environment(request: Request) -> Response:
    """Get an environment."""
    views = service(request).views
    env_id = request.path_params["env_id"]
    return ok(await for_owner(request, lambda owner: views.environment(owner, env_id)))


# -- experiments ------------------------------------------------------------------------------


@documented(
    summary="Create an experiment, optionally with tasks, environments and a signal config",
    returns="Experiment",
    body=ExperimentCreate,
    status=201,
    answer="The experiment",
    errors=(404, 507),
)
async def create_experiment(request: Request) -> Response:
    """Create an experiment."""
    experiments = service(request).experiments

    def answer(owner: str, raw_body: dict[str, Any]) -> ExperimentView:
        body = parse(ExperimentCreate, raw_body, "invalid experiment")
        return experiments.create_experiment(
            owner,
            body.name,
            body.task_ids,
            body.env_ids,
            body.repeats,
            _within_config_limit(request, body.signal_config),
        )

    with _config_syntax_located():
        created = await for_owner_with_body(request, answer)
    return ok(created, 201)


@documented(summary="List experiments", returns="Experiment", query=PAGING, paged=True)
async def list_experiments(request: Request) -> Response:
    """List experiments."""
    views = service(request).views
    return ok(await for_owner(request, lambda owner: views.experiments(owner, *paging(request))))


@documented(
    summary="Get an experiment (?as_of=POSITION for its state then)",
    returns="Experiment",
    query=(AS_OF,),
    answer="The experiment",
    errors=(404,),
)
async def get_experiment(request: Request) -> Response:
    """Get an experiment, now or as it stood at a log position."""
    svc = service(request)
    exp_id = request.path_params["exp_id"]

    def answer(owner: str) -> ReadModel:
        as_of = query_number(request, "as_of")
        if as_of is not None:
            return svc.experiments.experiment_as_of(owner, exp_id, as_of)
        return svc.views.experiment(owner, exp_id)

    return ok(await for_owner(request, answer))


@documented(
    summary="Update an experiment's name, repeats or signal config (null clears it)",
    returns="Experiment",
    body=ExperimentUpdate,
    answer="The experiment",
    errors=(404, 507),
)
async def update_experiment(request: Request) -> Response:
    """Change an experiment's signal config, name or repeats."""
    experiments = service(request).experiments
    exp_id = request.path_params["exp_id"]

    def answer(owner: str, raw_body: dict[str, Any]) -> ExperimentView:
        body = parse(ExperimentUpdate, raw_body, "invalid change")
        changes = {key: getattr(body, key) for key in body.model_fields_set}
        _within_config_limit(request, body.signal_config)
        return experiments.update_experiment(owner, exp_id, changes)

    with _config_syntax_located():
        return ok(await for_owner_with_body(request, answer))


def _membership(kind: str, attach: bool) -> Any:
    key = "task_id" if kind == "task" else "env_id"
    model = TaskAttach if kind == "task" else EnvironmentAttach

    async def endpoint(request: Request) -> Response:
        experiments = service(request).experiments
        exp_id = request.path_params["exp_id"]
        if attach:
            owner = await product(request)
            item = getattr(parse(model, await json_body(request), f"invalid {kind}"), key)
            return ok(await call(experiments.attach, owner, exp_id, kind, item))
        item = request.path_params[key]
        return ok(
            await for_owner(request, lambda owner: experiments.detach(owner, exp_id, kind, item))
        )

    verb = "Attach" if attach else "Detach"
    endpoint.__doc__ = f"{verb} a {kind}."
    documented(
        summary=f"{verb} a {kind}",
        returns="Experiment",
        body=model if attach else None,
        answer="The experiment",
        errors=(404, 409, 507),
    )(endpoint)
    return endpoint


@documented(
    summary="Every event of the experiment, its iterations and runs, oldest first",
    returns="AuditEvent",
    query=PAGING,
    paged=True,
    errors=(404,),
)
async def history(request: Request) -> Response:
    """The experiment's audit trail."""
    views = service(request).views
    exp_id = request.path_params["exp_id"]
    return ok(
        await for_owner(request, lambda owner: views.history(owner, exp_id, *paging(request)))
    )


# -- iterations -------------------------------------------------------------------------------


@documented(
    summary="Trigger the next iteration (one run per task × environment × repeat)",
    returns="IterationStatus",
    status=201,
    answer="The iteration's status, with `warnings` when llm signals lack a key",
    errors=(403, 404, 409, 429, 507),
)
async def trigger(request: Request) -> Response:
    """Trigger an iteration."""
    experiments = service(request).experiments
    exp_id = request.path_params["exp_id"]
    status = await for_owner(request, lambda owner: experiments.trigger(owner, exp_id))
    start_runs(request, exp_id, status.iteration)
    return ok(status, 201)


@documented(
    summary="Re-score an iteration: a new iteration from its recorded transcripts, no agent runs",
    description=(
        "The next iteration number, with one run per run of iteration `n` (which must be "
        "completed or cancelled: 409 otherwise). Each run keeps its source run's status, "
        "termination reason, stats and transcript; signals are extracted, judged and "
        "aggregated again under `signal_config` (validated: 422 with located problems; the "
        "experiment's config is not changed) or the experiment's current config."
    ),
    body=RescoreRequest,
    returns="IterationStatus",
    status=201,
    answer="The new iteration's status (`rescore_of`: n), with `warnings` when llm signals "
    "lack a key",
    errors=(404, 409, 413, 429, 507),
)
async def rescore(request: Request) -> Response:
    """Re-score an iteration."""
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    body = parse(RescoreRequest, await json_body(request), "invalid re-score")
    source = iteration_number(request)
    with _config_syntax_located():
        status = await call(
            service(request).experiments.rescore,
            owner,
            exp_id,
            source,
            _within_config_limit(request, body.signal_config),
        )
    start_runs(request, exp_id, status.iteration)
    return ok(status, 201)


@documented(
    summary="Import recorded transcripts as the next iteration: one run each, no agent runs",
    description=(
        "The next iteration number, with one run per transcript: its task and environment "
        "are those of the experiment that `task` and `environment` name (an id or exact "
        "name; every unknown key is named in one 422). Runs are planned in a trigger's order "
        "(tasks, environments, then the transcripts of each pair as repeats, in the order "
        "given). Each run keeps its transcript's recorded status (or is judged from the "
        "task's success criteria), termination reason and stats; signals are extracted, "
        "judged and aggregated, and failures clustered, as for any iteration. Transcripts "
        "that do not validate are located 422s; nothing is recorded on any error."
    ),
    body=ImportRequest,
    returns="IterationStatus",
    status=201,
    answer="The new iteration's status (`imported`: its format and counts), with `warnings` "
    "when llm signals lack a key",
    errors=(404, 409, 413, 429, 507),
)
async def import_logs(request: Request) -> Response:
    """Import recorded transcripts."""
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    body = parse(ImportRequest, await json_body(request), "invalid import")
    logs = [
        LogToImport(LogKeys(run.task, run.environment), run.transcript, run.file, run.sample)
        for run in body.runs
    ]
    status = await call(service(request).experiments.import_logs, owner, exp_id, body.format, logs)
    start_runs(request, exp_id, status.iteration)
    return ok(status, 201)


@documented(
    summary="Every iteration's status", returns="IterationStatus", paged=True, errors=(404,)
)
async def list_iterations(request: Request) -> Response:
    """List iterations."""
    views = service(request).views
    exp_id = request.path_params["exp_id"]
    return ok(await for_owner(request, lambda owner: views.iterations(owner, exp_id)))


@documented(
    summary="Iteration status with run counts",
    returns="IterationStatus",
    answer="Status",
    errors=(404,),
)
async def iteration_status(request: Request) -> Response:
    """An iteration's progress."""
    views = service(request).views
    exp_id = request.path_params["exp_id"]
    answer = await for_owner(
        request, lambda owner: views.iteration_status(owner, exp_id, iteration_number(request))
    )
    return ok(answer)


@documented(
    summary="Cancel a running iteration; its unfinished runs end as cancelled",
    returns="IterationStatus",
    answer="Status",
    errors=(404, 409, 507),
)
async def cancel(request: Request) -> Response:
    """Cancel an iteration."""
    experiments = service(request).experiments
    exp_id = request.path_params["exp_id"]
    status = await for_owner(
        request, lambda owner: experiments.cancel(owner, exp_id, iteration_number(request))
    )
    executor = request.app.state.executor
    if executor is not None:
        await executor.cancel(exp_id, status.iteration)
    return ok(status)


@documented(
    summary="Summary, failure clusters and suggestions",
    returns="Results",
    query=(COMPARE, ERROR_CATEGORY, CONFIDENCE, BASELINE),
    answer="Results",
    errors=(404, 409),
)
async def results(request: Request) -> Response:
    """An iteration's results."""
    views = service(request).views

    def answer(owner: str) -> ReadModel:
        return views.results(
            owner,
            request.path_params["exp_id"],
            iteration_number(request),
            query_number(request, "compare", 1),
            request.query_params.get("error_category"),
            _confidence(request),
            request.query_params.get("baseline"),
        )

    return ok(await for_owner(request, answer))


@documented(
    summary="Aggregates and per-run signal values with evidence",
    returns="SignalsReport",
    query=(CONFIDENCE,),
    answer="Signals report",
    errors=(404, 409),
)
async def signals(request: Request) -> Response:
    """An iteration's signals."""
    views = service(request).views
    exp_id = request.path_params["exp_id"]

    def answer(owner: str) -> dict[str, Any]:
        return views.signals(owner, exp_id, iteration_number(request), _confidence(request))

    return ok(await for_owner(request, answer))


@documented(
    summary="Runs of an iteration",
    returns="Run",
    query=(*PAGING, STATUS),
    paged=True,
    errors=(404,),
)
async def list_runs(request: Request) -> Response:
    """An iteration's runs."""
    views = service(request).views

    def answer(owner: str) -> ReadModel:
        return views.runs(
            owner,
            request.path_params["exp_id"],
            iteration_number(request),
            request.query_params.get("status"),
            *paging(request),
        )

    return ok(await for_owner(request, answer))


# -- runs -------------------------------------------------------------------------------------


@documented(
    summary="A run with its stats and signal values", returns="Run", answer="The run", errors=(404,)
)
async def get_run(request: Request) -> Response:
    """A run."""
    views = service(request).views
    return ok(
        await for_owner(request, lambda owner: views.run(owner, request.path_params["run_id"]))
    )


@documented(
    summary="The run's transcript (tpc transcript v1)",
    returns="Transcript",
    answer="Transcript",
    errors=(404, 409),
)
async def run_transcript(request: Request) -> Response:
    """A run's transcript."""
    transcripts = service(request).transcripts
    run_id = request.path_params["run_id"]
    return ok(await for_owner(request, lambda owner: transcripts.transcript(owner, run_id)))


@documented(
    summary="A run's messages from index ?after=N on, live while it runs",
    returns="RunLog",
    description=RUN_LOGS,
    query=(AFTER,),
    answer="{run_id, status, attempt, messages: [{index, …message}], next, done}",
    errors=(404,),
)
async def run_logs(request: Request) -> Response:
    """A run's messages as they happen, to follow it live."""
    transcripts = service(request).transcripts
    run_id = request.path_params["run_id"]

    def answer(owner: str) -> ReadModel:
        return transcripts.run_logs(owner, run_id, query_number(request, "after") or 0)

    return ok(await for_owner(request, answer))


@documented(
    summary="Tool calls and their results",
    returns="Actions",
    answer="{run_id, actions}",
    errors=(404, 409),
)
async def run_actions(request: Request) -> Response:
    """A run's tool calls with their results."""
    transcripts = service(request).transcripts
    run_id = request.path_params["run_id"]
    stored = await for_owner(request, lambda owner: transcripts.transcript(owner, run_id))
    actions = transcript_from_object(stored, f"run {run_id}'s transcript").actions()
    return ok({"run_id": run_id, "actions": [action.model_dump(mode="json") for action in actions]})


@documented(
    summary="Validate a signal config (as the CLI's validate-signal-config)",
    returns="ValidationReport",
    body=SignalConfigUpload,
    answer="{valid, errors, warnings, config_hash}",
)
async def validate_config(request: Request) -> Response:
    """Validate a signal config on the server."""
    await product(request)
    body = parse(SignalConfigUpload, await json_body(request), "invalid request")
    text = _within_config_limit(request, body.signal_config) or ""
    try:
        report = await call(load_signal_config, text)
    except SignalConfigSyntaxError as error:
        return ok(
            {
                "valid": False,
                "errors": [{"loc": "", "message": str(error)}],
                "warnings": [],
                "config_hash": None,
            }
        )
    return ok(report.to_json())


ROUTES = [
    Route("/v1/tasks", create_task, methods=["POST"]),
    Route("/v1/tasks", list_tasks, methods=["GET"]),
    Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/v1/environments", create_environment, methods=["POST"]),
    Route("/v1/environments", list_environments, methods=["GET"]),
    Route("/v1/environments/{env_id}", get_environment, methods=["GET"]),
    Route("/v1/experiments", create_experiment, methods=["POST"]),
    Route("/v1/experiments", list_experiments, methods=["GET"]),
    Route("/v1/experiments/{exp_id}", get_experiment, methods=["GET"]),
    Route("/v1/experiments/{exp_id}", update_experiment, methods=["PATCH"]),
    Route("/v1/experiments/{exp_id}/tasks", _membership("task", True), methods=["POST"]),
    Route(
        "/v1/experiments/{exp_id}/tasks/{task_id}", _membership("task", False), methods=["DELETE"]
    ),
    Route(
        "/v1/experiments/{exp_id}/environments", _membership("environment", True), methods=["POST"]
    ),
    Route(
        "/v1/experiments/{exp_id}/environments/{env_id}",
        _membership("environment", False),
        methods=["DELETE"],
    ),
    Route("/v1/experiments/{exp_id}/history", history, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations", trigger, methods=["POST"]),
    Route("/v1/experiments/{exp_id}/iterations", list_iterations, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/imports", import_logs, methods=["POST"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}", iteration_status, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/cancel", cancel, methods=["POST"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/rescore", rescore, methods=["POST"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/results", results, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/signals", signals, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/runs", list_runs, methods=["GET"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}/transcript", run_transcript, methods=["GET"]),
    Route("/v1/runs/{run_id}/logs", run_logs, methods=["GET"]),
    Route("/v1/runs/{run_id}/actions", run_actions, methods=["GET"]),
    Route("/v1/signal-configs/validate", validate_config, methods=["POST"]),
]


# -- secrets (the caller's product's own; values are never returned) ----------------------------


@documented(
    summary="Set a secret that environments name as ${NAME}; the value is never returned",
    returns="Secret",
    body=SecretValue,
    answer="{name, updated_at}",
    errors=(404,),
)
async def put_secret(request: Request) -> Response:
    """Create or replace one of the product's secrets."""
    catalog = service(request).catalog
    name = request.path_params["name"]

    def answer(owner: str, body: dict[str, Any]) -> dict[str, Any]:
        return catalog.set_secret(owner, name, parse(SecretValue, body, "invalid secret").value)

    return ok(await for_owner_with_body(request, answer))


@documented(
    summary="The product's secret names and when each was set (never the values)",
    returns="Secrets",
    answer="{items: [{name, updated_at}]}",
    errors=(404,),
)
async def list_secrets(request: Request) -> Response:
    """List the product's secrets."""
    return ok(await for_owner(request, service(request).catalog.list_secrets))


@documented(
    summary="Erase a secret; environments naming it are refused at the next trigger",
    returns="SecretRemoved",
    answer="{name, removed}",
    errors=(404,),
)
async def delete_secret(request: Request) -> Response:
    """Erase one of the product's secrets."""
    catalog = service(request).catalog
    name = request.path_params["name"]
    return ok(await for_owner(request, lambda owner: catalog.remove_secret(owner, name)))


ROUTES += [
    Route("/v1/secrets", list_secrets, methods=["GET"]),
    Route("/v1/secrets/{name}", put_secret, methods=["PUT"]),
    Route("/v1/secrets/{name}", delete_secret, methods=["DELETE"]),
]
