"""Token introspection (RFC 7662), POST /introspect, for resource servers only.

Callers authenticate as a resource-server client (`mcp-auth clients add --resource-server`)
and learn about a token only if its `aud` is their own resource (§4: a server must not learn
about tokens meant for others). `active: true` is a credential like any other: the token must
still be good (policy/access_tokens.py) — its jti and grant unrevoked, the user admitted, the
consent standing. Anything else is `{"active": false}` and nothing more. A DPoP-bound token's answer
carries its `cnf` and `token_type: DPoP` (RFC 9449 §6.2): the resource server checks the proof's key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mcp_auth_server.endpoints.dependencies import RuntimeDep, transaction
from mcp_auth_server.endpoints.forms import read_form
from mcp_auth_server.endpoints.responses import no_store_json
from mcp_auth_server.grants.client_authentication import (
    authenticate_client,
    look_up_client,
    prove_client_assertion,
)
from mcp_auth_server.oauth.errors import invalid_request, unauthorized_client
from mcp_auth_server.oauth.rfc6749_client_authentication import presented_client
from mcp_auth_server.oauth.rfc9068_access_tokens import InvalidAccessToken, audiences, verify_access_token
from mcp_auth_server.oauth.rfc9449_dpop import bound_key, token_type
from mcp_auth_server.policy.access_tokens import check_still_good
from mcp_auth_server.policy.admission import request_policy
from mcp_auth_server.policy.credentials import CredentialRefused
from mcp_auth_server.policy.question import Path
from mcp_auth_server.runtime import Runtime

router = APIRouter()
INACTIVE = {"active": False}
REPORTED_CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "jti",
    "auth_time",
    "grant_id",
    "idp",  # a user's token issued on an enterprise IdP's ID-JAG: which IdP vouched
    "preferred_username",
    "name",
    "email",
    "picture",
    "cnf",  # RFC 9449 §6.2: the key a DPoP-bound token is bound to
)


@router.post("/introspect", summary="Token introspection (RFC 7662)")
async def introspect(request: Request, runtime: RuntimeDep) -> JSONResponse:
    # Refused requests spend the sender's address's budget (web/rate_limits.py): no unlimited guessing.
    async with runtime.rate_limits.refusals_counted(runtime.rate_limits.introspect, request):
        return await _introspect(request, runtime)


async def _introspect(request: Request, runtime: Runtime) -> JSONResponse:
    form = await read_form(request)
    presented = presented_client(request.headers.get("authorization"), form.params)
    assertion = await prove_client_assertion(runtime, presented)  # before the transaction (see there)
    lookup = await look_up_client(runtime, presented, assertion)
    await runtime.rate_limits.check_new_client(lookup.new, request)
    async with transaction(runtime) as session:
        client = await authenticate_client(runtime, session, presented, lookup, assertion)
        if client.served_resource is None:
            raise unauthorized_client("only resource-server clients may introspect tokens", 403)
        token = form.params.get("token", "")
        if not token:
            raise invalid_request("token is required")
        try:
            claims = verify_access_token(runtime.keyring.public_keys, token, runtime.settings.auth_issuer)
        except InvalidAccessToken:
            return no_store_json(INACTIVE)
        if client.served_resource not in audiences(claims):
            return no_store_json(INACTIVE)
        policy = request_policy(runtime, session)
        try:
            await check_still_good(
                session, policy, claims, Path.INTROSPECTION, runtime.upstream.name, runtime.trusted_issuers
            )
        except CredentialRefused:
            return no_store_json(INACTIVE)  # committed: a user found deprovisioned stays deprovisioned
    reported = {name: claims[name] for name in REPORTED_CLAIMS if name in claims}
    body = {"active": True, "token_type": token_type(bound_key(claims)), **reported}
    if "preferred_username" in claims:
        body["username"] = claims["preferred_username"]
    return no_store_json(body)
