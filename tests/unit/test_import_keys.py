"""The import key language (`domain.log_keys`), the import plan (`domain.imports`) and the
Iteration's Imported event: each source read from where a transcript was found, regexes,
literal keys, located errors; keys resolved by id or exact name, unknown and ambiguous ones
named; runs in a trigger's order; each run's transcript and source recorded once."""

from __future__ import annotations

import re

import pytest

from domain.errors import Conflict, InvalidInput
from domain.imports import LogKeys, plan_import, resolve_keys
from domain.iterations import Iteration, plan_runs
from domain.log_keys import LogPlace, parse_key

PLACE = LogPlace(
    "runs/sonnet/refund__retry.json",
    "17",
    "claude-sonnet-4-6",
    {"model": "other", "scores": {"match": "C", "epoch": 2}, "tags": ["a"]},
)


@pytest.mark.parametrize(
    ("expression", "key"),
    [
        ("file", "refund__retry.json"),
        ("file-stem", "refund__retry"),
        ("path", "runs/sonnet/refund__retry.json"),
        ("dir", "sonnet"),
        ("sample", "17"),
        ("model", "claude-sonnet-4-6"),
        ("metadata.model", "other"),
        ("metadata.scores.match", "C"),
        ("metadata.scores.epoch", "2"),
        ("=baseline", "baseline"),
        ("=a~b", "a~b"),  # a literal is taken as it is
        ("file-stem~^(.+)__", "refund"),
        ("file-stem~__(.+)$", "retry"),
        ("path~[a-z]+", "runs"),  # no group: the whole match
    ],
)
def test_each_expression_reads_its_source(expression: str, key: str) -> None:
    assert parse_key(expression, "--task-key").key(PLACE, "--task-key") == key


def test_the_model_falls_back_to_the_metadata() -> None:
    place = LogPlace("a.json", None, None, {"model": "gpt-5"})
    assert parse_key("model", "--env-key").key(place, "--env-key") == "gpt-5"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("stem", "expected file, file-stem"),
        ("metadata.", "expected file, file-stem"),
        ("metadata..x", "expected file, file-stem"),
        ("=", "needs a text"),
        ("file~(", "not a regular expression"),
        ("file~", "needs a pattern"),
    ],
)
def test_a_bad_expression_is_refused_at_its_option(expression: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as refused:
        parse_key(expression, "--task-key")
    assert [loc for loc, _ in refused.value.problems] == ["--task-key"]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("metadata.absent", "finds no value"),
        ("metadata.tags", "finds no value"),  # a list names nothing
        ("file-stem~^x(.+)", "does not match 'refund__retry'"),
    ],
)
def test_a_transcript_without_the_key_is_named(expression: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as refused:
        parse_key(expression, "--env-key").key(PLACE, "--env-key")
    assert "runs/sonnet/refund__retry.json (sample 17)" in str(refused.value)
    place = LogPlace("one.json", None, None, {})
    with pytest.raises(
        InvalidInput, match=re.escape("one.json: --env-key 'sample' finds no value")
    ):
        parse_key("sample", "--env-key").key(place, "--env-key")


TASKS = {"task_a": "refund", "task_b": "webhook"}
ENVIRONMENTS = {"env_1": "sonnet", "env_2": "gpt"}


def test_keys_resolve_by_id_or_exact_name() -> None:
    logs = [LogKeys("refund", "env_2"), LogKeys("task_b", "sonnet")]
    assert resolve_keys(logs, TASKS, ENVIRONMENTS, "exp_1") == [
        ("task_a", "env_2"),
        ("task_b", "env_1"),
    ]


def test_every_unknown_key_is_named_once_with_the_known_names() -> None:
    logs = [LogKeys("Refund", "sonnet"), LogKeys("Refund", "claude"), LogKeys("deploy", "gpt")]
    with pytest.raises(InvalidInput) as refused:
        resolve_keys(logs, TASKS, ENVIRONMENTS, "exp_1")
    message = str(refused.value)
    assert "unknown task keys 'Refund', 'deploy'" in message
    assert "attached: refund, webhook" in message
    assert "unknown environment keys 'claude'" in message
    assert [loc for loc, _ in refused.value.problems] == [
        "runs[0].task",
        "runs[1].task",
        "runs[1].environment",
        "runs[2].task",
    ]


def test_an_ambiguous_name_asks_for_the_id() -> None:
    with pytest.raises(
        InvalidInput, match=r"names 2 tasks of exp_1 \(task_a, task_c\): give the id"
    ):
        resolve_keys(
            [LogKeys("refund", "gpt")], {**TASKS, "task_c": "refund"}, ENVIRONMENTS, "exp_1"
        )


def test_runs_are_planned_in_a_triggers_order_with_repeats_in_the_logs_order() -> None:
    resolved = [
        ("task_b", "env_2"),
        ("task_a", "env_2"),
        ("task_b", "env_2"),
        ("task_a", "env_1"),
    ]
    planned = plan_import(resolved, ["task_a", "task_b"], ["env_1", "env_2"], list("wxyz"))
    assert [(run.task_id, run.environment_id, run.repeat, i) for run, i in planned] == [
        ("task_a", "env_1", 0, 3),
        ("task_a", "env_2", 0, 1),
        ("task_b", "env_2", 0, 0),
        ("task_b", "env_2", 1, 2),
    ]
    assert [run.run_id for run, _ in planned] == list("wxyz")


def frozen_iteration(number: int = 1) -> Iteration:
    runs = plan_runs(["task_a"], ["env_1"], 2, ["r1", "r2"])
    return Iteration(
        experiment_id="exp_1",
        product_id="prd_1",
        number=number,
        signal_config=None,
        tasks={},
        environments={},
        runs=runs,
    )


def test_an_imported_iteration_names_each_runs_transcript_and_source() -> None:
    iteration = frozen_iteration()
    iteration.import_logs(
        "inspect-log", ["ref1", "ref2"], [["a.eval", "s_epoch_1"], ["a.eval", None]]
    )
    assert iteration.imported_from == "inspect-log"
    assert [iteration.imported_transcript(r) for r in ("r1", "r2")] == ["ref1", "ref2"]
    events = iteration.collect_events()
    assert [type(e).__name__ for e in events] == ["ConfigFrozen", "Imported"]
    assert events[1].sources == [["r1", "a.eval", "s_epoch_1"], ["r2", "a.eval", None]]  # type: ignore[attr-defined]
    # Replayed from its events, it is the same iteration.
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Iteration) and replayed.imported_transcript("r2") == "ref2"

    with pytest.raises(Conflict, match="already takes its runs from elsewhere"):
        iteration.import_logs("tpc", ["x", "y"], [["f", None], ["g", None]])
    source = frozen_iteration(2)
    source.complete()
    with pytest.raises(Conflict, match="is imported from inspect-log logs"):
        iteration.derive_from(source)
    with pytest.raises(ValueError, match="one transcript and one source per run"):
        frozen_iteration().import_logs("tpc", ["x"], [["f", None]])
