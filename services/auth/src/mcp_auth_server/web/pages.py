"""Rendering HTML pages with the headers every page of an authorization server needs."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.responses import HTMLResponse

# No framing (clickjacking the consent button), no scripts, no referrer leaking codes or state.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(templates: Environment, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def error_page(
    templates: Environment, status_code: int, title: str, message: str, continue_url: str | None = None
) -> HTMLResponse:
    return render(
        templates, "error.html", status_code, title=title, message=message, continue_url=continue_url
    )
