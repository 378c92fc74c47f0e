"""Redirect hosts that the browser reads differently from this server.

Python's `urlsplit` and the WHATWG URL parser every browser uses disagree on some hosts. For a special
scheme such as https the browser ends the host at a backslash (`https://evil.example\\.claude.ai/cb` goes
to evil.example, while we read, and the consent page would show, `evil.example\\.claude.ai`), decodes
percent-escapes in it, and reads a name whose last label is a number as an IPv4 address in any base
(`0x7f.1`, `2130706433`, `127.1`, `0177.0.0.1` are all 127.0.0.1): a redirect we took for a public DNS name
(identity assured, so a remembered consent answers without a page) is this machine, where any local
program can listen (RFC 8252 §8.6). What the person is shown must be where the browser goes (issue 12), so
such hosts are not registered at all (RFC 7591 §5 lets the server refuse a redirect URI).
"""

from __future__ import annotations

import httpx
import pytest

from mcp_auth_server.oauth.rfc8252_redirect_uris import InvalidRedirectUri, check_registrable

from ..flow import assert_oauth_error

MISREAD_HOSTS = {
    "backslash_ends_the_host": "https://evil.example\\.claude.ai/cb",
    "backslash_before_the_path": "https://evil.example\\claude.ai/cb",
    "percent_encoded_dot": "https://evil%2Eexample/cb",
    "hexadecimal_ipv4": "https://0x7f.1/cb",
    "decimal_ipv4": "https://2130706433/cb",
    "short_ipv4": "https://127.1/cb",
    "octal_ipv4": "https://0177.0.0.1/cb",
    "name_ending_in_a_number": "https://claude.ai.1/cb",
    "trailing_dot_after_a_number": "https://127.1./cb",
    "ipv6_zone_id": "https://[fe80::1%25eth0]/cb",
}


@pytest.mark.parametrize("uri", MISREAD_HOSTS.values(), ids=MISREAD_HOSTS.keys())
async def test_redirect_host_the_browser_reads_differently_is_refused_at_registration(
    auth_client: httpx.AsyncClient, uri: str
) -> None:
    response = await auth_client.post(
        "/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"}
    )
    assert_oauth_error(response, "invalid_redirect_uri")


@pytest.mark.parametrize("uri", MISREAD_HOSTS.values(), ids=MISREAD_HOSTS.keys())
def test_redirect_host_the_browser_reads_differently_is_refused_even_for_the_operator(uri: str) -> None:
    with pytest.raises(InvalidRedirectUri):
        check_registrable(uri, None)


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "https://claude.ai./cb",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://my_host.example.com/cb",
        "https://203.0.113.7/cb",
        "https://[2001:db8::1]:8443/cb",
        "https://xn--laude-0ye.ai/cb",
        "https://host-1.example/cb",
        "https://1.example/cb",
    ],
)
def test_hosts_the_browser_reads_as_written_still_register(uri: str) -> None:
    check_registrable(uri, None)
