"""The resource servers (MCP servers) tokens may be issued for: AUTH_RESOURCES plus the CLI's.

Held in memory and reloaded every few seconds, so the token endpoint never queries for them
and a resource added with `mcp-auth resources add` reaches every replica quickly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mcp_auth_server.db.models import Resource
from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource, canonical_resource
from mcp_auth_server.oauth.scopes import OFFLINE_ACCESS
from mcp_auth_server.settings import DPoPPolicy, ResourceConfig


class UnknownResource(Exception):
    """The value names no registered resource, or is not a valid resource indicator at all."""


@dataclass(frozen=True)
class RegisteredResource:
    resource: str  # canonical form; this exact string becomes the token's `aud`
    name: str
    scopes: tuple[str, ...]
    default_scopes: tuple[str, ...]
    # The scope that lets this server obtain the user's upstream token by exchange; None: it may not.
    upstream_token_scope: str | None = None
    scope_descriptions: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # other identifiers clients may use for it (its /sse endpoint)
    dpop: DPoPPolicy = "allowed"  # RFC 9449: "required" refuses token requests without a proof

    @property
    def dpop_required(self) -> bool:
        return self.dpop == "required"


def registered(config: ResourceConfig) -> RegisteredResource:
    resource = canonical_resource(config.resource)
    return RegisteredResource(
        resource=resource,
        name=config.name or resource,
        scopes=tuple(config.scopes),
        default_scopes=tuple(config.default_scopes or config.scopes),
        upstream_token_scope=config.upstream_token_scope,
        scope_descriptions=dict(config.scope_descriptions),
        aliases=tuple(config.aliases),
        dpop=config.dpop,
    )


def merged(rows: Sequence[Resource], configured: list[RegisteredResource]) -> dict[str, RegisteredResource]:
    """Resources added with the CLI, overridden by those configured in AUTH_RESOURCES, by resource URL."""
    by_resource = {
        row.resource: RegisteredResource(
            row.resource,
            row.name or row.resource,
            tuple(row.scopes),
            tuple(row.default_scopes or row.scopes),
            row.upstream_token_scope,
            dict(row.scope_descriptions),
            tuple(row.aliases),
            dpop="required" if row.dpop == "required" else "allowed",
        )
        for row in rows
    }
    by_resource.update({r.resource: r for r in configured})
    return by_resource


def by_identifier(resources: Mapping[str, RegisteredResource]) -> dict[str, RegisteredResource]:
    """Every identifier clients may name (resource URLs, then aliases no resource URL claims) -> resource."""
    identifiers = dict(resources)
    for registered_resource in resources.values():
        for alias in registered_resource.aliases:
            identifiers.setdefault(alias, registered_resource)
    return identifiers


class ResourceRegistry:
    RELOAD_SECONDS = 5.0

    def __init__(self, sessions: async_sessionmaker[AsyncSession], configured: list[ResourceConfig]) -> None:
        self._sessions = sessions
        self._configured = [registered(config) for config in configured]
        self._by_resource: dict[str, RegisteredResource] = {r.resource: r for r in self._configured}
        self._by_identifier = by_identifier(self._by_resource)
        self._loaded_at = 0.0

    async def load(self, session: AsyncSession | None = None) -> None:
        if session is None:
            async with self._sessions() as own:
                rows = (await own.scalars(select(Resource))).all()
        else:
            rows = (await session.scalars(select(Resource))).all()
        self._by_resource = merged(rows, self._configured)
        self._by_identifier = by_identifier(self._by_resource)
        self._loaded_at = time.monotonic()

    async def refresh_if_stale(self, session: AsyncSession | None = None) -> None:
        """Reload if older than RELOAD_SECONDS. A request handler passes its own session: taking a second
        pooled connection while holding one deadlocks (until the pool timeout) once the pool is full."""
        if time.monotonic() - self._loaded_at > self.RELOAD_SECONDS:
            await self.load(session)

    def all(self) -> list[RegisteredResource]:
        return sorted(self._by_resource.values(), key=lambda r: r.resource)

    def scopes_supported(self) -> list[str]:
        scopes = {scope for r in self._by_resource.values() for scope in r.scopes}
        return [*sorted(scopes), OFFLINE_ACCESS]

    def get(self, resource: str) -> RegisteredResource | None:
        """The resource registered under exactly this canonical URL (a token's `aud`, a grant's resource)."""
        return self._by_resource.get(resource)

    def dpop_required(self, resource: str) -> bool:
        """Whether the resource (canonical: a code's or grant's) takes DPoP-bound tokens only (RFC 9449)."""
        found = self._by_resource.get(resource)
        return found is not None and found.dpop_required

    def find(self, value: str) -> RegisteredResource:
        """The registered resource a client's `resource` value names (RFC 8707 §2), or UnknownResource."""
        try:
            canonical = canonical_resource(value)
        except InvalidResource as exc:
            raise UnknownResource(str(exc)) from None
        found = self._by_identifier.get(canonical)
        if found is None:
            raise UnknownResource(f"unknown resource {value!r}")
        return found

    def audience(self, value: str) -> str:
        """The token audience a client's `resource` value stands for: its resource's URL when it names an
        alias, else its canonical form (InvalidResource for a malformed value)."""
        canonical = canonical_resource(value)
        found = self._by_identifier.get(canonical)
        return canonical if found is None else found.resource
