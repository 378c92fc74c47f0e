"""Finds the auth service's endpoints in its RFC 8414 metadata, so the kit needs only the issuer.

Every error names the URL it concerns: an operator reading one log line knows what was asked of whom.

Inside a cluster the public issuer URL may not resolve (or would hairpin through the ingress): an
`internal_url` (e.g. `http://mcp-auth-server:9000`) is then where metadata, JWKS, introspection and
token exchange are fetched from, while the metadata's `issuer` (and every token's `iss`) is still
compared with the public issuer exactly. Endpoints the metadata lists on the issuer's origin are
reached through the internal URL instead; endpoints elsewhere are used as they are.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

WELL_KNOWN = "/.well-known/oauth-authorization-server"
# OpenID Connect Discovery 1.0 §4: appended to the issuer (after its path, unlike RFC 8414's suffix).
OPENID_CONFIGURATION = "/.well-known/openid-configuration"


class DiscoveryError(Exception):
    """The authorization server metadata could not be fetched or is not trustworthy."""


class IssuerMismatch(DiscoveryError):
    """The metadata names another issuer: a configuration mistake that waiting will not fix."""

    def __init__(self, *, expected: str, got: object, url: str) -> None:
        super().__init__(
            f"issuer mismatch: configured {expected!r}, but {url} names {got!r}; "
            "set the issuer to exactly the string the auth service publishes"
        )
        self.expected = expected
        self.got = got
        self.url = url


def internal_origin(url: str) -> str:
    """`url` checked as an internal base URL (scheme, host, port; nothing else) without a trailing slash."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"the auth service's internal URL must be http(s)://host[:port] only, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def metadata_url(issuer: str, internal_url: str | None = None) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path component."""
    path = urlsplit(issuer).path.rstrip("/")
    base = internal_origin(internal_url) if internal_url else _origin(issuer)
    return f"{base}{WELL_KNOWN}{path}"


def via_internal(url: str, issuer: str, internal_url: str | None) -> str:
    """An endpoint URL on the issuer's origin, moved onto the internal URL's origin (others unchanged)."""
    if not internal_url:
        return url
    public = _origin(issuer)
    if url == public or url.startswith(public + "/"):
        return internal_origin(internal_url) + url[len(public) :]
    return url


async def fetch_metadata(
    client: httpx.AsyncClient, issuer: str, internal_url: str | None = None
) -> dict[str, Any]:
    """Fetch the issuer's metadata and refuse any document that names another issuer."""
    # RFC 8414 §3.3: the metadata's issuer MUST be identical to the issuer the URL was built from; with an
    # internal URL, identical to the public issuer all the same (tokens carry that one).
    return await _fetch_document(client, metadata_url(issuer, internal_url), issuer)


def endpoint(document: dict[str, Any], name: str) -> str:
    """One endpoint URL from the metadata, which must be present and a string."""
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise DiscoveryError(f"authorization server metadata of {document.get('issuer')!r} has no {name}")
    return value


async def discover_endpoint(
    client: httpx.AsyncClient, issuer: str, name: str, internal_url: str | None = None
) -> str:
    """The URL to call for endpoint `name` of `issuer` (through `internal_url` when given)."""
    document = await fetch_metadata(client, issuer, internal_url)
    return via_internal(endpoint(document, name), issuer, internal_url)


async def discover_jwks_uri(client: httpx.AsyncClient, issuer: str) -> str:
    """The `jwks_uri` of a token issuer that is not our auth service (an enterprise IdP, a Kubernetes
    cluster): its OpenID Provider configuration (OpenID Connect Discovery §4), else its RFC 8414
    metadata. Either document must name exactly `issuer` (§4.3; RFC 8414 §3.3)."""
    try:
        document = await _fetch_document(client, issuer.rstrip("/") + OPENID_CONFIGURATION, issuer)
    except IssuerMismatch:
        raise
    except DiscoveryError:  # no OpenID configuration: try RFC 8414
        document = await fetch_metadata(client, issuer)
    return endpoint(document, "jwks_uri")


async def _fetch_document(client: httpx.AsyncClient, url: str, issuer: str) -> dict[str, Any]:
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except httpx.HTTPStatusError as exc:
        raise DiscoveryError(f"cannot fetch {url}: HTTP {exc.response.status_code}") from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise DiscoveryError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(document, dict):
        raise DiscoveryError(f"{url} is not a JSON object")
    if document.get("issuer") != issuer:
        raise IssuerMismatch(expected=issuer, got=document.get("issuer"), url=url)
    return document
