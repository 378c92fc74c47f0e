"""When the auth service cannot vouch for a token right now: fail closed with 503, never a misleading 401.

A 401 would tell the client its token is bad and send it back through authorization, although the
token may be perfectly good: the keys or the introspection answer are just out of reach for now.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

RETRY_AFTER = "5"
UNAVAILABLE = "the authorization server cannot confirm the token right now; retry shortly"


class VerificationUnavailable(Exception):
    """The token could not be checked (auth service unreachable or misconfigured); the message says why.

    The message is safe to log: it names URLs and causes, never a token.
    """


def unavailable_response() -> JSONResponse:
    """503 for a token that could not be checked: RFC 6749 §5.2's error shape, retry soon, never cached."""
    return JSONResponse(
        {"error": "temporarily_unavailable", "error_description": UNAVAILABLE},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"},
    )
