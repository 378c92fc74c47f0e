"""Hypothesis strategies for pieces of http(s) URIs, shared by the resource and redirect URI properties."""

from __future__ import annotations

from hypothesis import strategies as st

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# A name whose last label is a number (`a.0`, `0x1`) is an IPv4 address to a browser (WHATWG URL), not a name.
DNS_HOSTS = (
    st.lists(LABEL, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda host: not (last := host.rsplit(".", 1)[-1]).isdigit() and not last.startswith("0x"))
)
LOOPBACK_HOSTS = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "127.0.0.53"])
PORTS = st.integers(min_value=1, max_value=65535)
SEGMENT = st.from_regex(r"[A-Za-z0-9._~-]{1,8}", fullmatch=True)
PATHS = st.lists(SEGMENT, max_size=3).map(lambda segments: "/" + "/".join(segments))
QUERIES = st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9]{1,5}=[A-Za-z0-9]{0,5}", fullmatch=True))
# Characters that have no place in a URI (RFC 3986 §2) or that only some parsers strip or honour.
STRAY = st.sampled_from(["\t", "\n", "\r", " ", "\x00", "\x7f", "\x0b", "\u00a0", "@", "#", "\\"])


def with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


@st.composite
def mixed_case(draw: st.DrawFn, text: str) -> str:
    """`text` with each letter upper- or lower-cased at random."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.upper() if flip else ch.lower() for ch, flip in zip(text, flips, strict=True))


@st.composite
def inserted(draw: st.DrawFn, text: str, stray: st.SearchStrategy[str] = STRAY) -> str:
    """`text` with one stray character inserted anywhere."""
    position = draw(st.integers(min_value=0, max_value=len(text)))
    return text[:position] + draw(stray) + text[position:]
