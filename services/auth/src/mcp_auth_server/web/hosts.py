"""Hosts as the browser will reach them, for pages a person decides on (the consent page).

A redirect URI's host is shown in the form the browser resolves (UTS #46 processing, IDNA 2008
punycode, as browsers do), because a Unicode host can imitate another: `\u0441laude.ai` (its first
letter Cyrillic U+0441) is `xn--laude-0ye.ai`, not `claude.ai`. The Unicode spelling is shown beside
it, so a person who sees the two differ knows something is off. A private-use scheme has no host the
browser resolves: it hands the response to whichever application on this computer claims the scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import idna


@dataclass(frozen=True)
class ShownHost:
    """`ascii`: what the browser will reach; `unicode`: the same name in Unicode, if it differs."""

    ascii: str
    unicode: str | None = None
    malformed: bool = False  # no browser would reach it: shown escaped, never as the name it imitates


def shown_host(host: str) -> ShownHost:
    host = host.rstrip(".").lower()
    if host.isascii() and "xn--" not in host:
        return ShownHost(host)  # ASCII already: shown as is (IP literals, names with `_`)
    try:
        ascii_form = idna.encode(host, uts46=True).decode("ascii")
        unicode_form = idna.decode(ascii_form)
    except (idna.IDNAError, UnicodeError, ValueError):
        return ShownHost(ascii(host).strip("'"), malformed=True)
    return ShownHost(ascii_form, unicode_form if unicode_form != ascii_form else None)


@dataclass(frozen=True)
class RedirectTarget:
    """Where the browser goes after the person approves: a web host, or an app by its scheme."""

    host: ShownHost | None  # None for a private-use scheme
    port: int | None = None
    scheme: str = "https"

    @property
    def address(self) -> str:
        """The host as the browser reaches it, with the port if one is given."""
        if self.host is None:
            return f"{self.scheme}:"
        name = f"[{self.host.ascii}]" if ":" in self.host.ascii else self.host.ascii
        return name if self.port is None else f"{name}:{self.port}"


def redirect_target(uri: str) -> RedirectTarget:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return RedirectTarget(None, scheme=scheme)
    return RedirectTarget(shown_host(parts.hostname or ""), parts.port, scheme)
