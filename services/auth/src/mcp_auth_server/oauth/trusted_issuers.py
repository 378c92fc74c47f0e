"""Trusted token issuers: whose JWTs the token endpoint accepts as authorization grants (RFC 7523 §2.1).

Two kinds, one entry shape (AUTH_TRUSTED_ISSUERS and `mcp-auth issuers add` both build a
`TrustedIssuerConfig`, so both are checked by the same rules):

- `enterprise-idp`: an enterprise identity provider issuing Identity Assertion JWT Authorization
  Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant; MCP "Enterprise-Managed
  Authorization"). Its rules say which claim names the user and how that maps to our users.
- `workload`: a platform issuing workload identities (a Kubernetes service-account token, a GitHub
  Actions OIDC token; MCP "Workload Identity Federation", SEP-1933). Its rules say which subjects
  (exact or glob) become which machine identity, for which resource and scopes. The extension
  requires exactly this: "claim-based authorization rules" on top of issuer trust.

Keys come from the issuer's OpenID / RFC 8414 metadata, an explicit `jwks_uri`, or a static `jwks`
(air-gapped clusters). Issuers and key URLs are https; loopback http only when our own issuer is on
loopback (local runs and tests), as for client metadata documents.

Framework-free: the registry (store/trusted_issuers.py) holds these, the grant (grants/jwt_bearer.py)
applies them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mcp_auth_server.config_problems import first_problem
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource, canonical_resource

IssuerKind = Literal["enterprise-idp", "workload"]
ENTERPRISE_IDP: IssuerKind = "enterprise-idp"
WORKLOAD: IssuerKind = "workload"

# RFC 8725 §3.1/§3.2: asymmetric algorithms only; never `none`, never HMAC (a public key is no secret).
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
# RFC 6749 §3.3 scope-token.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+", re.ASCII)
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


class WorkloadRule(BaseModel):
    """What the workloads whose subject matches one pattern may obtain."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    resource: str
    """The MCP server (a registered resource) their tokens are for. Required."""
    scopes: list[str] = Field(min_length=1)
    """The scopes they may obtain there (at most these; a request may ask for fewer). Required."""
    identity: str | None = Field(default=None, min_length=1, max_length=255)
    """The machine identity their access tokens name as `sub` (and `client_id` when no client
    authenticated). Unset: `<issuer>#<the token's sub>`, unique across issuers."""

    @field_validator("resource")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            return canonical_resource(value)
        except InvalidResource as exc:
            raise ValueError(str(exc)) from None

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not an RFC 6749 scope-token")
        return list(dict.fromkeys(value))


