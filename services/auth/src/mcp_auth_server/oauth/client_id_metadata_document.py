"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2026-07-28).

A `client_id` that is an https URL with a path names a JSON document describing the client;
the authorization server fetches it instead of requiring registration. That fetch is an SSRF
hazard, so (draft §6, and our own rules):
  * https only; no userinfo, fragment or dot segments; a path other than "/";
  * DNS is resolved once and the connection pinned to a checked address (no rebinding between
    check and connect), TLS still verified for the hostname (SNI);
  * special-use addresses are refused (RFC 6890), unless the auth service itself is on loopback;
  * no redirects followed, at most 5 KB read, one overall deadline of 3 s (DNS, connect, TLS, headers
    and body), and the other bounds of oauth/outbound_fetches.py: concurrency per host and overall,
    one fetch in flight per URL, a failing host refused for 30 s;
  * the document's `client_id` must equal the URL; no `client_secret` (draft §4.1: no shared secrets).
    The client is public (`none`) — a document listing several methods (ChatGPT lists `none` and
    `private_key_jwt`) negotiates to `none`, which is what it uses — unless its only method is
    `private_key_jwt` with its keys in the document (`jwks_uri` or `jwks`, draft §4.1): then it
    authenticates at /token with assertions signed by those keys (RFC 7523 §2.2).
  * redirect URIs follow the registration rules (schemes included: AUTH_REGISTRATION_ALLOWED_SCHEMES),
    and `client_uri`, `logo_uri`, `policy_uri`, `tos_uri` that are not https are dropped, as in RFC 7591.
Refusals of a document are never cached; successes are cached per HTTP cache headers within bounds, and
a stored copy serves past its lifetime while the document cannot be fetched (store/client_resolution.py).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from mcp_auth_server.oauth.outbound_fetches import (
    DEFAULT_LIMITS,
    FetchLimits,
    FetchRefused,
    HostFailure,
    OutboundFetches,
)
from mcp_auth_server.oauth.rfc8252_redirect_uris import InvalidRedirectUri, check_registrable
from mcp_auth_server.oauth.rfc8259_json import InvalidJson, parse_json_text
from mcp_auth_server.oauth.special_use_addresses import is_allowed

MAX_BYTES = 5 * 1024
TIMEOUT = httpx.Timeout(3.0)
MIN_CACHE, DEFAULT_CACHE, MAX_CACHE = 60, 300, 86_400
DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")
HOST_NAME = re.compile(r"[a-z0-9_.-]+")


class InvalidMetadataDocument(Exception):
    """The client_id URL or its document is unacceptable; the message says why (safe to show)."""


class DocumentUnavailable(InvalidMetadataDocument):
    """The document could not be had within the fetch bounds (the host failed, was too slow, or no fetch
    slot came free): no answer about the document, so a stored copy may still serve (stale-if-error)."""


class _Unreachable(HostFailure):
    """Connecting to one of the host's addresses failed; the next one may work."""


@dataclass(frozen=True)
class ClientMetadataDocument:
    client_id: str
    client_name: str | None
    redirect_uris: list[str]
    document: dict[str, Any]
    max_age: int
    token_endpoint_auth_method: str = "none"  # or private_key_jwt, with one of:
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None


def is_metadata_document_client_id(client_id: str) -> bool:
    """Shaped like a CIMD client_id: an https URL (draft §3). Other client ids are ours."""
    return client_id.startswith("https://")


