"""Finds the auth service's endpoints in its RFC 8414 metadata, so the kit needs only the issuer.

Every error names the URL it concerns: an operator reading one log line knows what was asked of whom.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

WELL_KNOWN = "/.well-known/oauth-authorization-server"


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


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path component."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}"


async def fetch_metadata(client: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """Fetch the issuer's metadata and refuse any document that names another issuer."""
    url = metadata_url(issuer)
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
    # RFC 8414 §3.3: the metadata's issuer MUST be identical to the issuer the URL was built from.
    if document.get("issuer") != issuer:
        raise IssuerMismatch(expected=issuer, got=document.get("issuer"), url=url)
    return document


def endpoint(document: dict[str, Any], name: str) -> str:
    """One endpoint URL from the metadata, which must be present and a string."""
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise DiscoveryError(f"authorization server metadata of {document.get('issuer')!r} has no {name}")
    return value