class TrustedIssuerConfig(BaseModel):
    """One trusted issuer (an AUTH_TRUSTED_ISSUERS entry, or one added by `mcp-auth issuers add`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    issuer: str
    """The issuer exactly as its tokens' `iss` names it (https; loopback http only when our own issuer is
    on loopback). Required."""
    kind: IssuerKind
    """`enterprise-idp` (its ID-JAGs sign users in, no consent page) or `workload` (its tokens become machine
    identities). Required."""
    jwks_uri: str | None = None
    """Where its signing keys are (https). Unset, and no `jwks`: found in its OpenID
    (`/.well-known/openid-configuration`) or RFC 8414 metadata."""
    jwks: dict[str, Any] | None = None
    """Its public keys as a static JWK Set (`{"keys": [...]}`), for issuers we cannot reach (air-gapped
    clusters). Rotating them means changing this entry."""
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    """Signature algorithms accepted from it (asymmetric only: RS*, PS*, ES*, EdDSA)."""
    max_lifetime: int | None = Field(default=None, ge=30, le=86_400)
    """The longest lifetime (`exp` - `iat`, seconds) accepted for its tokens. Unset: 600 for an
    `enterprise-idp`, 3600 for a `workload` issuer (a Kubernetes projected token's default hour)."""
    name: str | None = Field(default=None, max_length=200)
    """A display name for audit events and listings. Unset: the issuer URL."""
    # enterprise-idp
    user_claim: Literal["sub", "email"] = "sub"
    """enterprise-idp: the ID-JAG claim that identifies the user here (`sub`, or `email`, which counts only
    with `email_verified: true`)."""
    link_by_email: bool = True
    """enterprise-idp: a user seen for the first time is linked to the existing user with the same email
    (only an address the IdP marks `email_verified: true`; any other is never linked)."""
    create_users: bool = True
    """enterprise-idp: a user neither pinned nor linked is created (just-in-time provisioning); false refuses
    them with `invalid_grant`."""
    pinned_users: dict[str, str] = {}
    """enterprise-idp: the `user_claim` value -> our user id, set by an admin; overrides linking."""
    # workload
    audience: str | None = None
    """workload: the `aud` its tokens must carry (e.g. the audience of a Kubernetes token projection).
    Unset: our issuer or our token endpoint URL."""
    subjects: dict[str, WorkloadRule] = {}
    """workload: subject pattern -> rule. A pattern is exact, or a glob where `*` matches any characters but
    `:` (`system:serviceaccount:agents:*`, `repo:acme/*:ref:refs/heads/main`), so it never spans a field of
    the subject. An exact pattern wins over globs; among globs the first listed wins. A subject matching
    none is refused."""
    single_use: bool = True
    """workload: each token (`jti`) is accepted once. Kubernetes re-uses a projected token until 80% of its
    lifetime; set false for such issuers and keep `max_lifetime` short (the token still expires)."""

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"must be an absolute http(s) URL without query or fragment (got {value!r})")
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
                raise ValueError(f"must be an absolute http(s) URL (got {value!r})")
        return value

    @field_validator("jwks")
    @classmethod
    def _static_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        keys = value.get("keys")
        if not isinstance(keys, list) or not keys:
            raise ValueError('must be a JWK Set with at least one key: {"keys": [...]}')
        for jwk in keys:
            if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") == "oct":
                raise ValueError("holds a private or symmetric key; publish public keys only")
            if not isinstance(jwk.get("kid"), str):
                raise ValueError("every key needs a kid")
        # Imported here: settings load this module, and admin commands must not pay for httpx and PyJWT.
        from mcp_auth_kit.jwks import parse_jwks

        usable = parse_jwks(value, {})
        unusable = [jwk["kid"] for jwk in keys if jwk["kid"] not in usable]
        if unusable:
            raise ValueError(f"key {unusable[0]!r} is not a usable public signature key")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        refused = [algorithm for algorithm in value if algorithm not in ASYMMETRIC_ALGORITHMS]
        if refused or not value:
            raise ValueError(f"must list asymmetric algorithms only ({', '.join(ASYMMETRIC_ALGORITHMS)})")
        return value

    @model_validator(mode="after")
    def _rules_fit_the_kind(self) -> TrustedIssuerConfig:
        if self.jwks is not None and self.jwks_uri is not None:
            raise ValueError("give jwks_uri or jwks, not both")
        if self.kind == WORKLOAD:
            if not self.subjects:
                raise ValueError("a workload issuer needs subjects: {pattern: {resource, scopes}}")
            if self.pinned_users:
                raise ValueError("pinned_users is for enterprise-idp issuers")
        elif self.subjects or self.audience is not None:
            raise ValueError("subjects and audience are for workload issuers")
        elif not self.single_use:
            raise ValueError("an ID-JAG is always single use (single_use is for workload issuers)")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.issuer

    @property
    def lifetime_limit(self) -> int:
        if self.max_lifetime is not None:
            return self.max_lifetime
        return 600 if self.kind == ENTERPRISE_IDP else 3600

    @cached_property
    def _globs(self) -> list[tuple[re.Pattern[str], WorkloadRule]]:
        return [
            (re.compile("[^:]*".join(re.escape(part) for part in pattern.split("*"))), rule)
            for pattern, rule in self.subjects.items()
            if "*" in pattern
        ]

    def rule_for(self, subject: str) -> WorkloadRule | None:
        """The rule for a workload's `sub`: its exact pattern, else the first glob it matches, else None."""
        exact = self.subjects.get(subject)
        if exact is not None:
            return exact
        return next((rule for pattern, rule in self._globs if pattern.fullmatch(subject)), None)

    def urls(self) -> list[tuple[str, str]]:
        """(field, URL) pairs whose scheme `check_transport` rules on."""
        return [("issuer", self.issuer)] + ([("jwks_uri", self.jwks_uri)] if self.jwks_uri else [])


def is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in _LOOPBACK_HOSTS


def check_transport(config: TrustedIssuerConfig, *, own_issuer_on_loopback: bool) -> None:
    """https everywhere; http only for loopback URLs and only when we run on loopback ourselves."""
    for field, url in config.urls():
        if urlsplit(url).scheme == "https":
            continue
        if not (own_issuer_on_loopback and is_loopback_url(url)):
            raise ValueError(f"{field}: must be https (http only on loopback when AUTH_ISSUER is loopback)")


def parse_entries(entries: Any, *, own_issuer_on_loopback: bool) -> list[TrustedIssuerConfig]:
    """AUTH_TRUSTED_ISSUERS: each entry checked like `issuers add`; an error names the entry and field."""
    if not isinstance(entries, list):
        raise ValueError("must be a JSON list of trusted issuers")
    configs: list[TrustedIssuerConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        named = entry.get("issuer") if isinstance(entry, Mapping) else None
        label = f"entry {index}" + (f" ({named})" if isinstance(named, str) else "")
        try:
            config = TrustedIssuerConfig.model_validate(entry)
            check_transport(config, own_issuer_on_loopback=own_issuer_on_loopback)
        except ValidationError as exc:
            raise ValueError(
                f"{label}: {first_problem(exc, TrustedIssuerConfig, 'a trusted issuer')}"
            ) from None
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        if config.issuer in seen:
            raise ValueError(f"{label}: {config.issuer} is named by an earlier entry")
        seen.add(config.issuer)
        configs.append(config)
    return configs
