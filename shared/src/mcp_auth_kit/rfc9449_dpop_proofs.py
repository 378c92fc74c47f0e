"""DPoP proofs (RFC 9449 §4), checked one way at the auth service's token endpoint and at every MCP server.

`DPoPProofVerifier.check` is §4.3 item by item, free of HTTP: the caller passes the proof, the request's
method, the URL it was sent to — the server's own public URL, never one rebuilt from request headers — and,
at a resource server, the access token it came with and the key that token is bound to. `verify` adds
§11.1's replay check: each proof's `jti` is accepted once, remembered (per key) for as long as any replica
would accept it.

The public key travels inside the proof (`jwk`), so the key is parsed, checked and thumbprinted once per
distinct proof header (a client's headers are byte-identical from proof to proof) and cached; the
signature is verified on every proof.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import Algorithm

from mcp_auth_kit.replay_cache import ReplayCache
from mcp_auth_kit.rfc7515_compact_jws import MalformedJWS, json_object, split_compact
from mcp_auth_kit.rfc7638_jwk_thumbprints import PublicKey, jwk_thumbprint
from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces

# §4.2, §11.6: registered asymmetric algorithms only; never `none`, never a MAC.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("ES256", "ES384", "PS256", "RS256", "EdDSA")
PROOF_TYPE = "dpop+jwt"
DEFAULT_MAX_AGE = 60.0  # §11.1: "a relatively brief period on the order of seconds or minutes"
DEFAULT_MAX_FUTURE = 10.0  # §11.1: clients' clocks may run a little ahead
MAX_PROOF_LENGTH = 8192  # an RSA-4096 key in the header still fits
MAX_JTI_LENGTH = 256  # §11.1: refuse unnecessarily large jti values
MIN_RSA_BITS = 2048
# FIPS 186-4 B.3.1: 2^16 < e < 2^256. A longer exponent makes every signature check as costly as a
# private-key operation: anyone could send such proofs to /token at a hundred times the usual cost.
MAX_RSA_EXPONENT = 2**256
# RFC 7518 §6.2.2, §6.3.2, §6.4 and RFC 8037 §2: members that only a private or symmetric key has.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DPoPError(Exception):
    """A DPoP proof the server will not accept; `error` is the RFC 9449 error code. Never echoes input."""

    error = "invalid_dpop_proof"


class InvalidDPoPProof(DPoPError):
    """§5 (token endpoint) and §7.1 (resource server): the proof fails a §4.3 check."""


class UseDPoPNonce(DPoPError):
    """§8, §9: the proof lacks the server's current nonce; answer with a fresh one in `DPoP-Nonce`."""

    error = "use_dpop_nonce"


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof that passed every check."""

    jkt: str  # RFC 7638 thumbprint of the proof's key: what tokens and codes are bound to (§6.1, §10)
    jti: str
    expires_at: int  # until when its jti is remembered: by then every replica refuses it as too old


def single_proof(values: Sequence[str]) -> str | None:
    """The request's one DPoP header value, or None without one (§4.3 item 1: never more than one)."""
    if len(values) > 1:
        raise InvalidDPoPProof("send one DPoP header, not several")
    return values[0] if values else None


def access_token_hash(access_token: str) -> str:
    """§4.2 `ath`: base64url of the SHA-256 of the access token's ASCII value."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=256)
def _expected_ath(access_token: str) -> bytes:
    """`access_token_hash` as bytes, once per token: a client sends one token with thousands of proofs."""
    return access_token_hash(access_token).encode("ascii")


@functools.lru_cache(maxsize=256)
def normalized_htu(url: str) -> str:
    """§4.3 item 9: the URI without query and fragment, after RFC 3986 §6.2.2 syntax-based and §6.2.3
    scheme-based normalisation (case of scheme and host, default port, percent-encoding, dot segments)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidDPoPProof("htu is not a URI") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidDPoPProof("htu is not an absolute http(s) URI")
    host = parts.hostname  # lower-cased by urlsplit
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    authority = (f"{userinfo}@" if userinfo else "") + host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        authority += f":{port}"
    path = _remove_dot_segments(_PERCENT.sub(_normalize_escape, parts.path)) or "/"
    return f"{scheme}://{authority}{path}"


def _normalize_escape(match: re.Match[str]) -> str:
    """RFC 3986 §6.2.2.1/§6.2.2.2: upper-case hex; unreserved characters decoded."""
    character = chr(int(match.group(1), 16))
    return character if character in _UNRESERVED else f"%{match.group(1).upper()}"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for the absolute paths of http(s) URIs."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/".join(output)


@dataclass(frozen=True, slots=True)
class _ProofKey:
    """What a proof header yields once checked: the key to verify with and its thumbprint."""

    algorithm: Algorithm
    key: PublicKey
    jkt: str


