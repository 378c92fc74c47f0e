"""Talking to a provider over HTTP, with every failure mapped to the connector exceptions in one place.

Every connector sorts failures the same way: the provider being down, slow or answering garbage is
`UpstreamUnavailable` (retry later, 503 to the client); the provider saying no (a bad code, a revoked
token, the user declining) is `UpstreamRejected`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from mcp_auth_server.clock import now
from mcp_auth_server.upstreams.base import UpstreamRejected, UpstreamTokens, UpstreamUnavailable

# RFC 6749 §4.1.2.1: errors an authorization server sends back that mean "try again later".
_TRANSIENT_AUTHORIZATION_ERRORS = {"server_error", "temporarily_unavailable"}


async def request_json(http: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any) -> Any:
    """The JSON body of a successful answer; any failure raised as a connector exception."""
    return _json(provider, await _request(http, provider, method, url, **kwargs), url)


async def request_json_pages(
    http: httpx.AsyncClient, provider: str, url: str, *, max_pages: int, **kwargs: Any
) -> list[Any]:
    """Every item of a paginated JSON list, following `Link: rel="next"` (RFC 8288) up to `max_pages`.

    Only links on the first URL's own origin are followed: the request carries the user's token, and
    a `next` link elsewhere would hand it to another host.
    """
    origin = httpx.URL(url).copy_with(path="/", query=None, fragment=None)
    items: list[Any] = []
    next_url: str | None = url
    for _ in range(max_pages):
        if next_url is None:
            return items
        response = await _request(http, provider, "GET", next_url, **kwargs)
        page = _json(provider, response, next_url)
        if not isinstance(page, list):
            raise UpstreamUnavailable(f"{provider} returned a malformed list")
        items += page
        next_url = response.links.get("next", {}).get("url")
        if (
            next_url is not None
            and httpx.URL(next_url).copy_with(path="/", query=None, fragment=None) != origin
        ):
            raise UpstreamUnavailable(f"{provider} pointed the next page at another host")
    if next_url is not None:
        raise UpstreamUnavailable(f"{provider} returned more than {max_pages} pages")
    return items


async def _request(
    http: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    try:
        response = await http.request(method, url, headers=headers, **kwargs)
    except httpx.TimeoutException:
        raise UpstreamUnavailable(f"{provider} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"{provider} could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 500:
        raise UpstreamUnavailable(f"{provider} answered {response.status_code}")
    if _rate_limited(response):
        raise UpstreamUnavailable(f"{provider} is rate limiting requests ({response.status_code})")
    if response.status_code >= 400:
        raise UpstreamRejected(_refusal(provider, response, url))
    return response


def _rate_limited(response: httpx.Response) -> bool:
    """A 429 (RFC 6585 §4), or GitHub's 403 for a spent quota (`x-ratelimit-remaining: 0`) or a secondary
    limit (`retry-after`): "not now", never "no". Taken for a refusal, it would deprovision the user, and
    their token's quota is spent by their own tools (token exchange hands it out)."""
    if response.status_code == 429:
        return True
    headers = response.headers
    return response.status_code == 403 and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    )


def _json(provider: str, response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamUnavailable(f"{provider} returned malformed JSON") from None


def _refusal(provider: str, response: httpx.Response, url: str) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):  # RFC 6749 §5.2
        return f"{provider} refused: {body.get('error_description') or body['error']}"
    if response.status_code == 401:
        return f"{provider} no longer accepts this user's token"
    return f"{provider} answered {response.status_code} for {url.split('?')[0]}"


def check_authorization_response(params: Mapping[str, str], provider: str) -> str:
    """The authorization code from the provider's redirect back (RFC 6749 §4.1.2), or why there is none."""
    error = params.get("error")
    if error is not None:
        description = params.get("error_description") or error
        if error in _TRANSIENT_AUTHORIZATION_ERRORS:
            raise UpstreamUnavailable(f"{provider} could not complete the sign-in ({description})")
        raise UpstreamRejected(description)
    code = params.get("code")
    if not code:
        raise UpstreamRejected(f"{provider} returned no authorization code")
    return code


def tokens_from(body: Any, provider: str, *, previous: UpstreamTokens | None = None) -> UpstreamTokens:
    """Tokens from a token response (RFC 6749 §5.1); a refresh keeps what the answer leaves out (§6)."""
    if not isinstance(body, dict):
        raise UpstreamUnavailable(f"{provider} returned a malformed token response")
    if "error" in body or not isinstance(body.get("access_token"), str):
        raise UpstreamRejected(str(body.get("error_description") or body.get("error") or "no access token"))
    expires_in = body.get("expires_in")
    try:
        expires_at = now() + int(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        raise UpstreamUnavailable(f"{provider} returned a malformed expires_in") from None
    refresh_token = body.get("refresh_token")
    if not isinstance(refresh_token, str):
        refresh_token = previous.refresh_token if previous else None
    return UpstreamTokens(
        access_token=body["access_token"],
        refresh_token=refresh_token,
        expires_at=expires_at,
        scopes=body.get("scope") or (previous.scopes if previous else None),
    )