def check_client_id_url(client_id: str) -> tuple[str, int]:
    """The host (ASCII: IDNA-encoded) and port to fetch from, after the draft §3 rules on the URL itself."""
    try:
        parts = urlsplit(client_id)
        port = parts.port or 443
    except ValueError:
        raise InvalidMetadataDocument("client_id is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidMetadataDocument("a client_id URL must be https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidMetadataDocument("a client_id URL must not contain user information")
    if "#" in client_id:
        raise InvalidMetadataDocument("a client_id URL must not contain a fragment")
    if not parts.path or parts.path == "/":
        raise InvalidMetadataDocument("a client_id URL must have a path")
    if DOT_SEGMENT.search(parts.path) or re.search(r"%2e", parts.path, re.I):
        raise InvalidMetadataDocument("a client_id URL must not contain dot segments")
    return ascii_host(parts.hostname), port


def ascii_host(host: str) -> str:
    """The host as DNS and TLS see it: an IP address, or a name IDNA-encoded (`a..b` and NULs refused)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidMetadataDocument("the client_id URL's host is not a valid domain name") from None
    # Checked again after encoding: mapping can create dots (U+2488 "⒈" becomes "1."), so empty labels.
    labels = encoded.removesuffix(".").split(".")
    if not HOST_NAME.fullmatch(encoded) or len(encoded) > 253 or not all(0 < len(x) <= 63 for x in labels):
        raise InvalidMetadataDocument("the client_id URL's host is not a valid domain name")
    return encoded


async def resolve_once(
    host: str, port: int, *, allow_loopback: bool, resolver: Executor | None = None
) -> list[str]:
    """One DNS answer, every address in it checked; we connect only to these addresses.

    `resolver`: the threads that run getaddrinfo. A lookup abandoned at the deadline keeps its thread
    until the system resolver gives up, so document hosts get threads of their own: a hostile name
    server then delays only other documents' lookups, never the database driver's (the loop's default
    executor)."""
    try:
        literal = ipaddress.ip_address(host)
        candidates = [literal]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().run_in_executor(
                resolver, functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
            )
        except OSError:
            raise InvalidMetadataDocument(f"{host} does not resolve") from None
        candidates = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    # Every answer must be acceptable: a name that also points inward is refused outright.
    if not candidates or not all(is_allowed(a, allow_loopback=allow_loopback) for a in candidates):
        raise InvalidMetadataDocument(f"{host} resolves to an address this server will not fetch from")
    return [str(address) for address in dict.fromkeys(candidates)]


P = ParamSpec("P")
R = TypeVar("R")


class LookupThreads(ThreadPoolExecutor):
    """The document hosts' DNS threads, counting the lookups submitted and not yet finished."""

    def __init__(self, threads: int) -> None:
        super().__init__(threads, thread_name_prefix="document-dns")
        self._capacity = threads
        self._unfinished = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        with self._lock:
            self._unfinished += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: Future[Any]) -> None:
        with self._lock:
            self._unfinished -= 1

    def all_busy(self) -> bool:
        return self._unfinished >= self._capacity


