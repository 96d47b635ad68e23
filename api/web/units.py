"""Which numbers of a signal config carry a unit the dashboard writes for people: a signal
that reads the `duration` stat is in seconds, one that reads `cost` in US dollars
(docs/signals.md), and an aggregate that folds such a signal into one of its values (a sum, an
average, a distribution …) keeps the unit; counts and rates do not."""

from __future__ import annotations

from domain.signals.config import Aggregate, SignalConfig

STAT_UNITS = {"duration": "seconds", "cost": "usd"}
KEEPS_UNIT = frozenset({"sum", "avg", "min", "max", "median", "avg_by_category", "distribution"})


def signal_units(config: SignalConfig) -> dict[str, str]:
    """Signal id -> unit, for the signals that have one."""
    units = {}
    for signal in config.signals:
        if signal.extract.method == "stats" and signal.extract.stat in STAT_UNITS:
            units[signal.id] = STAT_UNITS[signal.extract.stat]
    return units


def aggregate_unit(aggregate: Aggregate, units: dict[str, str]) -> str | None:
    return units.get(aggregate.signal_id) if aggregate.fn in KEEPS_UNIT else None
