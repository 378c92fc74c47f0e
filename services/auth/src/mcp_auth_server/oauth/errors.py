"""OAuth errors and their wire form: `{"error", "error_description"}` JSON (RFC 6749 §5.2)."""

from __future__ import annotations

from starlette.responses import JSONResponse

# RFC 6749 §5.1 / §5.2: token responses and errors must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(
        self, error: str, description: str, status_code: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status_code,
            headers={**NO_STORE, **self.headers},
        )


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str) -> OAuthError:
    # RFC 6749 §5.2: 401 for failed client authentication, naming the scheme to use.
    return OAuthError("invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="mcp-auth"'})


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_target(description: str) -> OAuthError:
    # RFC 8707 §2: the requested resource is invalid, unknown or malformed.
    return OAuthError("invalid_target", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)
