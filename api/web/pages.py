"""The dashboard's pages (docs/dashboard.md): server-rendered views of the same projections
and service calls the REST API uses. Forms POST and redirect (303); a domain error is shown
on the page it came from, with the user's input kept. A form shown again with its errors is
a 200, as browsers log every 4xx document load as a console error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.http.requests import call, iteration_number, service, start_runs
from api.web import charts
from api.web.session import Endpoint, form_data, login, login_page, logout, signed_in
from api.web.templating import render
from api.web.units import aggregate_unit, signal_units
from domain.errors import Conflict, DomainError, InvalidInput
from domain.signals.config import SignalConfig
from domain.signals.validation import SignalConfigSyntaxError, load_signal_config
from domain.vocabulary import RUN_STATES
from projections.read_models import (
    EnvironmentView,
    ExperimentView,
    IterationStatus,
    Results,
    TaskView,
    document,
)

RUNS_PER_PAGE = 50
LOOKUP_LIMIT = 500
STATIC = Path(__file__).parent / "static"


def problems_of(error: DomainError) -> list[str]:
    """Located messages (`loc: message`) for the page; the message alone when unlocated."""
    if isinstance(error, InvalidInput) and error.problems:
        return [f"{loc}: {message}" if loc else message for loc, message in error.problems]
    return [str(error)]


def _first(form: dict[str, list[str]], key: str, default: str = "") -> str:
    return (form.get(key) or [default])[0]


async def _catalogue(request: Request, owner: str) -> tuple[list[TaskView], list[EnvironmentView]]:
    """Tasks and environments to pick from and to name ids with (the first page of each)."""
    views = service(request).views
    tasks = await call(views.tasks, owner, LOOKUP_LIMIT, None)
    environments = await call(views.environments, owner, LOOKUP_LIMIT, None)
    return tasks.items, environments.items


def _names(items: Sequence[TaskView | EnvironmentView]) -> dict[str, str]:
    return {item.id: item.name for item in items}


# -- experiments ------------------------------------------------------------------------------


async def _index(request: Request, owner: str, form: dict[str, Any], errors: list[str]) -> Response:
    cursor = request.query_params.get("cursor")
    views = service(request).views
    experiments = await call(views.experiments, owner, RUNS_PER_PAGE, cursor)
    tasks, environments = await _catalogue(request, owner)
    context = {
        "experiments": experiments,
        "tasks": tasks,
        "environments": environments,
        "form": form,
        "errors": errors,
    }
    return render(request, "index.html", context)


@signed_in()
async def index(request: Request, owner: str) -> Response:
    return await _index(request, owner, {"repeats": "1", "task_ids": [], "env_ids": []}, [])


@signed_in()
async def create_experiment(request: Request, owner: str) -> Response:
    raw = await form_data(request)
    form: dict[str, Any] = {
        "name": _first(raw, "name"),
        "task_ids": raw.get("task_ids", []),
        "env_ids": raw.get("env_ids", []),
        "repeats": _first(raw, "repeats", "1").strip(),
        "signal_config": _first(raw, "signal_config"),
    }
    if not form["repeats"].isdigit():
        return await _index(request, owner, form, ["repeats: must be a whole number"])
    try:
        created = await call(
            service(request).experiments.create_experiment,
            owner,
            form["name"],
            form["task_ids"],
            form["env_ids"],
            int(form["repeats"]),
            form["signal_config"] if form["signal_config"].strip() else None,
        )
    except DomainError as error:
        return await _index(request, owner, form, problems_of(error))
    return RedirectResponse(f"/experiments/{created.id}", status_code=303)


async def _experiment_page(
    request: Request,
    owner: str,
    exp_id: str,
    config_text: str | None = None,
    errors: list[str] | None = None,
) -> Response:
    views = service(request).views
    experiment = await call(views.experiment, owner, exp_id)
    iterations = await call(views.iterations, owner, exp_id)
    tasks, environments = await _catalogue(request, owner)
    if config_text is None:
        config_text = experiment.signal_config.text if experiment.signal_config else ""
    context = {
        "experiment": experiment,
        "iterations": list(reversed(iterations.items)),
        "task_names": _names(tasks),
        "env_names": _names(environments),
        "config_text": config_text,
        "errors": errors or [],
        "saved": request.query_params.get("saved") == "1",
    }
    return render(request, "experiment.html", context)


@signed_in()
async def experiment(request: Request, owner: str) -> Response:
    return await _experiment_page(request, owner, request.path_params["exp_id"])


@signed_in()
async def update_config(request: Request, owner: str) -> Response:
    exp_id = request.path_params["exp_id"]
    text = _first(await form_data(request), "signal_config")
    changes = {"signal_config": text if text.strip() else None}
    try:
        await call(service(request).experiments.update_experiment, owner, exp_id, changes)
    except DomainError as error:
        return await _experiment_page(request, owner, exp_id, text, problems_of(error))
    return RedirectResponse(f"/experiments/{exp_id}?saved=1", status_code=303)


@signed_in()
async def trigger(request: Request, owner: str) -> Response:
    exp_id = request.path_params["exp_id"]
    try:
        status = await call(service(request).experiments.trigger, owner, exp_id)
    except DomainError as error:
        return await _experiment_page(request, owner, exp_id, None, problems_of(error))
    start_runs(request, exp_id, status.iteration)
    return RedirectResponse(f"/experiments/{exp_id}/iterations/{status.iteration}", 303)


@signed_in()
async def history(request: Request, owner: str) -> Response:
    exp_id = request.path_params["exp_id"]
    views = service(request).views
    experiment = await call(views.experiment, owner, exp_id)
    cursor = request.query_params.get("cursor")
    events = await call(views.history, owner, exp_id, LOOKUP_LIMIT, cursor)
    context = {"experiment": experiment, "events": events, "paged": bool(cursor)}
    return render(request, "history.html", context)


# -- iterations -------------------------------------------------------------------------------


def _current_config(experiment: ExperimentView, config_hash: str | None) -> SignalConfig | None:
    """The experiment's signal config, when it is still the one an iteration froze."""
    config = experiment.signal_config
    if not config_hash or config is None or config.hash != config_hash:
        return None
    try:
        return load_signal_config(config.text).config
    except SignalConfigSyntaxError:
        return None


