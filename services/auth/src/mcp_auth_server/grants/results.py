"""What a grant produces: the successful token response (RFC 6749 §5.1), as a value.

Grants return it; endpoints/token.py writes it as JSON with `Cache-Control: no-store`. A token bound to
the client's DPoP key is of `token_type` DPoP (RFC 9449 §5) and names the key (`dpop_jkt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_auth_server.oauth.rfc9068_access_tokens import IssuedAccessToken
from mcp_auth_server.oauth.rfc9449_dpop import token_type


@dataclass(frozen=True)
class TokenResult:
    access_token: str
    expires_in: int | None
    scopes: list[str] | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"
    issued_token_type: str | None = None  # RFC 8693 §2.2.1, for token exchange
    dpop_jkt: str | None = None  # the DPoP key the access token is bound to (its cnf.jkt)

    @classmethod
    def of(
        cls, access: IssuedAccessToken, scopes: list[str], refresh_token: str | None = None
    ) -> TokenResult:
        return cls(
            access.token,
            access.expires_in,
            scopes,
            refresh_token,
            token_type=token_type(access.dpop_jkt),
            dpop_jkt=access.dpop_jkt,
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": self.access_token, "token_type": self.token_type}
        if self.issued_token_type is not None:
            body["issued_token_type"] = self.issued_token_type
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.scopes is not None:
            body["scope"] = " ".join(self.scopes)
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body
