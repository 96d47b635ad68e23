"""The `/v1` endpoints (docs/api.md). Each one parses the request, makes one service call
and returns JSON; the YAML after `---` in a docstring feeds `/openapi.json`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.http.bodies import (
    EnvironmentAttach,
    EnvironmentCreate,
    ExperimentCreate,
    ExperimentUpdate,
    SignalConfigUpload,
    TaskAttach,
    TaskCreate,
)
from api.http.requests import (
    call,
    iteration_number,
    json_body,
    limits,
    paging,
    parse,
    product,
    query_number,
    service,
)
from domain.errors import InvalidInput, PayloadTooLarge
from domain.signals.validation import SignalConfigSyntaxError, load_signal_config


def ok(document: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(document, status_code=status)


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


# -- tasks and environments -------------------------------------------------------------------


async def create_task(request: Request) -> JSONResponse:
    """Create a task.
    ---
    summary: Create a task
    responses:
      201: {description: The task}
      422: {description: Invalid task, with located problems}
    """
    owner = await product(request)
    body = await json_body(request)
    parse(TaskCreate, body, "invalid task")
    return ok(await call(service(request).create_task, owner, body), 201)


async def list_tasks(request: Request) -> JSONResponse:
    """List tasks.
    ---
    summary: List tasks
    responses: {200: {description: "{items, next_cursor}"}}
    """
    owner = await product(request)
    return ok(await call(service(request).views.tasks, owner, *paging(request)))


async def get_task(request: Request) -> JSONResponse:
    """Get a task.
    ---
    summary: Get a task
    responses: {200: {description: The task}, 404: {description: Unknown task}}
    """
    owner = await product(request)
    return ok(await call(service(request).views.task, owner, request.path_params["task_id"]))


async def create_environment(request: Request) -> JSONResponse:
    """Create an environment.
    ---
    summary: Create an environment (replay transcripts inline)
    responses:
      201: {description: The environment}
      422: {description: Invalid environment or transcripts, with located problems}
    """
    owner = await product(request)
    body = await json_body(request)
    parse(EnvironmentCreate, body, "invalid environment")
    return ok(await call(service(request).create_environment, owner, body), 201)


async def list_environments(request: Request) -> JSONResponse:
    """List environments.
    ---
    summary: List environments
    responses: {200: {description: "{items, next_cursor}"}}
    """
    owner = await product(request)
    return ok(await call(service(request).views.environments, owner, *paging(request)))


async def get_environment(request: Request) -> JSONResponse:
    """Get an environment.
    ---
    summary: Get an environment
    responses: {200: {description: The environment}, 404: {description: Unknown environment}}
    """
    owner = await product(request)
    env_id = request.path_params["env_id"]
    return ok(await call(service(request).views.environment, owner, env_id))


# -- experiments ------------------------------------------------------------------------------


async def create_experiment(request: Request) -> JSONResponse:
    """Create an experiment.
    ---
    summary: Create an experiment, optionally with tasks, environments and a signal config
    responses:
      201: {description: The experiment}
      404: {description: An unknown task or environment}
      422: {description: Invalid signal config, with located problems}
    """
    owner = await product(request)
    body = parse(ExperimentCreate, await json_body(request), "invalid experiment")
    with _config_syntax_located():
        created = await call(
            service(request).create_experiment,
            owner,
            body.name,
            body.task_ids,
            body.env_ids,
            body.repeats,
            _within_config_limit(request, body.signal_config),
        )
    return ok(created, 201)


async def list_experiments(request: Request) -> JSONResponse:
    """List experiments.
    ---
    summary: List experiments
    responses: {200: {description: "{items, next_cursor}"}}
    """
    owner = await product(request)
    return ok(await call(service(request).views.experiments, owner, *paging(request)))


async def get_experiment(request: Request) -> JSONResponse:
    """Get an experiment, now or as it stood at a log position.
    ---
    summary: Get an experiment (?as_of=POSITION for its state then)
    responses: {200: {description: The experiment}, 404: {description: Unknown experiment}}
    """
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    as_of = query_number(request, "as_of")
    if as_of is not None:
        return ok(await call(service(request).experiment_as_of, owner, exp_id, as_of))
    return ok(await call(service(request).views.experiment, owner, exp_id))


async def update_experiment(request: Request) -> JSONResponse:
    """Change an experiment's signal config, name or repeats.
    ---
    summary: Update an experiment (signal_config null clears it)
    responses:
      200: {description: The experiment}
      422: {description: Invalid signal config, with located problems}
    """
    owner = await product(request)
    body = parse(ExperimentUpdate, await json_body(request), "invalid change")
    changes = {key: getattr(body, key) for key in body.model_fields_set}
    _within_config_limit(request, body.signal_config)
    exp_id = request.path_params["exp_id"]
    with _config_syntax_located():
        return ok(await call(service(request).update_experiment, owner, exp_id, changes))


def _membership(kind: str, attach: bool) -> Any:
    key = "task_id" if kind == "task" else "env_id"
    model = TaskAttach if kind == "task" else EnvironmentAttach

    async def endpoint(request: Request) -> JSONResponse:
        owner = await product(request)
        exp_id = request.path_params["exp_id"]
        if attach:
            item = getattr(parse(model, await json_body(request), f"invalid {kind}"), key)
            return ok(await call(service(request).attach, owner, exp_id, kind, item))
        item = request.path_params[key]
        return ok(await call(service(request).detach, owner, exp_id, kind, item))

    verb = "Attach" if attach else "Detach"
    endpoint.__doc__ = f"""{verb} a {kind}.
    ---
    summary: {verb} a {kind}
    responses: {{200: {{description: The experiment}}, 409: {{description: Already done}}}}
    """
    return endpoint


async def history(request: Request) -> JSONResponse:
    """The experiment's audit trail.
    ---
    summary: Every event of the experiment, its iterations and runs, oldest first
    responses: {200: {description: "{items, next_cursor}"}}
    """
    owner = await product(request)
    limit, cursor = paging(request)
    exp_id = request.path_params["exp_id"]
    return ok(await call(service(request).views.history, owner, exp_id, limit, cursor))


# -- iterations -------------------------------------------------------------------------------


async def trigger(request: Request) -> JSONResponse:
    """Trigger an iteration.
    ---
    summary: Trigger the next iteration (one run per task × environment × repeat)
    responses:
      201: {description: "The iteration's status, with `warnings` when llm signals lack a key"}
      409: {description: No tasks or no environments attached}
      422: {description: An agent, success judge or simulated user needs a key the server lacks}
    """
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    status = await call(service(request).trigger, owner, exp_id)
    executor = request.app.state.executor
    if executor is not None:
        await executor.submit(exp_id, status["iteration"])
    return ok(status, 201)


async def list_iterations(request: Request) -> JSONResponse:
    """List iterations.
    ---
    summary: Every iteration's status
    responses: {200: {description: "{items, next_cursor}"}}
    """
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    return ok(await call(service(request).views.iterations, owner, exp_id))


async def iteration_status(request: Request) -> JSONResponse:
    """An iteration's progress.
    ---
    summary: Iteration status with run counts (n may be 'latest')
    responses: {200: {description: Status}, 404: {description: Unknown iteration}}
    """
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    number = iteration_number(request)
    return ok(await call(service(request).views.iteration_status, owner, exp_id, number))


async def cancel(request: Request) -> JSONResponse:
    """Cancel an iteration.
    ---
    summary: Cancel a running iteration; its unfinished runs end as cancelled
    responses: {200: {description: Status}, 409: {description: Already completed}}
    """
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    status = await call(service(request).cancel, owner, exp_id, iteration_number(request))
    executor = request.app.state.executor
    if executor is not None:
        await executor.cancel(exp_id, status["iteration"])
    return ok(status)


async def results(request: Request) -> JSONResponse:
    """An iteration's results.
    ---
    summary: Summary, failure clusters and suggestions (?compare=M, ?error_category=NAME)
    responses: {200: {description: Results}, 409: {description: Still running}}
    """
    owner = await product(request)
    compare = query_number(request, "compare", 1)
    document = await call(
        service(request).views.results,
        owner,
        request.path_params["exp_id"],
        iteration_number(request),
        compare,
        request.query_params.get("error_category"),
    )
    return ok(document)


async def signals(request: Request) -> JSONResponse:
    """An iteration's signals.
    ---
    summary: Aggregates and per-run signal values with evidence
    responses: {200: {description: Signals report}, 409: {description: Still running}}
    """
    owner = await product(request)
    exp_id = request.path_params["exp_id"]
    number = iteration_number(request)
    return ok(await call(service(request).views.signals, owner, exp_id, number))


async def list_runs(request: Request) -> JSONResponse:
    """An iteration's runs.
    ---
    summary: Runs of an iteration (?status= filters)
    responses: {200: {description: "{items, next_cursor}"}}
    """
    owner = await product(request)
    limit, cursor = paging(request)
    document = await call(
        service(request).views.runs,
        owner,
        request.path_params["exp_id"],
        iteration_number(request),
        request.query_params.get("status"),
        limit,
        cursor,
    )
    return ok(document)


# -- runs -------------------------------------------------------------------------------------


async def get_run(request: Request) -> JSONResponse:
    """A run.
    ---
    summary: A run with its stats and signal values
    responses: {200: {description: The run}, 404: {description: Unknown run}}
    """
    owner = await product(request)
    return ok(await call(service(request).views.run, owner, request.path_params["run_id"]))


async def run_transcript(request: Request) -> JSONResponse:
    """A run's transcript.
    ---
    summary: The run's transcript (tpc transcript v1)
    responses: {200: {description: Transcript}, 409: {description: Not finished}}
    """
    owner = await product(request)
    return ok(await call(service(request).transcript, owner, request.path_params["run_id"]))


async def run_logs(request: Request) -> JSONResponse:
    """A run's messages as they happen, to follow it live.
    ---
    summary: A run's messages from index ?after=N on, live while it runs (to follow it)
    description: >-
      While the run is queued or running, the messages of its current attempt reported so far
      (texts cut to 2,000 characters); once it has its transcript, the transcript's. Ask again
      with `after` = `next` until `done`; a new `attempt` starts again from index 0.
    responses:
      200: {description: "{run_id, status, attempt, messages: [{index, …message}], next, done}"}
      404: {description: Unknown run}
    """
    owner = await product(request)
    after = query_number(request, "after") or 0
    run_id = request.path_params["run_id"]
    return ok(await call(service(request).run_logs, owner, run_id, after))


async def run_actions(request: Request) -> JSONResponse:
    """A run's tool calls with their results.
    ---
    summary: Tool calls and their results
    responses: {200: {description: "{run_id, actions}"}}
    """
    owner = await product(request)
    run_id = request.path_params["run_id"]
    transcript = await call(service(request).transcript, owner, run_id)
    return ok({"run_id": run_id, "actions": actions_of(transcript)})


def actions_of(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    """Each tool call paired with its result, in order."""
    results: dict[str, dict[str, Any]] = {}
    for message in transcript.get("messages", []):
        for block in message.get("content", []):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results[str(block.get("tool_call_id"))] = block
    actions = []
    for index, message in enumerate(transcript.get("messages", [])):
        for block in message.get("content", []):
            if isinstance(block, dict) and block.get("type") == "tool_call":
                result = results.get(str(block.get("id")), {})
                actions.append(
                    {
                        "event": index,
                        "name": block.get("name"),
                        "input": block.get("input"),
                        "result": result.get("content"),
                        "is_error": result.get("is_error", False),
                    }
                )
    return actions


async def validate_config(request: Request) -> JSONResponse:
    """Validate a signal config on the server.
    ---
    summary: The same validation as the CLI's validate-signal-config
    responses: {200: {description: "{valid, errors, warnings, config_hash}"}}
    """
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
    Route("/v1/experiments/{exp_id}/iterations/{n}", iteration_status, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/cancel", cancel, methods=["POST"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/results", results, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/signals", signals, methods=["GET"]),
    Route("/v1/experiments/{exp_id}/iterations/{n}/runs", list_runs, methods=["GET"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}/transcript", run_transcript, methods=["GET"]),
    Route("/v1/runs/{run_id}/logs", run_logs, methods=["GET"]),
    Route("/v1/runs/{run_id}/actions", run_actions, methods=["GET"]),
    Route("/v1/signal-configs/validate", validate_config, methods=["POST"]),
]
