"""A tiny authorization server for the MCP service's tests: metadata, a JWKS, signed tokens, token exchange.

It stands in for the auth service so these tests need nothing but this package: it signs RFC 9068
access tokens with its own ES256 key, and answers RFC 8693 token exchange for `audience=github` with
the GitHub token a test registered for the user, when this MCP server's client authenticates.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_testing.background_server import BackgroundServer

KEY_ID = "test-key"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@dataclass
class AuthStandIn:
    client_id: str = "mcp-tools"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # The user's upstream GitHub token, by subject, as the auth service would have stored it at sign-in.
    github_tokens: dict[str, str] = field(default_factory=dict)
    exchanges: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._server = BackgroundServer(self._app())

    @property
    def issuer(self) -> str:
        return self._server.base_url

    def access_token(
        self, resource: str, scopes: str = "mcp:tools", subject: str = "user-1", **claims: Any
    ) -> str:
        """An RFC 9068 access token for `resource`, with the profile claims the auth service adds."""
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "sub": subject,
            "aud": resource,
            "client_id": "claude-desktop",
            "scope": scopes,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "auth_time": now,
            "preferred_username": "octocat",
            "name": "The Octocat",
            "email": "octocat@example.com",
            "picture": "https://avatars.example.com/u/1",
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="ES256", headers={"kid": KEY_ID, "typ": "at+jwt"})

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self._metadata),
                Route("/jwks.json", self._jwks),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    async def _metadata(self, _: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "jwks_uri": self.issuer + "/jwks.json",
                "token_endpoint": self.issuer + "/token",
            }
        )

    async def _jwks(self, _: Request) -> JSONResponse:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": KEY_ID, "alg": "ES256", "use": "sig"}]})

    async def _token(self, request: Request) -> JSONResponse:
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.exchanges.append(form)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != TOKEN_EXCHANGE or form.get("audience") != "github":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        subject = jwt.decode(
            form.get("subject_token", ""),
            self._key.public_key(),
            algorithms=["ES256"],
            options={"verify_aud": False},
        ).get("sub")
        github_token = self.github_tokens.get(str(subject))
        if github_token is None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "no GitHub token for this user"},
                status_code=400,
            )
        return JSONResponse(
            {
                "access_token": github_token,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 300,
            }
        )

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()
