"""The dashboard's Jinja2 environment (autoescaped) and the filters its templates use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from api import readable
from api.web.charts import fmt, heat_colour, interval_text
from api.web.significance import delta_markup

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.autoescape = True
TEMPLATES.env.filters["num"] = fmt
TEMPLATES.env.filters["pct"] = lambda value: fmt(value, percent=True)
TEMPLATES.env.filters["heat"] = heat_colour
TEMPLATES.env.filters["pretty"] = lambda value: (
    value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
)
TEMPLATES.env.filters["compact"] = lambda value: (
    value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
)


def signed_delta(value: Any, percent: bool = False) -> str:
    """+0.25 → '+25%' (percent) or '+0.25'; None → '—'."""
    if not isinstance(value, int | float):
        return "—"
    text = fmt(abs(value), percent)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def signal_value(value: Any, unit: str | None = None) -> Markup:
    """A signal's value for the run page: counts by category (a histogram fold, a
    count_by_category) as one row per category with a small bar; numbers in their unit;
    anything else as compact JSON."""
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
    ):
        top = max(abs(float(v)) for v in value.values()) or 1.0
        rows = Markup("").join(
            Markup(
                '<span class="pair"><span class="key">{}</span><span class="track">'
                '<span class="fill" data-width="{:.0f}"></span></span>'
                '<span class="count">{}</span></span>'
            ).format(key, 100 * abs(float(count)) / top, fmt(count, unit=unit))
            for key, count in value.items()
        )
        return Markup('<span class="pairs">{}</span>').format(rows)
    if isinstance(value, int | float) or value is None:
        return Markup("<code>{}</code>").format(fmt(value, unit=unit))
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return Markup("<code>{}</code>").format(", ".join(fmt(v) for v in value))
    if isinstance(value, str):
        return Markup("<code>{}</code>").format(value)
    return Markup("<code>{}</code>").format(json.dumps(value, ensure_ascii=False))


TEMPLATES.env.filters["delta"] = signed_delta
TEMPLATES.env.filters["duration"] = readable.duration
TEMPLATES.env.filters["cost"] = readable.cost
TEMPLATES.env.filters["plural"] = readable.plural
TEMPLATES.env.filters["signal_value"] = signal_value
TEMPLATES.env.filters["significance"] = delta_markup
TEMPLATES.env.filters["ci"] = interval_text


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
