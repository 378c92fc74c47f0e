"""Hypothesis strategies for what an attacker sends rather than what a schema allows: Unicode and
IDNA-failing hosts, NUL bytes, invalid UTF-8, huge values and repeated parameters, as raw bytes, so
the requests built from them reach the service exactly as drawn."""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

from .uri_strategies import DNS_HOSTS, PATHS

HUGE = 50_000  # characters: over any column, under the 64 KiB body limit and httpx's URL limit

HOSTILE_HOSTS_LIST = [
    "a..b",  # IDNA: an empty label
    "xn--",  # IDNA: an empty punycode label
    "xn--zz-zzz",  # IDNA: punycode that does not decode
    "a" * 64 + ".example",  # IDNA: a label over 63 characters
    "\u0441laude.ai",  # Cyrillic es: a look-alike
    "ex\u00e4mple.com",  # a plain Unicode host
    "\u2488.example",  # a character NFKC turns into "1."
    "a\x00b.example",  # NUL
    "[::1",  # an unclosed IPv6 literal
    "[fe80::1%25eth0]",  # a zone id
    "256.256.256.256",
    "exa mple.com",
    "-leading.example",
    "\ud800.example",  # a lone surrogate (written as UTF-8 bytes it cannot be: see as_bytes)
]
HOSTILE_HOSTS = st.sampled_from(HOSTILE_HOSTS_LIST)
HOSTILE_PORTS = st.sampled_from(["", ":0", ":99999", ":-1", ":443", ":x", ":" + "9" * 30])
HOSTILE_URIS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.one_of(st.just("https"), st.sampled_from(["http", "HTTPS", "javascript", "cursor", "intent"])),
    st.one_of(HOSTILE_HOSTS, HOSTILE_HOSTS, DNS_HOSTS),
    st.one_of(st.just(""), HOSTILE_PORTS),
    st.one_of(PATHS, st.sampled_from(["", "/..", "/%2e%2e/x", "/a#frag", "/\x00", "/" + "p" * 3000])),
)
HOSTILE_TEXT = st.one_of(
    HOSTILE_URIS,
    st.text(max_size=40),  # any Unicode, surrogates included
    st.sampled_from(
        ["", "\x00", "%00", "%", "%zz", "+", "&", "=", "\r\n", "null", "[]", "{}", "-1", "1e999"]
    ),
    st.just("x" * HUGE),
)


def as_bytes(text: str) -> bytes:
    """UTF-8, with lone surrogates kept as the invalid bytes they would be (surrogatepass)."""
    return text.encode("utf-8", "surrogatepass")


HOSTILE_BYTES = st.one_of(
    HOSTILE_TEXT.map(as_bytes),
    st.binary(max_size=32),  # invalid UTF-8 most of the time
    st.sampled_from([b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\x80"]),
)


URL_NAMES = {"client_id", "redirect_uri", "resource", "iss", "logo_uri", "client_uri"}


def hostile_value(name: str) -> st.SearchStrategy[bytes]:
    if name in URL_NAMES:  # where a URL goes, mostly a hostile URL: that is where hosts are parsed
        return st.one_of(HOSTILE_URIS.map(as_bytes), HOSTILE_URIS.map(as_bytes), HOSTILE_BYTES)
    return HOSTILE_BYTES


def parameters(names: list[str], known: dict[str, list[str]]) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """A request the service would accept (the known-good values), then spoiled: one to three of the
    endpoint's parameters given hostile values, maybe some dropped, stray names added, pairs repeated."""

    @st.composite
    def spoiled(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
        values = {name: draw(st.sampled_from(known[name])).encode() for name in names if name in known}
        urls = [name for name in names if name in URL_NAMES]
        spoil = st.one_of(st.sampled_from(urls), st.sampled_from(names)) if urls else st.sampled_from(names)
        for name in draw(st.lists(spoil, min_size=1, max_size=3, unique=True)):
            values[name] = draw(hostile_value(name))
        for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
            values.pop(name, None)
        pairs = [(name.encode(), value) for name, value in values.items()]
        pairs += draw(st.lists(st.tuples(HOSTILE_BYTES, HOSTILE_BYTES), max_size=2))  # stray names
        repeated = draw(st.lists(st.sampled_from(pairs), max_size=2)) if pairs else []
        return pairs + repeated

    return spoiled()


def seeded(names: list[str], known: dict[str, list[str]]) -> list[list[tuple[bytes, bytes]]]:
    """Deterministic cases run before the random ones: the accepted request with each URL-valued parameter
    set to https://<each hostile host>/x, so `make test` always covers every host that broke a parser."""
    base = {name: known[name][0].encode() for name in names if name in known}
    cases = []
    for name in (n for n in names if n in URL_NAMES):
        for host in HOSTILE_HOSTS_LIST:
            cases.append([(k.encode(), v) for k, v in {**base, name: as_bytes(f"https://{host}/x")}.items()])
    return cases


def urlencoded(pairs: list[tuple[bytes, bytes]], raw: bool) -> bytes:
    """A query string or form body; `raw` leaves the bytes unescaped (invalid UTF-8 reaches the parser)."""
    if raw:
        return b"&".join(key + b"=" + value for key, value in pairs)
    return "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in pairs).encode()


@st.composite
def registration_bodies(draw: st.DrawFn) -> bytes:
    """A /register body: raw bytes, or JSON with hostile values where URIs and names go, keys repeated."""
    if draw(st.booleans()):
        deep = st.integers(min_value=1, max_value=30_000).map(lambda depth: b"[" * depth + b"]" * depth)
        return draw(st.one_of(HOSTILE_BYTES, deep))
    fields = [
        "redirect_uris",
        "client_name",
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "grant_types",
        "token_endpoint_auth_method",
        "application_type",
        "scope",
    ]
    value = st.one_of(
        HOSTILE_TEXT,
        st.lists(HOSTILE_TEXT, max_size=3),
        st.just(["https://claude.ai/api/mcp/auth_callback"] * 2),
        st.integers(),
        st.none(),
    )
    members = draw(st.lists(st.tuples(st.sampled_from(fields), value), max_size=6))
    # Written out by hand so a key may appear twice, as a hostile client would send it.
    text = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members) + "}"
    return as_bytes(text)
