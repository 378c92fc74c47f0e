"""The public keys of `private_key_jwt` clients: their RFC 7591 `jwks`, or the JWK Set at their `jwks_uri`.

Keys at a `jwks_uri` are held by the kit's `JWKSCache` (the code MCP servers use for our own keys):
parsed once, refreshed after the document's `max-age`, re-fetched for an unknown `kid` at most every
10 s. Anyone may register a `jwks_uri` (RFC 7591), so fetching it is the same SSRF hazard as a client
ID metadata document and gets the same defences (oauth/client_id_metadata_document.py): https only
(loopback http when this server is itself on loopback), DNS resolved once (on threads of its own) and
the connection pinned to a checked public address, no redirects, at most 64 KB read, and the bounds of
oauth/outbound_fetches.py: one overall deadline for the whole fetch (a per-read timeout alone lets a
host send one byte every few seconds for ever), at most 4 fetches per host at once, a failing host
refused at once for a while.

Framework-free: the caller passes what the client registered; nothing here reads the database.
"""

from __future__ import annotations

import ssl
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from mcp_auth_kit.expiring_lru import ExpiringLRU
from mcp_auth_kit.jwks import JWKSCache, VerificationKey, parse_jwks
from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument, resolve_once
from mcp_auth_server.oauth.outbound_fetches import DEFAULT_LIMITS, FetchRefused, HostFailure, OutboundFetches
from mcp_auth_server.oauth.rfc8259_json import InvalidJson, parse_json_text
from mcp_auth_server.settings import is_loopback_host

MAX_JWKS_BYTES = 64 * 1024
MAX_CACHED_CLIENTS = 1000  # JWKS caches kept for jwks_uri clients, least recently used dropped first
TIMEOUT = httpx.Timeout(3.0)
DEFAULT_PORTS = {"https": 443, "http": 80}


class InvalidJwksUri(ValueError):
    """A `jwks_uri` this server will not fetch from; the message says why (safe to show)."""


