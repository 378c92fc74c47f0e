"""The token endpoint (RFC 6749 §3.2), POST /token: authenticate the client, dispatch the grant.

Every answer is JSON with `Cache-Control: no-store`; every error is `{"error",
"error_description"}`; malformed input is a 400, never a 500. A DPoP proof (RFC 9449 §5) is checked
here, before the transaction, and handed to the grant with the request; with AUTH_DPOP_NONCES every
answer carries the nonce to use next (§8).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response
from starlette.routing import Route

from mcp_auth_kit.rfc9449_dpop_proofs import DPoPError, DPoPProof, single_proof
from mcp_auth_server.endpoints.dependencies import runtime_of, transaction
from mcp_auth_server.endpoints.forms import read_form
from mcp_auth_server.endpoints.responses import no_store_json
from mcp_auth_server.grants.client_authentication import (
    authenticate_client,
    look_up_client,
    prove_client_assertion,
)
from mcp_auth_server.grants.registry import GRANT_TYPES
from mcp_auth_server.oauth.errors import OAuthError, invalid_request
from mcp_auth_server.oauth.rfc6749_client_authentication import (
    NONE,
    presented_client,
    presents_client,
)
from mcp_auth_server.oauth.rfc9449_dpop import dpop_error
from mcp_auth_server.runtime import Runtime
from mcp_auth_server.store.clients import touch

router = APIRouter()


def fast_route(prefix: str) -> Route:
    """POST /token served by a plain Starlette route, ahead of FastAPI's (app.py puts it first): FastAPI's
    route machinery (its request handler, dependency solving, included routers' matching) cost about a
    tenth of a client_credentials token. The FastAPI route below describes the endpoint in the OpenAPI
    document on the operator port; both run this one handler."""
    return Route(f"{prefix}/token", token, methods=["POST"], include_in_schema=False)


@router.post("/token", summary="Token endpoint (RFC 6749 §3.2)")
async def token(request: Request) -> Response:
    # The hottest endpoint takes no FastAPI dependencies: resolving them (an exit stack for the
    # session) was a tenth of a refresh's CPU.
    runtime = runtime_of(request)
    limits = runtime.rate_limits
    await limits.check_address(limits.token, request)  # before anything (the body too): the address's budget
    form = await read_form(request)
    authorization = request.headers.get("authorization")
    grant_type = form.params.get("grant_type", "")
    grant = GRANT_TYPES.get(grant_type)
    if grant is None:
        if not grant_type:
            raise invalid_request("grant_type is required")
        raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
    nonce = runtime.dpop.nonces.current() if runtime.dpop.nonces is not None else None
    try:
        # Before the transaction: the replay check may take a pooled connection of its own.
        proof = await dpop_proof(runtime, request)
        try:
            fields = {**form.params, "resource": form.resources, "dpop": proof}
            grant_request = grant.request.model_validate(fields)
        except ValidationError as exc:
            raise invalid_request(_first_problem(exc)) from None
        anonymous = grant.without_client is not None and not presents_client(authorization, form.params)
        presented = None if anonymous else presented_client(authorization, form.params)
        # A private_key_jwt client's assertion, like the grant's preparation, before the transaction.
        assertion = None if presented is None else await prove_client_assertion(runtime, presented)
        lookup = None if presented is None else await look_up_client(runtime, presented, assertion)
        await limits.check_new_client(lookup is not None and lookup.new, request)
        if grant.prepare is not None:
            await grant.prepare(runtime, grant_request)  # before the transaction: it may fetch, and spends
        async with transaction(runtime) as session:
            if presented is None or lookup is None:
                assert grant.without_client is not None
                result = await grant.without_client(runtime, session, None, grant_request)
            else:
                client = await authenticate_client(runtime, session, presented, lookup, assertion)
                if client.token_endpoint_auth_method != NONE:  # proved: now its own budget is spent too
                    await limits.check_client(limits.token, client.client_id)
                await touch(session, client)
                result = await grant.handle(runtime, session, client, grant_request)
    except OAuthError as exc:
        if nonce is not None:  # RFC 9449 §8: the nonce to use next, with any answer
            exc.headers = {**exc.headers, "DPoP-Nonce": nonce}
        raise
    response = no_store_json(result.body())
    if nonce is not None:
        response.headers["DPoP-Nonce"] = nonce  # §8.2: with a success too, so no error is needed
    return response


async def dpop_proof(runtime: Runtime, request: Request) -> DPoPProof | None:
    """RFC 9449 §5: the request's DPoP proof, checked (once: §11.1) against our own token URL."""
    try:
        proof = single_proof(request.headers.getlist("dpop"))
        if proof is None:
            return None
        return await runtime.dpop.verify(proof, method=request.method, url=runtime.url("/token"))
    except DPoPError as exc:
        raise dpop_error(exc, runtime.dpop.nonces.current() if runtime.dpop.nonces else None) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "request"
    if error["type"] in ("missing", "string_too_short"):
        return f"{where} is required"
    return f"{where}: {error['msg']}"
