"""Finding the client a token, revocation or introspection request comes from, and checking its proof.

An unknown or deleted client gets 401 `invalid_client`, on which claude.ai registers again.

A `private_key_jwt` client's assertion (RFC 7523 §2.2) is checked by `prove_client_assertion` before
the request's transaction begins: recording its `jti` may take a pooled connection of its own (the
database replay cache), and a request holding one connection while waiting for a second can deadlock a
full pool. `authenticate_client` then refuses a private_key_jwt request that comes without that proof.

The assertion is either one the client signed with a key it registered (`iss` = `sub` = its id), or —
workload identity as the client's own authentication (the SDK's `PrivateKeyJWTOAuthProvider` with a
platform token; draft-ietf-wimse-workload-identity-bcp) — a token from a trusted *workload* issuer
(AUTH_TRUSTED_ISSUERS, checked by grants/trusted_assertions.py) whose issuer and subject are exactly those
a client was registered for (`mcp-auth clients add --workload ISSUER SUBJECT`). The platform token then
stands in for a secret: the client's own registration (its resources, scopes) decides what it gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from mcp_auth_kit.jwks import VerificationKey
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import Client
from mcp_auth_server.grants.trusted_assertions import (
    InvalidAssertion,
    KeysUnavailable,
    spend,
    verify_trusted_assertion,
)
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument
from mcp_auth_server.oauth.client_jwks import Registration
from mcp_auth_server.oauth.errors import OAuthError, invalid_client, invalid_request, temporarily_unavailable
from mcp_auth_server.oauth.rfc6749_client_authentication import (
    NONE,
    PresentedClient,
    check_client_method,
    check_client_secret,
)
from mcp_auth_server.oauth.rfc7523_client_assertions import (
    PRIVATE_KEY_JWT,
    ClientAssertion,
    InvalidClientAssertion,
    verify_client_assertion,
)
from mcp_auth_server.oauth.rfc7523_jwt_bearer import parse_assertion
from mcp_auth_server.oauth.trusted_issuers import WORKLOAD
from mcp_auth_server.policy.credentials import CredentialRefused, check_client
from mcp_auth_server.policy.question import Path
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.client_resolution import ClientLookup
from mcp_auth_server.store.clients import find_workload_client
from mcp_auth_server.store.standings import client_standing

ASSERTION_JTIS = "client-assertion"  # the replay cache's namespace for client assertions' jtis


async def look_up_client(
    runtime: Runtime, presented: PresentedClient, assertion: ClientAssertion | None = None
) -> ClientLookup:
    """Before the request's transaction: a metadata-document client's document is fetched here, with no
    database connection held (store/client_resolution.py). A proven assertion names the client (a
    workload token's subject is the workload's, not the client's)."""
    client_id = assertion.client_id if assertion is not None else presented.client_id
    try:
        return await runtime.clients.look_up(client_id)
    except InvalidMetadataDocument as exc:
        raise invalid_client(f"the client metadata document was refused: {exc}") from None


async def find_client(
    runtime: Runtime, session: AsyncSession, lookup: ClientLookup, *, cached: bool = False
) -> Client:
    """`cached`: a registered client's record may be up to AUTH_CLIENT_CACHE_SECONDS old
    (store/client_cache.py)."""
    client = await runtime.clients.find(session, lookup, cached=cached)
    if client is None:
        raise _persisting(invalid_client("unknown client"))
    return client


async def prove_client_assertion(runtime: Runtime, presented: PresentedClient) -> ClientAssertion | None:
    """RFC 7523 §3: a private_key_jwt request's assertion, verified and its `jti` spent; None for
    requests that authenticate otherwise. Call before the request's transaction."""
    if presented.method != PRIVATE_KEY_JWT or presented.assertion is None:
        return None
    if await _from_workload_issuer(runtime, presented.assertion):
        return await _prove_workload_assertion(runtime, presented, presented.assertion)
    if presented.named_client_id not in (None, presented.client_id):
        raise invalid_request("client_id differs from the client the assertion names")
    registration = await _registration(runtime, presented)
    check_client_method(presented, registration.method)

    async def registered_keys(kid: str | None) -> Sequence[VerificationKey]:
        return await runtime.client_keys.candidates(
            presented.client_id, registration.jwks, registration.jwks_uri, kid
        )

    issuer = runtime.settings.auth_issuer
    try:
        proof = await verify_client_assertion(
            presented.assertion,
            client_id=presented.client_id,
            keys=registered_keys,
            audiences=(issuer, runtime.url("/token")),
        )
    except InvalidClientAssertion as exc:
        raise invalid_client(str(exc)) from None
    proof = replace(proof, registration=registration)
    # RFC 7523 §3 item 7: one use per jti, per client, on every replica, until the assertion expires.
    if not await runtime.replay.first_use(
        ASSERTION_JTIS, f"{proof.client_id}\n{proof.jti}", proof.expires_at
    ):
        raise invalid_client("this client assertion has been used before")
    return proof


async def _registration(runtime: Runtime, presented: PresentedClient) -> Registration:
    """The client's registered keys: remembered a few seconds, else read in a short session of its own."""
    client_id = presented.client_id
    remembered = runtime.client_keys.registrations.get(client_id, now())
    if remembered is not None:
        return remembered
    lookup = await look_up_client(runtime, presented)
    async with runtime.sessions() as session:  # released before the assertion is checked
        client = await find_client(runtime, session, lookup)
        registration = registration_of(client)
        await session.commit()
    runtime.client_keys.registrations.put(
        client_id, registration, now() + runtime.client_keys.REGISTRATION_SECONDS
    )
    return registration


def registration_of(client: Client) -> Registration:
    return Registration(client.token_endpoint_auth_method, client.jwks, client.jwks_uri)


async def _from_workload_issuer(runtime: Runtime, assertion: str) -> bool:
    await runtime.trusted_issuers.refresh_if_stale()
    try:
        config = runtime.trusted_issuers.get(parse_assertion(assertion).issuer)
    except InvalidAssertion:
        return False  # not a JWT naming an issuer: the client-signed path refuses it in its own words
    return config is not None and config.kind == WORKLOAD


async def _prove_workload_assertion(
    runtime: Runtime, presented: PresentedClient, assertion: str
) -> ClientAssertion:
    try:
        verified = await verify_trusted_assertion(runtime, assertion, kind=WORKLOAD)
    except InvalidAssertion as exc:
        raise invalid_client(f"the workload token was refused: {exc}") from None
    except KeysUnavailable as exc:
        raise temporarily_unavailable(str(exc)) from None
    issuer = verified.issuer.issuer
    async with runtime.sessions() as session:
        client = await find_workload_client(session, issuer, verified.subject)
        client_id = None if client is None else client.client_id
        method = None if client is None else client.token_endpoint_auth_method
    # A client_id sent with the assertion must be the client this workload is registered as.
    if client_id is None or method != PRIVATE_KEY_JWT or presented.named_client_id not in (None, client_id):
        raise invalid_client("no client is registered for this workload")
    if not await spend(runtime, verified):
        raise invalid_client("this workload token has been used before")
    return ClientAssertion(client_id, verified.jti or "", verified.refused_after)


async def authenticate_client(
    runtime: Runtime,
    session: AsyncSession,
    presented: PresentedClient,
    lookup: ClientLookup,
    assertion: ClientAssertion | None = None,
) -> Client:
    """The first step of the request's transaction: the registered client the request proves to be, by
    the method it registered (RFC 6749 §2.3): its secret, its assertion (`assertion`, from
    `prove_client_assertion`, which names the client when a workload token stood in for it), or nothing
    for `none`. What it changed (a fetched document stored, an idle client forgotten) is kept even when
    the client is then refused."""
    # A record at most AUTH_CLIENT_CACHE_SECONDS old. The grants write rows naming the client only after
    # reading one that is deleted with it (a code, a refresh token's grant), so a client removed meanwhile
    # never gets a row stored in its name; client_credentials is the documented bound.
    client = await find_client(runtime, session, lookup, cached=True)
    try:
        check_client_method(presented, client.token_endpoint_auth_method)
        if presented.method == PRIVATE_KEY_JWT:
            if assertion is None or assertion.client_id != client.client_id:
                raise invalid_client("client authentication failed")
            if assertion.registration is not None and assertion.registration != registration_of(client):
                # The keys changed since they were remembered: the assertion was checked against old ones.
                runtime.client_keys.registrations.discard(client.client_id)
                raise invalid_client("the client's registered keys changed; send a new assertion")
        elif presented.method != NONE:
            check_client_secret(presented, client.client_secret_hash)
    except OAuthError as refused:
        raise _persisting(refused) from None
    return client


def _persisting(error: OAuthError) -> OAuthError:
    error.persist = True
    return error


def require_client_allowed(path: Path, client: Client, *, for_user: bool) -> None:
    """Refuse at once a client that may not obtain credentials along `path` (the policy's rule 2), before
    any of the request's work is done; the policy asks again with everything else when it decides."""
    try:
        check_client(path, client_standing(client), has_user=for_user)
    except CredentialRefused as refused:
        raise refused.oauth_error() from None
