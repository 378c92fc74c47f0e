"""Reading the form bodies of the token, revocation and introspection endpoints (RFC 6749 §3.2).

The body's size is bounded before it gets here, while it streams (web/body_limits.py)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from mcp_auth_server.oauth.errors import invalid_request

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class OAuthForm:
    params: dict[str, str]  # every parameter but `resource`, each sent at most once
    resources: list[str]  # RFC 8707: `resource` may repeat


async def read_form(request: Request) -> OAuthForm:
    """The request's form, refusing other media types and repeated single-valued parameters."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise invalid_request(f"the body must be {FORM}")
    body = await request.body()
    try:
        # Plain urlencoded parsing: several times cheaper than the multipart-capable form parser.
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise invalid_request("the body must be UTF-8") from None
    params: dict[str, str] = {}
    resources: list[str] = []
    repeated: set[str] = set()
    for key, value in pairs:
        if key == "resource":
            resources.append(value)
        elif key in params:
            repeated.add(key)
        else:
            params[key] = value
    if repeated:
        raise invalid_request(f"{', '.join(sorted(repeated))} must appear once (RFC 6749 §3.2)")
    return OAuthForm(params, resources)
