"""Finds the auth service's endpoints in its RFC 8414 metadata, so the kit needs only the issuer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

WELL_KNOWN = "/.well-known/oauth-authorization-server"


class DiscoveryError(Exception):
    """The authorization server metadata could not be fetched or is not trustworthy."""


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path component."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}"


async def fetch_metadata(client: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """Fetch the issuer's metadata and refuse any document that names another issuer."""
    try:
        response = await client.get(metadata_url(issuer), headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DiscoveryError(f"cannot fetch authorization server metadata: {exc}") from exc
    # RFC 8414 §3.3: the metadata's issuer MUST be identical to the issuer the URL was built from.
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise DiscoveryError("authorization server metadata names a different issuer")
    return document


def endpoint(document: dict[str, Any], name: str) -> str:
    """One endpoint URL from the metadata, which must be present and a string."""
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise DiscoveryError(f"authorization server metadata has no {name}")
    return value