@functools.lru_cache(maxsize=1024)
def _proof_key(header_segment: str, allowed: frozenset[str]) -> _ProofKey:
    """§4.3 items 4, 5 and 7 on the JOSE header; its key parsed and thumbprinted."""
    header = json_object(header_segment, "header")
    typ = header.get("typ")
    # §4.3 item 4, §11.5: explicitly typed (a media type: case-insensitive, "application/" optional).
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != PROOF_TYPE:
        raise InvalidDPoPProof("typ is not dpop+jwt")
    name = header.get("alg")
    if not isinstance(name, str) or name not in allowed:
        raise InvalidDPoPProof("alg is not an allowed asymmetric algorithm")  # §4.3 item 5
    if "crit" in header:
        raise InvalidDPoPProof("critical header extensions are not understood")  # RFC 7515 §4.1.11
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("jwk is missing")
    if PRIVATE_MEMBERS.intersection(jwk) or jwk.get("kty") == "oct":
        raise InvalidDPoPProof("jwk holds a private or symmetric key")  # §4.2, §4.3 item 7
    if jwk.get("alg", name) != name or jwk.get("use", "sig") != "sig":
        raise InvalidDPoPProof("jwk is not a signature key for this alg")  # RFC 7517 §4.2, §4.4
    try:
        parsed = jwt.PyJWK(jwk, algorithm=name)
        key = parsed.Algorithm.prepare_key(parsed.key)  # e.g. refuses a P-384 key under ES256
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("jwk is not a public key for this alg") from None
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidDPoPProof(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        if key.public_numbers().e >= MAX_RSA_EXPONENT:
            raise InvalidDPoPProof("the RSA public exponent must be below 2^256")
    return _ProofKey(parsed.Algorithm, key, jwk_thumbprint(key))


class DPoPProofVerifier:
    """Checks proofs for one server: which algorithms, how old, its nonces, and where it remembers `jti`s."""

    def __init__(
        self,
        *,
        replay: ReplayCache,
        replay_namespace: str,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        nonces: DPoPNonces | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        max_future: float = DEFAULT_MAX_FUTURE,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not algorithms or not set(algorithms) <= ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"algorithms must be a non-empty subset of {sorted(ASYMMETRIC_ALGORITHMS)}")
        self.algorithms = tuple(algorithms)
        self._allowed = frozenset(algorithms)
        self.nonces = nonces
        self._replay = replay
        self._replay_namespace = replay_namespace
        self._max_age = max_age
        self._max_future = max_future
        self._now = now

    async def verify(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        bound_jkt: str | None = None,
    ) -> DPoPProof:
        """`check`, then §11.1: a proof is accepted once. The last step, so refused proofs are not kept."""
        checked = self.check(proof, method=method, url=url, access_token=access_token, bound_jkt=bound_jkt)
        # Per key: a jti another key happens to use (or an attacker copies) does not block this one.
        identifier = f"{checked.jkt}:{checked.jti}"
        if not await self._replay.first_use(self._replay_namespace, identifier, checked.expires_at):
            raise InvalidDPoPProof("this DPoP proof was already used")
        return checked

    def check(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        bound_jkt: str | None = None,
    ) -> DPoPProof:
        """§4.3 items 2-12 (item 1 is `single_proof`'s). With an `access_token`, `bound_jkt` is the key
        the token is bound to (its `cnf.jkt`): the proof must be made with it."""
        try:
            # §4.1's token68 and §4.3 item 2's well-formed JWT: a compact JWS is a token68 already.
            jws = split_compact(proof, MAX_PROOF_LENGTH)
            proof_key = _proof_key(jws.header_segment, self._allowed)
            if not proof_key.algorithm.verify(jws.signing_input, proof_key.key, jws.signature):
                raise InvalidDPoPProof("the signature does not verify with the proof's jwk")  # item 6
            claims = json_object(jws.payload_segment, "payload")
        except MalformedJWS as exc:
            raise InvalidDPoPProof(f"not a well-formed JWT: {exc}") from None
        jti, htm, htu = claims.get("jti"), claims.get("htm"), claims.get("htu")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise InvalidDPoPProof(f"jti must be a string of 1 to {MAX_JTI_LENGTH} characters")  # item 3
        if not isinstance(htm, str) or htm != method:
            raise InvalidDPoPProof("htm does not match the request's method")  # item 8
        if not isinstance(htu, str) or normalized_htu(htu) != normalized_htu(url):
            raise InvalidDPoPProof("htu does not match the request's URI")  # item 9
        expires_at = self._check_iat(claims.get("iat"))  # item 11
        if access_token is not None:
            ath = claims.get("ath")
            # surrogatepass: JSON can carry a lone surrogate, which must fail the comparison, not raise.
            sent = ath.encode("utf-8", "surrogatepass") if isinstance(ath, str) else None
            if sent is None or not hmac.compare_digest(sent, _expected_ath(access_token)):
                raise InvalidDPoPProof("ath does not match the access token")  # §4.3 item 12, §7
            if bound_jkt is None or not hmac.compare_digest(proof_key.jkt, bound_jkt):
                raise InvalidDPoPProof("the proof's key is not the key the access token is bound to")  # §6
        self._check_nonce(claims.get("nonce"))  # item 10: last, so use_dpop_nonce means only that
        return DPoPProof(jkt=proof_key.jkt, jti=jti, expires_at=expires_at)

    def _check_iat(self, iat: Any) -> int:
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
            raise InvalidDPoPProof("iat is not a NumericDate")
        now = self._now()
        if iat < now - self._max_age:
            raise InvalidDPoPProof("the proof is too old (iat)")
        if iat > now + self._max_future:
            raise InvalidDPoPProof("the proof is from the future (iat)")
        # §11.1: remembered while any replica would accept it. Replicas judge `iat` by their own clocks
        # (the shared memory forgets by its own), so allow them the skew allowed to clients: max_future.
        return math.ceil(iat + self._max_age + self._max_future) + 1

    def _check_nonce(self, nonce: Any) -> None:
        if self.nonces is None:
            return
        if not isinstance(nonce, str) or not self.nonces.is_valid(nonce):
            # §11.3: once nonces are in use, a proof without the current one is never accepted.
            raise UseDPoPNonce("a current server-provided nonce is required in the DPoP proof")
