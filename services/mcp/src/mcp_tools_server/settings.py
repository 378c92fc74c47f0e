"""Reads the `MCP_*` variables once, so a bad one stops start-up instead of failing a request later."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_auth_kit.client_credentials import ClientCredentials, PrivateKeyJWT
from mcp_auth_kit.rfc8414_discovery import internal_origin

_LOOPBACK_NAMES = ("localhost",)


class SettingsError(Exception):
    """A missing or invalid variable, described in one line that names it and says what is expected."""


class Settings(BaseSettings):
    """The MCP service's settings; every field is the variable `MCP_<FIELD>`.

    A field's docstring documents it (docs/configuration.md is generated from them); its `description`
    is what an error message says is expected.
    """

    model_config = SettingsConfigDict(env_prefix="MCP_", extra="ignore", frozen=True)

    resource_url: str = Field(
        description="this server's canonical MCP URL, the token audience, e.g. http://127.0.0.1:9101/mcp"
    )
    """This server's canonical MCP URL, the token audience, e.g. `http://127.0.0.1:9101/mcp`: absolute
    http(s), with a path (where MCP is served), no query or fragment. Required."""
    # Kept as the exact string: clients and tokens compare issuers byte for byte, and pydantic's URL
    # types would add a trailing slash (NOTES.md).
    auth_issuer: str | None = Field(
        default=None,
        description="the auth service's issuer exactly as it publishes it, e.g. http://127.0.0.1:9000",
    )
    """The auth service's issuer, used verbatim (never normalised: it is compared byte for byte).
    Required while MCP_AUTH is on."""
    client_id: str | None = Field(default=None, description="this server's confidential client id")
    """This server's confidential client at the auth service, for token exchange (and introspection);
    set it with MCP_CLIENT_SECRET or MCP_CLIENT_PRIVATE_KEY_FILE, or set none of them (then
    `get_github_repos` says it is not configured)."""
    client_secret: SecretStr | None = Field(default=None, description="the secret of MCP_CLIENT_ID")
    """The secret of MCP_CLIENT_ID."""
    # private_key_jwt client authentication (issue 16)
    client_private_key_file: str | None = Field(
        default=None, description="a PEM file holding this client's EC, RSA or Ed25519 private key"
    )
    """Instead of MCP_CLIENT_SECRET: a PEM file with this client's private key (EC P-256, RSA or
    Ed25519). The server then authenticates with signed assertions (`private_key_jwt`, RFC 7523 §2.2) and
    the auth service holds only the public key (`mcp-auth clients add --resource-server URL --jwks ...`)."""
    client_key_id: str | None = Field(
        default=None, description="the kid of the key registered for this client"
    )
    """The `kid` the private key is registered under. Unset: the key's RFC 7638 thumbprint."""
    github_api_url: str = Field(
        default="https://api.github.com", description="the GitHub API base URL, e.g. https://api.github.com"
    )
    """GitHub's API base URL for the tools (GitHub Enterprise Server: `https://host/api/v3`)."""
    auth: Literal["on", "off"] = Field(default="on", description="'on' or 'off'")
    """`on`, or `off` to serve the same tools without authentication (benchmark baselines, protocol
    suites); `off` is refused unless MCP_HOST is a loopback address."""
    introspection: Literal["on", "off"] = Field(
        default="off", description="'on' (ask the auth service about every token, cached briefly) or 'off'"
    )
    """`on` to also ask the auth service's `/introspect` about every token (cached 15 s per token), so
    revoked tokens are refused before they expire; needs MCP_CLIENT_ID and MCP_CLIENT_SECRET; the auth
    service unreachable then means 503."""
    dpop: Literal["allowed", "required"] = Field(
        default="allowed",
        description="'allowed' (DPoP-bound tokens with proofs, and bearer tokens) or 'required' (DPoP only)",
    )
    """`allowed`: DPoP-bound tokens (with their proofs, RFC 9449) beside bearer tokens; `required`: DPoP-bound
    tokens only (say so in the auth service's AUTH_RESOURCES entry too)."""
    dpop_nonce_secret: SecretStr | None = Field(
        default=None,
        description="a secret of at least 32 characters shared by the replicas, to demand DPoP nonces",
    )
    """32+ characters, the same on every replica: demand server nonces in DPoP proofs (`use_dpop_nonce`).
    Unset: no nonces."""
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0, so the replicas share DPoP proof replay memory (else: in memory)",
    )
    """Redis shared by this server's replicas (`redis://host:6379/0`), so each DPoP proof is accepted once
    across all of them. Unset: this process's memory (one replica)."""
    host: str = Field(default="127.0.0.1", description="the address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    """The address `mcp-tools serve` listens on (the image sets `0.0.0.0`)."""
    port: int | None = Field(default=None, ge=1, le=65535, description="a TCP port number (1-65535)")
    """The port `mcp-tools serve` listens on. Unset: the port of MCP_RESOURCE_URL (80/443 when it names
    none)."""
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="the port /metrics is served on (on MCP_HOST), never the public one; unset: no metrics",
    )
    """The operator port: `/metrics` is served there (on MCP_HOST), never on the public port. Unset: not
    served at all."""
    # How this server reaches the auth service when not at its public issuer URL (inside a cluster).
    auth_internal_url: str | None = Field(
        default=None,
        description="the auth service's address from here, e.g. http://mcp-auth-server:9000 (scheme, host, "
        "port only); iss is still checked against MCP_AUTH_ISSUER",
    )
    """How this server reaches the auth service when not at its public issuer URL, e.g.
    `http://mcp-auth-server:9000` inside Kubernetes (scheme, host and port only): metadata, JWKS,
    introspection and token exchange go there, while `iss` is still checked against MCP_AUTH_ISSUER."""

    @field_validator("resource_url")
    @classmethod
    def _resource_identifier(cls, value: str) -> str:
        parts = _http_url(value)
        # RFC 8707 §2 / RFC 9728 §1.2: a resource identifier has no query or fragment (nor credentials).
        if parts.query or parts.fragment or parts.username:
            raise PydanticCustomError("url", "must not contain a query, fragment or user name")
        if parts.path in ("", "/"):
            raise PydanticCustomError("url", "needs a path: the MCP endpoint is served there")
        return value

    @field_validator("github_api_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        _http_url(value)
        return value

    @field_validator("auth_issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = _http_url(value)
        # RFC 8414 §2: the issuer is an http(s) URL with no query or fragment.
        if parts.query or parts.fragment:
            raise PydanticCustomError("issuer", "must not contain a query or fragment")
        return value

    @field_validator("auth_internal_url")
    @classmethod
    def _internal_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            internal_origin(value)  # the kit's rule: what it will accept as internal_url
        except ValueError:
            raise PydanticCustomError("url", "must be scheme://host[:port] only") from None
        return value

    @field_validator("host")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("host", "is empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.auth == "on" and self.auth_issuer is None:
            raise PydanticCustomError(
                "settings",
                "MCP_AUTH_ISSUER: missing; required while MCP_AUTH=on: the auth service's issuer exactly "
                "as it publishes it, e.g. http://127.0.0.1:9000",
            )
        # Serving tools without authentication is for benchmarks and protocol suites on one machine only.
        if self.auth == "off" and not self.listens_on_loopback:
            raise PydanticCustomError(
                "settings",
                "MCP_AUTH=off is refused unless MCP_HOST is a loopback address "
                "(127.0.0.1, ::1 or localhost); got '{host}'",
                {"host": self.host},
            )
        if self.introspection == "on" and (self.auth == "off" or self.client_id is None):
            raise PydanticCustomError(
                "settings",
                "MCP_INTROSPECTION=on needs MCP_AUTH=on and MCP_CLIENT_ID (with MCP_CLIENT_SECRET or"
                " MCP_CLIENT_PRIVATE_KEY_FILE)",
            )
        if self.metrics_port is not None and self.metrics_port == self.listen_port:
            raise PydanticCustomError(
                "settings",
                "MCP_METRICS_PORT must differ from the public port {port}",
                {"port": self.listen_port},
            )
        if self.dpop_nonce_secret is not None and len(self.dpop_nonce_secret.get_secret_value()) < 32:
            raise PydanticCustomError("settings", "MCP_DPOP_NONCE_SECRET: must be at least 32 characters")
        proofs = (self.client_secret is not None) + (self.client_private_key_file is not None)
        if (self.client_id is not None and proofs != 1) or (self.client_id is None and proofs):
            raise PydanticCustomError(
                "settings",
                "MCP_CLIENT_ID with MCP_CLIENT_SECRET or MCP_CLIENT_PRIVATE_KEY_FILE: set the id and one of"
                " the two (a confidential client), or none of them",
            )
        if self.client_private_key_file is not None:
            self.client_credentials()  # an unreadable or unusable key stops start-up, naming the file
        return self

    def client_credentials(self) -> ClientCredentials | None:
        """This server's client at the auth service: its id with its secret or its private key."""
        if self.client_id is None:
            return None
        if self.client_private_key_file is None:
            secret = self.client_secret.get_secret_value() if self.client_secret else None
            return ClientCredentials(self.client_id, secret)
        try:
            key = PrivateKeyJWT.from_pem_file(self.client_private_key_file, key_id=self.client_key_id)
        except (OSError, ValueError, TypeError) as exc:
            raise PydanticCustomError(
                "settings",
                "MCP_CLIENT_PRIVATE_KEY_FILE: cannot use {path} ({problem}); expected a PEM private key",
                {"path": self.client_private_key_file, "problem": type(exc).__name__},
            ) from None
        return ClientCredentials(self.client_id, private_key=key)

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "on"

    @property
    def listens_on_loopback(self) -> bool:
        if self.host in _LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    @property
    def listen_port(self) -> int:
        """MCP_PORT, else the port of MCP_RESOURCE_URL (its scheme's default when it names none)."""
        if self.port is not None:
            return self.port
        parts = urlsplit(self.resource_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


def _http_url(value: str) -> SplitResult:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", "not an absolute http(s) URL")
    return parts


def load_settings() -> Settings:
    """Settings from the environment, or `SettingsError` describing every problem on one line."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError("; ".join(_describe(detail) for detail in error.errors())) from None


def _describe(detail: ErrorDetails) -> str:
    if not detail["loc"]:
        return str(detail["msg"])  # cross-field messages name their variables themselves
    field = str(detail["loc"][0])
    expected = Settings.model_fields[field].description
    if detail["type"] == "missing":
        return f"MCP_{field.upper()}: missing; expected {expected}"
    # The rejected value helps the operator, except a secret's, which must not reach a log.
    got = "" if field in ("client_secret", "dpop_nonce_secret") else f" (got {detail['input']!r})"
    return f"MCP_{field.upper()}: {detail['msg']}{got}; expected {expected}"
