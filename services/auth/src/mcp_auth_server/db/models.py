"""The auth service's tables: one schema for Postgres (asyncpg) and SQLite (aiosqlite).

Conventions that keep both engines equal: times are integer epoch seconds (SQLite has no
timezone-aware timestamps), identifiers are strings we generate, and every secret we issue
(codes, refresh tokens, client secrets, session ids, upstream `state`) is stored only as its
SHA-256 hash. Upstream tokens and private keys are stored AES-GCM encrypted (see crypto/).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names so alembic migrations are identical on every engine.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
AutoId = BigInteger().with_variant(Integer(), "sqlite")
Hash = String(64)  # hex SHA-256


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Client(Base):
    """An OAuth client: registered dynamically (RFC 7591), by metadata document, or by an operator."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    client_secret_hash: Mapped[str | None] = mapped_column(Hash)
    client_secret_expires_at: Mapped[int] = mapped_column(BigInteger, default=0)
    client_name: Mapped[str | None] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    application_type: Mapped[str] = mapped_column(String(20), default="web")
    # dcr | cimd | preregistered | machine | resource_server
    origin: Mapped[str] = mapped_column(String(20))
    # Machine clients: resources and scopes the operator allowed.
    allowed_resources: Mapped[list[str]] = mapped_column(default=list)
    allowed_scopes: Mapped[list[str]] = mapped_column(default=list)
    # Resource-server clients: the resource they serve (token exchange, introspection).
    served_resource: Mapped[str | None] = mapped_column(String(2048))
    metadata_document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Client ID metadata document clients: when the cached document must be fetched again.
    metadata_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    # private_key_jwt clients (RFC 7523 §2.2): their public keys, inline (RFC 7591 `jwks`) or by URL;
    # or the workload (a trusted workload issuer and a subject there) whose platform token is its assertion.
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    jwks_uri: Mapped[str | None] = mapped_column(String(2000))
    workload_issuer: Mapped[str | None] = mapped_column(String(2000))
    workload_subject: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (UniqueConstraint("workload_issuer", "workload_subject"),)


class Resource(Base):
    """A resource server (MCP server) tokens may be issued for; `resource` is its canonical URL."""

    __tablename__ = "resources"

    resource: Mapped[str] = mapped_column(String(2048), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    default_scopes: Mapped[list[str]] = mapped_column(default=list)
    # The scope that lets this server obtain the user's upstream token by exchange; None: it may not.
    upstream_token_scope: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    # scope -> text for the consent page; other identifiers of the same server (e.g. its /sse URL).
    scope_descriptions: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    aliases: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    # RFC 9449 policy: "required" (tokens only for DPoP token requests) or "allowed".
    dpop: Mapped[str] = mapped_column(String(10), default="allowed", server_default="allowed")


class TrustedIssuer(Base):
    """A trusted token issuer added with `mcp-auth issuers add` (AUTH_TRUSTED_ISSUERS entries win).

    `config` is the entry as `TrustedIssuerConfig` validates it (oauth/trusted_issuers.py), including
    an admin's pinned user mappings, so the CLI and the environment share one set of rules.
    """

    __tablename__ = "trusted_issuers"

    issuer: Mapped[str] = mapped_column(String(2048), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    """A person, known to us by the upstream identities linked to them."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    login: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_login_at: Mapped[int | None] = mapped_column(BigInteger)
    # `mcp-auth users disable`: no sign-in, no credential, until `enable`.
    disabled_at: Mapped[int | None] = mapped_column(BigInteger)


class UpstreamIdentity(Base):
    """A user's account at an upstream provider, keyed by the provider's stable subject (GitHub id)."""

    __tablename__ = "upstream_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    scopes: Mapped[str | None] = mapped_column(Text)
    # Allow-list decision cache: when the upstream was last asked whether the user may sign in.
    checked_at: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Consent(Base):
    """A user's remembered approval of one client for one resource and a set of scopes."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id", "resource"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    resource: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuthorizationRequest(Base):
    """An /authorize request in flight: shown for consent, then sent upstream, then answered.

    The row id travels in the consent form; the upstream `state` exists only after approval
    (its hash is stored), is single-use, and is bound to the browser by `browser_binding_hash`.
    """

    __tablename__ = "authorization_requests"

    id_hash: Mapped[str] = mapped_column(Hash, primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    client_state: Mapped[str | None] = mapped_column(String(2048))
    code_challenge: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    browser_binding_hash: Mapped[str] = mapped_column(Hash)
    upstream_state_hash: Mapped[str | None] = mapped_column(Hash, unique=True)
    # Per-request upstream secrets (PKCE verifier, OIDC nonce), encrypted.
    upstream_secrets_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    # RFC 9449 §10: the thumbprint of the key the code must be redeemed with, if the client named one.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class AuthorizationCode(Base):
    """An issued authorization code (RFC 6749 §4.1.2), bound to everything it was issued for."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(Hash, primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    redeemed_at: Mapped[int | None] = mapped_column(BigInteger)
    # What the redemption produced, so a replay can revoke it (RFC 6749 §10.5).
    grant_id: Mapped[str | None] = mapped_column(String(36))
    access_token_jti: Mapped[str | None] = mapped_column(String(64))
    access_token_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 9449 §10: redeemable only with a DPoP proof by the key of this thumbprint.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class Grant(Base):
    """What a user granted a client for one resource; its refresh tokens form one family."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_user_id_client_id", "user_id", "client_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    resource: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    # The family's newest refresh-token generation, read under the grant's row lock on refresh.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # RFC 9449 §5: the thumbprint of the DPoP key a public client's refresh tokens are bound to.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(Base):
    """One generation of a grant's refresh-token family; rotated tokens are kept to detect reuse."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(Hash, primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    # The previous token may be presented once more within the grace window (a lost response).
    grace_used: Mapped[bool] = mapped_column(Boolean, default=False)


class RevokedAccessToken(Base):
    """A revoked access token's `jti`, remembered until the token would have expired (RFC 7009)."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class UsedIdentifier(Base):
    """A single-use identifier (a DPoP proof's or an assertion's `jti`) already accepted once.

    Kept until `expires_at`, after which the credential that carried it is refused anyway
    (store/replay_cache.py; used only when AUTH_REDIS_URL is not set).
    """

    __tablename__ = "used_identifiers"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # "<namespace>:<sha-256 of it>"
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class SigningKey(Base):
    """A JWT signing key: published from `created_at`, signs from `activates_at` until `retires_at`."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger)
    # When set: stops signing then, stays published until every token it signed has expired.
    retires_at: Mapped[int | None] = mapped_column(BigInteger)


class BrowserSession(Base):
    """The auth service's own signed-in session, so returning users skip the upstream round trip."""

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(Hash, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class AuditEvent(Base):
    """Security-relevant events an operator may need to reconstruct later."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(36))
    client_id: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AccountSignIn(Base):
    """A sign-in to the user's own account page in flight: no OAuth client, so no consent step.

    Like an authorization request's upstream state: single-use, 10 minutes, bound to one browser.
    """

    __tablename__ = "account_sign_ins"

    state_hash: Mapped[str] = mapped_column(Hash, primary_key=True)
    browser_binding_hash: Mapped[str] = mapped_column(Hash)
    # Per-sign-in upstream secrets (PKCE verifier, OIDC nonce), encrypted.
    upstream_secrets_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
