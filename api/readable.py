"""Numbers as people read them, shared by the CLI and the dashboard: durations, costs, counts.

`duration(0.207141)` is "207 ms", `cost(0)` is "$0" (known to be free) while `cost(None)` is
"—" (unknown), and `plural(1, "run")` is "1 run".
"""

from __future__ import annotations

from typing import Any

UNKNOWN = "—"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def duration(seconds: Any) -> str:
    """207 ms, 1.4 s, 58 s, 2 min 3 s, 1 h 5 min; "—" when unknown."""
    value = _number(seconds)
    if value is None:
        return UNKNOWN
    sign, value = ("−" if value < 0 else ""), abs(value)
    if value == 0:
        text = "0 s"
    elif value < 0.001:
        text = "< 1 ms"
    elif value < 1:
        text = f"{value * 1000:.0f} ms"
    elif value < 10:
        text = f"{value:.1f} s"
    elif value < 59.5:
        text = f"{value:.0f} s"
    elif value < 3600:
        minutes, rest = divmod(round(value), 60)
        text = f"{minutes} min {rest} s" if rest else f"{minutes} min"
    else:
        hours, rest = divmod(round(value / 60), 60)
        text = f"{hours} h {rest} min" if rest else f"{hours} h"
    return sign + text


def cost(usd: Any) -> str:
    """$0 (free), $0.0326, $12.40, $1,204; "—" when unknown. Four decimals below a dollar, as
    one run of a model often costs a fraction of a cent."""
    value = _number(usd)
    if value is None:
        return UNKNOWN
    sign, value = ("−" if value < 0 else ""), abs(value)
    if value == 0:
        return "$0"
    if value < 0.0001:
        return f"{sign}< $0.0001"
    if value < 1:
        return f"{sign}${value:.4f}"
    if value < 1000:
        return f"{sign}${value:,.2f}"
    return f"{sign}${value:,.0f}"


def plural(count: Any, word: str, many: str | None = None) -> str:
    """1 run, 2 runs, 1,204 runs (`many` for irregular plurals)."""
    number = _number(count)
    shown = f"{int(number):,}" if number is not None and number.is_integer() else str(count)
    return f"{shown} {word if number == 1 else (many or word + 's')}"
