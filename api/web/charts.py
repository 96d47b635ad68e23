"""Small inline SVG charts for the dashboard: pure functions from numbers to markup.

No chart library and no network: each chart is a few rectangles and labels in a `viewBox`, so
it scales with the page (1280 px or a phone) and needs no JavaScript. Every label is escaped,
written whole (above its bar, wrapped when long) and repeated in its row's tooltip.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from api import readable

WIDTH = 420
ROW = 26
BAR = 18
LINE = 16  # a label's line: names are written whole above their bar, wrapped if long
LABEL_CHARS = 56  # about what fits on one line of WIDTH at the chart's font size
VALUE_WIDTH = 60
CHAR_WIDTH = 8  # a little more than one character of a value at the chart's font size
CI_VALUE_WIDTH = 110
PALETTE = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b")
# Units a number can carry (from the stat a signal reads, docs/signals.md): how to write it.
UNITS = {"seconds": readable.duration, "usd": readable.cost}


def fmt(value: Any, percent: bool = False, unit: str | None = None) -> str:
    """A number as people read it: 0.25 → '25%' for rates, 1234.5678 → '1,234.57', 0.207 s →
    '207 ms', 0 USD → '$0'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if unit in UNITS:
            return UNITS[unit](value)
        if percent:
            return f"{value * 100:.0f}%"
        if isinstance(value, int) or float(value).is_integer():
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.2f}"
    return str(value)


