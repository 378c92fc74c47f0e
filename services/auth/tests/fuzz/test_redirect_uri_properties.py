"""Properties of redirect URI matching (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3, RFC 8252 §7.3).

A presented URI matches a registered one only if the strings are equal, or — for a loopback
registration — if they differ in the port alone. With user information, a fragment, another host,
path or query, or any character a parser would drop or normalise, it never matches.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mcp_auth_server.oauth.rfc8252_redirect_uris import (
    InvalidRedirectUri,
    check_registrable,
    matches_registered,
)

from .uri_strategies import (
    DNS_HOSTS,
    LOOPBACK_HOSTS,
    PATHS,
    PORTS,
    QUERIES,
    STRAY,
    inserted,
    mixed_case,
    with_query,
)

OPTIONAL_PORT = st.one_of(st.just(""), PORTS.map(lambda port: f":{port}"))


@st.composite
def loopback_uris(draw: st.DrawFn, host: str | None = None) -> tuple[str, str, str]:
    """(host, port part, path with query) of an http loopback redirect URI."""
    return (
        host or draw(LOOPBACK_HOSTS),
        draw(OPTIONAL_PORT),
        with_query(draw(PATHS), draw(QUERIES)),
    )


def http(host: str, port: str, rest: str) -> str:
    return f"http://{host}{port}{rest}"


@given(loopback_uris(), OPTIONAL_PORT)
def test_a_loopback_registration_matches_any_port_and_only_a_port(
    uri: tuple[str, str, str], other_port: str
) -> None:
    host, port, rest = uri
    registered = http(host, port, rest)
    check_registrable(registered, ())
    assert matches_registered(registered, [registered]) == registered
    assert matches_registered(http(host, other_port, rest), [registered]) == registered


@given(DNS_HOSTS, OPTIONAL_PORT, OPTIONAL_PORT, PATHS, QUERIES)
def test_an_https_registration_matches_only_itself(
    host: str, port: str, other_port: str, path: str, query: str
) -> None:
    registered = f"https://{host}{port}{with_query(path, query)}"
    check_registrable(registered, ())
    assert matches_registered(registered, [registered]) == registered
    presented = f"https://{host}{other_port}{with_query(path, query)}"
    assert matches_registered(presented, [registered]) == (registered if presented == registered else None)


@given(loopback_uris(), loopback_uris())
def test_another_host_path_or_query_never_matches(
    uri: tuple[str, str, str], other: tuple[str, str, str]
) -> None:
    (host, port, rest), (other_host, other_port, other_rest) = uri, other
    assume((host, rest) != (other_host, other_rest))
    assert matches_registered(http(other_host, other_port, other_rest), [http(host, port, rest)]) is None


@given(loopback_uris(), PORTS, st.sampled_from(["", "user", "user:pw", "127.0.0.1"]))
def test_user_information_never_matches(uri: tuple[str, str, str], port: int, userinfo: str) -> None:
    host, registered_port, rest = uri
    presented = f"http://{userinfo}@{host}:{port}{rest}"
    assert matches_registered(presented, [http(host, registered_port, rest)]) is None


@given(loopback_uris(), PORTS, st.text(max_size=8))
def test_a_fragment_never_matches(uri: tuple[str, str, str], port: int, fragment: str) -> None:
    host, registered_port, rest = uri
    presented = f"http://{host}:{port}{rest}#{fragment}"
    assert matches_registered(presented, [http(host, registered_port, rest)]) is None


@given(loopback_uris().flatmap(lambda uri: st.tuples(st.just(uri), inserted(http(*uri)))))
def test_a_stray_character_anywhere_never_matches(case: tuple[tuple[str, str, str], str]) -> None:
    # Found by this suite: urlsplit deleted tabs and newlines and stripped leading spaces, so
    # "http://127.0.0.1:5\r\n/callback" matched "http://127.0.0.1/callback".
    uri, presented = case
    assert matches_registered(presented, [http(*uri)]) is None


@given(loopback_uris(host="localhost"), st.data())
def test_the_scheme_and_host_are_compared_as_written(uri: tuple[str, str, str], data: st.DataObject) -> None:
    _, port, rest = uri
    presented = f"{data.draw(mixed_case('http'))}://{data.draw(mixed_case('localhost'))}{port}{rest}"
    assume(presented != http("localhost", port, rest))
    assert matches_registered(presented, [http("localhost", port, rest)]) is None


@given(DNS_HOSTS.filter(lambda host: host != "localhost"), OPTIONAL_PORT, PATHS)
def test_http_is_registrable_only_on_loopback(host: str, port: str, path: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_registrable(f"http://{host}{port}{path}", ())


@given(
    st.one_of(loopback_uris().map(lambda uri: http(*uri)), DNS_HOSTS.map(lambda host: f"https://{host}/cb"))
    .flatmap(lambda uri: inserted(uri, STRAY.filter(lambda ch: ch not in "\\")))
    .filter(lambda uri: "@" not in uri.split("//", 1)[-1].split("/", 1)[-1])  # "@" in a path is fine
)
def test_registration_refuses_fragments_user_information_and_stray_characters(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_registrable(uri, ())
