"""Properties of `canonical_resource` (RFC 8707 §2), the one comparison that decides a token's audience.

Canonicalisation may only erase differences that do not change where a URI points (case of scheme
and host, a default port, an empty path); everything else stays significant, and values RFC 8707
forbids (fragments, user information, relative references, characters outside RFC 3986) are refused.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_auth_server.oauth.rfc8707_resource_indicators import InvalidResource, canonical_resource

from .uri_strategies import DNS_HOSTS, PATHS, PORTS, QUERIES, STRAY, inserted, mixed_case, with_query

SCHEMES = st.sampled_from(["http", "https"])


@st.composite
def resources(draw: st.DrawFn) -> str:
    port = draw(st.one_of(st.just(""), PORTS.map(lambda port: f":{port}")))
    path = draw(st.one_of(st.just(""), PATHS))
    return f"{draw(SCHEMES)}://{draw(DNS_HOSTS)}{port}{with_query(path, draw(QUERIES))}"


@given(st.one_of(resources(), st.text(max_size=60)))
def test_canonical_form_is_a_fixed_point(value: str) -> None:
    try:
        canonical = canonical_resource(value)
    except InvalidResource:
        return
    assert canonical_resource(canonical) == canonical


@given(SCHEMES, DNS_HOSTS, PATHS, QUERIES, st.data())
def test_case_of_scheme_and_host_does_not_matter(
    scheme: str, host: str, path: str, query: str, data: st.DataObject
) -> None:
    rest = with_query(path, query)
    shouted = f"{data.draw(mixed_case(scheme))}://{data.draw(mixed_case(host))}{rest}"
    assert canonical_resource(shouted) == canonical_resource(f"{scheme}://{host}{rest}")


@given(SCHEMES, DNS_HOSTS, PATHS, PATHS, QUERIES, QUERIES)
def test_path_and_query_are_significant(
    scheme: str, host: str, path: str, other_path: str, query: str, other_query: str
) -> None:
    one = canonical_resource(f"{scheme}://{host}{with_query(path, query)}")
    other = canonical_resource(f"{scheme}://{host}{with_query(other_path, other_query)}")
    assert (one == other) == ((path, query) == (other_path, other_query))


@given(SCHEMES, DNS_HOSTS, PATHS)
def test_default_port_is_the_same_resource_and_another_port_is_not(scheme: str, host: str, path: str) -> None:
    default = {"http": 80, "https": 443}[scheme]
    assert canonical_resource(f"{scheme}://{host}:{default}{path}") == canonical_resource(
        f"{scheme}://{host}{path}"
    )
    assert canonical_resource(f"{scheme}://{host}:{default + 1}{path}") != canonical_resource(
        f"{scheme}://{host}{path}"
    )


@given(resources(), st.text(max_size=8))
def test_fragments_are_refused(resource: str, fragment: str) -> None:
    with pytest.raises(InvalidResource):
        canonical_resource(f"{resource}#{fragment}")


@given(SCHEMES, st.sampled_from(["", "user", "user:pw", ":pw"]), DNS_HOSTS, PATHS)
def test_user_information_is_refused(scheme: str, userinfo: str, host: str, path: str) -> None:
    with pytest.raises(InvalidResource):
        canonical_resource(f"{scheme}://{userinfo}@{host}{path}")


@given(st.sampled_from(["", "/", "//", "./", "../", "mcp/", "ftp://", "urn:"]), DNS_HOSTS, PATHS)
def test_relative_references_and_other_schemes_are_refused(prefix: str, host: str, path: str) -> None:
    with pytest.raises(InvalidResource):
        canonical_resource(f"{prefix}{host}{path}")


@given(resources().flatmap(lambda resource: inserted(resource, STRAY.filter(str.isspace))))
def test_whitespace_anywhere_is_refused_not_silently_removed(value: str) -> None:
    # Found by this suite: urlsplit deleted tabs and newlines, so "http://exa\tmple.com/" named
    # "http://example.com/".
    with pytest.raises(InvalidResource):
        canonical_resource(value)
