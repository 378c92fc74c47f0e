"""Authorization responses carry `iss` (RFC 9207 §2), success or error, so a client talking to
several authorization servers can tell which one answered (mix-up attacks)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def authorization_response_url(redirect_uri: str, issuer: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(redirect_uri)
    # Keep the registered URI's own query parameters (RFC 6749 §3.1.2).
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    query.append(("iss", issuer))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
