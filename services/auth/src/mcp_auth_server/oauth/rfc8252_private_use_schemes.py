"""Which private-use URI schemes a native app may register as its redirect (RFC 8252 §7.1, §8.4).

RFC 8252 §7.1: a private-use scheme is a reverse-DNS name the app's publisher controls
(`com.example.app`), so it contains a period. A name without one (`cursor`, `vscode`) belongs to
whichever app claimed it first on the machine; such schemes are accepted from anonymous registrations
only when the operator lists them in AUTH_REGISTRATION_ALLOWED_SCHEMES, for the well-known clients
that use them.

Some schemes are no app's redirect at all: the browser handles them itself (`javascript:`,
`view-source:`, `chrome:`, `blob:`, `jar:`), or the operating system hands them to one of its own
components (`intent:` on Android, `ms-settings:` and `ms-msdt:` on Windows,
`x-apple.systempreferences:` on macOS, `mailto:`, `tel:`). Sending an authorization response there
runs it through something that is not the client, often with the user's privileges. Those are refused
always, even when allow-listed, even dotted, even by the operator's own CLI.
"""

from __future__ import annotations

from collections.abc import Collection

NEVER = frozenset(
    {
        # Run or show content inside the browser, or fetch something that is not the client.
        "javascript",
        "vbscript",
        "data",
        "blob",
        "filesystem",
        "file",
        "about",
        "view-source",
        "jar",
        "wyciwyg",
        "resource",
        "chrome",
        "devtools",
        "edge",
        "opera",
        "brave",
        "vivaldi",
        "ws",
        "wss",
        "ftp",
        "sftp",
        "gopher",
        # Hand the URI to a component of the operating system.
        "intent",
        "android-app",
        "content",
        "market",
        "mailto",
        "tel",
        "sms",
        "smsto",
        "mms",
        "callto",
        "facetime",
        "facetime-audio",
        "sip",
        "sips",
        "news",
        "nntp",
        "snews",
        "telnet",
        "ssh",
        "ldap",
        "ldaps",
        "smb",
        "nfs",
        "afp",
        "webcal",
        "feed",
        "irc",
        "ircs",
        "magnet",
        "shell",
        "search",
        "search-ms",
        "help",
        "res",
    }
)
# Families: every browser's internal pages, Windows' handlers (`ms-settings`, `ms-msdt`,
# `ms-officecmd`), Apple's (`x-apple.systempreferences`, `itms-services`) and Edge's; and the schemes
# browsers route to a web site or an extension (`web+…` by registerProtocolHandler, Firefox's `ext+…`).
NEVER_PREFIXES = (
    "chrome-",
    "moz-",
    "safari-",
    "ms-",
    "microsoft-",
    "x-apple",
    "itms",
    "opera-",
    "edge-",
    "web+",
    "ext+",
)
WEB = frozenset({"http", "https"})


def is_never_a_redirect(scheme: str) -> bool:
    """A browser-internal or operating-system scheme, refused whatever the allow-list says."""
    scheme = scheme.lower()
    return scheme in NEVER or scheme.startswith(NEVER_PREFIXES)


def scheme_problem(scheme: str, allowed: Collection[str] | None) -> str | None:
    """Why `scheme` may not be a registered redirect's scheme, or None if it may.

    `allowed`: the operator's allow-list of schemes without a period; None when the operator
    registers the client (`mcp-auth clients add`) and so vouches for the app itself.
    """
    scheme = scheme.lower()
    if is_never_a_redirect(scheme):
        return f"scheme {scheme!r} is handled by the browser or the operating system, never by a client"
    if scheme in WEB or "." in scheme or allowed is None or scheme in allowed:
        return None
    return (
        f"private-use scheme {scheme!r} is not reverse-DNS style (RFC 8252 §7.1: it needs a period, "
        "e.g. com.example.app) and is not in this server's AUTH_REGISTRATION_ALLOWED_SCHEMES"
    )
