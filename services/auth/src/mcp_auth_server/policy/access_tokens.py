"""Is an access token we issued still good? Asked wherever one is honoured by us (introspection,
token exchange) — one answer, so revocation and introspection cannot disagree.

A JWT is valid until it expires; what makes it *good* is everything behind it: its own `jti` not
revoked (RFC 7009), the grant it names alive, and the credential policy still allowing the user,
the client and the scopes. A token that names no grant is a machine client's (its `sub` is the
client), which must still exist and be allowed the token's resource and scopes, or a user's issued on an
enterprise IdP's ID-JAG (its `idp` claim): the IdP must still be trusted (its trust is the grant), the
user still allowed and the client still registered for the grant. A workload's token (JWT-bearer, `sub`
a machine identity) is not honoured here yet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_server.db.models import User
from mcp_auth_server.oauth.rfc9068_access_tokens import GRANT_CLAIM, IDP_CLAIM, audiences
from mcp_auth_server.oauth.scopes import parse_scope
from mcp_auth_server.oauth.trusted_issuers import ENTERPRISE_IDP
from mcp_auth_server.policy.credentials import CredentialPolicy, CredentialRefused, Refusal
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.store.clients import read_client
from mcp_auth_server.store.grants import grant_in_use
from mcp_auth_server.store.revocation import is_access_token_revoked
from mcp_auth_server.store.standings import client_standing
from mcp_auth_server.store.trusted_issuers import TrustedIssuerRegistry
from mcp_auth_server.store.users import user_standing_of


async def check_still_good(
    session: AsyncSession,
    policy: CredentialPolicy,
    claims: dict[str, Any],
    path: Path,
    provider: str,
    issuers: TrustedIssuerRegistry,
) -> None:
    """Return if the (signature-checked) token is still good; raise CredentialRefused saying why not.

    `provider`: the configured upstream, whose identity of the user counts for admission; `issuers`: the
    trusted issuers, one of which must still vouch for a token issued on an ID-JAG."""
    scopes = parse_scope(str(claims.get("scope", "")))
    jti = str(claims["jti"])
    grant_id = claims.get(GRANT_CLAIM)
    if grant_id is None and IDP_CLAIM in claims:
        idp = await issuers.current(session, str(claims[IDP_CLAIM]))
        if idp is None or idp.kind != ENTERPRISE_IDP:
            # The grant behind the token is the IdP's trust (draft-ietf-oauth-identity-assertion-authz-grant
            # "Processing Rules": the issuer must be trusted): removed, it ends every token it vouched for.
            raise CredentialRefused(Refusal.GRANT_ENDED, "the IdP that vouched for the user is not trusted")
        await _check_vouched_user_token(session, policy, claims, scopes, provider)
        return
    if grant_id is None:
        await _check_machine_token(session, policy, claims, path, scopes)
        return
    found = await grant_in_use(session, str(grant_id), jti, provider)
    if found is None or (found.user_id, found.client.client_id) != (claims["sub"], claims["client_id"]):
        raise CredentialRefused(Refusal.GRANT_ENDED)
    if found.resource not in audiences(claims):
        raise CredentialRefused(Refusal.GRANT_ENDED, "the token is not for its grant's resource")
    if found.token_revoked:
        raise CredentialRefused(Refusal.TOKEN_REVOKED)
    question = Question(
        path, found.client, found.resource, scopes, user=found.user, grant=found.grant, consent=found.consent
    )
    await policy.decide(question)


async def _check_vouched_user_token(
    session: AsyncSession, policy: CredentialPolicy, claims: dict[str, Any], scopes: list[str], provider: str
) -> None:
    """A user's token issued on an ID-JAG: asked again as the grant asked it (the IdP's decision stands
    until the token expires; we re-check what is ours: the user, the client, the resource)."""
    client = await read_client(session, str(claims["client_id"]))
    if client is None:
        raise CredentialRefused(Refusal.CLIENT_NOT_ALLOWED, "the client no longer exists")
    if await is_access_token_revoked(session, str(claims["jti"])):
        raise CredentialRefused(Refusal.TOKEN_REVOKED)
    user = await session.get(User, str(claims["sub"]))
    if user is None:
        raise CredentialRefused(Refusal.NO_USER)
    named = audiences(claims)
    if len(named) != 1:
        raise CredentialRefused(Refusal.GRANT_ENDED, "a token names exactly one resource")
    standing = await user_standing_of(session, user, provider)
    await policy.decide(Question(Path.ID_JAG, client_standing(client), named[0], scopes, user=standing))


async def _check_machine_token(
    session: AsyncSession, policy: CredentialPolicy, claims: dict[str, Any], path: Path, scopes: list[str]
) -> None:
    if claims["sub"] != claims["client_id"]:
        # A user's token without a grant claim predates grant-naming tokens: it cannot be traced to
        # a live grant, so it is not honoured here (it expires within AUTH_ACCESS_TOKEN_TTL anyway).
        raise CredentialRefused(Refusal.GRANT_ENDED, "the token names no grant")
    client = await read_client(session, str(claims["client_id"]))
    if client is None:
        raise CredentialRefused(Refusal.CLIENT_NOT_ALLOWED, "the client no longer exists")
    if await is_access_token_revoked(session, str(claims["jti"])):
        raise CredentialRefused(Refusal.TOKEN_REVOKED)
    named = audiences(claims)
    if len(named) != 1:
        raise CredentialRefused(Refusal.GRANT_ENDED, "a machine token names exactly one resource")
    await policy.decide(Question(path, client_standing(client), named[0], scopes))
