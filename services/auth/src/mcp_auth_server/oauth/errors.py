"""OAuth errors as values: `error`, `error_description`, the HTTP status and headers to send them with.

Framework-free (RFC 6749 §5.2 is a JSON body; endpoints/responses.py writes it), so grants and the
credential policy can raise them without knowing HTTP.
"""

from __future__ import annotations

# RFC 6749 §5.1 / §5.2: token responses and errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An error the client is told about in the protocol's own words.

    `persist`: what the request changed before failing must still be committed — a family revoked
    for reuse, a user's grants ended because they lost access upstream. Everything else a failing
    request did is rolled back.
    """

    def __init__(
        self,
        error: str,
        description: str,
        status_code: int = 400,
        headers: dict[str, str] | None = None,
        *,
        persist: bool = False,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = headers or {}
        self.persist = persist

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str) -> OAuthError:
    # RFC 6749 §5.2: 401 for failed client authentication, naming the scheme to use.
    return OAuthError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="mcp-auth"'})


def invalid_grant(description: str, *, persist: bool = False) -> OAuthError:
    return OAuthError("invalid_grant", description, persist=persist)


def invalid_target(description: str) -> OAuthError:
    # RFC 8707 §2: the requested resource is invalid, unknown or malformed.
    return OAuthError("invalid_target", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def unauthorized_client(description: str, status_code: int = 400) -> OAuthError:
    return OAuthError("unauthorized_client", description, status_code)


def temporarily_unavailable(description: str, retry_after: int = 5, *, persist: bool = False) -> OAuthError:
    return OAuthError(
        "temporarily_unavailable", description, 503, {"Retry-After": str(retry_after)}, persist=persist
    )