def _svg(height: int, body: str, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def label_lines(label: str, limit: int = LABEL_CHARS) -> list[str]:
    """A label whole, on as many lines as it needs: names that differ only at the end
    ("… + docs v1", "… + docs v2") must stay apart."""
    return textwrap.wrap(label, limit, break_long_words=True) or [""]


def _label(lines: Sequence[str], y: float) -> str:
    return "".join(
        f'<text x="0" y="{y + LINE * (i + 1) - 4:.0f}" class="label">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )


def interval_text(ci: Any, percent: bool = False, unit: str | None = None) -> str:
    """An interval as people read it: [0.48, 0.75] → '48–75%' (rates) or '1.2–3.4'; '' if none."""
    if not _is_interval(ci):
        return ""
    low, high = fmt(ci[0], percent, unit), fmt(ci[1], percent, unit)
    if percent:
        low = low.removesuffix("%")
    return f"{low}–{high}"


def _is_interval(ci: Any) -> bool:
    return (
        isinstance(ci, Sequence)
        and not isinstance(ci, str)
        and len(ci) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in ci)
    )


def _with_interval(value: Any, ci: Any, percent: bool, unit: str | None = None) -> str:
    text = fmt(value, percent, unit)
    return f"{text} [{interval_text(ci, percent, unit)}]" if _is_interval(ci) else text


def bars(
    items: Sequence[tuple[str, float | None]],
    title: str,
    percent: bool = False,
    maximum: float | None = None,
    intervals: Sequence[Any] | None = None,
    unit: str | None = None,
) -> Markup:
    """Horizontal bars, one per label (scores or rates per environment, numbers per group),
    each under its whole label.

    `intervals`, parallel to `items`, gives each value's `[low, high]` (or None): drawn as an
    error bar over the bar, and written beside the value and in the row's tooltip. Intervals
    of negative values are not drawn (the bars show magnitudes), only written.
    """
    cis = list(intervals or [])
    cis += [None] * (len(items) - len(cis))
    numbers = [abs(v) for _, v in items if isinstance(v, int | float)]
    numbers += [float(ci[1]) for ci in cis if _is_interval(ci) and ci[1] > 0]
    top = maximum if maximum is not None else max(numbers, default=0.0)
    texts = [_with_interval(v, ci, percent, unit) for (_, v), ci in zip(items, cis, strict=True)]
    # Room for the longest value beside its bar ("12,453 [2,811–22,095]"), at least the old
    # fixed widths.
    value_width = max(
        CI_VALUE_WIDTH if any(_is_interval(ci) for ci in cis) else VALUE_WIDTH,
        min(WIDTH // 2, 12 + CHAR_WIDTH * max((len(t) for t in texts), default=0)),
    )
    span = WIDTH - value_width
    parts = []
    y = 0.0
    for i, ((label, value), ci) in enumerate(zip(items, cis, strict=True)):
        lines = label_lines(label)
        bar_y = y + LINE * len(lines)
        length = span * abs(value) / top if isinstance(value, int | float) and top else 0.0
        text = texts[i]
        parts.append(
            f'<g class="row"><title>{escape(label)}: {escape(text)}</title>{_label(lines, y)}'
            f'<rect x="0" y="{bar_y:.0f}" width="{span}" height="{BAR}" class="track"/>'
            f'<rect x="0" y="{bar_y:.0f}" width="{length:.1f}" height="{BAR}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        if _is_interval(ci) and top and isinstance(value, int | float) and value >= 0:
            parts.append(_error_bar(ci, top, span, bar_y))
        parts.append(
            f'<text x="{WIDTH - value_width + 6}" y="{bar_y + 13:.0f}" class="value">'
            f"{escape(text)}</text></g>"
        )
        y = bar_y + ROW
    return _svg(max(round(y), ROW), "".join(parts), title)


def _error_bar(ci: Sequence[float], top: float, span: float, y: float) -> str:
    """A thin line from the interval's low to its high end, with end caps, mid-bar."""

    def x(value: float) -> float:
        return span * max(0.0, min(float(value), top)) / top

    low, high, middle = x(ci[0]), x(ci[1]), y + BAR / 2
    cap_top, cap_bottom = y + 3, y + BAR - 3
    return (
        '<g class="error-bar" stroke="#111827" stroke-width="1.5">'
        f'<line x1="{low:.1f}" y1="{middle:.1f}" x2="{high:.1f}" y2="{middle:.1f}"/>'
        f'<line x1="{low:.1f}" y1="{cap_top:.1f}" x2="{low:.1f}" y2="{cap_bottom:.1f}"/>'
        f'<line x1="{high:.1f}" y1="{cap_top:.1f}" x2="{high:.1f}" y2="{cap_bottom:.1f}"/>'
        "</g>"
    )


def histogram(bins: Sequence[Mapping[str, Any]], title: str, unit: str | None = None) -> Markup:
    """Vertical bars for a numeric distribution's `[{lo, hi, count}]` bins, edges underneath."""
    height, axis = 140, 22
    top = max((int(b.get("count") or 0) for b in bins), default=0) or 1
    width = WIDTH / max(len(bins), 1)
    # At most 3 edge labels besides the last: durations ("2 min 29 s") are long.
    step = max(1, -(-len(bins) // 3))
    parts = []
    for i, item in enumerate(bins):
        count = int(item.get("count") or 0)
        bar = (height - axis - 16) * count / top
        x = i * width
        low, high = fmt(item.get("lo"), unit=unit), fmt(item.get("hi"), unit=unit)
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - axis - bar:.1f}" width="{width - 4:.1f}" '
            f'height="{bar:.1f}" fill="{PALETTE[0]}"><title>{escape(low)}–{escape(high)}: '
            f"{escape(readable.plural(count, 'run'))}</title></rect>"
            f'<text x="{x + width / 2:.1f}" y="{height - axis - bar - 3:.1f}" class="value" '
            f'text-anchor="middle">{count}</text>'
        )
        if i % step == 0:
            parts.append(
                f'<text x="{x + 2:.1f}" y="{height - 6}" class="label">{escape(low)}</text>'
            )
    if bins:
        parts.append(
            f'<text x="{WIDTH - 2}" y="{height - 6}" class="label" text-anchor="end">'
            f"{escape(fmt(bins[-1].get('hi'), unit=unit))}</text>"
        )
    return _svg(height, "".join(parts), title)


def stacked(rows: Sequence[tuple[str, Mapping[str, Any]]], title: str) -> Markup:
    """One horizontal bar per label (written whole above it) split into categories, with a
    legend underneath."""
    categories: list[str] = []
    for _, counts in rows:
        for key in counts:
            if key not in categories:
                categories.append(key)
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    span = WIDTH - VALUE_WIDTH
    parts = []
    y = 0.0
    for label, counts in rows:
        lines = label_lines(label)
        bar_y = y + LINE * len(lines)
        total = sum(float(v) for v in counts.values() if isinstance(v, int | float))
        shares = ", ".join(
            f"{category} {fmt(counts[category])}"
            for category in categories
            if isinstance(counts.get(category), int | float) and counts[category]
        )
        parts.append(f'<g class="row"><title>{escape(label)}: {escape(shares)}</title>')
        parts.append(_label(lines, y))
        x = 0.0
        for category in categories:
            value = counts.get(category)
            if not isinstance(value, int | float) or not total or not value:
                continue
            length = span * float(value) / total
            parts.append(
                f'<rect x="{x:.1f}" y="{bar_y:.0f}" width="{length:.1f}" height="{BAR}" '
                f'fill="{colour[category]}"><title>{escape(label)}: {escape(category)} '
                f"{escape(fmt(value))}</title></rect>"
            )
            x += length
        parts.append(
            f'<text x="{WIDTH - VALUE_WIDTH + 6}" y="{bar_y + 13:.0f}" class="value">'
            f"{escape(fmt(total))}</text></g>"
        )
        y = bar_y + ROW
    legend_y = round(y) + 6
    x = 0.0
    line = 0
    for category in categories:
        step = 22 + 7.5 * len(category)
        if x + step > WIDTH and x:
            x, line = 0.0, line + 1
        top = legend_y + line * 20
        parts.append(
            f'<rect x="{x:.1f}" y="{top}" width="12" height="12" fill="{colour[category]}"/>'
            f'<text x="{x + 16:.1f}" y="{top + 11}" class="label">{escape(category)}</text>'
        )
        x += step
    return _svg(legend_y + (line + 1) * 20, "".join(parts), title)


def heat_colour(score: float | None) -> str:
    """A background for a score cell: red (0) through amber to green (1); grey when unknown."""
    if score is None:
        return "#e5e7eb"
    hue = max(0.0, min(1.0, float(score))) * 120
    return f"hsl({hue:.0f}, 70%, 78%)"


def aggregate_chart(
    values: Sequence[tuple[str, Any]],
    title: str,
    fn: str | None,
    intervals: Sequence[Any] | None = None,
    unit: str | None = None,
) -> list[Markup]:
    """The chart that suits one aggregate, from its value per environment.

    Numbers become bars (rates on a 0–100% scale) with their `intervals` (parallel to `values`)
    as error bars; category counts and category shares become stacked bars; a numeric
    distribution becomes one histogram per environment. `unit` (seconds, usd) is the values'
    unit, when the aggregate keeps its signal's.
    """
    present = [(label, value) for label, value in values if value is not None]
    if not present:
        return []
    if all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in present):
        percent = fn == "rate"
        top = 1.0 if percent else None
        return [bars(values, title, percent=percent, maximum=top, intervals=intervals, unit=unit)]
    if all(isinstance(v, Mapping) and "histogram" in v for _, v in present):
        return [
            Markup('<p class="chart-caption">{}</p>').format(
                f"{label}: {readable.plural(value.get('count'), 'run')}, median "
                f"{fmt(value.get('p50'), unit=unit)}, p90 {fmt(value.get('p90'), unit=unit)}"
            )
            + histogram(value.get("histogram") or [], f"{title} — {label}", unit)
            for label, value in present
        ]
    if all(isinstance(v, Mapping) for _, v in present):
        numeric = all(
            isinstance(x, int | float) or x is None for _, v in present for x in v.values()
        )
        if numeric and fn == "avg_by_category":
            return [
                Markup('<p class="chart-caption">{}</p>').format(label)
                + bars(
                    [(k, v) for k, v in value.items() if v is not None],
                    f"{title} — {label}",
                    unit=unit,
                )
                for label, value in present
            ]
        if numeric:
            return [stacked(present, title)]
    return []
