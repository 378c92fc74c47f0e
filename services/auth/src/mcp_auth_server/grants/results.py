"""What a grant produces: the successful token response (RFC 6749 §5.1), as a value.

Grants return it; endpoints/token.py writes it as JSON with `Cache-Control: no-store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_auth_server.oauth.rfc9068_access_tokens import IssuedAccessToken


@dataclass(frozen=True)
class TokenResult:
    access_token: str
    expires_in: int | None
    scopes: list[str] | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"
    issued_token_type: str | None = None  # RFC 8693 §2.2.1, for token exchange

    @classmethod
    def of(
        cls, access: IssuedAccessToken, scopes: list[str], refresh_token: str | None = None
    ) -> TokenResult:
        return cls(access.token, access.expires_in, scopes, refresh_token)

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
