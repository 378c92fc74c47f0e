"""Challenges are exactly what RFC 6750 §3 and the MCP authorization spec say; tokens are read strictly."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from mcp_auth_kit import www_authenticate
from mcp_auth_kit.rfc6750_challenges import (
    MalformedCredentials,
    MultipleTokens,
    bearer_token,
    validate_scopes,
)

PRM = "https://tools.example.com/.well-known/oauth-protected-resource/mcp"


def test_no_token_challenge_has_no_error() -> None:
    assert www_authenticate(resource_metadata=PRM, scopes=["mcp:tools"]) == (
        f'Bearer resource_metadata="{PRM}", scope="mcp:tools"'
    )


def test_invalid_token_challenge() -> None:
    assert www_authenticate(resource_metadata=PRM, scopes=["mcp:tools"], error="invalid_token") == (
        'Bearer error="invalid_token", error_description="The access token is invalid or expired", '
        f'resource_metadata="{PRM}", scope="mcp:tools"'
    )


def test_insufficient_scope_challenge_lists_every_scope() -> None:
    header = www_authenticate(
        resource_metadata=PRM,
        scopes=["mcp:tools", "github:repos"],
        error="insufficient_scope",
        error_description="get_github_repos needs github:repos",
    )
    assert header == (
        'Bearer error="insufficient_scope", error_description="get_github_repos needs github:repos", '
        f'resource_metadata="{PRM}", scope="mcp:tools github:repos"'
    )


def test_scope_is_omitted_when_nothing_is_required() -> None:
    assert www_authenticate(resource_metadata=PRM) == f'Bearer resource_metadata="{PRM}"'


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("Bearer abc.DEF-_~+/=", "abc.DEF-_~+/="),
        ("bearer abc", "abc"),
        ("BEARER  abc", "abc"),  # RFC 6750 §2.1: 1*SP, so two spaces are well-formed
        ("Bearer abc ", "abc"),
        ("Basic abc", None),  # another scheme: no credentials this server takes (RFC 6750 §3.1)
        ("Negotiate", None),
        ("Bearerabc", None),  # a scheme named "Bearerabc"
    ],
)
def test_bearer_token_follows_rfc6750_section_2_1(value: str, token: str | None) -> None:
    assert bearer_token(Headers({"authorization": value})) == token


MALFORMED_BEARER = {
    "padding_inside": "Bearer a.b=.c",
    "no_token": "Bearer",
    "no_token_trailing_space": "Bearer ",
    "two_words": "Bearer a b",
    "quoted": 'Bearer "abc"',
    "tab_separator": "Bearer\tabc",
    "not_token68": "Bearer abc$def",
    "comma_parameters": "Bearer abc, realm=x",
    "lower_case_scheme_with_padding_only": "bearer ==",
}


@pytest.mark.parametrize("value", MALFORMED_BEARER.values(), ids=MALFORMED_BEARER.keys())
def test_malformed_bearer_credentials_are_an_invalid_request_not_no_token(value: str) -> None:
    with pytest.raises(MalformedCredentials):
        bearer_token(Headers({"authorization": value}))


def test_no_authorization_header_is_no_token() -> None:
    assert bearer_token(Headers({})) is None


def test_two_authorization_headers_are_refused() -> None:
    headers = Headers(raw=[(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")])
    with pytest.raises(MultipleTokens):
        bearer_token(headers)


@pytest.mark.parametrize("scope", ["", "a b", 'a"b', "a\\b", "é"])
def test_scopes_must_be_scope_tokens(scope: str) -> None:
    with pytest.raises(ValueError, match="scope-token"):
        validate_scopes([scope])
