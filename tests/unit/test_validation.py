"""Signal config validation (docs/spec.md §4.1–4.3): every rule, one by one, with its located
message."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.signals import validation
from domain.signals.validation import (
    InvalidSignalConfig,
    SignalConfigSyntaxError,
    content_hash,
    load_signal_config,
    parse_yaml,
    validate_signal_config,
)

SEED = Path(__file__).parents[2] / "examples" / "seed-signals.yaml"


def seed() -> dict[str, Any]:
    data = yaml.safe_load(SEED.read_text())
    assert isinstance(data, dict)
    return data


def errors_of(data: Any) -> list[str]:
    return [str(problem) for problem in validate_signal_config(data).errors]


def test_the_seed_example_is_valid() -> None:
    report = load_signal_config(SEED.read_text())
    assert report.valid, report.errors
    assert report.warnings == ()
    assert report.config is not None
    assert [s.id for s in report.config.signals] == [
        "fabricated-endpoint",
        "total-tokens",
        "agent-gave-up",
    ]
    # The seed writes the llm signal's source inside `extract`.
    assert report.config.signal("agent-gave-up").effective_source == "finalAnswer"
    assert report.config.signal("agent-gave-up").judge_model == "claude-haiku-4-5"


def test_the_shipped_example_config_is_valid() -> None:
    report = load_signal_config((SEED.parent / "signals.yaml").read_text())
    assert report.valid, report.errors


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]

    return mutate


def _add_signal(signal: dict[str, Any]) -> Mutation:
    return lambda data: data["signals"].append(signal)


def _add_aggregate(aggregate: dict[str, Any]) -> Mutation:
    return lambda data: data["aggregates"].append(aggregate)


STATUS = {
    "id": "outcome",
    "name": "Outcome",
    "type": "category",
    "extract": {"method": "stats", "stat": "status"},
}
NEEDLE = {
    "id": "errors",
    "name": "Errors",
    "type": "number",
    "source": "toolResults",
    "extract": {"method": "pattern", "needle": "error"},
}

CASES: list[tuple[str, Mutation, str]] = [
    # document
    ("version missing", _drop("version"), "version: required (write 'version: 1')"),
    ("version wrong", _set("version", 2), "version: must be 1 (got 2)"),
    ("unknown top-level key", _set("extra", 1), "extra: unknown field"),
    ("signals not a list", _set("signals", {}), "signals: must be a list (got dict)"),
    ("signals empty", _set("signals", []), "signals: must list at least one signal"),
    ("signal not a mapping", _set("signals.0", "x"), "signals[0]: must be a mapping (got str)"),
    # identity
    (
        "id not kebab-case",
        _set("signals.0.id", "Fab_Endpoint"),
        "signals[0].id: must be kebab-case like 'total-tokens' (got 'Fab_Endpoint')",
    ),
    ("id missing", _drop("signals.0.id"), "signals[0].id: required"),
    (
        "duplicate signal id",
        _set("signals.1.id", "fabricated-endpoint"),
        "signals[1].id: duplicate id 'fabricated-endpoint' (also signals[0])",
    ),
    ("empty name", _set("signals.0.name", "  "), "signals[0].name: must not be empty"),
    ("unknown signal key", _set("signals.0.colour", "red"), "signals[0].colour: unknown field"),
    (
        "unknown type",
        _set("signals.0.type", "bool"),
        "signals[0].type: must be 'boolean', 'number' or 'category' (got 'bool')",
    ),
    # category enums
    (
        "category without enums",
        _add_signal(
            {
                **NEEDLE,
                "id": "c",
                "type": "category",
                "extract": {"method": "llm", "prompt": "Which?"},
                "source": "any",
            }
        ),
        "signals[3].category_enums: required when type is 'category'",
    ),
    (
        "enums on a boolean",
        _set("signals.0.category_enums", ["a"]),
        "signals[0].category_enums: only allowed when type is 'category'",
    ),
    (
        "empty enums",
        _add_signal(
            {
                "id": "c",
                "name": "C",
                "type": "category",
                "category_enums": [],
                "source": "any",
                "extract": {"method": "llm", "prompt": "Which?"},
            }
        ),
        "signals[3].category_enums: must list at least one category",
    ),
    (
        "duplicate enums",
        _add_signal(
            {
                "id": "c",
                "name": "C",
                "type": "category",
                "category_enums": ["a", "a"],
                "source": "any",
                "extract": {"method": "llm", "prompt": "Which?"},
            }
        ),
        "signals[3].category_enums[1]: duplicate category 'a'",
    ),
    (
        "enum a stat cannot take",
        _add_signal({**STATUS, "category_enums": ["passed", "won"]}),
        "signals[3].category_enums[1]: status is never 'won' "
        "(it is one of passed, failed, errored, timed_out, cancelled)",
    ),
    # scope
    (
        "message scope without fold",
        _drop("signals.0.fold"),
        "signals[0].fold: required for message-scoped signals",
    ),
    (
        "message scope without role",
        _drop("signals.0.target_role"),
        "signals[0].target_role: required for message-scoped signals",
    ),
    (
        "role on run scope",
        _set("signals.1.target_role", "assistant"),
        "signals[1].target_role: only allowed for message-scoped signals",
    ),
    (
        "fold on run scope",
        _set("signals.1.fold", {"fn": "sum"}),
        "signals[1].fold: only allowed for message-scoped signals",
    ),
    (
        "unknown fold",
        _set("signals.0.fold.fn", "median"),
        "signals[0].fold.fn: must be 'sum', 'count', 'average', 'min', 'max' or 'histogram'",
    ),
    (
        "unknown role",
        _set("signals.0.target_role", "system"),
        "signals[0].target_role: must be 'assistant', 'user' or 'tool' (got 'system')",
    ),
    (
        "numeric fold of categories",
        _add_signal(
            {
                "id": "c",
                "name": "C",
                "type": "category",
                "category_enums": ["a"],
                "scope": "message",
                "target_role": "assistant",
                "fold": {"fn": "average"},
                "extract": {"method": "llm", "prompt": "Which?"},
            }
        ),
        "signals[3].fold.fn: 'average' needs numbers; "
        "fold a category signal with count or histogram",
    ),
    # source
    (
        "run-scoped pattern with null source",
        _add_signal({**NEEDLE, "source": None}),
        "signals[3].source: required for run-scoped pattern signals",
    ),
    (
        "run-scoped pattern missing source",
        _add_signal({k: v for k, v in NEEDLE.items() if k != "source"}),
        "signals[3].source: required for run-scoped pattern signals",
    ),
    (
        "run-scoped llm without source",
        _drop("signals.2.extract.source"),
        "signals[2].source: required for run-scoped llm signals",
    ),
    (
        "source on stats",
        _set("signals.1.source", "any"),
        "signals[1].source: not allowed for stats signals (they read run stats)",
    ),
    (
        "finalAnswer in message scope",
        _set("signals.0.source", "finalAnswer"),
        "signals[0].source: finalAnswer is not a message-scoped source",
    ),
    (
        "two different sources",
        _set("signals.2.source", "assistantText"),
        "signals[2].extract.source: conflicts with signals[2].source ('assistantText'); "
        "name the source once",
    ),
    (
        "unknown source",
        _set("signals.2.extract.source", "everything"),
        "signals[2].extract.source: must be 'assistantText'",
    ),
    # pattern
    (
        "patterns and needle",
        _set("signals.0.extract.needle", "x"),
        "signals[0].extract: pattern signals need exactly one of 'patterns' (boolean) or 'needle' "
        "(number)",
    ),
    (
        "neither patterns nor needle",
        _drop("signals.0.extract.patterns"),
        "signals[0].extract: pattern signals need exactly one of",
    ),
    (
        "patterns on a number",
        _set("signals.0.type", "number"),
        "signals[0].type: must be 'boolean' with 'patterns' (any pattern found)",
    ),
    (
        "needle on a boolean",
        _add_signal({**NEEDLE, "type": "boolean"}),
        "signals[3].type: must be 'number' with 'needle' (a count of matches)",
    ),
    (
        "empty patterns",
        _set("signals.0.extract.patterns", []),
        "signals[0].extract.patterns: must list at least one pattern",
    ),
    (
        "pattern without regex",
        _drop("signals.0.extract.patterns.0.regex"),
        "signals[0].extract.patterns[0].regex: required",
    ),
    (
        "regex does not compile",
        _set("signals.0.extract.patterns.0.regex", "api(v2"),
        "signals[0].extract.patterns[0].regex: does not compile: missing ): api(v2",
    ),
    (
        "backreference",
        _set("signals.0.extract.patterns.0.regex", r"(a)\1"),
        "signals[0].extract.patterns[0].regex: does not compile: invalid escape sequence: \\1 "
        "(RE2 has no lookaround or backreferences",
    ),
    (
        "lookahead",
        _add_signal({**NEEDLE, "extract": {"method": "pattern", "needle": "a(?!b)"}}),
        "signals[3].extract.needle: does not compile: invalid perl operator: (?! (RE2 has no "
        "lookaround or backreferences",
    ),
    (
        "stat on a pattern",
        _set("signals.0.extract.stat", "cost"),
        "signals[0].extract.stat: not allowed for method 'pattern'",
    ),
    (
        "ignore_case not a boolean",
        _set("signals.0.extract.ignore_case", "yes"),
        "signals[0].extract.ignore_case: must be a valid boolean (got 'yes')",
    ),
    # stats
    (
        "stats without stat",
        _drop("signals.1.extract.stat"),
        "signals[1].extract.stat: required for method 'stats'",
    ),
    (
        "unknown stat",
        _set("signals.1.extract.stat", "latency"),
        "signals[1].extract.stat: must be 'duration'",
    ),
    (
        "numeric stat as category",
        _set("signals.1.type", "category"),
        "signals[1].type: must be 'number' for stat 'token_total'",
    ),
    (
        "status stat as number",
        _add_signal({**STATUS, "type": "number"}),
        "signals[3].type: must be 'category' for stat 'status'",
    ),
    (
        "stats in message scope",
        _add_signal({**STATUS, "scope": "message", "target_role": "tool", "fold": {"fn": "count"}}),
        "signals[3].scope: stats signals are run-scoped only",
    ),
    (
        "patterns on stats",
        _set("signals.1.extract.needle", "x"),
        "signals[1].extract.needle: not allowed for method 'stats'",
    ),
    # llm
    (
        "llm without prompt",
        _drop("signals.2.extract.prompt"),
        "signals[2].extract.prompt: required for method 'llm'",
    ),
    (
        "llm with empty prompt",
        _set("signals.2.extract.prompt", " "),
        "signals[2].extract.prompt: must not be empty",
    ),
    (
        "llm number",
        _set("signals.2.type", "number"),
        "signals[2].type: llm signals are 'boolean' or 'category'",
    ),
    (
        "unknown method",
        _set("signals.2.extract.method", "magic"),
        "signals[2].extract.method: must be 'pattern', 'stats' or 'llm' (got 'magic')",
    ),
    # aggregates
    (
        "unknown signal",
        _set("aggregates.0.signal_id", "fabricated-endpoints"),
        "aggregates[0].signal_id: unknown signal 'fabricated-endpoints'",
    ),
    (
        "aggregate id not kebab-case",
        _set("aggregates.0.id", "Rate"),
        "aggregates[0].id: must be kebab-case like 'avg-tokens' (got 'Rate')",
    ),
    (
        "duplicate aggregate id",
        _set("aggregates.1.id", "fabrication-rate"),
        "aggregates[1].id: duplicate id 'fabrication-rate' (also aggregates[0])",
    ),
    ("missing label", _drop("aggregates.0.label"), "aggregates[0].label: required"),
    ("empty label", _set("aggregates.0.label", ""), "aggregates[0].label: must not be empty"),
    ("unknown fn", _set("aggregates.0.fn", "p95"), "aggregates[0].fn: must be 'count'"),
    (
        "count_where without where",
        _set("aggregates.0.fn", "count_where"),
        "aggregates[0].where: required for fn 'count_where'",
    ),
    (
        "where with two operators",
        _add_aggregate(
            {
                "id": "x",
                "signal_id": "total-tokens",
                "fn": "count_where",
                "label": "X",
                "where": {"gt": 1, "lt": 5},
            }
        ),
        "aggregates[3].where: needs exactly one operator of eq, ne, gt, gte, lt, lte, in (got 2)",
    ),
    (
        "where with no operator",
        _add_aggregate(
            {"id": "x", "signal_id": "total-tokens", "fn": "count_where", "label": "X", "where": {}}
        ),
        "aggregates[3].where: needs exactly one operator of eq, ne, gt, gte, lt, lte, in (got 0)",
    ),
    (
        "where with an unknown operator",
        _add_aggregate(
            {
                "id": "x",
                "signal_id": "total-tokens",
                "fn": "count_where",
                "label": "X",
                "where": {"between": [1, 2]},
            }
        ),
        "aggregates[3].where.between: unknown field",
    ),
    (
        "where in not a list",
        _add_aggregate(
            {
                "id": "x",
                "signal_id": "total-tokens",
                "fn": "count_where",
                "label": "X",
                "where": {"in": 3},
            }
        ),
        "aggregates[3].where.in: must be a valid list (got 3)",
    ),
    (
        "where gt on text",
        _add_aggregate(
            {
                "id": "x",
                "signal_id": "total-tokens",
                "fn": "count_where",
                "label": "X",
                "where": {"gt": "many"},
            }
        ),
        "aggregates[3].where.gt",
    ),
    (
        "where a category that does not exist",
        lambda d: (
            d["signals"].append(STATUS),
            d["aggregates"].append(
                {
                    "id": "x",
                    "signal_id": "outcome",
                    "fn": "count_where",
                    "label": "X",
                    "where": {"eq": "won"},
                }
            ),
        ),
        "aggregates[3].where.eq: 'won' is not a category of signal 'outcome' "
        "(passed, failed, errored, timed_out, cancelled)",
    ),
    (
        "where on another fn",
        _set("aggregates.0.where", {"eq": True}),
        "aggregates[0].where: only allowed with fn 'count_where'",
    ),
    (
        "avg_by_category without by",
        _set("aggregates.1.fn", "avg_by_category"),
        "aggregates[1].by: required for fn 'avg_by_category': the id of a category signal",
    ),
    (
        "avg_by_category by unknown",
        lambda d: d["aggregates"][1].update(fn="avg_by_category", by="nope"),
        "aggregates[1].by: unknown signal 'nope'",
    ),
    (
        "avg_by_category by a non-category",
        lambda d: d["aggregates"][1].update(fn="avg_by_category", by="agent-gave-up"),
        "aggregates[1].by: signal 'agent-gave-up' is not a run-level category signal",
    ),
    (
        "by on another fn",
        _set("aggregates.1.by", "total-tokens"),
        "aggregates[1].by: only allowed with fn 'avg_by_category'",
    ),
    (
        "bins on another fn",
        _set("aggregates.1.bins", 5),
        "aggregates[1].bins: only allowed with fn 'distribution'",
    ),
    (
        "bins out of range",
        lambda d: d["aggregates"][1].update(fn="distribution", bins=0),
        "aggregates[1].bins: must be between 1 and 1000 (got 0)",
    ),
    (
        "bins not a number",
        lambda d: d["aggregates"][1].update(fn="distribution", bins="ten"),
        "aggregates[1].bins: must be a valid integer (got 'ten')",
    ),
    (
        "numeric fn on a category",
        lambda d: (
            d["signals"].append(STATUS),
            d["aggregates"].append({"id": "x", "signal_id": "outcome", "fn": "avg", "label": "X"}),
        ),
        "aggregates[3].fn: 'avg' needs numbers but signal 'outcome' gives categories",
    ),
    (
        "numeric fn on a histogram",
        lambda d: (
            d["signals"][0].update(fold={"fn": "histogram"}),
            d["aggregates"][0].update(fn="median"),
        ),
        "aggregates[0].fn: 'median' needs numbers "
        "but signal 'fabricated-endpoint' gives histograms",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "expected"), [(m, e) for _, m, e in CASES], ids=[name for name, _, _ in CASES]
)
def test_each_rule_fails_with_a_located_message(mutation: Mutation, expected: str) -> None:
    data = seed()
    mutation(data)
    errors = errors_of(data)
    assert any(error.startswith(expected) for error in errors), errors


def test_every_problem_is_reported_at_once() -> None:
    data = seed()
    data["signals"][0].pop("fold")
    data["signals"][1]["source"] = "any"
    data["aggregates"][0]["signal_id"] = "fabricated-endpoints"
    data["aggregates"][2]["fn"] = "p95"
    assert errors_of(data) == [
        "signals[0].fold: required for message-scoped signals",
        "signals[1].source: not allowed for stats signals (they read run stats)",
        "aggregates[0].signal_id: unknown signal 'fabricated-endpoints'",
        "aggregates[2].fn: must be 'count', 'count_where', 'rate', 'sum', 'avg', 'min', 'max', "
        "'median', 'mode', 'count_by_category', 'avg_by_category' or 'distribution' (got 'p95')",
    ]


def test_an_aggregate_of_a_broken_signal_is_not_also_an_unknown_signal() -> None:
    data = seed()
    data["signals"][1]["type"] = "text"
    assert errors_of(data) == [
        "signals[1].type: must be 'boolean', 'number' or 'category' (got 'text')"
    ]


def test_unsupported_judge_model_is_a_warning_not_an_error() -> None:
    data = seed()
    data["signals"][2]["extract"]["model"] = "gpt-5-ultra"
    report = validate_signal_config(data)
    assert report.valid
    assert [str(w) for w in report.warnings] == [
        "signals[2].extract.model: unsupported judge model 'gpt-5-ultra': it will fail at "
        "extraction (supported: claude-haiku-4-5, claude-sonnet-4, claude-sonnet-4-5, "
        "claude-sonnet-4-6, gpt-4o-mini, gpt-4o, gpt-4.1-mini, gpt-4.1, gpt-4.1-nano)"
    ]


def test_status_stats_take_their_categories_by_default() -> None:
    data = seed()
    data["signals"].append(STATUS)
    report = validate_signal_config(data)
    assert report.config is not None
    assert report.config.signal("outcome").categories == (
        "passed",
        "failed",
        "errored",
        "timed_out",
        "cancelled",
    )


def test_not_a_mapping_is_one_error() -> None:
    assert errors_of(["version", 1]) == [
        "a signal config is a mapping with 'version' and 'signals' (and 'aggregates')"
    ]


def test_aggregates_are_optional() -> None:
    data = seed()
    del data["aggregates"]
    assert validate_signal_config(data).valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nsignals: [\n", "not valid YAML: line 3, column 1"),
        ("a: 1\na: 2\n", "not valid YAML: line 2, column 1: duplicate key 'a' on line 2"),
        ("version: 1\n\tsignals: []\n", "not valid YAML: line 2"),
    ],
)
def test_text_that_is_not_yaml_is_a_syntax_error(text: str, expected: str) -> None:
    with pytest.raises(SignalConfigSyntaxError) as raised:
        load_signal_config(text)
    assert str(raised.value).startswith(expected)


def test_a_lone_surrogate_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(SignalConfigSyntaxError, match="lone surrogate"):
        load_signal_config("version: 1\nsignals: ['\ud800']\n")


@pytest.mark.parametrize("path", sorted(SEED.parent.glob("**/*.yaml")), ids=lambda p: p.name)
def test_the_strict_loader_reads_what_yaml_safe_load_reads(path: Path) -> None:
    text = path.read_text()
    assert parse_yaml(text) == yaml.safe_load(text)


def test_configs_are_parsed_by_libyaml() -> None:
    # Every creation and trigger parses its config: PyYAML's pure-Python parser was a fifth
    # of the server's CPU under mixed load (docs/performance.md).
    assert yaml.__with_libyaml__
    assert validation._EventParser is yaml.cyaml.CParser


def test_a_config_read_again_is_not_parsed_again() -> None:
    text = (SEED.parent / "signals.yaml").read_text()
    assert load_signal_config(text) is load_signal_config(text)
    padded = text + "#" * validation.REMEMBERED_CONFIG_CHARS  # too big to be remembered
    report = load_signal_config(padded)
    assert report is not load_signal_config(padded)
    assert report == load_signal_config(text)
    # Aliases could make a short text stand for many objects; invalid configs are not
    # triggered again: neither is remembered.
    label = 'name: "Fabricated API endpoint"'
    aliased = text.replace(label, f"name: &label {label[6:]}\n    description: *label", 1)
    assert load_signal_config(aliased).valid
    invalid = "version: 1\nsignals: []\n"
    for other in (aliased, invalid):
        assert load_signal_config(other) is not load_signal_config(other)


def test_require_valid_raises_with_every_located_problem() -> None:
    data = seed()
    data["signals"][0].pop("fold")
    with pytest.raises(InvalidSignalConfig) as raised:
        validate_signal_config(data).require_valid()
    assert raised.value.problems == (("signals[0].fold", "required for message-scoped signals"),)


def test_content_hash_ignores_formatting_and_comments() -> None:
    text = SEED.read_text()
    reformatted = "# a comment\n" + yaml.safe_dump(yaml.safe_load(text), indent=4)
    assert load_signal_config(text).content_hash == load_signal_config(reformatted).content_hash


def test_content_hash_is_the_specified_digest() -> None:
    data = {"version": 1, "b": "é", "a": [1, 2]}
    # sha256 of '{"a":[1,2],"b":"é","version":1}' in UTF-8
    expected = hashlib.sha256('{"a":[1,2],"b":"é","version":1}'.encode()).hexdigest()
    assert content_hash(data) == "sha256:" + expected


def test_content_hash_changes_with_content() -> None:
    data = seed()
    other = copy.deepcopy(data)
    other["signals"][0]["name"] = "Renamed"
    assert content_hash(data) != content_hash(other)