class MetadataDocumentFetcher:
    def __init__(
        self,
        *,
        allow_loopback: bool,
        allowed_schemes: Collection[str],
        ca_bundle: str | None = None,
        limits: FetchLimits = DEFAULT_LIMITS,
    ) -> None:
        self._allow_loopback = allow_loopback
        self._allowed_schemes = allowed_schemes
        self._fetches: OutboundFetches[ClientMetadataDocument] = OutboundFetches(limits)
        self._resolver = LookupThreads(limits.resolver_threads)
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        self._http = httpx.AsyncClient(
            verify=context,
            timeout=TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=limits.overall),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        self._resolver.shutdown(wait=False, cancel_futures=True)

    async def fetch(self, client_id: str) -> ClientMetadataDocument:
        """The document, within the bounds of oauth/outbound_fetches.py; InvalidMetadataDocument if not."""
        host, port = check_client_id_url(client_id)
        try:
            return await self._fetches.fetch(host, client_id, lambda: self._fetch(client_id, host, port))
        except FetchRefused as refused:
            raise DocumentUnavailable(f"the document could not be fetched: {refused}") from None

    async def _fetch(self, client_id: str, host: str, port: int) -> ClientMetadataDocument:
        if self._resolver.all_busy() and not _is_address(host):
            # Names whose name server answers late (anyone's zone) hold every lookup thread: this host
            # would wait for one until its deadline and be remembered as failing, through no fault of its
            # own. Refused at once instead, held against nobody (a stored copy still serves).
            raise DocumentUnavailable("every DNS lookup for documents is busy; try again shortly")
        addresses = await resolve_once(
            host, port, allow_loopback=self._allow_loopback, resolver=self._resolver
        )
        for address in addresses[:-1]:
            try:
                return await self._fetch_from(client_id, host, port, address)
            except _Unreachable:
                continue  # e.g. localhost answering ::1 first to a server listening on IPv4 only
        try:
            return await self._fetch_from(client_id, host, port, addresses[-1])
        except _Unreachable:
            raise HostFailure(f"{host} could not be reached") from None

    async def _fetch_from(self, client_id: str, host: str, port: int, address: str) -> ClientMetadataDocument:
        parts = urlsplit(client_id)
        netloc = f"[{address}]" if ":" in address else address
        pinned = urlunsplit(("https", f"{netloc}:{port}", parts.path, parts.query, ""))
        authority = f"[{host}]" if ":" in host else host
        headers = {
            "Host": f"{authority}:{parts.port}" if parts.port else authority,
            "Accept": "application/json",
        }
        try:
            async with self._http.stream(
                "GET", pinned, headers=headers, extensions={"sni_hostname": host}
            ) as response:
                if response.status_code != 200:
                    raise InvalidMetadataDocument(
                        f"fetching the client metadata document gave HTTP "
                        f"{response.status_code} (redirects are not followed)"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise InvalidMetadataDocument("the client metadata document is larger than 5 KB")
                cache_control = response.headers.get("cache-control", "")
        except httpx.ConnectError:
            raise _Unreachable from None
        except httpx.TimeoutException:
            raise HostFailure(f"{host} timed out") from None
        except httpx.HTTPError as exc:
            raise HostFailure(f"{host} failed ({type(exc).__name__})") from None
        return parse_document(
            client_id,
            bytes(body),
            max_age(cache_control),
            self._allowed_schemes,
            allow_loopback=self._allow_loopback,
        )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def max_age(cache_control: str) -> int:
    directives = {
        d.strip().split("=", 1)[0].lower(): d.strip() for d in cache_control.split(",") if d.strip()
    }
    if "no-store" in directives or "no-cache" in directives:
        return MIN_CACHE  # still bounded below: every /authorize must not re-fetch
    match = re.search(r"max-age=(\d+)", cache_control)
    seconds = int(match.group(1)) if match else DEFAULT_CACHE
    return max(MIN_CACHE, min(MAX_CACHE, seconds))


def parse_document(
    client_id: str,
    body: bytes,
    cache_seconds: int,
    allowed_schemes: Collection[str],
    *,
    allow_loopback: bool = False,
) -> ClientMetadataDocument:
    try:
        document = parse_json_text(body)
    except InvalidJson as exc:
        raise InvalidMetadataDocument(f"the client metadata document is not acceptable JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidMetadataDocument("the client metadata document must be a JSON object")
    if document.get("client_id") != client_id:
        raise InvalidMetadataDocument("the document's client_id differs from its URL")
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise InvalidMetadataDocument("a client metadata document must not contain a client secret")
    keys = _client_keys(document, allow_loopback=allow_loopback)
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or len(uris) > 20:
        raise InvalidMetadataDocument("redirect_uris must be a non-empty list")
    for uri in uris:
        try:
            check_registrable(uri, allowed_schemes)
        except InvalidRedirectUri as exc:
            raise InvalidMetadataDocument(str(exc)) from None
    name = document.get("client_name")
    if name is not None and (not isinstance(name, str) or len(name) > 200 or not name.isprintable()):
        raise InvalidMetadataDocument("client_name must be short printable text")
    # Imported here: rfc7591_client_metadata -> client_jwks -> this module (resolve_once) is a cycle.
    from mcp_auth_server.oauth.rfc7591_client_metadata import WEB_URI_FIELDS, web_uri

    for field in WEB_URI_FIELDS:
        if field in document and web_uri(document[field]) is None:
            del document[field]  # e.g. a `javascript:` logo_uri: dropped, as at registration
    return ClientMetadataDocument(client_id, name, list(uris), document, cache_seconds, **keys)


def _client_keys(document: dict[str, Any], *, allow_loopback: bool) -> dict[str, Any]:
    """How the client authenticates: `none`, or private_key_jwt with the keys the document names."""
    # Imported here: client_jwks fetches through this module's resolve_once.
    from mcp_auth_server.oauth.client_jwks import InvalidJwksUri, check_jwks_uri, check_public_jwks

    method = document.get("token_endpoint_auth_method", "none")
    offered = document.get("token_endpoint_auth_methods_supported")
    if method == "none" or (isinstance(offered, list) and "none" in offered):
        return {}
    if method != "private_key_jwt":
        raise InvalidMetadataDocument("token_endpoint_auth_method must be none or private_key_jwt")
    jwks, jwks_uri = document.get("jwks"), document.get("jwks_uri")
    if (jwks is None) == (jwks_uri is None):
        raise InvalidMetadataDocument("a private_key_jwt client's document names jwks_uri or jwks (one)")
    try:
        if jwks_uri is not None:
            if not isinstance(jwks_uri, str) or len(jwks_uri) > 2000:
                raise InvalidJwksUri("jwks_uri must be a URL")
            return {
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": check_jwks_uri(jwks_uri, allow_loopback=allow_loopback),
            }
        return {"token_endpoint_auth_method": "private_key_jwt", "jwks": check_public_jwks(jwks)}
    except ValueError as exc:  # InvalidJwksUri too
        raise InvalidMetadataDocument(str(exc)) from None
