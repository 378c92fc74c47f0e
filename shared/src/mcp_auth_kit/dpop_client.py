"""A DPoP client (RFC 9449): a key that makes proofs, and an `httpx.Auth` that attaches them.

    key = DPoPKey.generate()                 # or DPoPKey.from_pem(saved_bytes)
    auth = DPoPAuth(key)                     # token requests: a proof on each
    tokens = httpx.post(token_endpoint, data=form, auth=auth).json()   # token_type "DPoP"
    auth.access_token = tokens["access_token"]                         # resource requests: DPoP scheme
    httpx2.AsyncClient(auth=auth.for_httpx2())                         # the mcp SDK's transports

Every request gets a fresh proof for its method and URL (query and fragment dropped, §4.2); requests that
carry the access token get `Authorization: DPoP <token>` and the token's hash (`ath`). Server nonces
(§8, §9) are remembered per origin from `DPoP-Nonce` headers, and a request refused with
`use_dpop_nonce` is sent once more with a new proof carrying the new nonce. `dpop_jkt` for the
authorization request (§10) is `key.jkt`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from mcp_auth_kit.rfc7638_jwk_thumbprints import jwk_thumbprint, public_jwk
from mcp_auth_kit.rfc9449_dpop_proofs import PROOF_TYPE, access_token_hash

PrivateKey = (
    ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class DPoPKey:
    """The client's proof-of-possession key pair. Keep the private key where only this client can read it."""

    def __init__(self, private_key: PrivateKey, algorithm: str) -> None:
        self._private_key = private_key
        self.algorithm = algorithm
        self.public_jwk = public_jwk(private_key.public_key())
        self.jkt = jwk_thumbprint(private_key.public_key())  # RFC 7638: `dpop_jkt`, and tokens' `cnf.jkt`
        self._header = {"typ": PROOF_TYPE, "alg": algorithm, "jwk": self.public_jwk}

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> DPoPKey:
        """A new key: ES256/ES384/ES512 (EC), PS256/RS256 (RSA 2048) or EdDSA (Ed25519)."""
        private_key: PrivateKey
        if algorithm in _CURVES:
            private_key = ec.generate_private_key(_CURVES[algorithm]())
        elif algorithm in ("PS256", "RS256"):
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(f"unsupported DPoP algorithm: {algorithm}")
        return cls(private_key, algorithm)

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None, algorithm: str | None = None) -> DPoPKey:
        """A key saved with `private_key_pem`; `algorithm` defaults to the key's natural one (RSA: PS256)."""
        private_key = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(private_key, PrivateKey):
            raise ValueError("not an EC, RSA or EdDSA private key")
        return cls(private_key, algorithm or natural_algorithm(private_key))

    def private_key_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        """A new proof (RFC 9449 §4.2) for one request: fresh `jti`, current `iat`."""
        parts = urlsplit(url)
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),  # 128 random bits (§4.2 asks for at least 96)
            "htm": method,
            "htu": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self._private_key, algorithm=self.algorithm, headers=self._header)


def natural_algorithm(private_key: PrivateKey) -> str:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if private_key.curve.name not in _CURVE_ALGORITHMS:
            raise ValueError(f"unsupported curve: {private_key.curve.name}")
        return _CURVE_ALGORITHMS[private_key.curve.name]
    return "PS256" if isinstance(private_key, rsa.RSAPrivateKey) else "EdDSA"


class _Request(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    @property
    def url(self) -> Any: ...


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    def read(self) -> bytes: ...
    async def aread(self) -> bytes: ...


RequestT = TypeVar("RequestT", bound=_Request)
ResponseT = TypeVar("ResponseT", bound=_Response)


@dataclass
class _DPoPState:
    """What `DPoPAuth` and its httpx2 twin share: the key, the access token, the servers' nonces."""

    key: DPoPKey
    access_token: str | None = None
    nonces: dict[str, str] = field(default_factory=dict)  # origin -> its latest DPoP-Nonce

    def sign(self, request: _Request, token: str | None) -> str | None:
        """Attach a new proof (and the token, if this request carries it); the nonce it used."""
        url = str(request.url)
        nonce = self.nonces.get(_origin(url))
        if token is not None:
            request.headers["Authorization"] = f"DPoP {token}"  # RFC 9449 §7.1
        request.headers["DPoP"] = self.key.proof(request.method, url, access_token=token, nonce=nonce)
        return nonce

    def token_for(self, request: _Request) -> str | None:
        """The access token goes on every request except those with credentials of their own (a token
        request's client authentication): the bound token is worthless without the proof anyway."""
        if self.access_token is None or "authorization" in request.headers:
            return None
        return self.access_token

    def new_nonce(self, request: _Request, response: _Response, used: str | None) -> str | None:
        """Remember a `DPoP-Nonce` the server sent; return it when it differs from the one just used."""
        nonce = response.headers.get("dpop-nonce")
        if not isinstance(nonce, str) or not nonce:
            return None
        self.nonces[_origin(str(request.url))] = nonce
        return nonce if nonce != used else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _challenges_nonce(response: _Response) -> bool:
    """§9: a resource server's 401 `WWW-Authenticate: DPoP error="use_dpop_nonce"`."""
    return response.status_code == 401 and 'error="use_dpop_nonce"' in response.headers.get(
        "www-authenticate", ""
    )


def _asks_for_nonce(body: bytes) -> bool:
    """§8: an authorization server's 400 `{"error": "use_dpop_nonce"}`."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, Mapping) and payload.get("error") == "use_dpop_nonce"


def _sync_flow(state: _DPoPState, request: RequestT) -> Generator[RequestT, ResponseT, None]:
    token = state.token_for(request)
    used = state.sign(request, token)
    response = yield request
    fresh = state.new_nonce(request, response, used)
    if fresh is None:
        return
    if _challenges_nonce(response) or (response.status_code == 400 and _asks_for_nonce(response.read())):
        state.sign(request, token)
        yield request


async def _async_flow(state: _DPoPState, request: RequestT) -> AsyncGenerator[RequestT, ResponseT]:
    token = state.token_for(request)
    used = state.sign(request, token)
    response = yield request
    fresh = state.new_nonce(request, response, used)
    if fresh is None:
        return
    if _challenges_nonce(response) or (
        response.status_code == 400 and _asks_for_nonce(await response.aread())
    ):
        state.sign(request, token)
        yield request


class DPoPAuth(httpx.Auth):
    """DPoP for httpx: proofs on every request, the access token (when set) in the DPoP scheme."""

    def __init__(self, key: DPoPKey, access_token: str | None = None) -> None:
        self._state = _DPoPState(key, access_token)

    @property
    def key(self) -> DPoPKey:
        return self._state.key

    @property
    def access_token(self) -> str | None:
        return self._state.access_token

    @access_token.setter
    def access_token(self, value: str | None) -> None:
        self._state.access_token = value

    def for_httpx2(self) -> httpx2.Auth:
        """The same auth (key, token, nonces: shared) for `httpx2` clients, e.g. the mcp SDK's transports."""
        return _HTTPX2DPoPAuth(self._state)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        return _sync_flow(self._state, request)

    def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        return _async_flow(self._state, request)


class _HTTPX2DPoPAuth(httpx2.Auth):
    def __init__(self, state: _DPoPState) -> None:
        self._state = state

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        return _sync_flow(self._state, request)

    def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        return _async_flow(self._state, request)
