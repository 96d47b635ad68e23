"""Small inline SVG charts for the dashboard: pure functions from numbers to markup.

No chart library and no network: each chart is a few rectangles and labels in a `viewBox`, so
it scales with the page (1280 px or a phone) and needs no JavaScript. Every label is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH = 420
ROW = 26
LABEL_WIDTH = 130
VALUE_WIDTH = 60
CI_VALUE_WIDTH = 110
PALETTE = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b")


def fmt(value: Any, percent: bool = False) -> str:
    """A number as people read it: 0.25 → '25%' for rates, 1234.5678 → '1,234.57'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
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


def _clip(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def interval_text(ci: Any, percent: bool = False) -> str:
    """An interval as people read it: [0.48, 0.75] → '48–75%' (rates) or '1.2–3.4'; '' if none."""
    if not _is_interval(ci):
        return ""
    low, high = fmt(ci[0], percent), fmt(ci[1], percent)
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


def _with_interval(value: Any, ci: Any, percent: bool) -> str:
    text = fmt(value, percent)
    return f"{text} [{interval_text(ci, percent)}]" if _is_interval(ci) else text


def bars(
    items: Sequence[tuple[str, float | None]],
    title: str,
    percent: bool = False,
    maximum: float | None = None,
    intervals: Sequence[Any] | None = None,
) -> Markup:
    """Horizontal bars, one per label (scores or rates per environment, numbers per group).

    `intervals`, parallel to `items`, gives each value's `[low, high]` (or None): drawn as an
    error bar over the bar, and written beside the value and in the bar's tooltip. Intervals
    of negative values are not drawn (the bars show magnitudes), only written.
    """
    cis = list(intervals or [])
    cis += [None] * (len(items) - len(cis))
    numbers = [abs(v) for _, v in items if isinstance(v, int | float)]
    numbers += [float(ci[1]) for ci in cis if _is_interval(ci) and ci[1] > 0]
    top = maximum if maximum is not None else max(numbers, default=0.0)
    # The interval needs room beside the value ("62% [48–75%]").
    value_width = CI_VALUE_WIDTH if any(_is_interval(ci) for ci in cis) else VALUE_WIDTH
    span = WIDTH - LABEL_WIDTH - value_width
    parts = []
    for i, ((label, value), ci) in enumerate(zip(items, cis, strict=True)):
        y = i * ROW
        length = span * abs(value) / top if isinstance(value, int | float) and top else 0.0
        colour = PALETTE[i % len(PALETTE)]
        text = _with_interval(value, ci, percent)
        parts.append(
            f'<text x="0" y="{y + 17}" class="label">{escape(_clip(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{span}" height="{ROW - 8}" '
            'class="track"/>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{length:.1f}" height="{ROW - 8}" '
            f'fill="{colour}"><title>{escape(label)}: {escape(text)}</title></rect>'
        )
        if _is_interval(ci) and top and isinstance(value, int | float) and value >= 0:
            parts.append(_error_bar(ci, top, span, y))
        parts.append(
            f'<text x="{WIDTH - value_width + 6}" y="{y + 17}" class="value">{escape(text)}</text>'
        )
    return _svg(max(ROW * len(items), ROW), "".join(parts), title)


def _error_bar(ci: Sequence[float], top: float, span: float, y: int) -> str:
    """A thin line from the interval's low to its high end, with end caps, mid-bar."""

    def x(value: float) -> float:
        return LABEL_WIDTH + span * max(0.0, min(float(value), top)) / top

    low, high, middle = x(ci[0]), x(ci[1]), y + ROW / 2
    cap_top, cap_bottom = y + 7, y + ROW - 7
    return (
        '<g class="error-bar" stroke="#111827" stroke-width="1.5">'
        f'<line x1="{low:.1f}" y1="{middle:.1f}" x2="{high:.1f}" y2="{middle:.1f}"/>'
        f'<line x1="{low:.1f}" y1="{cap_top}" x2="{low:.1f}" y2="{cap_bottom}"/>'
        f'<line x1="{high:.1f}" y1="{cap_top}" x2="{high:.1f}" y2="{cap_bottom}"/>'
        "</g>"
    )


def histogram(bins: Sequence[Mapping[str, Any]], title: str) -> Markup:
    """Vertical bars for a numeric distribution's `[{lo, hi, count}]` bins, edges underneath."""
    height, axis = 140, 22
    top = max((int(b.get("count") or 0) for b in bins), default=0) or 1
    width = WIDTH / max(len(bins), 1)
    step = max(1, -(-len(bins) // 5))  # at most ~5 edge labels, so they never overlap
    parts = []
    for i, item in enumerate(bins):
        count = int(item.get("count") or 0)
        bar = (height - axis - 16) * count / top
        x = i * width
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - axis - bar:.1f}" width="{width - 4:.1f}" '
            f'height="{bar:.1f}" fill="{PALETTE[0]}"><title>{escape(fmt(item.get("lo")))}–'
            f"{escape(fmt(item.get('hi')))}: {count}</title></rect>"
            f'<text x="{x + width / 2:.1f}" y="{height - axis - bar - 3:.1f}" class="value" '
            f'text-anchor="middle">{count}</text>'
        )
        if i % step == 0:
            parts.append(
                f'<text x="{x + 2:.1f}" y="{height - 6}" class="label">'
                f"{escape(fmt(item.get('lo')))}</text>"
            )
    if bins:
        parts.append(
            f'<text x="{WIDTH - 2}" y="{height - 6}" class="label" text-anchor="end">'
            f"{escape(fmt(bins[-1].get('hi')))}</text>"
        )
    return _svg(height, "".join(parts), title)


def stacked(rows: Sequence[tuple[str, Mapping[str, Any]]], title: str) -> Markup:
    """One horizontal bar per label split into categories, with a legend underneath."""
    categories: list[str] = []
    for _, counts in rows:
        for key in counts:
            if key not in categories:
                categories.append(key)
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = []
    for i, (label, counts) in enumerate(rows):
        y = i * ROW
        total = sum(float(v) for v in counts.values() if isinstance(v, int | float))
        parts.append(f'<text x="0" y="{y + 17}" class="label">{escape(_clip(label))}</text>')
        x = float(LABEL_WIDTH)
        for category in categories:
            value = counts.get(category)
            if not isinstance(value, int | float) or not total or not value:
                continue
            length = span * float(value) / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{length:.1f}" height="{ROW - 8}" '
                f'fill="{colour[category]}"><title>{escape(category)}: '
                f"{escape(fmt(value))}</title></rect>"
            )
            x += length
        parts.append(
            f'<text x="{WIDTH - VALUE_WIDTH + 6}" y="{y + 17}" class="value">'
            f"{escape(fmt(total))}</text>"
        )
    legend_y = len(rows) * ROW + 6
    x = 0.0
    line = 0
    for category in categories:
        text = _clip(category, 20)
        step = 22 + 7.5 * len(text)
        if x + step > WIDTH:
            x, line = 0.0, line + 1
        y = legend_y + line * 20
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{colour[category]}"/>'
            f'<text x="{x + 16:.1f}" y="{y + 11}" class="label">{escape(text)}</text>'
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
) -> list[Markup]:
    """The chart that suits one aggregate, from its value per environment.

    Numbers become bars (rates on a 0–100% scale) with their `intervals` (parallel to `values`)
    as error bars; category counts and category shares become stacked bars; a numeric
    distribution becomes one histogram per environment.
    """
    present = [(label, value) for label, value in values if value is not None]
    if not present:
        return []
    if all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in present):
        percent = fn == "rate"
        top = 1.0 if percent else None
        return [bars(values, title, percent=percent, maximum=top, intervals=intervals)]
    if all(isinstance(v, Mapping) and "histogram" in v for _, v in present):
        return [
            Markup('<p class="chart-caption">{}</p>').format(
                f"{label}: n={fmt(value.get('count'))}, p50={fmt(value.get('p50'))}, "
                f"p90={fmt(value.get('p90'))}"
            )
            + histogram(value.get("histogram") or [], f"{title} — {label}")
            for label, value in present
        ]
    if all(isinstance(v, Mapping) for _, v in present):
        numeric = all(
            isinstance(x, int | float) or x is None for _, v in present for x in v.values()
        )
        if numeric and fn == "avg_by_category":
            return [
                Markup('<p class="chart-caption">{}</p>').format(label)
                + bars(list(value.items()), f"{title} — {label}")
                for label, value in present
            ]
        if numeric:
            return [stacked(present, title)]
    return []
