"""The token endpoint's requests, one typed model per grant type (RFC 6749 §4.1.3, §4.4.2, §6; RFC 8693 §2.1).

Parsing and the "is required" errors live here, in the types, not in `if` chains inside the grants.
`resource` (RFC 8707) is the one parameter that may repeat; every other one appears at most once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mcp_auth_kit.rfc9449_dpop_proofs import DPoPProof
from mcp_auth_server.oauth.rfc7523_jwt_bearer import VerifiedAssertion

Required = Field(min_length=1)


class GrantRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    resource: list[str] = []
    # RFC 9449 §5: the request's DPoP header, verified by the endpoint (never a form parameter).
    dpop: DPoPProof | None = None

    @property
    def dpop_jkt(self) -> str | None:
        """The thumbprint of the key the issued tokens are bound to; None: bearer tokens."""
        return self.dpop.jkt if self.dpop is not None else None


class AuthorizationCodeRequest(GrantRequest):
    grant_type: Literal["authorization_code"]
    code: str = Required
    code_verifier: str = Required  # PKCE is mandatory (OAuth 2.1 §4.1.3)
    redirect_uri: str = ""


class RefreshTokenRequest(GrantRequest):
    grant_type: Literal["refresh_token"]
    refresh_token: str = Required
    scope: str | None = None


class ClientCredentialsRequest(GrantRequest):
    grant_type: Literal["client_credentials"]
    scope: str | None = None


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class TokenExchangeRequest(GrantRequest):
    grant_type: Literal["urn:ietf:params:oauth:grant-type:token-exchange"]
    subject_token: str = Required
    subject_token_type: str = Required
    requested_token_type: str | None = None
    audience: str | None = None


class JwtBearerRequest(GrantRequest):
    """RFC 7523 §2.1: `assertion` is one JWT (an ID-JAG or a workload token); `scope` may narrow it."""

    grant_type: Literal["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assertion: str = Field(min_length=1, max_length=16_384)
    scope: str | None = None
    # Set by grants/jwt_bearer.py before the request's transaction (keys may be fetched, the `jti` is
    # spent in the replay cache); never a form parameter.
    _verified: VerifiedAssertion | None = PrivateAttr(default=None)

    @property
    def verified(self) -> VerifiedAssertion:
        assert self._verified is not None, "prepare_jwt_bearer runs before the grant"
        return self._verified
