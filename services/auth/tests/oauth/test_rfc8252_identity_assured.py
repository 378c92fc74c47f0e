"""Which redirect URIs prove the application's identity (RFC 8252 §8.6): the rule silent approval rests on."""

from __future__ import annotations

import pytest

from mcp_auth_server.oauth.rfc8252_redirect_uris import identity_assured


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "https://chatgpt.com/connector/oauth/abc",
        "https://8.8.8.8/callback",  # a public address literal
    ],
)
def test_https_to_a_host_of_the_wider_network_is_assured(uri: str) -> None:
    assert identity_assured(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:33418/callback",  # loopback http: any port, any local program
        "cursor://anysphere.cursor-mcp/oauth/callback",  # private-use scheme: any app may claim it
        "https://127.0.0.1:8443/callback",
        "https://127.8.9.10/callback",
        "https://[::1]:8443/callback",
        "https://localhost/callback",
        "https://LOCALHOST./callback",
        "https://app.localhost/callback",
        "https://0.0.0.0/callback",
        "https://10.0.0.5/callback",  # a private address: whoever holds it on this network
        "https://[::ffff:127.0.0.1]/callback",  # loopback inside an IPv4-mapped address
    ],
)
def test_anything_a_local_program_or_another_app_can_receive_is_not(uri: str) -> None:
    assert not identity_assured(uri)