def _aggregate_specs(experiment: ExperimentView, config_hash: str | None) -> dict[str, Any]:
    """Labels, functions and units of the iteration's aggregates, when its config is still
    current."""
    config = _current_config(experiment, config_hash)
    if config is None:
        return {}
    units = signal_units(config)
    return {
        a.id: {"label": a.label, "fn": a.fn, "unit": aggregate_unit(a, units)}
        for a in config.aggregates
    }


def _signal_units(experiment: ExperimentView, config_hash: str | None) -> dict[str, str]:
    config = _current_config(experiment, config_hash)
    return signal_units(config) if config is not None else {}


async def _aggregate_intervals(
    request: Request, owner: str, exp_id: str, number: int, results: Results
) -> dict[str, dict[str, Any]]:
    """Each aggregate's groups by environment (with their `ci`): the results answer carries
    only the values. Not read when there are no aggregates."""
    if not any(e.get("aggregates") for e in results.summary["environments"]):
        return {}
    # The page asks for results at the default confidence, so these are at it too.
    aggregates = await call(service(request).views.aggregates, owner, exp_id, number)
    return {a["id"]: a.get("by_environment") or {} for a in aggregates}


def _aggregate_charts(
    results: Results, specs: dict[str, Any], by_environment: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    environments = results.summary["environments"]
    ids: list[str] = []
    for environment in environments:
        ids.extend(key for key in environment.get("aggregates", {}) if key not in ids)
    shown = []
    for aggregate_id in ids:
        spec = specs.get(aggregate_id, {})
        label = spec.get("label") or aggregate_id
        values = [(e["name"], e.get("aggregates", {}).get(aggregate_id)) for e in environments]
        groups = by_environment.get(aggregate_id, {})
        intervals = [groups.get(e["environment_id"], {}).get("ci") for e in environments]
        shown.append(
            {
                "id": aggregate_id,
                "label": label,
                "fn": spec.get("fn"),
                "charts": charts.aggregate_chart(
                    values, label, spec.get("fn"), intervals, spec.get("unit")
                ),
                "values": values,
                "unit": spec.get("unit"),
            }
        )
    return shown


def _baseline_id(environments: list[dict[str, Any]]) -> str | None:
    """The environment the others' comparisons name as their baseline (none when alone)."""
    for environment in environments:
        comparison = environment.get("comparison")
        if comparison:
            baseline: str | None = comparison.get("baseline")
            return baseline
    return None


def _comparable(iterations: list[IterationStatus], number: int) -> list[int]:
    return [
        item.iteration
        for item in iterations
        if item.iteration != number and item.status != "running"
    ]


@signed_in()
async def iteration(request: Request, owner: str) -> Response:
    exp_id = request.path_params["exp_id"]
    views = service(request).views
    experiment = await call(views.experiment, owner, exp_id)
    status = await call(views.iteration_status, owner, exp_id, iteration_number(request))
    number = status.iteration
    tasks, environments = await _catalogue(request, owner)
    task_names, env_names = _names(tasks), _names(environments)
    context: dict[str, Any] = {
        "experiment": experiment,
        "status": status,
        "statuses": RUN_STATES,
        "results": None,
        "task_names": task_names,
        "env_names": env_names,
    }
    compare_raw = request.query_params.get("compare", "")
    if status.status != "running":
        compare_with = int(compare_raw) if compare_raw.isdigit() else None
        try:
            results = await call(views.results, owner, exp_id, number, compare_with)
        except Conflict as error:
            context["compare_error"] = str(error)
            results = await call(views.results, owner, exp_id, number, None)
        summary = results.summary
        task_names.update({t["task_id"]: t["name"] for t in summary["tasks"]})
        env_names.update({e["environment_id"]: e["name"] for e in summary["environments"]})
        iterations = await call(views.iterations, owner, exp_id)
        context.update(
            results=results,
            compare_with=compare_with,
            comparable=_comparable(iterations.items, number),
            environment_chart=charts.bars(
                [(e["name"], e["score"]) for e in summary["environments"]],
                "Score by environment",
                percent=True,
                maximum=1.0,
                intervals=[e.get("score_ci") for e in summary["environments"]],
            ),
            baseline_id=_baseline_id(summary["environments"]),
            aggregates=_aggregate_charts(
                results,
                await call(_aggregate_specs, experiment, results.config_hash),
                await _aggregate_intervals(request, owner, exp_id, number, results),
            ),
        )
    run_filter = request.query_params.get("status") or None
    if run_filter not in RUN_STATES:
        run_filter = None
    cursor = request.query_params.get("cursor")
    context["runs"] = await call(
        views.runs, owner, exp_id, number, run_filter, RUNS_PER_PAGE, cursor
    )
    context["run_filter"] = run_filter
    context["paged"] = bool(cursor)
    return render(request, "iteration.html", context)


@signed_in(fragment=True)
async def progress(request: Request, owner: str) -> Response:
    views = service(request).views
    exp_id = request.path_params["exp_id"]
    status = await call(views.iteration_status, owner, exp_id, iteration_number(request))
    return JSONResponse(document(status))


# -- runs -------------------------------------------------------------------------------------


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b if isinstance(b, dict) else {"type": "text", "text": str(b)} for b in content]
    return []


