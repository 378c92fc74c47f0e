"""A resource server's side of DPoP (RFC 9449 §7): the `DPoP` scheme beside `Bearer`, and its challenges.

`authenticate` is the one decision every entry point makes (the MCP endpoints' guard, `require_token`
for other routes): which credentials the request presents, whether the token is valid, and — for a
token bound to a key (`cnf.jkt`) — whether the request proves possession of that key:

- `Authorization: DPoP <token>` needs a `DPoP` proof for this request (its method; this server's public
  origin, from the resource URL it was configured with and never from request headers, and the path it
  was sent to; the token's hash) made by the key the token is bound to, and used once (§4.3, §11.1);
- a bound token presented as `Bearer` is refused (§7.2); with `dpop="required"`, so is every bearer
  token (RFC 9728's `dpop_bound_access_tokens_required`).

Refusals say which challenge carries the error (§7.2): none when no credentials were presented, the
scheme the request used otherwise. `www_authenticate` renders the challenges: `Bearer` wherever bearer
tokens are accepted, `DPoP` (with `algs`) wherever DPoP is involved — required, used by the request, or
the cure for a bound token sent as bearer. Requests that never touch DPoP, at a server that merely
allows it, get exactly the RFC 6750 challenges they always got.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from mcp.server.auth.provider import AccessToken, TokenVerifier
from starlette.datastructures import Headers

from mcp_auth_kit.rfc6750_challenges import (
    ErrorCode,
    MalformedCredentials,
    MultipleTokens,
    authorization,
    description,
    token68,
    www_authenticate,
)
from mcp_auth_kit.rfc9449_dpop_proofs import DPoPError, DPoPProofVerifier, single_proof

DPoPMode = Literal["required", "allowed"]
Scheme = Literal["Bearer", "DPoP"]
RFC6750_ERRORS = ("invalid_request", "invalid_token", "insufficient_scope")
_DPOP_DESCRIPTIONS = {
    "invalid_dpop_proof": "The DPoP proof is invalid",
    "use_dpop_nonce": "A DPoP proof with the server's current nonce is required",
}


class DPoPResource:
    """One resource server's DPoP policy: the mode, its proof verifier, and its public origin."""

    def __init__(self, *, resource_url: str, mode: DPoPMode, verifier: DPoPProofVerifier) -> None:
        if mode not in ("required", "allowed"):
            raise ValueError(f"dpop must be 'required' or 'allowed', not {mode!r}")
        parts = urlsplit(resource_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.mode = mode
        self.verifier = verifier

    @property
    def required(self) -> bool:
        return self.mode == "required"

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self.verifier.algorithms

    def nonce(self) -> str | None:
        """The nonce to hand out (RFC 9449 §9), when this server demands them."""
        return self.verifier.nonces.current() if self.verifier.nonces is not None else None


@dataclass(frozen=True, slots=True)
class Credentials:
    scheme: Scheme
    token: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: `error` (None: no credentials), the scheme whose challenge carries it."""

    error: str | None
    scheme: Scheme | None = None
    error_description: str | None = None
    nonce: str | None = None  # RFC 9449 §9: the DPoP-Nonce to send with the answer
    offer_dpop: bool = False  # challenge with DPoP too: it is what the client should use instead

    @property
    def status(self) -> int:
        return {None: 401, "invalid_request": 400, "insufficient_scope": 403}.get(self.error, 401)

    @property
    def describe(self) -> str:
        if self.error_description:
            return self.error_description
        if self.error in _DPOP_DESCRIPTIONS:
            return _DPOP_DESCRIPTIONS[self.error]
        return description(cast(ErrorCode | None, self.error))


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.error)
        self.refusal = refusal


def credentials(headers: Headers, dpop: DPoPResource | None) -> Credentials | None:
    """The request's access token and how it was sent; None if it sends none this server takes.

    More than one Authorization header is `MultipleTokens` (RFC 6750 §3.1, RFC 9449 §7.2 figure 19);
    a Bearer header, or a DPoP one where DPoP is on, that is not `scheme 1*SP token68` (RFC 6750 §2.1,
    RFC 9449 §7.1) is `MalformedCredentials`. Any other scheme is no credentials (RFC 6750 §3.1).
    """
    presented = authorization(headers)
    if presented is None:
        return None
    scheme, rest = presented
    if scheme == "bearer":
        return Credentials("Bearer", token68("Bearer", rest))
    if scheme == "dpop" and dpop is not None:
        return Credentials("DPoP", token68("DPoP", rest))
    return None


def path_as_sent(scope: Mapping[str, Any]) -> str:
    """An ASGI request's target path, undecoded: what a proof's `htu` names after the origin."""
    raw = scope.get("raw_path")
    path = (
        raw.decode("latin-1")
        if isinstance(raw, bytes) and raw
        else scope.get("root_path", "") + scope["path"]
    )
    return str(path).partition("?")[0]  # some servers (and httpx's test transport) keep the query


def bound_key(access_token: AccessToken) -> str | None:
    """The thumbprint the token is bound to (`cnf.jkt`, RFC 9449 §6.1), or None for a bearer token."""
    confirmation = (access_token.claims or {}).get("cnf")
    jkt = confirmation.get("jkt") if isinstance(confirmation, dict) else None
    return jkt if isinstance(jkt, str) else None


def refusal(
    dpop: DPoPResource | None,
    error: str | None,
    scheme: Scheme | None = None,
    error_description: str | None = None,
    *,
    offer_dpop: bool = False,
) -> Refusal:
    nonce = dpop.nonce() if dpop is not None and scheme == "DPoP" else None
    return Refusal(error, scheme, error_description, nonce, offer_dpop)


async def authenticate(
    *,
    headers: Headers,
    method: str,
    path: str,
    verifier: TokenVerifier,
    dpop: DPoPResource | None,
) -> tuple[AccessToken, Credentials]:
    """The request's verified access token, or `Refused`. `path`: the request's path as it was sent."""
    required = dpop is not None and dpop.required
    try:
        presented = credentials(headers, dpop)
    except MultipleTokens:
        raise Refused(refusal(dpop, "invalid_request", "DPoP" if required else "Bearer")) from None
    except MalformedCredentials as malformed:
        # RFC 6750 §3.1 (and RFC 9449 §7.2 for DPoP): 400 invalid_request, on the challenge of the
        # scheme used, or on DPoP's where bearer tokens are not accepted at all.
        scheme: Scheme = "DPoP" if required or malformed.scheme == "DPoP" else "Bearer"
        raise Refused(refusal(dpop, "invalid_request", scheme, malformed.description)) from None
    if presented is None:
        raise Refused(refusal(dpop, None))  # RFC 6750 §3.1: no credentials, no error code
    if presented.scheme == "Bearer" and required:
        raise Refused(refusal(dpop, "invalid_token", "DPoP", "This resource accepts only DPoP-bound tokens"))
    access_token = await verifier.verify_token(presented.token)
    if access_token is None:
        raise Refused(refusal(dpop, "invalid_token", presented.scheme))
    jkt = bound_key(access_token)
    if jkt is None and "cnf" in (access_token.claims or {}):
        # RFC 7800 §3.1: a token with a confirmation claim is only for whoever proves it; the kit can
        # check `jkt` alone (RFC 9449 §6), so e.g. a certificate-bound token (RFC 8705) is never a bearer one.
        unknown = "The token is bound by a confirmation method this server cannot check"
        raise Refused(refusal(dpop, "invalid_token", presented.scheme, unknown))
    if presented.scheme == "Bearer":
        if jkt is not None:  # §7.2: a bound token is never downgraded to a bearer token
            bound = "The token is DPoP-bound: send it with the DPoP scheme and a proof"
            raise Refused(refusal(dpop, "invalid_token", "Bearer", bound, offer_dpop=dpop is not None))
        return access_token, presented
    assert dpop is not None  # `credentials` returns DPoP credentials only where DPoP is on
    if jkt is None:
        raise Refused(refusal(dpop, "invalid_token", "DPoP", "The token is not DPoP-bound"))
    try:
        proof = single_proof(headers.getlist("dpop"))
        if proof is None:
            raise Refused(refusal(dpop, "invalid_dpop_proof", "DPoP", "A DPoP token needs a DPoP proof"))
        await dpop.verifier.verify(
            proof, method=method, url=dpop.origin + path, access_token=presented.token, bound_jkt=jkt
        )
    except DPoPError as exc:
        raise Refused(refusal(dpop, exc.error, "DPoP", str(exc))) from None
    return access_token, presented


def www_authenticate_for(
    refused: Refusal, dpop: DPoPResource | None, *, resource_metadata: str, scopes: Sequence[str]
) -> str:
    """The challenges for a refusal (RFC 6750 §3 Bearer, RFC 9449 §7.1 DPoP), errors where §7.2 says."""
    required = dpop is not None and dpop.required
    challenges = []
    if not required:
        on_bearer = refused.scheme != "DPoP" and refused.error in RFC6750_ERRORS
        challenges.append(
            www_authenticate(
                resource_metadata=resource_metadata,
                scopes=scopes,
                error=cast(ErrorCode, refused.error) if on_bearer else None,
                error_description=refused.describe if on_bearer else None,
            )
        )
    if dpop is not None and (required or refused.scheme == "DPoP" or refused.offer_dpop):
        challenges.append(_dpop_challenge(refused, dpop, resource_metadata, scopes))
    return ", ".join(challenges)


def _dpop_challenge(
    refused: Refusal, dpop: DPoPResource, resource_metadata: str, scopes: Sequence[str]
) -> str:
    params: list[tuple[str, str]] = []
    if refused.error is not None and refused.scheme == "DPoP":
        params += [("error", refused.error), ("error_description", refused.describe)]
    params.append(("algs", " ".join(dpop.algorithms)))  # §7.1
    params.append(("resource_metadata", resource_metadata))  # RFC 9728 §5.1
    if scopes:
        params.append(("scope", " ".join(scopes)))  # RFC 6750 §3, as RFC 9449 §7.1 allows
    return "DPoP " + ", ".join(f'{name}="{value}"' for name, value in params)
