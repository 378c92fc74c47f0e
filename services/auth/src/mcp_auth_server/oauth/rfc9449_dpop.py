"""DPoP at the authorization server (RFC 9449 §5, §10): errors, the `dpop_jkt` parameter, what binds.

The proof itself is checked by the kit's `DPoPProofVerifier` (the same code every MCP server runs);
this module holds the token endpoint's rules around it:

- a token request with a valid proof gets tokens bound to its key: `cnf.jkt` in the access token
  (§6.1) and `token_type: DPoP` (§5); a public client's refresh tokens are bound too (§5);
- a code issued for a `dpop_jkt` is redeemed only with a proof by that key (§10);
- a resource whose policy is `dpop: required` gets tokens only through DPoP token requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mcp_auth_kit.rfc9449_dpop_proofs import DPoPError, DPoPProof
from mcp_auth_server.oauth.errors import OAuthError, invalid_grant

DPOP_TOKEN_TYPE = "DPoP"
BEARER_TOKEN_TYPE = "Bearer"
# §10: the RFC 7638 SHA-256 thumbprint, base64url without padding: 43 characters.
_JKT = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)


def is_thumbprint(value: str) -> bool:
    return bool(_JKT.fullmatch(value))


def dpop_error(exc: DPoPError, nonce: str | None) -> OAuthError:
    """§5 `invalid_dpop_proof` / §8 `use_dpop_nonce` as an RFC 6749 §5.2 error, with the next nonce."""
    return OAuthError(exc.error, str(exc), 400, {"DPoP-Nonce": nonce} if nonce else None)


def bound_key(claims: Mapping[str, Any]) -> str | None:
    """The thumbprint an access token is bound to (its `cnf.jkt`, §6.1), or None for a bearer token."""
    confirmation = claims.get("cnf")
    jkt = confirmation.get("jkt") if isinstance(confirmation, Mapping) else None
    return jkt if isinstance(jkt, str) else None


def token_type(dpop_jkt: str | None) -> str:
    return DPOP_TOKEN_TYPE if dpop_jkt is not None else BEARER_TOKEN_TYPE


def require_proof(resource: str, dpop_required: bool, proof: DPoPProof | None) -> None:
    """A `dpop: required` resource's tokens are always bound: a request without a proof gets none."""
    if dpop_required and proof is None:
        raise OAuthError(
            "invalid_dpop_proof",
            f"{resource} accepts only DPoP-bound tokens: send a DPoP proof (RFC 9449) with this request",
        )


def refresh_key_mismatch(bound_jkt: str | None, proof_jkt: str | None, *, public_client: bool) -> bool:
    """§5: a public client's refresh token is bound to the key of the token request that issued it, and
    refreshed only with a proof by that key — and one issued without a proof, only without one.

    An unbound grant is never re-bound by a later proof: whoever refreshed first with a proof would
    otherwise own the grant, and the client presenting its own (rotated) token would be refused as a
    key mismatch instead of triggering reuse detection (RFC 9700 §4.14.2) — a thief who stole a bearer
    refresh token would keep it and lock the client out. (Confidential clients' refresh tokens are
    bound to the client's own credentials instead.)"""
    return public_client and bound_jkt != proof_jkt


def refresh_key_mismatch_error(bound_jkt: str | None) -> OAuthError:
    if bound_jkt is None:
        return invalid_grant(
            "the refresh token was issued without DPoP: refresh without a proof, or authorize again",
            persist=True,
        )
    return invalid_grant("the refresh token is bound to a DPoP key: send a proof by that key", persist=True)


def check_code_binding(code_jkt: str | None, proof: DPoPProof | None) -> None:
    """§10: a code issued for a `dpop_jkt` is redeemed only with a proof by that very key."""
    if code_jkt is not None and (proof is None or proof.jkt != code_jkt):
        raise invalid_grant("the authorization code is bound to another DPoP key (dpop_jkt)")
