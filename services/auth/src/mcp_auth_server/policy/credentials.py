"""The one rule every credential obeys, decided in one place.

A credential (an authorization code, an access or refresh token, a user's upstream token handed out by
exchange, an `active: true` from introspection) exists only while
1. the user is not disabled and the upstream still admits them (asked again at most every
   AUTH_UPSTREAM_RECHECK_SECONDS; a user it refuses is deprovisioned at once: `admission.py`),
2. the client is registered and allowed the way it is obtaining the credential,
3. the grant the credential belongs to (if any) is neither revoked nor past its family lifetime, and
4. the user's remembered consent for this client and resource covers the scopes, which the resource
   still offers (for a machine client: the operator allowed it that resource and those scopes).
Token exchange additionally needs the resource's upstream-token scope, granted and consented.
An identity assertion grant (ID-JAG) is the enterprise IdP vouching for the user and delegating to the
client just now, by its own policy: that stands in for rule 4 (consent) and, for a user the upstream
does not know, for rule 1; a disabled user, or one the upstream no longer admits, stays refused. A
workload's allowance is the trusted issuer's rule for its subject (rule 4).

Cheap checks come first; asking the upstream, the only one that may leave this process, comes last.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from mcp_auth_server.clock import now
from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.oauth.rfc7523_jwt_bearer import JWT_BEARER
from mcp_auth_server.oauth.scopes import OFFLINE_ACCESS
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.store.resources import RegisteredResource
from mcp_auth_server.store.standings import ClientStanding, UserStanding

MACHINE = "machine"


class Refusal(enum.Enum):
    """Why a credential may not exist, with the OAuth error the token endpoint answers it with."""

    USER_DISABLED = ("invalid_grant", "the user is disabled")
    USER_NOT_ADMITTED = ("invalid_grant", "the user may no longer use this service")
    NO_USER = ("invalid_grant", "the credential belongs to no user")
    CLIENT_NOT_ALLOWED = ("unauthorized_client", "the client may not obtain this credential")
    GRANT_ENDED = ("invalid_grant", "the grant has ended")
    TOKEN_REVOKED = ("invalid_grant", "the access token has been revoked")
    NO_CONSENT = ("invalid_grant", "the user has not approved this application for this resource")
    SCOPE_NOT_CONSENTED = ("invalid_grant", "the user has not approved these scopes")
    UNKNOWN_RESOURCE = ("invalid_target", "the resource is not registered")
    SCOPE_NOT_OFFERED = ("invalid_scope", "the resource does not offer these scopes")
    RESOURCE_NOT_ALLOWED = ("invalid_target", "this client may not obtain tokens for that resource")
    SCOPE_NOT_ALLOWED = ("invalid_scope", "this client may not obtain these scopes")

    @property
    def error(self) -> str:
        return self.value[0]

    @property
    def reason(self) -> str:
        return self.value[1]


class CredentialRefused(Exception):
    """The policy said no. `persist`: the refusal changed state (a user deprovisioned) that must be kept."""

    def __init__(self, refusal: Refusal, detail: str = "", *, persist: bool = False) -> None:
        super().__init__(f"{refusal.reason}{f': {detail}' if detail else ''}")
        self.refusal = refusal
        self.persist = persist

    def oauth_error(self) -> OAuthError:
        """The refusal as the token endpoint words it (RFC 6749 §5.2, RFC 8707 §2)."""
        return OAuthError(self.refusal.error, str(self), persist=self.persist)


class Admission(Protocol):
    async def still_admitted(self, user: UserStanding) -> None:
        """Return if the upstream (still) admits `user`; raise CredentialRefused after deprovisioning them."""
        ...


class Resources(Protocol):
    def get(self, resource: str) -> RegisteredResource | None: ...


# The grant type a client must be registered for to obtain a credential along each path. Introspection,
# exchange and the account page honour credentials obtained earlier: the client must merely still exist.
REQUIRED_GRANT_TYPE = {
    Path.AUTHORIZE_SILENTLY: "authorization_code",
    Path.CONSENT_APPROVAL: "authorization_code",
    Path.CODE_REDEMPTION: "authorization_code",
    Path.REFRESH: "refresh_token",
    Path.ID_JAG: JWT_BEARER,
    Path.WORKLOAD: JWT_BEARER,
}


class CredentialPolicy:
    def __init__(self, resources: Resources, admission: Admission) -> None:
        self._resources = resources
        self._admission = admission

    async def decide(self, question: Question) -> None:
        """Return if the credential may exist; raise CredentialRefused saying why not."""
        user = question.user
        check_client(question.path, question.client, has_user=user is not None)
        grant = question.grant
        if grant is not None and (grant.revoked or grant.expires_at <= now()):
            raise CredentialRefused(Refusal.GRANT_ENDED)
        resource = self._resources.get(question.resource)
        if resource is None:
            raise CredentialRefused(Refusal.UNKNOWN_RESOURCE, question.resource)
        _check_scopes_offered(question.scopes, resource, user_credential=user is not None)
        if user is None:
            _check_machine_allowance(question)
            return
        if question.path is Path.ID_JAG:
            if user.disabled:
                raise CredentialRefused(Refusal.USER_DISABLED)
            if user.identity_id is not None:  # known to our upstream too: it must still admit them
                await self._admission.still_admitted(user)
            return
        _check_consent(question, resource)
        await self.admit(user)

    async def admit(self, user: UserStanding) -> None:
        """Rule 1 on its own: the user is not disabled and is still admitted upstream (a signed-in
        browser session is honoured only then)."""
        if user.disabled:
            raise CredentialRefused(Refusal.USER_DISABLED)
        await self._admission.still_admitted(user)


def check_client(path: Path, client: ClientStanding, *, has_user: bool) -> None:
    """Whether the client may obtain (or still use) a credential along `path`: rule 2 on its own, for
    /authorize to ask before it shows a consent page nobody could act on."""
    if path is Path.CLIENT_CREDENTIALS:
        if client.origin != MACHINE or has_user:
            raise CredentialRefused(Refusal.CLIENT_NOT_ALLOWED, "only machine clients use client_credentials")
        return
    if path is Path.WORKLOAD and has_user:
        raise CredentialRefused(Refusal.CLIENT_NOT_ALLOWED, "a workload token names no user")
    if not has_user and path not in (Path.INTROSPECTION, Path.WORKLOAD):
        raise CredentialRefused(Refusal.NO_USER)
    needed = REQUIRED_GRANT_TYPE.get(path)
    if needed is not None and needed not in client.grant_types:
        raise CredentialRefused(Refusal.CLIENT_NOT_ALLOWED, f"the client is not registered for {needed}")


def _check_scopes_offered(
    scopes: Sequence[str], resource: RegisteredResource, *, user_credential: bool
) -> None:
    offered = set(resource.scopes) | ({OFFLINE_ACCESS} if user_credential else set())
    missing = sorted(set(scopes) - offered)
    if missing:
        raise CredentialRefused(Refusal.SCOPE_NOT_OFFERED, f"{' '.join(missing)} for {resource.resource}")


def _check_machine_allowance(question: Question) -> None:
    client: ClientStanding = question.client
    if question.resource not in client.allowed_resources:
        raise CredentialRefused(Refusal.RESOURCE_NOT_ALLOWED)
    if not question.scopes or not set(question.scopes) <= set(client.allowed_scopes):
        allowed = " ".join(client.allowed_scopes) or "(none)"
        raise CredentialRefused(Refusal.SCOPE_NOT_ALLOWED, f"allowed scopes for this client are: {allowed}")


def _check_consent(question: Question, resource: RegisteredResource) -> None:
    if question.path is Path.TOKEN_EXCHANGE:
        needed = resource.upstream_token_scope
        if needed is None or needed not in question.scopes:
            raise CredentialRefused(
                Refusal.SCOPE_NOT_CONSENTED,
                f"{resource.resource} may not obtain the user's upstream token"
                + (f" without {needed}" if needed else ""),
            )
    if question.path is Path.CONSENT_APPROVAL:
        return  # the user is giving consent right now
    consent = question.consent
    if consent is None or consent.expires_at <= now():
        raise CredentialRefused(Refusal.NO_CONSENT)
    if not set(question.scopes) <= consent.scopes:
        raise CredentialRefused(
            Refusal.SCOPE_NOT_CONSENTED, " ".join(sorted(set(question.scopes) - consent.scopes))
        )
