"""Redirect URIs: which may be registered, and exact matching at /authorize.

Registration (RFC 7591 §2, RFC 8252 §7, OAuth 2.1 §2.3.1): https; http only on a loopback host;
or a private-use scheme for native apps, reverse-DNS style or allow-listed by the operator
(`cursor://...`; oauth/rfc8252_private_use_schemes.py). Never a fragment, a wildcard, user
information, or a scheme the browser or the operating system handles (`javascript:`, `intent:`, ...).

Matching (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3): simple string comparison, except that for a
loopback redirect the port may differ (RFC 8252 §7.3), because native apps listen on
whatever port is free. We grant that to `localhost` as well, as Claude Code and the MCP
Inspector register it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from urllib.parse import urlsplit, urlunsplit

import idna

from mcp_auth_server.oauth.rfc8252_private_use_schemes import scheme_problem
from mcp_auth_server.oauth.special_use_addresses import is_public
from mcp_auth_server.settings import is_loopback_host

MAX_LENGTH = 2000
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
# WHATWG URL "ends in a number": the last label (before a trailing dot) is decimal digits or 0x and hex.
ENDS_IN_A_NUMBER = re.compile(r"(^|\.)([0-9]+|0x[0-9a-f]*)\.?$")


class InvalidRedirectUri(ValueError):
    """The URI may not be registered as a redirect URI."""


def check_registrable(uri: str, allowed_schemes: Collection[str] | None) -> None:
    """Refuse `uri` as a redirect URI, saying why. `allowed_schemes`: private-use schemes without a period
    that the operator accepts (AUTH_REGISTRATION_ALLOWED_SCHEMES); None for the operator's own clients."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_LENGTH:
        raise InvalidRedirectUri("redirect URIs must be non-empty strings of at most 2000 characters")
    if "#" in uri:
        raise InvalidRedirectUri(f"{uri!r}: redirect URIs must not contain a fragment")
    if "*" in uri:
        raise InvalidRedirectUri(f"{uri!r}: wildcards are not allowed")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in uri):
        raise InvalidRedirectUri(f"{uri!r}: whitespace and control characters are not allowed")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidRedirectUri(f"{uri!r} is not a valid URI") from None
    scheme = parts.scheme.lower()
    if not scheme or not SCHEME.match(scheme):
        raise InvalidRedirectUri(f"{uri!r}: scheme {scheme or '(none)'!r} is not allowed")
    problem = scheme_problem(scheme, allowed_schemes)
    if problem:
        raise InvalidRedirectUri(f"{uri!r}: {problem}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidRedirectUri(f"{uri!r}: user information is not allowed")
    if scheme == "https":
        if not parts.hostname:
            raise InvalidRedirectUri(f"{uri!r}: https redirect URIs need a host")
        if not _browser_can_resolve(parts.hostname):
            raise InvalidRedirectUri(f"{uri!r}: the host is not a valid internationalised domain name")
    elif scheme == "http":
        if not is_loopback_host(parts.hostname):
            raise InvalidRedirectUri(
                f"{uri!r}: http is allowed only on loopback (127.0.0.1, [::1], localhost)"
            )
    elif "." not in scheme and parts.netloc == "" and not parts.path:
        # A private-use scheme needs something after it (RFC 8252 §7.1).
        raise InvalidRedirectUri(f"{uri!r}: a private-use redirect URI needs a path")


def _browser_can_resolve(host: str) -> bool:
    """A host the browser reaches as we read it, so that the consent page shows where it goes: an IP
    address as written, or a name of letters, digits, `-` and `_` (punycode included: a Unicode name UTS #46
    maps as browsers do). The WHATWG URL parser the browser uses reads other hosts differently from
    `urlsplit`: a backslash ends the host (`https://evil.example\\.claude.ai` goes to evil.example),
    percent-escapes are decoded, and a name whose last label is a number is an IPv4 address in any base
    (`0x7f.1`, `2130706433`, `127.1` are 127.0.0.1: this machine, where identity is not assured, RFC 8252
    §8.6). Browsers also refuse IPv6 zone ids. All of those are refused (RFC 7591 §5)."""
    if "%" in host:
        return False  # a percent-escape, or an IPv6 zone id (which ip_address would accept)
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if not host.isascii() or "xn--" in host:
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
            idna.decode(host)
        except (idna.IDNAError, UnicodeError, ValueError):
            return False
    return bool(HOST_NAME.fullmatch(host.lower())) and not ENDS_IN_A_NUMBER.search(host.lower())


def identity_assured(uri: str) -> bool:
    """Whether receiving at `uri` proves which application asks (RFC 8252 §8.6): https to a host of the
    wider network. On this machine's own addresses (loopback, `localhost` and `*.localhost`, which
    browsers resolve to loopback, or the unspecified address) any local program can take the port and,
    running as the user, present a certificate the browser trusts; private-use schemes are anyone's."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return is_public(ipaddress.ip_address(host))
    except ValueError:
        return True  # a DNS name: its owner alone can be answered at it


def is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def matches_registered(presented: str, registered: list[str]) -> str | None:
    """The registered URI that `presented` matches, or None."""
    for candidate in registered:
        if presented == candidate:
            return candidate
    try:
        parts = urlsplit(presented)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    # Only the port may differ, so anything urlsplit would quietly drop or normalise is refused:
    # a fragment (OAuth 2.1 §4.1.1 forbids it) and user information, even an empty `@`; and, as the
    # comparison is of strings (RFC 9700 §4.1.3), whatever does not survive the round trip: tabs and
    # newlines urlsplit deletes, leading spaces it strips, an upper-case scheme it lower-cases.
    if (
        parts.scheme != "http"
        or not is_loopback_host(parts.hostname)
        or "@" in parts.netloc
        or "#" in presented
        or urlunsplit(parts) != presented
    ):
        return None
    for candidate in registered:
        if not is_loopback_redirect(candidate):
            continue
        other = urlsplit(candidate)
        # RFC 8252 §7.3: any port; host (spelled the same way), path and query identical.
        if (_host_as_written(parts.netloc), parts.path, parts.query) == (
            _host_as_written(other.netloc),
            other.path,
            other.query,
        ):
            return candidate
    return None


def _host_as_written(netloc: str) -> str:
    """The host exactly as spelled (urlsplit's `hostname` lower-cases it), without the port."""
    return netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
