"""Recorded logs imported as an iteration (docs/results.md, "Imported iterations"): which of
an experiment's tasks and environments each log names, and the run list they make.

A log names its task and its environment by key, each an id or the exact name of one attached
to the experiment. The runs are planned in the order a trigger plans them (tasks, then
environments, in the experiment's order, then repeats in the order the logs were given), so
an import of the transcripts a replay iteration runs gives the same results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidInput
from domain.iterations import PlannedRun
from domain.transcript_formats.files import AUTO, LOG_FORMATS

# What a log's key may name, and where the experiment lists those.
KINDS = {"task": "tasks", "environment": "environments"}
HOW_TO_ATTACH = {"task": "experiment task add", "environment": "experiment env add"}


# What an imported iteration may say its transcripts were read from ("auto" is not a format).
IMPORT_FORMATS: tuple[str, ...] = tuple(name for name in LOG_FORMATS if name != AUTO)


def check_import_format(format: str) -> None:
    """InvalidInput, located at `format`, unless it names a log format."""
    if format not in IMPORT_FORMATS:
        problem = f"must be one of {', '.join(IMPORT_FORMATS)}"
        raise InvalidInput(f"format {format[:40]!r} {problem}", (("format", problem),))


@dataclass(frozen=True, slots=True)
class LogKeys:
    """The task and environment keys one log was given (ids or exact names)."""

    task: str
    environment: str


@dataclass(frozen=True, slots=True)
class LogToImport:
    """One recorded transcript to import: its keys, the tpc transcript v1 object (decoded
    JSON, validated on import) and where it was read (a file, a sample within it)."""

    keys: LogKeys
    transcript: Any
    file: str | None = None
    sample: str | None = None


def resolve_keys(
    logs: Sequence[LogKeys],
    tasks: Mapping[str, str],
    environments: Mapping[str, str],
    experiment: str,
) -> list[tuple[str, str]]:
    """Each log's (task id, environment id), from the experiment's attached tasks and
    environments (id -> name). An unknown or ambiguous key is a 422 naming every such key
    (located at `runs[i].task` / `runs[i].environment`) and the names it could have been."""
    problems: list[tuple[str, str]] = []
    unknown: dict[str, list[str]] = {"task": [], "environment": []}
    resolved: list[tuple[str, str]] = []
    lookups = {"task": _lookup(tasks), "environment": _lookup(environments)}
    known = {"task": tasks, "environment": environments}
    for index, log in enumerate(logs):
        ids = []
        for kind, key in (("task", log.task), ("environment", log.environment)):
            found = lookups[kind].get(key, [])
            if len(found) == 1:
                ids.append(found[0])
                continue
            if found:
                message = (
                    f"{key!r} names {len(found)} {KINDS[kind]} of {experiment} "
                    f"({', '.join(sorted(found))}): give the id"
                )
            else:
                message = f"{key!r} is not a {kind} of {experiment}"
                if key not in unknown[kind]:
                    unknown[kind].append(key)
            problems.append((f"runs[{index}].{kind}", message))
            ids.append("")
        resolved.append((ids[0], ids[1]))
    if problems:
        raise InvalidInput(_summary(unknown, known, experiment, problems), tuple(problems))
    return resolved


def _lookup(items: Mapping[str, str]) -> dict[str, list[str]]:
    """key -> the ids it names: an item's id, or its exact name (names need not be unique)."""
    found: dict[str, list[str]] = {}
    for item_id, name in items.items():
        found.setdefault(name, []).append(item_id)
    for item_id in items:
        found[item_id] = [item_id]
    return found


def _summary(
    unknown: Mapping[str, list[str]],
    known: Mapping[str, Mapping[str, str]],
    experiment: str,
    problems: Sequence[tuple[str, str]],
) -> str:
    parts = []
    for kind, keys in unknown.items():
        if not keys:
            continue
        shown = ", ".join(repr(k) for k in keys[:10]) + (
            f" (and {len(keys) - 10} more)" if len(keys) > 10 else ""
        )
        names = ", ".join(sorted(known[kind].values())) or "none"
        parts.append(
            f"unknown {kind} keys {shown}: each must be the id or exact name of a {kind} "
            f"attached to {experiment} (attached: {names}; attach one with "
            f"`tpc sim {HOW_TO_ATTACH[kind]}`)"
        )
    if not parts:  # only ambiguous names
        parts = [f"{loc}: {message}" for loc, message in problems[:3]]
    return "; ".join(parts)


def plan_import(
    resolved: Sequence[tuple[str, str]],
    task_order: Sequence[str],
    env_order: Sequence[str],
    run_ids: Sequence[str],
) -> list[tuple[PlannedRun, int]]:
    """One run per log, each (planned run, the index of its log): repeats count the logs of
    each task × environment in the order given; runs are in a trigger's order."""
    if len(run_ids) != len(resolved):
        raise ValueError(f"need {len(resolved)} run ids, got {len(run_ids)}")
    task_rank = {task: rank for rank, task in enumerate(task_order)}
    env_rank = {env: rank for rank, env in enumerate(env_order)}
    repeats: dict[tuple[str, str], int] = {}
    keyed = []
    for index, pair in enumerate(resolved):
        repeat = repeats.get(pair, 0)
        repeats[pair] = repeat + 1
        keyed.append(((task_rank[pair[0]], env_rank[pair[1]], repeat), index, repeat))
    keyed.sort()
    return [
        (PlannedRun(run_id, *resolved[index], repeat), index)
        for run_id, (_, index, repeat) in zip(run_ids, keyed, strict=True)
    ]
