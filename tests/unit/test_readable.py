"""Durations, costs and counts as the dashboard and the demo write them."""

from __future__ import annotations

import pytest

from api.readable import cost, duration, plural


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        ("fast", "—"),
        (0, "0 s"),
        (0.0004, "< 1 ms"),
        (0.207141, "207 ms"),
        (1.43, "1.4 s"),
        (58.0, "58 s"),
        (59.7, "1 min"),
        (123.4, "2 min 3 s"),
        (3600, "1 h"),
        (3 * 3600 + 5 * 60 + 20, "3 h 5 min"),
        (-0.5, "−500 ms"),
    ],
)
def test_durations_read_in_the_unit_that_suits_them(seconds: object, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (None, "—"),
        (True, "—"),
        (0, "$0"),
        (0.0, "$0"),
        (0.00004, "< $0.0001"),
        (0.0326, "$0.0326"),
        (0.1125, "$0.1125"),
        (12.4, "$12.40"),
        (1204.2, "$1,204"),
    ],
)
def test_costs_tell_free_from_unknown(usd: object, shown: str) -> None:
    assert cost(usd) == shown


def test_plurals() -> None:
    assert plural(1, "run") == "1 run"
    assert plural(2, "run") == "2 runs"
    assert plural(0, "run") == "0 runs"
    assert plural(1204, "run") == "1,204 runs"
    assert plural(3, "key", "keys") == "3 keys"
    assert plural(2, "repeat") == "2 repeats"