def check_jwks_uri(uri: str, *, allow_loopback: bool) -> str:
    """RFC 7591 §2 `jwks_uri`: an absolute https URL (http only for loopback hosts on a loopback server)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise InvalidJwksUri("jwks_uri is not a valid URL") from None
    if not parts.hostname or parts.username is not None or parts.password is not None or parts.fragment:
        raise InvalidJwksUri("jwks_uri must be an absolute URL without user information or fragment")
    if parts.scheme == "https" or (
        parts.scheme == "http" and allow_loopback and is_loopback_host(parts.hostname)
    ):
        return uri
    raise InvalidJwksUri("jwks_uri must be an https URL")


def check_public_jwks(jwks: Any) -> dict[str, Any]:
    """RFC 7591 §2 `jwks`: a JWK Set of public signature keys. Private or symmetric key material is
    refused outright (it must never leave the client), as is a set with no key this server can use."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > 20:
        raise ValueError("jwks must be a JWK Set: an object whose keys array holds 1 to 20 keys")
    for key in keys:
        if not isinstance(key, dict):
            raise ValueError("every member of jwks.keys must be a JWK object")
        if key.get("kty") == "oct" or any(member in key for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise ValueError("jwks must hold public keys only, never private or symmetric key material")
    if not parse_jwks(jwks, {}):
        raise ValueError("jwks holds no usable public signature key (RSA, EC or OKP)")
    return {"keys": keys}


@dataclass(frozen=True)
class _Fetched:
    """A JWK Set response read completely, shared by the requests that waited for the same URL."""

    status_code: int
    headers: httpx.Headers
    body: bytes


class _PinnedTransport(httpx.AsyncBaseTransport):
    """Connects only to an address `resolve_once` checked, keeping TLS verification for the hostname, and
    reads the whole answer within the bounds of oauth/outbound_fetches.py."""

    def __init__(self, *, allow_loopback: bool, verify: ssl.SSLContext) -> None:
        self._allow_loopback = allow_loopback
        self._inner = httpx.AsyncHTTPTransport(verify=verify)
        self._fetches: OutboundFetches[_Fetched] = OutboundFetches(DEFAULT_LIMITS)
        self._resolver = ThreadPoolExecutor(DEFAULT_LIMITS.resolver_threads, thread_name_prefix="jwks-dns")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            fetched = await self._fetches.fetch(host, str(request.url), lambda: self._fetch(request))
        except FetchRefused as refused:
            raise httpx.ConnectError(str(refused), request=request) from None
        return httpx.Response(fetched.status_code, headers=fetched.headers, content=fetched.body)

    async def _fetch(self, request: httpx.Request) -> _Fetched:
        host = request.url.host
        port = request.url.port or DEFAULT_PORTS.get(request.url.scheme, 443)
        try:
            addresses = await resolve_once(
                host, port, allow_loopback=self._allow_loopback, resolver=self._resolver
            )
        except InvalidMetadataDocument as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        request.headers["Host"] = request.url.netloc.decode("ascii")
        # The size limit counts what is parsed: a compressed body of a few KB can inflate to gigabytes.
        request.headers["Accept-Encoding"] = "identity"
        request.url = request.url.copy_with(host=addresses[0])
        request.extensions = {**request.extensions, "sni_hostname": host}
        try:
            response = await self._inner.handle_async_request(request)
            try:
                if response.headers.get("content-encoding", "identity").lower() != "identity":
                    raise _Unreadable("the JWK Set came compressed though identity was asked for")
                body = bytearray()
                async for chunk in response.stream:  # type: ignore[union-attr]
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _Unreadable(f"the JWK Set is larger than {MAX_JWKS_BYTES} bytes")
            finally:
                await response.aclose()
            if response.status_code == 200:
                try:  # client input: parsed where all client JSON is (nesting, NULs, surrogates)
                    parse_json_text(bytes(body))
                except InvalidJson as exc:
                    raise _Unreadable(f"the JWK Set is not acceptable JSON: {exc}") from None
        except _Unreadable as exc:
            raise httpx.ReadError(str(exc), request=request) from None
        except httpx.HTTPError as exc:
            raise HostFailure(f"{host} failed ({type(exc).__name__})") from None
        return _Fetched(response.status_code, response.headers, bytes(body))

    async def aclose(self) -> None:
        await self._inner.aclose()
        self._resolver.shutdown(wait=False, cancel_futures=True)


class _Unreadable(Exception):
    """An answer this server will not read (too large, or compressed); not held against the host."""


@dataclass(frozen=True)
class Registration:
    """What a private_key_jwt client registered, as one read found it (compared again in the transaction)."""

    method: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None


class ClientKeys:
    """Finds the key a client's assertion names, among the keys the client registered.

    `registrations` remembers for a few seconds what each client registered, so an assertion is checked
    before the request's transaction without a database read of its own; the transaction reads the client
    anyway and refuses the request if the registration changed meanwhile (`Registration` compares equal).
    """

    REGISTRATION_SECONDS = 30.0

    def __init__(self, *, allow_loopback: bool, ca_bundle: str | None = None) -> None:
        self.allow_loopback = allow_loopback
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        self._http = httpx.AsyncClient(
            transport=_PinnedTransport(allow_loopback=allow_loopback, verify=context),
            timeout=TIMEOUT,
            follow_redirects=False,
            trust_env=False,
        )
        self._caches: OrderedDict[tuple[str, str], JWKSCache] = OrderedDict()
        self.registrations: ExpiringLRU[str, Registration] = ExpiringLRU(MAX_CACHED_CLIENTS * 10)

    async def aclose(self) -> None:
        for cache in self._caches.values():
            await cache.aclose()
        await self._http.aclose()

    async def candidates(
        self, client_id: str, jwks: dict[str, Any] | None, jwks_uri: str | None, kid: str | None
    ) -> list[VerificationKey]:
        """The registered key named `kid`, or every registered key when the assertion names none."""
        if jwks is not None:
            keys = parse_jwks(jwks, {})
            if kid is None:
                return list(keys.values())
            return [keys[kid]] if kid in keys else []
        if jwks_uri is None:
            return []
        cache = await self._cache(client_id, jwks_uri)
        if kid is None:
            return await cache.keys()
        key = await cache.get(kid)
        return [] if key is None else [key]

    async def _cache(self, client_id: str, jwks_uri: str) -> JWKSCache:
        key = (client_id, jwks_uri)
        cache = self._caches.get(key)
        if cache is None:
            cache = JWKSCache(client_id, http_client=self._http, jwks_uri=jwks_uri, refetch_interval=10.0)
            self._caches[key] = cache
            while len(self._caches) > MAX_CACHED_CLIENTS:
                _, dropped = self._caches.popitem(last=False)
                await dropped.aclose()  # cancels its background refresh; the HTTP client is ours
        self._caches.move_to_end(key)
        return cache
