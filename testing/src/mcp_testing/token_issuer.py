"""What the enterprise IdP and the workload issuer stand-ins share: signing keys that rotate, a JWKS,
OpenID discovery, the request log and failure switches.

Key rotation works as real issuers do it: `rotate()` publishes a new key and signs with it from then
on while the old one stays published (tokens it signed still verify); `retire(kid)` stops publishing a
key, after which tokens it signed must be refused. Handlers run on the server's single event-loop
thread, so state updates need no lock.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_testing.oidc_state import KeyAlgorithm, SigningKey, new_signing_key
from mcp_testing.standin_http import FailureMode, LoggedRequest

RouteGroup = Literal["discovery", "jwks", "token"]


@dataclass
class IssuerState:
    """Keys (the last one signs), failures and the request log of one token issuer."""

    signing_alg: KeyAlgorithm = "ES256"
    keys: list[SigningKey] = field(default_factory=list)
    # Kept after `retire`, so a test can still forge a token with a key the issuer no longer publishes.
    retired: list[SigningKey] = field(default_factory=list)
    failures: dict[RouteGroup, FailureMode] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    requests: list[LoggedRequest] = field(default_factory=list)
    jwks_max_age: int = 300
    issuer_override: str | None = None  # serve metadata naming another issuer (a misconfiguration)
    base_url: str = ""  # set by the server once it listens

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys.append(new_signing_key(self.signing_alg))

    @property
    def issuer(self) -> str:
        return self.issuer_override or self.base_url

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self, alg: KeyAlgorithm | None = None) -> SigningKey:
        """Publish a new key and sign with it from now on; the previous keys stay published."""
        key = new_signing_key(alg or self.signing_alg)
        self.keys.append(key)
        return key

    def retire(self, kid: str) -> SigningKey:
        """Stop publishing the key `kid` (its tokens must be refused from now on)."""
        key = next(key for key in self.keys if key.kid == kid)
        self.keys.remove(key)
        self.retired.append(key)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def fail(self, group: RouteGroup, mode: FailureMode) -> None:
        self.failures[group] = mode

    def recover(self) -> None:
        self.failures.clear()

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [entry for entry in self.requests if entry.path == path]

    def sign(
        self,
        claims: dict[str, Any],
        *,
        typ: str | None = "JWT",
        key: SigningKey | None = None,
        lifetime: int = 300,
    ) -> str:
        """A JWT by this issuer: `iss`, `iat`, `exp`, `jti` set unless `claims` sets them (None drops one)."""
        moment = int(time.time())
        full: dict[str, Any] = {
            "iss": self.issuer,
            "iat": moment,
            "exp": moment + lifetime,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        full = {name: value for name, value in full.items() if value is not None}
        headers = {"typ": typ} if typ is not None else {}
        return (key or self.signing_key).sign(full, headers)


def discovery_document(state: IssuerState, extra: dict[str, Any], jwks_path: str = "/jwks") -> Response:
    return JSONResponse({"issuer": state.issuer, "jwks_uri": f"{state.base_url}{jwks_path}", **extra})


def jwks_response(state: IssuerState) -> Response:
    return JSONResponse(state.jwks(), headers={"Cache-Control": f"max-age={state.jwks_max_age}"})


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def state_from(request: Request, attribute: str) -> IssuerState:
    state = getattr(request.app.state, attribute)
    assert isinstance(state, IssuerState)
    return state
