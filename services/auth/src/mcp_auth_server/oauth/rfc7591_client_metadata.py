"""Client registration metadata (RFC 7591 §2), validated field by field.

Unknown fields are ignored (§2); known ones must make sense or the request fails with
`invalid_redirect_uri` / `invalid_client_metadata` (§3.2.2). Grant and response types we do not
support are dropped rather than refused (§2 lets the server replace requested values with what it
supports, and the response says what was registered): clients such as older VS Code builds send
their whole list. A client that asks for `offline_access` in its `scope` gets `refresh_token`
registered with it, since that scope is useless without the grant.

A `private_key_jwt` client (RFC 7523 §2.2) registers its public keys: `jwks` (a JWK Set) or `jwks_uri`
(where it publishes one), never both (RFC 7591 §2), and gets no secret. Private or symmetric key
material in `jwks` is refused (oauth/client_jwks.py).

`client_uri`, `logo_uri`, `policy_uri` and `tos_uri` are links a person may follow or an image their
browser loads: anything but an https URL with a host (`javascript:`, `data:`, plain http) is dropped,
not refused, like an unsupported grant type, and the response shows it was not registered. The same
rule applies to client ID metadata documents (`web_uri`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mcp_auth_server.oauth.client_jwks import InvalidJwksUri, check_jwks_uri, check_public_jwks
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.oauth.rfc8252_redirect_uris import InvalidRedirectUri, check_registrable

AuthMethod = Literal["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
GRANT_TYPES = ("authorization_code", "refresh_token")  # what dynamically registered clients may use
WEB_URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")


def web_uri(value: object) -> str | None:
    """`value` if it is an https URL with a host and no user information, else None (dropped)."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return None
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return None
    return value


class ClientMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    redirect_uris: list[str] = Field(min_length=1, max_length=20)
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"  # §2 default
    grant_types: list[str] = Field(default=["authorization_code"], max_length=20)
    response_types: list[str] = Field(default=["code"], max_length=20)
    client_name: str | None = Field(default=None, max_length=200)
    client_uri: str | None = Field(default=None, max_length=2000)
    logo_uri: str | None = Field(default=None, max_length=2000)
    tos_uri: str | None = Field(default=None, max_length=2000)
    policy_uri: str | None = Field(default=None, max_length=2000)
    scope: str | None = Field(default=None, max_length=2000)
    contacts: list[str] | None = Field(default=None, max_length=10)
    software_id: str | None = Field(default=None, max_length=200)
    software_version: str | None = Field(default=None, max_length=200)
    application_type: Literal["web", "native"] = "web"
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(default=None, max_length=2000)

    @field_validator("grant_types")
    @classmethod
    def _supported_grant_types(cls, value: list[str]) -> list[str]:
        if "authorization_code" not in value:
            raise ValueError("grant_types must include authorization_code")
        return [grant for grant in dict.fromkeys(value) if grant in GRANT_TYPES]

    @field_validator("response_types")
    @classmethod
    def _supported_response_types(cls, value: list[str]) -> list[str]:
        if "code" not in value:
            raise ValueError("response_types must include code (the only one this server supports)")
        return ["code"]

    @model_validator(mode="after")
    def _offline_access_brings_refresh_tokens(self) -> ClientMetadata:
        # OpenID Connect Core §11: offline_access asks for a refresh token, which needs this grant.
        if "offline_access" in (self.scope or "").split() and "refresh_token" not in self.grant_types:
            self.grant_types = [*self.grant_types, "refresh_token"]
        return self

    @field_validator("jwks")
    @classmethod
    def _public_keys_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_public_jwks(value)

    @model_validator(mode="after")
    def _keys_for_private_key_jwt(self) -> ClientMetadata:
        has_keys = (self.jwks is not None) + (self.jwks_uri is not None)
        if has_keys == 2:
            raise ValueError("jwks and jwks_uri must not both be present (RFC 7591 §2)")
        if self.token_endpoint_auth_method == "private_key_jwt" and not has_keys:
            raise ValueError("a private_key_jwt client must register jwks or jwks_uri")
        if self.token_endpoint_auth_method != "private_key_jwt" and has_keys:
            raise ValueError("jwks and jwks_uri are for private_key_jwt clients only")
        return self

    @field_validator(*WEB_URI_FIELDS)
    @classmethod
    def _https_or_dropped(cls, value: str | None) -> str | None:
        return web_uri(value)

    @field_validator("client_name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable text")
        return value


def parse_client_metadata(
    body: Any, allowed_schemes: Collection[str], *, allow_loopback_jwks_uri: bool = False
) -> ClientMetadata:
    """`allowed_schemes`: AUTH_REGISTRATION_ALLOWED_SCHEMES (oauth/rfc8252_private_use_schemes.py);
    `allow_loopback_jwks_uri`: this server is on loopback, so an http loopback `jwks_uri` is fine."""
    if not isinstance(body, dict):
        raise OAuthError("invalid_client_metadata", "the request body must be a JSON object")
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty list")
    for uri in uris:
        try:
            check_registrable(uri, allowed_schemes)
        except InvalidRedirectUri as exc:
            raise OAuthError("invalid_redirect_uri", str(exc)) from None
    try:
        metadata = ClientMetadata.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "metadata"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise OAuthError("invalid_client_metadata", f"{field}: {message}") from None
    if metadata.jwks_uri is not None:
        try:
            check_jwks_uri(metadata.jwks_uri, allow_loopback=allow_loopback_jwks_uri)
        except InvalidJwksUri as exc:
            raise OAuthError("invalid_client_metadata", f"jwks_uri: {exc}") from None
    return metadata
