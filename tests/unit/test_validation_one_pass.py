"""Validation reports every problem of a document in one pass: a missing or misspelt field
does not hide the problems of the rest of its item (docs/signals.md promises all at once)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.signals.validation import load_signal_config, validate_signal_config

# A signal without `name` and with five more problems that only the rules between fields see.
NAMELESS = """
version: 1
signals:
  - id: Bad_Id
    type: category
    scope: message
    extract: {method: stats, stat: cost}
aggregates:
  - {id: n, signal_id: Bad_Id, fn: count, bins: 3, label: N}
"""
SIX = [
    ("signals[0].name", "required"),
    ("signals[0].id", "must be kebab-case like 'total-tokens' (got 'Bad_Id')"),
    ("signals[0].category_enums", "required when type is 'category'"),
    ("signals[0].target_role", "required for message-scoped signals"),
    ("signals[0].fold", "required for message-scoped signals"),
    ("signals[0].scope", "stats signals are run-scoped only"),
]


def problems(text: str) -> list[tuple[str, str]]:
    return [(p.loc, p.message) for p in load_signal_config(text).errors]


def test_a_missing_name_does_not_hide_the_other_problems() -> None:
    found = problems(NAMELESS)
    assert found[: len(SIX)] == SIX
    assert ("aggregates[0].bins", "only allowed with fn 'distribution'") in found


def test_fixing_the_name_reveals_nothing_new() -> None:
    fixed = problems(NAMELESS.replace("  - id: Bad_Id\n", "  - id: Bad_Id\n    name: B\n"))
    assert set(fixed) == set(problems(NAMELESS)) - {("signals[0].name", "required")}


def test_a_misspelt_field_does_not_hide_the_other_problems() -> None:
    found = problems(NAMELESS.replace("  - id: Bad_Id\n", "  - id: Bad_Id\n    nmae: B\n"))
    assert ("signals[0].nmae", "unknown field") in found
    assert set(SIX) <= set(found)


def test_a_missing_aggregate_label_and_signal_are_reported_with_the_rest() -> None:
    found = problems(
        "version: 1\nsignals:\n  - {id: t, name: T, type: number, "
        "extract: {method: stats, stat: cost}}\n"
        "aggregates:\n  - {id: Agg, fn: rate, bins: 2}\n"
    )
    assert found == [
        ("aggregates[0].signal_id", "required"),
        ("aggregates[0].label", "required"),
        ("aggregates[0].id", "must be kebab-case like 'avg-tokens' (got 'Agg')"),
        ("aggregates[0].bins", "only allowed with fn 'distribution'"),
    ]


@pytest.mark.parametrize("empty", ["", "# nothing yet\n", "---\n"])
def test_an_empty_file_names_only_the_required_keys(empty: str) -> None:
    assert problems(empty) == [
        ("version", "required (write 'version: 1')"),
        ("signals", "required: a list of signals"),
    ]


@pytest.mark.parametrize("document", [[], "text", 3])
def test_a_document_that_is_not_a_mapping_says_what_one_holds(document: Any) -> None:
    report = validate_signal_config(document)
    assert [p.message for p in report.errors] == [
        "a signal config is a mapping with 'version' and 'signals' (and 'aggregates')"
    ]