@signed_in()
async def run(request: Request, owner: str) -> Response:
    run_id = request.path_params["run_id"]
    found = await call(service(request).views.run, owner, run_id)
    views = service(request).views
    experiment = await call(views.experiment, owner, found.experiment_id)
    iteration_status = await call(
        views.iteration_status, owner, found.experiment_id, found.iteration
    )
    tasks, environments = await _catalogue(request, owner)
    transcript: dict[str, Any] | None = None
    unavailable = None
    live = False
    try:
        transcript = await call(service(request).transcripts.transcript, owner, run_id)
        shown = list(enumerate(transcript.get("messages", [])))
    except Conflict as error:
        # No transcript yet (or ever, for a cancelled run): the messages recorded live.
        log = await call(service(request).transcripts.run_logs, owner, run_id)
        shown = [(m["index"], m) for m in log.messages]
        live = log.status in ("queued", "running")
        unavailable = None if live or shown else str(error)
    messages = [
        {"index": i, "role": m.get("role", "?"), "blocks": _blocks(m.get("content"))}
        for i, m in shown
    ]
    cited: dict[int, list[str]] = {}
    for signal_id, signal in found.signals.items():
        for evidence in signal.get("evidence") or []:
            if isinstance(evidence.get("event"), int):
                cited.setdefault(evidence["event"], []).append(signal_id)
    context = {
        "run": found,
        "experiment": experiment,
        "task_name": _names(tasks).get(found.task_id, found.task_id),
        "env_name": _names(environments).get(found.environment_id, found.environment_id),
        "messages": messages,
        "final_answer": (transcript or {}).get("final_answer"),
        "unavailable": unavailable,
        "live": live,
        "recorded_live": transcript is None and bool(messages),
        "cited": cited,
        "units": await call(_signal_units, experiment, iteration_status.config_hash),
    }
    return render(request, "run.html", context)


# -- live validation --------------------------------------------------------------------------


@signed_in(fragment=True)
async def validate(request: Request, owner: str) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    text = body.get("signal_config") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return JSONResponse(
            {"error": {"code": "bad_request", "message": 'send {"signal_config": text}'}}, 400
        )
    try:
        report = await call(load_signal_config, text)
    except SignalConfigSyntaxError as error:
        document = {"valid": False, "errors": [{"loc": "", "message": str(error)}]}
        return JSONResponse({**document, "warnings": [], "config_hash": None})
    return JSONResponse(report.to_json())


def web_routes() -> list[BaseRoute]:
    """The dashboard's routes, to mount beside the REST API (none appear in the OpenAPI)."""
    pages: list[tuple[str, Endpoint, str]] = [
        ("/", index, "GET"),
        ("/login", login_page, "GET"),
        ("/login", login, "POST"),
        ("/logout", logout, "POST"),
        ("/experiments", create_experiment, "POST"),
        ("/experiments/{exp_id}", experiment, "GET"),
        ("/experiments/{exp_id}/config", update_config, "POST"),
        ("/experiments/{exp_id}/trigger", trigger, "POST"),
        ("/experiments/{exp_id}/history", history, "GET"),
        ("/experiments/{exp_id}/iterations/{n}", iteration, "GET"),
        ("/experiments/{exp_id}/iterations/{n}/progress", progress, "GET"),
        ("/runs/{run_id}", run, "GET"),
        ("/ui/validate", validate, "POST"),
    ]
    return [
        *(Route(path, fn, methods=[method], include_in_schema=False) for path, fn, method in pages),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
