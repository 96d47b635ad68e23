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


def bars(
    items: Sequence[tuple[str, float | None]],
    title: str,
    percent: bool = False,
    maximum: float | None = None,
) -> Markup:
    """Horizontal bars, one per label (scores or rates per environment, numbers per group)."""
    numbers = [abs(v) for _, v in items if isinstance(v, int | float)]
    top = maximum if maximum is not None else max(numbers, default=0.0)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = []
    for i, (label, value) in enumerate(items):
        y = i * ROW
        length = span * abs(value) / top if isinstance(value, int | float) and top else 0.0
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="0" y="{y + 17}" class="label">{escape(_clip(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{span}" height="{ROW - 8}" '
            'class="track"/>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{length:.1f}" height="{ROW - 8}" '
            f'fill="{colour}"/>'
            f'<text x="{WIDTH - VALUE_WIDTH + 6}" y="{y + 17}" class="value">'
            f"{escape(fmt(value, percent))}</text>"
        )
    return _svg(max(ROW * len(items), ROW), "".join(parts), title)


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


def aggregate_chart(values: Sequence[tuple[str, Any]], title: str, fn: str | None) -> list[Markup]:
    """The chart that suits one aggregate, from its value per environment.

    Numbers become bars (rates on a 0–100% scale); category counts and category shares become
    stacked bars; a numeric distribution becomes one histogram per environment.
    """
    present = [(label, value) for label, value in values if value is not None]
    if not present:
        return []
    if all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in present):
        percent = fn == "rate"
        return [bars(values, title, percent=percent, maximum=1.0 if percent else None)]
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
