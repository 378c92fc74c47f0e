"""ID token validation, OpenID Connect Core 1.0 §3.1.3.7, for the authorization code flow.

An ID token that fails any rule is refused (UpstreamRejected): the person sees a page and the client
gets no code. Signatures are always checked against the provider's JWKS, even though the token came
straight from the token endpoint over TLS (§3.1.3.7 item 6 would allow skipping that).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any

import jwt

from mcp_auth_server.upstreams.base import UpstreamRejected
from mcp_auth_server.upstreams.oidc_discovery import OidcProviderClient

# Asymmetric algorithms only: `none` and HMAC (whose key would be our client secret, §10.1) are never
# accepted, which also shuts the door on "HS256 signed with the provider's public key" confusion.
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
# Clock skew tolerated on exp and iat (§3.1.3.7 items 9-10 leave it to the client).
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]


async def validate_id_token(
    token: str,
    *,
    provider: OidcProviderClient,
    issuers: Collection[str],
    client_id: str,
    nonce: str,
    algorithms: Collection[str] = ASYMMETRIC_ALGORITHMS,
) -> dict[str, Any]:
    """The ID token's claims if every rule of §3.1.3.7 holds; UpstreamRejected naming the first that fails."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise UpstreamRejected("the ID token is not a signed JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    # Item 7: the alg the provider says it signs with (Discovery §3), and only from our allow-list.
    metadata = await provider.metadata()
    usable = [name for name in metadata.id_token_signing_alg_values_supported if name in algorithms]
    if not isinstance(alg, str) or alg not in usable:
        raise UpstreamRejected(f"the ID token's algorithm {alg!r} is not accepted (allowed: {usable})")
    key = await provider.signing_key(kid if isinstance(kid, str) else None, alg)
    try:
        # Items 2-3 (iss exact, aud contains client_id), 6 (signature), 9-10 (exp, iat).
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=client_id,
            issuer=list(issuers),
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise UpstreamRejected("the ID token has expired") from None
    except jwt.ImmatureSignatureError:
        raise UpstreamRejected("the ID token was issued in the future") from None
    except jwt.InvalidIssuerError:
        raise UpstreamRejected("the ID token was issued by another issuer") from None
    except jwt.InvalidAudienceError:
        raise UpstreamRejected("the ID token was issued for another client") from None
    except jwt.InvalidSignatureError:
        raise UpstreamRejected("the ID token's signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise UpstreamRejected(f"the ID token is invalid: {exc}") from None
    _check_authorized_party(claims, client_id)
    # Item 11 and §15.5.2: the nonce we sent for this very sign-in (single-use: it is spent with the
    # state), so an ID token captured from another sign-in is refused.
    presented = claims.get("nonce")
    if not isinstance(presented, str) or not secrets.compare_digest(presented, nonce):
        raise UpstreamRejected("the ID token's nonce does not match this sign-in")
    if not isinstance(claims["sub"], str) or not claims["sub"] or len(claims["sub"]) > 255:
        raise UpstreamRejected("the ID token's sub is not a string of 1-255 characters")  # §2
    return claims


def _check_authorized_party(claims: dict[str, Any], client_id: str) -> None:
    """Items 4-5: with several audiences `azp` must be present, and when present it must be us."""
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise UpstreamRejected("the ID token has several audiences and no authorized party (azp)")
    if azp is not None and azp != client_id:
        raise UpstreamRejected("the ID token was issued to another authorized party (azp)")
