"""The JWT-bearer grant (RFC 7523 §2.1) at /token: an ID-JAG or a workload token becomes an access token.

- ID-JAG (MCP Enterprise-Managed Authorization §5; draft-ietf-oauth-identity-assertion-authz-grant
  "Processing Rules"): from a trusted `enterprise-idp`, presented by the confidential client it names
  (`client_id`, which must be the client that authenticated: the ID-JAG is a grant, not a client
  credential), for the resource it names. The token is for the user the IdP vouches for, with the
  ID-JAG's scopes as far as the resource offers them and the request asks (never more), and no refresh
  token (the draft's "Refresh Token" section: the client gets a fresh ID-JAG instead).
- Workload token (MCP Workload Identity Federation): from a trusted `workload` issuer, presented by a
  client registered for this grant or by no client at all (the token is the workload's only
  credential). The issuer's rule for the token's subject names the resource and the scopes; the
  access token's `sub` is the machine identity. No refresh token.

The assertion is checked and its `jti` spent before the request's transaction (`prepare_jwt_bearer`);
the credential policy decides the rest like on every other path. Audit events name the issuer.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_kit.jwks import KeysUnavailable
from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.requests import JwtBearerRequest
from mcp_auth_server.grants.results import TokenResult
from mcp_auth_server.grants.trusted_assertions import spend, verify_trusted_assertion
from mcp_auth_server.oauth.errors import (
    invalid_grant,
    invalid_scope,
    invalid_target,
    temporarily_unavailable,
    unauthorized_client,
)
from mcp_auth_server.oauth.rfc7523_jwt_bearer import JWT_BEARER, InvalidAssertion, VerifiedAssertion
from mcp_auth_server.oauth.rfc9068_access_tokens import IDP_CLAIM, issue_access_token
from mcp_auth_server.oauth.rfc9449_dpop import require_proof
from mcp_auth_server.oauth.scopes import OFFLINE_ACCESS, parse_scope
from mcp_auth_server.oauth.trusted_issuers import ENTERPRISE_IDP, WorkloadRule
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.audit import key_binding, record, record_now
from mcp_auth_server.store.enterprise_users import UnmappedUser, enterprise_user
from mcp_auth_server.store.resources import RegisteredResource, UnknownResource
from mcp_auth_server.store.standings import ClientStanding, client_standing

WORKLOAD_ORIGIN = "workload"


async def prepare_jwt_bearer(runtime: Runtime, request: JwtBearerRequest) -> None:
    """Check the assertion and spend its `jti` while the request holds no database connection."""
    try:
        verified = await verify_trusted_assertion(runtime, request.assertion)
    except InvalidAssertion as exc:
        raise invalid_grant(str(exc)) from None
    except KeysUnavailable:
        raise temporarily_unavailable("the assertion's issuer cannot be reached to check its keys") from None
    if not await spend(runtime, verified):
        async with runtime.sessions.begin() as session:
            record(session, "assertion_replay", issuer=verified.issuer.issuer, jti=verified.jti)
        raise invalid_grant("the assertion has been used already")
    request._verified = verified


async def jwt_bearer(
    runtime: Runtime, session: AsyncSession, client: Client | None, request: JwtBearerRequest
) -> TokenResult:
    verified = request.verified
    if verified.issuer.kind == ENTERPRISE_IDP:
        if client is None:
            raise unauthorized_client("an identity assertion grant is presented by its client, authenticated")
        return await _identity_assertion(runtime, session, client, request, verified)
    return await _workload(runtime, session, client, request, verified)


async def _identity_assertion(
    runtime: Runtime,
    session: AsyncSession,
    client: Client,
    request: JwtBearerRequest,
    verified: VerifiedAssertion,
) -> TokenResult:
    claims, idp = verified.claims, verified.issuer
    if client.token_endpoint_auth_method == "none":
        # draft §"Client Authentication": for confidential clients only (the IdP could otherwise hand the
        # user to whichever public client it names).
        raise unauthorized_client("identity assertion grants are for confidential clients")
    if claims["client_id"] != client.client_id:
        raise invalid_grant("the assertion was issued to another client")
    named = claims.get("resource")
    resources = [named] if isinstance(named, str) else named if isinstance(named, list) else []
    resource = await _resource(
        runtime, session, request.resource, [r for r in resources if isinstance(r, str)]
    )
    _check_key_binding(claims.get("cnf"), request.dpop_jkt)
    granted = _scopes(request.scope, _granted_scopes(claims), resource)
    try:
        found = await enterprise_user(session, idp, claims, runtime.upstream.name)
    except UnmappedUser as exc:
        raise invalid_grant(str(exc)) from None
    question = Question(Path.ID_JAG, client_standing(client), resource.resource, granted, user=found.standing)
    await _decide(runtime, session, question)
    require_proof(resource.resource, resource.dpop_required, request.dpop)
    if found.how in ("created", "linked"):
        record(session, "enterprise_user_linked", user_id=found.user_id, idp=idp.issuer, how=found.how)
    auth_time = claims.get("auth_time")
    access = issue_access_token(
        runtime.keyring.signer(),
        issuer=runtime.settings.auth_issuer,
        subject=found.user_id,
        audience=resource.resource,
        client_id=client.client_id,
        scopes=granted,
        ttl=runtime.settings.auth_access_token_ttl,
        auth_time=auth_time if isinstance(auth_time, int) else None,
        profile={**found.profile, IDP_CLAIM: idp.issuer},
        dpop_jkt=request.dpop_jkt,
    )
    await record_now(
        session,
        "identity_assertion_grant",
        user_id=found.user_id,
        client_id=client.client_id,
        idp=idp.issuer,
        idp_name=idp.display_name,
        idp_subject=verified.subject,
        resource=resource.resource,
        scopes=granted,
        **key_binding(request.dpop_jkt),
    )
    return TokenResult.of(access, granted)


async def _workload(
    runtime: Runtime,
    session: AsyncSession,
    client: Client | None,
    request: JwtBearerRequest,
    verified: VerifiedAssertion,
) -> TokenResult:
    issuer = verified.issuer
    rule = issuer.rule_for(verified.subject)
    if rule is None:
        raise invalid_grant("this workload is not allowed to obtain tokens here")
    resource = await _resource(runtime, session, request.resource, [rule.resource])
    granted = _scopes(request.scope, rule.scopes, resource)
    identity = rule.identity or f"{issuer.issuer}#{verified.subject}"
    standing = _workload_standing(client, identity, rule)
    await _decide(runtime, session, Question(Path.WORKLOAD, standing, resource.resource, granted))
    require_proof(resource.resource, resource.dpop_required, request.dpop)
    access = issue_access_token(
        runtime.keyring.signer(),
        issuer=runtime.settings.auth_issuer,
        subject=identity,
        audience=resource.resource,
        client_id=standing.client_id,
        scopes=granted,
        ttl=runtime.settings.auth_access_token_ttl,
        dpop_jkt=request.dpop_jkt,
    )
    record(
        session,
        "workload_identity_grant",
        client_id=client.client_id if client is not None else None,
        issuer=issuer.issuer,
        issuer_name=issuer.display_name,
        workload_subject=verified.subject,
        identity=identity,
        resource=resource.resource,
        scopes=granted,
        **key_binding(request.dpop_jkt),
    )
    return TokenResult.of(access, granted)


def _workload_standing(client: Client | None, identity: str, rule: WorkloadRule) -> ClientStanding:
    """Who obtains the workload's token, allowed what its rule allows: the client that authenticated, or
    (no client) the workload itself, registered for nothing but this grant."""
    if client is None:
        return ClientStanding(identity, (JWT_BEARER,), WORKLOAD_ORIGIN, (rule.resource,), tuple(rule.scopes))
    return ClientStanding(
        client.client_id, tuple(client.grant_types), client.origin, (rule.resource,), tuple(rule.scopes)
    )


async def _resource(
    runtime: Runtime, session: AsyncSession, requested: Sequence[str], allowed: Sequence[str]
) -> RegisteredResource:
    """RFC 8707 at this grant: the one resource the assertion (or rule) allows, or the one of those the
    request names; it must be registered here."""
    await runtime.resources.refresh_if_stale(session)
    if len(requested) > 1:
        raise invalid_target("name exactly one resource (RFC 8707)")
    if not allowed:
        raise invalid_grant("the assertion names no resource")
    try:
        candidates = {runtime.resources.audience(value) for value in allowed}
    except ValueError:
        raise invalid_grant("the assertion names a malformed resource") from None
    try:
        if requested:
            resource = runtime.resources.find(requested[0])
            if resource.resource not in candidates:
                raise invalid_target("the assertion does not grant access to that resource")
            return resource
        if len(candidates) != 1:
            raise invalid_target("the assertion names several resources: name one (RFC 8707)")
        return runtime.resources.find(next(iter(candidates)))
    except UnknownResource as exc:
        raise invalid_target(str(exc)) from None


def _scopes(
    asked: str | None, granted_upstream: Sequence[str] | None, resource: RegisteredResource
) -> list[str]:
    """What was granted (the ID-JAG's or the rule's scopes) as far as the resource offers it; a request may
    narrow that, never widen it. `offline_access` is never granted here: these grants have no refresh
    token. An ID-JAG without `scope` (None) granted nothing in particular: the resource's default scopes
    (RFC 6749 §3.3), never any scope the client names — the assertion stands for the user's consent, and
    it consented to none of them."""
    requested = [scope for scope in parse_scope(asked) if scope != OFFLINE_ACCESS]
    offered = resource.default_scopes if granted_upstream is None else granted_upstream
    ceiling = [scope for scope in offered if scope in resource.scopes]
    if requested:
        beyond = [scope for scope in requested if scope not in ceiling]
        if beyond:
            raise invalid_scope(f"{' '.join(beyond)} was not granted to this client for {resource.resource}")
        return requested
    chosen = list(ceiling)
    if not chosen:
        raise invalid_scope(f"none of the granted scopes is offered by {resource.resource}")
    return chosen


def _granted_scopes(claims: dict[str, object]) -> list[str] | None:
    """The ID-JAG's `scope` (RFC 6749 §3.3 string; a list of strings is read the same); None if absent."""
    if "scope" not in claims:
        return None
    scope = claims["scope"]
    if isinstance(scope, list) and all(isinstance(item, str) for item in scope):
        return parse_scope(" ".join(scope))
    if not isinstance(scope, str):
        raise invalid_grant("the assertion's scope is malformed")
    return parse_scope(scope)


def _check_key_binding(cnf: object, proof_jkt: str | None) -> None:
    """draft §"Proof-of-Possession During ID-JAG Exchange": a key-bound ID-JAG needs a proof by that key."""
    if not isinstance(cnf, dict) or "jkt" not in cnf:
        return
    if proof_jkt is None:
        raise invalid_grant("proof of possession required for this authorization grant")
    if cnf["jkt"] != proof_jkt:
        raise invalid_grant("the DPoP proof is not by the key this grant is bound to")


async def _decide(runtime: Runtime, session: AsyncSession, question: Question) -> None:
    try:
        await request_policy(runtime, session).decide(question)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
