"""A difference as the dashboard shows it: the delta, its interval and its verdict.

A `{"delta", "ci", "p_value", "p_adjusted", "verdict"}` entry (docs/results.md) becomes one
marked-up span: significant deltas keep their colour and gain ▲/▼, `not significant` ones are
greyed with `·`, `too few runs` greyed with a short note; the (Holm-adjusted) p-value is the
tooltip. A delta without a verdict (no test applies) looks as before: coloured by its sign.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from api.web.charts import fmt

SIGNIFICANT = "significant"
NOT_SIGNIFICANT = "not significant"
TOO_FEW_RUNS = "too few runs"


def signed(value: Any, percent: bool = False) -> str:
    """+0.25 → '+25%' (percent) or '+0.25'; None → '—'."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    text = fmt(abs(value), percent)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def signed_interval(ci: Any, percent: bool = False) -> str:
    """[-0.1, 0.2] → '−10 to +20%' (percent) or '−0.1 to +0.2'; '' when there is none."""
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return ""
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in ci):
        return ""
    low, high = signed(ci[0], percent), signed(ci[1], percent)
    if percent:
        low = low.removesuffix("%")
    return f"{low} to {high}"


def p_text(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def tooltip(entry: Mapping[str, Any]) -> str:
    verdict = entry.get("verdict")
    if verdict == TOO_FEW_RUNS:
        return "too few runs for a test"
    if verdict is None:
        return "no test applies"
    return f"{verdict}: p = {p_text(entry.get('p_adjusted'))} (Holm-adjusted; " + (
        f"unadjusted {p_text(entry.get('p_value'))})"
    )


def delta_markup(entry: Mapping[str, Any] | None, percent: bool = False) -> Markup:
    """One comparison entry as a `<span class="delta …">`; '—' when there is no entry."""
    if not entry:
        return Markup('<span class="delta">—</span>')
    delta = entry.get("delta")
    verdict = entry.get("verdict")
    interval = signed_interval(entry.get("ci"), percent)
    text = signed(delta, percent) + (f" [{interval}]" if interval else "")
    direction = ""
    if isinstance(delta, int | float) and delta > 0:
        direction = "delta-up"
    elif isinstance(delta, int | float) and delta < 0:
        direction = "delta-down"
    if verdict == SIGNIFICANT:
        arrow = "▲ " if direction == "delta-up" else "▼ " if direction == "delta-down" else ""
        classes, text = f"delta significant {direction}", arrow + text
    elif verdict == NOT_SIGNIFICANT:
        classes, text = "delta delta-ns", "· " + text
    elif verdict == TOO_FEW_RUNS:
        return Markup(
            '<span class="delta delta-ns" title="{}">{} <span class="delta-note">(too few runs)'
            "</span></span>"
        ).format(tooltip(entry), text)
    else:
        classes = f"delta {direction}".strip()
    return Markup('<span class="{}" title="{}">{}</span>').format(classes, tooltip(entry), text)
