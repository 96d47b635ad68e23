"""The dashboard's Jinja2 environment (autoescaped) and the filters its templates use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

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
    """+0.25 → '+25%' (percent) or '+0.25'; None → '–'."""
    if not isinstance(value, int | float):
        return "–"
    text = fmt(abs(value), percent)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


TEMPLATES.env.filters["delta"] = signed_delta
TEMPLATES.env.filters["significance"] = delta_markup
TEMPLATES.env.filters["ci"] = interval_text


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
