"""The auth service's settings, read once from the environment (docs/configuration.md lists them).

Local runs (a loopback issuer) get conveniences: a generated secret, the `dev` upstream, an
embedded SQLite database and two example resources. Anything else is production, where those
insecure defaults are refused at start-up with one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mcp_auth_server.config_problems import first_problem
from mcp_auth_server.db.urls import async_database_url
from mcp_auth_server.errors import ConfigurationError
from mcp_auth_server.oauth.rfc8252_private_use_schemes import is_never_a_redirect
from mcp_auth_server.oauth.rfc8707_resource_indicators import canonical_resource
from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig, parse_entries

DATA_DIR = Path(".data")
PRIVATE_USE_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")  # RFC 3986 §3.1, lower-cased
Upstream = Literal["github", "google", "oidc", "dev"]
SigningAlgorithm = Literal["ES256", "RS256"]
DPoPPolicy = Literal["required", "allowed"]


# What each upstream cannot start without (the production rules are the same on a loopback issuer).
UPSTREAM_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "github": ("github_client_id", "github_client_secret"),
    "google": ("google_client_id", "google_client_secret"),
    "oidc": ("oidc_issuer", "oidc_client_id", "oidc_client_secret"),
}


# The placeholders of .env.example and the dev Kubernetes overlay: refused outside loopback.
PLACEHOLDER_MARKERS = ("change-me", "dev-only-placeholder")


class SettingsError(ConfigurationError):
    """A setting is missing or invalid; the message is one line naming the variable."""


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ResourceConfig(BaseModel):
    """One MCP server that tokens may be issued for (an RFC 8707 resource).

    The one set of rules for resources: an AUTH_RESOURCES entry and `mcp-auth resources add` are both
    validated by building one of these (see `config_problems.first_problem` for the message). Each field's
    docstring documents it (docs/configuration.md's table of entry fields is generated from them).
    """

    # extra="forbid": a misspelt field would otherwise be ignored silently.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    resource: str
    """The MCP server's canonical URL, which becomes the tokens' `aud` (RFC 8707): absolute http(s), no
    fragment, no trailing slash after its path. Required."""
    scopes: list[str] = Field(min_length=1)
    """The scopes a client may ask for this server: at least one RFC 6749 scope-token, none twice, never
    `offline_access` (clients add that themselves). Required."""
    default_scopes: list[str] | None = None
    """Granted when a client asks for no scope; each must be in `scopes`. Unset: all of `scopes`."""
    name: str | None = Field(default=None, max_length=200)
    """The server's name on the consent and connected-apps pages (at most 200 characters). Unset: its
    URL."""
    scope_descriptions: dict[str, str] = {}
    """Scope -> the text the consent and connected-apps pages show for it (printable, 1 to 200 characters;
    only scopes in `scopes`). Undescribed: built-in scopes keep their own texts, others read "access granted
    by this scope"."""
    aliases: list[str] = []
    """Other resource identifiers of the same server (its legacy `…/sse` endpoint): a client may name them
    at `/authorize` and `/token`, and gets the same consent and a token whose `aud` is `resource`. Each
    differs from `resource`, from the others and from every other entry's."""
    upstream_token_scope: str | None = None
    """The scope, one of `scopes`, that lets this server obtain the user's upstream token by token exchange
    (e.g. `github:repos`); the consent page says so in plain words. Unset: it never receives upstream
    tokens."""
    dpop: DPoPPolicy = "allowed"
    """RFC 9449: `required` gives this server tokens only through token requests with a DPoP proof (bound to
    the client's key; set `MCP_DPOP=required` at the server too); `allowed` also through bearer ones."""

    @field_validator("resource")
    @classmethod
    def _resource_identifier(cls, value: str) -> str:
        return resource_identifier(value)

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not an RFC 6749 scope-token")
            if scope == "offline_access":
                raise ValueError("offline_access is not a resource scope; clients add it themselves")
        if len(set(value)) != len(value):
            raise ValueError("lists a scope twice")
        return value

    @field_validator("default_scopes")
    @classmethod
    def _defaults_are_offered(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        outside = [scope for scope in value or [] if scope not in info.data.get("scopes", value or [])]
        if outside:
            raise ValueError(f"{', '.join(outside)} must also be in scopes")
        return value

    @field_validator("scope_descriptions")
    @classmethod
    def _describes_offered_scopes(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for scope, text in value.items():
            if scope not in info.data.get("scopes", value):
                raise ValueError(f"describes {scope!r}, which is not in scopes")
            if not text.strip() or not text.isprintable() or len(text) > 200:
                raise ValueError(f"the text for {scope!r} must be printable, 1 to 200 characters")
        return value

    @field_validator("aliases")
    @classmethod
    def _alias_identifiers(cls, value: list[str], info: ValidationInfo) -> list[str]:
        aliases = [resource_identifier(alias) for alias in value]
        if info.data.get("resource") in aliases or len(set(aliases)) != len(aliases):
            raise ValueError("must differ from resource and from each other")
        return aliases

    @field_validator("upstream_token_scope")
    @classmethod
    def _upstream_token_scope_is_offered(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value not in info.data.get("scopes", [value]):
            raise ValueError(f"{value!r} must also be in scopes")
        return value


# RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+", re.ASCII)


def resource_identifier(value: str) -> str:
    """RFC 8707 §2 resource identifier in canonical form; a trailing slash is refused, not normalised:
    `…/mcp/` is another resource than `…/mcp` and would silently never match a client's value."""
    canonical = canonical_resource(value)  # InvalidResource is a ValueError: pydantic reports it
    if value.endswith("/") and urlsplit(value).path not in ("", "/"):
        raise ValueError(f"must not end with '/' (got {value!r})")
    return canonical


def _resource_entries(entries: Any) -> list[ResourceConfig]:
    """AUTH_RESOURCES, each entry checked like `resources add`; errors name the entry and the field."""
    if not isinstance(entries, list):
        raise ValueError("must be a JSON list of resources")
    resources: list[ResourceConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        named = entry.get("resource") if isinstance(entry, dict) else None
        label = f"entry {index}" + (f" ({named})" if isinstance(named, str) else "")
        try:
            resource = ResourceConfig.model_validate(entry)
        except ValidationError as exc:
            raise ValueError(f"{label}: {first_problem(exc, ResourceConfig, 'a resource')}") from None
        for identifier in (resource.resource, *resource.aliases):
            if identifier in seen:
                raise ValueError(f"{label}: {identifier} is named by an earlier entry")
            seen.add(identifier)
        resources.append(resource)
    return resources


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class AuthSettings(BaseSettings):
    """Every field is the environment variable of its name in capitals; its docstring is its documentation.

    docs/configuration.md is generated from these docstrings (scripts/configuration_reference.py), and a
    test fails when a field has none or the page is stale.
    """

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", case_sensitive=False, use_attribute_docstrings=True
    )

    auth_issuer: str = "http://127.0.0.1:9000"
    """The exact issuer, no trailing slash; every URL the service advertises derives from it, never from
    request headers. https, except on a loopback host (a local run)."""
    auth_database_url: str = ""
    """`postgresql://USER:PASSWORD@HOST:5432/DB` (also `postgres://`, `postgresql+asyncpg://`; always run on
    asyncpg, `sslmode` accepted) or `sqlite+aiosqlite:///PATH`. Unset: SQLite in `.data/auth.db` (local
    runs)."""
    auth_secret_key: SecretStr | None = None
    """Root secret, 32+ characters: derives the keys sealing upstream tokens and private signing keys, and
    the CSRF key. Must never change (stored keys would not open: `serve` refuses to start, saying so).
    Required unless the issuer is loopback (then generated into `.data/secret_key`); refused while it still
    holds an example's placeholder."""
    auth_upstream: Upstream | None = None
    """`github`, `google`, `oidc` or `dev` (loopback issuers only). Unset: the upstream whose client id is
    set, else `dev` on a loopback issuer."""
    auth_host: str = "127.0.0.1"
    """The address `mcp-auth serve` listens on (the images set `0.0.0.0`)."""
    auth_port: int | None = Field(default=None, ge=1, le=65535)
    """The port `mcp-auth serve` listens on. Unset: the issuer's port."""
    auth_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """The operator port: `/metrics`, `/openapi.json` and `/docs` are served there (on AUTH_HOST), never on
    the public port. Unset: not served at all."""

    github_client_id: str | None = None
    """The GitHub OAuth app's client id (its callback: AUTH_ISSUER + `/callback`)."""
    github_client_secret: SecretStr | None = None
    """The GitHub OAuth app's client secret."""
    github_url: str = "https://github.com"
    """GitHub's web base URL (GitHub Enterprise Server: `https://ghe.example.com`)."""
    github_api_url: str = "https://api.github.com"
    """GitHub's API base URL (GitHub Enterprise Server: `https://ghe.example.com/api/v3`)."""
    github_scopes: str | None = None
    """Scopes asked of GitHub. Unset: `read:user user:email`, plus `read:org` when orgs or teams are
    restricted."""

    oidc_issuer: str | None = None
    """The OIDC provider's issuer, exactly as its discovery document states it (a trailing slash matters)."""
    oidc_client_id: str | None = None
    """The client id at the OIDC provider."""
    oidc_client_secret: SecretStr | None = None
    """The client secret at the OIDC provider."""
    oidc_scopes: str = "openid email profile"
    """Scopes asked of the OIDC provider, space-separated; must include `openid` (add `offline_access` for a
    refresh token)."""

    google_client_id: str | None = None
    """The Google OAuth client id."""
    google_client_secret: SecretStr | None = None
    """The Google OAuth client secret."""
    google_scopes: str = "openid email profile"
    """Scopes asked of Google, space-separated; must include `openid`."""
    google_hosted_domains: Annotated[list[str], NoDecode] = []
    """Comma-separated Workspace domains; the signed ID token's `hd` claim must be one of them. Empty: any
    account."""
    google_issuer: str = "https://accounts.google.com"
    """The issuer whose discovery document is read for Google (tests point it at a stand-in)."""

    auth_allowed_users: Annotated[list[str], NoDecode] = []
    """Comma-separated users allowed to sign in: GitHub logins, or emails or subjects (google, oidc). All
    allow-lists empty: anyone who can sign in upstream. Checked at sign-in and again on refresh."""
    auth_allowed_orgs: Annotated[list[str], NoDecode] = []
    """Comma-separated GitHub organisations whose members may sign in (github only)."""
    auth_allowed_teams: Annotated[list[str], NoDecode] = []
    """Comma-separated GitHub teams as `org/team` whose members may sign in (github only)."""
    auth_allowed_domains: Annotated[list[str], NoDecode] = []
    """Comma-separated verified email domains whose users may sign in (google and oidc only)."""

    auth_resources: list[ResourceConfig] | None = None
    """JSON list of the MCP servers tokens may be issued for, e.g. `[{"resource":
    "https://tools.example.com/mcp", "scopes": ["mcp:tools", "github:repos"], "default_scopes": ["mcp:tools"],
    "name": "Tools", "upstream_token_scope": "github:repos"}]` (every field of an entry: the table below),
    merged with those added by `mcp-auth resources add` (this list wins). Each entry is checked as `resources
    add` checks it; an error names the entry and the field. Unset: the two `make dev` servers on a loopback
    issuer, none otherwise."""

    auth_access_token_ttl: int = Field(default=900, ge=30, le=86_400)
    """Access token lifetime, seconds (30-86400)."""
    auth_refresh_token_ttl: int = Field(default=30 * 86_400, ge=300)
    """Absolute lifetime of a refresh-token family (a grant), seconds."""
    auth_code_ttl: int = Field(default=60, ge=10, le=600)
    """Authorization code lifetime, seconds (10-600)."""
    auth_session_ttl: int = Field(default=14 * 86_400, ge=300)
    """The auth service's own browser session, seconds."""
    auth_signing_alg: SigningAlgorithm = "ES256"
    """`ES256` or `RS256`, for signing keys created from now on."""
    auth_refresh_grace_seconds: int = Field(default=45, ge=0, le=300)
    """How long the previous refresh token still works, once, after rotation (a lost response; 0-300)."""
    auth_upstream_recheck_seconds: int = Field(default=300, ge=0)
    """How long an upstream "this user may still sign in" answer is trusted, seconds, before any credential
    path (refresh, a silent `/authorize`, exchange, introspection) asks again."""
    auth_log_level: str = "INFO"
    """`DEBUG`, `INFO`, `WARNING`, `ERROR`."""
    # At most 240: a rotated key (default activation delay 600 s) must be published by every replica,
    # and cached by resource servers (JWKS max-age 300 s), before it signs.
    auth_reload_seconds: float = Field(default=30, gt=0, le=240)
    """How often each replica re-reads signing keys and resources, seconds (at most 240, so every replica
    publishes a rotated key well before it signs)."""
    auth_upstream_timeout_seconds: float = Field(default=10, gt=0, le=60)
    """Every call to the upstream identity provider gives up after this long (connecting: 5 s at most)."""
    auth_housekeeping_seconds: float = Field(default=600, gt=0, le=86_400)
    """How often each replica prunes expired codes, sessions, consents and ended grants, seconds."""
    auth_audit_retention_days: int | None = Field(default=None, ge=1)
    """Delete audit events older than this many days. Unset: kept forever."""
    auth_key_rotation_days: int = Field(default=0, ge=0, le=3650)
    """Rotate signing keys automatically when the newest is this many days old (store/key_rotation.py).
    0: only by `mcp-auth keys rotate`."""

    # Client registration policy (RFC 7591 and client ID metadata documents).
    auth_registration_enabled: bool = True
    """Dynamic client registration (RFC 7591) on or off; off also removes `registration_endpoint` from the
    metadata."""
    auth_registration_token: SecretStr | None = None
    """If set, `/register` requires it as a Bearer token (RFC 7591 §3 initial access token)."""
    auth_registration_redirect_uris: Annotated[list[str], NoDecode] = []
    """Comma-separated patterns registered redirect URIs must match: exact URIs, `*` for one path segment,
    `loopback` for any loopback redirect. Empty: any."""
    # Registration scheme policy (issue 12): oauth/rfc8252_private_use_schemes.py.
    auth_registration_allowed_schemes: Annotated[list[str], NoDecode] = ["cursor", "vscode"]
    """Comma-separated private-use redirect schemes accepted although not reverse-DNS style (RFC 8252 §7.1
    wants a period, e.g. `com.example.app`), for well-known clients: Cursor (`cursor://`), VS Code
    (`vscode://`). Applies to `/register` and client ID metadata documents. Browser-internal and
    operating-system schemes (`javascript`, `intent`, `ms-settings`, ...) are refused even if listed.
    Empty: reverse-DNS schemes only."""
    auth_client_metadata_documents: bool = True
    """Accept client ID metadata documents (https client ids)."""
    auth_client_metadata_ca_bundle: str | None = None
    """PEM file of extra CAs trusted for client metadata document hosts and client `jwks_uri` hosts. Unset:
    the system's CAs."""
    auth_client_idle_days: int = Field(default=0, ge=0)
    """Forget dynamically registered and document clients unused this many days (0: never)."""
    auth_rate_limits: bool | None = None
    """Rate limits on or off (one budget for every replica with `AUTH_REDIS_URL`, else one per process).
    Unset: on, except on a loopback issuer."""
    auth_rate_limit_register: str = "20/hour"
    """`/register` limit per source address (an IPv6 address by its /64), as `N/second`, `N/minute` or
    `N/hour`."""
    auth_rate_limit_authorize: str = "60/minute"
    """`/authorize` limit per source address; the `client_id` a request names is never what is counted."""
    auth_rate_limit_token: str = "600/minute"
    """`/token` limit per source address, and per client once the client has authenticated (public clients
    never do: per address only). Also the limit per source address on refused `/revoke` and `/introspect`
    requests (each its own budget)."""
    auth_forwarded_allow_ips: str | None = None
    """Comma-separated addresses or networks (`10.0.0.0/8`) of proxies whose `X-Forwarded-For` names the
    client's address: the rightmost address not in this list is the client (rate limits and audit only; URLs
    never come from headers). Unset: the peer address is the client's."""
    auth_redis_url: str | None = None
    """Redis shared by every replica (`redis://host:6379/0`, `rediss://` for TLS): rate limits (skipped,
    never refusing, while it is unreachable) and single-use identifiers (503 while it is unreachable). Unset:
    rate limits in each process's memory, single-use identifiers in the database."""
    auth_dpop_nonces: bool = False
    """`on`: every DPoP proof at `/token` must carry a current server nonce (RFC 9449 §8; stateless and
    rotating, valid on every replica through `AUTH_SECRET_KEY`)."""

    # Edge hardening (issue 12): request bodies, and uvicorn's own limits when it is exposed directly.
    auth_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    """Largest request body any endpoint reads, bytes; a longer one (declared or chunked) is refused with 413
    after at most this much was read."""
    auth_limit_concurrency: int | None = Field(default=1000, ge=1)
    """Connections plus requests in progress one `mcp-auth serve` process accepts before answering 503
    (uvicorn `--limit-concurrency`); bounds what slow clients can hold open. Unset: no limit."""
    auth_timeout_keep_alive: int = Field(default=5, ge=1, le=300)
    """Seconds an idle keep-alive connection stays open (uvicorn `--timeout-keep-alive`); keep it below the
    idle timeout of any proxy in front."""
    auth_max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    """Largest request head (request line and headers), bytes; a larger one is answered 431 and its
    connection closed, after at most this much (and one socket read) was held."""
    # Trusted issuers: enterprise IdPs (ID-JAG) and workload issuers (JWT authorization grants, RFC 7523).
    auth_trusted_issuers: list[TrustedIssuerConfig] = []
    """JSON list of the token issuers whose JWTs `/token` accepts as grants (RFC 7523): enterprise identity
    providers issuing ID-JAGs (`"kind": "enterprise-idp"`) and workload issuers such as a Kubernetes cluster
    or GitHub Actions (`"kind": "workload"`), e.g. `[{"issuer": "https://idp.example.com", "kind":
    "enterprise-idp", "user_claim": "email"}]` (every field of an entry: the table below), merged with those
    added by `mcp-auth issuers add` (this list wins). https only, except loopback http on a loopback issuer;
    an error names the entry and the field. Unset: none."""
    # --- Token endpoint speed (issue 17): the database pool and the cache of client records ---
    auth_database_pool_size: int = Field(default=20, ge=1, le=1000)
    """PostgreSQL connections each worker process keeps open and reuses. Every replica holds up to
    `workers x (AUTH_DATABASE_POOL_SIZE + AUTH_DATABASE_MAX_OVERFLOW)` connections: keep the sum over all
    replicas (and `mcp-auth` commands, migrations, monitoring) below PostgreSQL's `max_connections`
    (docs/deployment.md, Sizing the database pool)."""
    auth_database_max_overflow: int = Field(default=0, ge=0, le=1000)
    """Extra connections a worker may open beyond the pool in a burst; each is closed as soon as it is
    returned, so a steady load above the pool opens a PostgreSQL session (a new backend) per request.
    0: a request waits for a pooled connection instead (at most AUTH_DATABASE_POOL_TIMEOUT)."""
    auth_database_pool_timeout: float = Field(default=5, gt=0, le=60)
    """Seconds a request waits for a pooled connection before it is answered 503 with `Retry-After`."""
    auth_database_pool_recycle: int = Field(default=3600, ge=0)
    """Seconds after which a pooled connection is replaced when next taken (for proxies and firewalls that
    cut long-lived connections); 0: never."""
    auth_client_cache_seconds: float = Field(default=5, ge=0, le=60)
    """How long each worker may reuse a client record read at `/token`, `/revoke` and `/introspect`
    instead of reading it again: the most a change made elsewhere (another replica, the CLI) takes to be
    seen, in seconds. A change made through this worker is seen at once. 0: read on every request."""

    _normalise_lists = field_validator(
        "auth_allowed_users",
        "auth_allowed_orgs",
        "auth_allowed_teams",
        "auth_registration_redirect_uris",
        mode="before",
    )(_comma_list)

    @field_validator("auth_registration_allowed_schemes", mode="before")
    @classmethod
    def _private_use_schemes(cls, value: Any) -> list[str]:
        schemes = [str(scheme).lower() for scheme in _comma_list(value)]
        for scheme in schemes:
            if not PRIVATE_USE_SCHEME.fullmatch(scheme) or scheme in ("http", "https"):
                raise ValueError(f"{scheme!r} is not a private-use URI scheme name")
            if is_never_a_redirect(scheme):
                raise ValueError(
                    f"{scheme!r} is handled by the browser or the operating system; never allowed"
                )
        return schemes

    @field_validator("auth_rate_limit_register", "auth_rate_limit_authorize", "auth_rate_limit_token")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("auth_issuer")
    @classmethod
    def _issuer_is_exact(cls, value: str) -> str:
        # RFC 8414 §2 and MCP clients compare the issuer byte for byte: no slash, query or fragment.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        if value.endswith("/"):
            raise ValueError(f"must not end with '/', got {value!r}")
        if parts.query or parts.fragment or "#" in value:
            raise ValueError(f"must have no query or fragment, got {value!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(f"must use https unless it is a loopback address, got {value!r}")
        return value

    _normalise_upstream_lists = field_validator(
        "auth_allowed_domains", "google_hosted_domains", mode="before"
    )(_comma_list)

    @field_validator("oidc_issuer", "google_issuer")
    @classmethod
    def _provider_issuer(cls, value: str | None) -> str | None:
        # Kept exactly as written: OIDC Discovery §4.3 compares it with the provider's `issuer`.
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"must be an absolute http(s) URL without query or fragment, got {value!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(f"must use https unless it is a loopback address, got {value!r}")
        return value

    @field_validator("oidc_scopes", "google_scopes")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError(f"must include openid (OpenID Connect sign-in), got {value!r}")
        return value

    @field_validator("github_url", "github_api_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("auth_database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # postgres:// and postgresql:// as providers hand them out run on asyncpg (db/urls.py).
        return async_database_url(value) if value else value

    @field_validator("auth_resources", mode="before")
    @classmethod
    def _resources_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON list of resources: {exc.msg}") from None
        return None if value is None else _resource_entries(value)

    @field_validator("auth_trusted_issuers", mode="before")
    @classmethod
    def _trusted_issuers_json(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON list of trusted issuers: {exc.msg}") from None
        on_loopback = is_loopback_host(urlsplit(str(info.data.get("auth_issuer", ""))).hostname)
        return parse_entries(value, own_issuer_on_loopback=on_loopback)

    @model_validator(mode="after")
    def _production_refuses_insecure_defaults(self) -> AuthSettings:
        if self.auth_upstream is None:
            self.auth_upstream = self._configured_upstream()
        if self.auth_upstream == "dev" and not self.is_local:
            raise ValueError("AUTH_UPSTREAM: 'dev' is refused unless AUTH_ISSUER is a loopback URL")
        self._check_upstream_settings(self.auth_upstream)
        if self.auth_metrics_port is not None and self.auth_metrics_port == self.port:
            raise ValueError(
                f"AUTH_METRICS_PORT: must differ from the public port {self.port}: metrics stay off it"
            )
        if self.auth_secret_key is None and not self.is_local:
            raise ValueError(
                "AUTH_SECRET_KEY: required (at least 32 characters) when AUTH_ISSUER is not loopback"
            )
        if self.auth_secret_key is not None and len(self.auth_secret_key.get_secret_value()) < 32:
            raise ValueError("AUTH_SECRET_KEY: must be at least 32 characters")
        secret = self.auth_secret_key.get_secret_value() if self.auth_secret_key else ""
        if not self.is_local and any(marker in secret for marker in PLACEHOLDER_MARKERS):
            raise ValueError(
                "AUTH_SECRET_KEY: still the example's placeholder; generate one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return self

    @property
    def rate_limits_enabled(self) -> bool:
        return (not self.is_local) if self.auth_rate_limits is None else self.auth_rate_limits

    def _configured_upstream(self) -> Upstream:
        """The upstream whose client id is set (github, google, oidc); else dev on a loopback issuer."""
        client_ids: dict[Upstream, str | None] = {
            "github": self.github_client_id,
            "google": self.google_client_id,
            "oidc": self.oidc_client_id,
        }
        configured = [name for name, client_id in client_ids.items() if client_id]
        if len(configured) > 1:
            raise ValueError(f"AUTH_UPSTREAM: set it; client ids for {' and '.join(configured)} are all set")
        if configured:
            return configured[0]
        if self.is_local:
            return "dev"
        raise ValueError("AUTH_UPSTREAM: set it (github, google or oidc); dev is loopback-only")

    def _check_upstream_settings(self, upstream: Upstream) -> None:
        """Credentials the upstream needs, and no allow-list it would silently ignore."""
        required = [name.upper() for name in UPSTREAM_CREDENTIALS.get(upstream, ())]
        missing = [name for name in required if not getattr(self, name.lower())]
        if missing:
            names = ", ".join(required[:-1]) + f" and {required[-1]}"
            raise ValueError(f"{missing[0]}: the {upstream} upstream needs {names}")
        if upstream in ("google", "oidc") and (self.auth_allowed_orgs or self.auth_allowed_teams):
            variable = "AUTH_ALLOWED_ORGS" if self.auth_allowed_orgs else "AUTH_ALLOWED_TEAMS"
            raise ValueError(f"{variable}: only the github upstream has organisations and teams")
        if upstream == "github" and self.auth_allowed_domains:
            raise ValueError("AUTH_ALLOWED_DOMAINS: applies to the google and oidc upstreams only")
        if upstream != "google" and self.google_hosted_domains:
            raise ValueError("GOOGLE_HOSTED_DOMAINS: applies to the google upstream only")

    @property
    def is_local(self) -> bool:
        return is_loopback_host(urlsplit(self.auth_issuer).hostname)

    @property
    def port(self) -> int:
        if self.auth_port is not None:
            return self.auth_port
        parts = urlsplit(self.auth_issuer)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def database_url(self) -> str:
        return self.auth_database_url or f"sqlite+aiosqlite:///{DATA_DIR / 'auth.db'}"

    @property
    def secret_key(self) -> bytes:
        if self.auth_secret_key is not None:
            return self.auth_secret_key.get_secret_value().encode()
        return _local_secret_key()

    @property
    def resources(self) -> list[ResourceConfig]:
        if self.auth_resources is not None:
            return self.auth_resources
        if not self.is_local:
            return []
        # The two MCP services `make dev` starts.
        return [
            ResourceConfig(
                resource=f"http://127.0.0.1:{port}/mcp",
                scopes=["mcp:tools", "github:repos"],
                default_scopes=["mcp:tools"],
                name=f"Example MCP server :{port}",
                aliases=[f"http://127.0.0.1:{port}/sse"],
                upstream_token_scope="github:repos",
            )
            for port in (9101, 9102)
        ]

    @property
    def upstream_scopes(self) -> str:
        if self.github_scopes:
            return self.github_scopes
        wants_org = bool(self.auth_allowed_orgs or self.auth_allowed_teams)
        return "read:user user:email" + (" read:org" if wants_org else "")


RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """'20/hour' -> (20, 3600)."""
    count, _, period = value.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or period.strip() not in RATE_PERIODS:
        raise ValueError(f"must look like 20/hour (per second, minute or hour), got {value!r}")
    return int(count), RATE_PERIODS[period.strip()]


def _local_secret_key() -> bytes:
    """A secret generated once into .data/ so local restarts keep tokens and keys readable."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        write_private_file(path, secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def write_private_file(path: Path, content: str) -> None:
    """Create `path` holding `content`, readable by its owner only from the moment it exists.

    The content goes into a file created with mode 0600 (O_CREAT|O_EXCL: never an existing file or a
    symlink planted there), which is then linked into place, so `path` never exists world-readable
    or half-written. If another process created `path` first, its file stands (FileExistsError is
    swallowed): both then read the same secret.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


def load_settings(**overrides: Any) -> AuthSettings:
    """Build settings, turning a validation failure into one line naming the variable."""
    try:
        settings = AuthSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    _check_local_defaults_writable(settings)
    return settings


# What a deployment (a container, a cluster) must set; the local-run defaults need a writable .data/.
DEPLOYMENT_SETTINGS = "AUTH_ISSUER (https://...), AUTH_SECRET_KEY, AUTH_DATABASE_URL and an upstream"


def _check_local_defaults_writable(settings: AuthSettings) -> None:
    """A local run keeps its generated secret and SQLite database in .data/; say so if it can't.

    This is what a container run with no settings meets (its working directory is not writable): one
    line naming what a deployment sets, instead of a PermissionError from deep inside start-up.
    """
    missing = [
        name
        for name, value in (
            ("AUTH_SECRET_KEY", settings.auth_secret_key),
            ("AUTH_DATABASE_URL", settings.auth_database_url),
        )
        if not value
    ]
    if not missing:
        return
    try:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        probe = DATA_DIR / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SettingsError(
            f"{' and '.join(missing)}: not set, and the local-run defaults cannot be kept in "
            f"{DATA_DIR.resolve()} ({exc.strerror or type(exc).__name__}); a deployment sets "
            f"{DEPLOYMENT_SETTINGS} (docs/configuration.md)"
        ) from None


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["loc"]:
        variable = str(error["loc"][0]).upper()
        return f"{variable}: {message}"
    return message
