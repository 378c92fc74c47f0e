"""Registering a redirect that the browser or the operating system would act on, not a client.

Covers RFC 8252 §7.1 (private-use schemes are reverse-DNS names, so contain a period) and §8.4 (apps
claiming another's scheme), RFC 7591 §5 (the server may refuse redirect URIs), and issue 12: "nearly
any private-use redirect scheme registers (`intent:`, `view-source:`, `chrome:`, `jar:`, `mailto:`,
`ms-settings:`)". The operator's AUTH_REGISTRATION_ALLOWED_SCHEMES admits well-known schemes without
a period (`cursor`, `vscode`), never a browser-internal or operating-system one. And `logo_uri`,
`client_uri`, `policy_uri`, `tos_uri` that are not https are dropped, not stored.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from mcp_auth_server.app import create_app
from mcp_auth_server.db.models import Client
from mcp_auth_server.oauth.rfc8252_redirect_uris import InvalidRedirectUri, check_registrable
from mcp_auth_server.settings import AuthSettings, SettingsError, load_settings

from ..conftest import serve_in_process
from ..flow import CALLBACK, Database, assert_oauth_error

# The list first, then their relatives. None has a fragment or user information, so each is
# refused for its scheme alone.
BROWSER_AND_OS_SCHEMES = {
    "intent": "intent://evil.example/cb",
    "intent_upper_case": "INTENT://evil.example/cb",
    "view_source": "view-source:https://claude.ai/api/mcp/auth_callback",
    "chrome": "chrome://settings/cb",
    "jar": "jar:https://evil.example/app.jar!/cb",
    "mailto": "mailto:attacker.example.com",
    "ms_settings": "ms-settings:privacy-webcam",
    "ms_msdt": "ms-msdt:/id/PCWDiagnostic",
    "search_ms": "search-ms:query=invoice&crumb=location:\\\\evil.example\\share",
    "chrome_extension": "chrome-extension://abcdefghijklmnop/cb.html",
    "moz_extension": "moz-extension://0a1b2c3d/cb.html",
    "x_apple_dotted": "x-apple.systempreferences:com.apple.preference.security",
    "microsoft_edge": "microsoft-edge:https://evil.example/",
    "tel": "tel:+15555550100",
    "sms": "sms:+15555550100",
    "file": "file:///etc/passwd",
    "about": "about:blank",
    "ws": "ws://evil.example/cb",
    "ftp": "ftp://evil.example/cb",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "blob": "blob:https://claude.ai/0b1c",
    "itms_services": "itms-services://?action=download-manifest&url=https://evil.example/m.plist",
    "shell": "shell:startup",
    "smb": "smb://evil.example/share",
    "web_plus_dotted": "web+evil.example://cb",  # a site's registerProtocolHandler scheme
}


def registration(*redirect_uris: str) -> dict[str, object]:
    return {"redirect_uris": [CALLBACK, *redirect_uris], "token_endpoint_auth_method": "none"}


@pytest.mark.parametrize("uri", BROWSER_AND_OS_SCHEMES.values(), ids=BROWSER_AND_OS_SCHEMES.keys())
async def test_browser_internal_or_os_handler_redirect_is_refused_at_registration(
    auth_client: httpx.AsyncClient, uri: str
) -> None:
    body = assert_oauth_error(
        await auth_client.post("/register", json=registration(uri)), "invalid_redirect_uri"
    )
    assert uri.split(":", 1)[0].lower() in body["error_description"]


@pytest.mark.parametrize("uri", BROWSER_AND_OS_SCHEMES.values(), ids=BROWSER_AND_OS_SCHEMES.keys())
def test_browser_internal_or_os_handler_redirect_is_refused_even_if_allow_listed(uri: str) -> None:
    scheme = uri.split(":", 1)[0].lower()
    for allowed in ({scheme}, None):  # the operator's list; the operator's own CLI registration
        with pytest.raises(InvalidRedirectUri, match="browser or the operating system"):
            check_registrable(uri, allowed)


@pytest.mark.parametrize(
    "scheme", ["intent", "ms-settings", "view-source", "javascript", "https", "not a scheme"]
)
def test_operator_cannot_allow_list_a_browser_or_os_scheme(scheme: str) -> None:
    with pytest.raises(SettingsError, match="AUTH_REGISTRATION_ALLOWED_SCHEMES"):
        load_settings(auth_registration_allowed_schemes=f"cursor,{scheme}")


@pytest.mark.parametrize(
    "uri", ["myapp://oauth/callback", "evil:/cb", "claude://callback", "vscode-insiders://cb"]
)
async def test_private_use_scheme_without_a_period_is_refused_unless_allow_listed(
    auth_client: httpx.AsyncClient, uri: str
) -> None:
    body = assert_oauth_error(
        await auth_client.post("/register", json=registration(uri)), "invalid_redirect_uri"
    )
    assert "RFC 8252" in body["error_description"]
    assert "AUTH_REGISTRATION_ALLOWED_SCHEMES" in body["error_description"]


async def test_operator_allow_list_admits_a_scheme_without_a_period(
    make_settings: Callable[..., AuthSettings],
) -> None:
    settings = make_settings(auth_registration_allowed_schemes="cursor,vscode,vscode-insiders")
    async with serve_in_process(create_app(settings)) as client:
        response = await client.post("/register", json=registration("vscode-insiders://callback"))
        assert response.status_code == 201, response.text
        refused = await client.post("/register", json=registration("myapp://callback"))
        assert_oauth_error(refused, "invalid_redirect_uri")


async def test_empty_allow_list_leaves_reverse_dns_schemes_only(
    make_settings: Callable[..., AuthSettings],
) -> None:
    async with serve_in_process(create_app(make_settings(auth_registration_allowed_schemes=""))) as client:
        refused = await client.post(
            "/register", json=registration("cursor://anysphere.cursor-mcp/oauth/callback")
        )
        assert_oauth_error(refused, "invalid_redirect_uri")
        accepted = await client.post("/register", json=registration("com.example.app:/oauth2redirect"))
        assert accepted.status_code == 201, accepted.text


@pytest.mark.parametrize(
    "uri",
    [
        "cursor://anysphere.cursor-mcp/oauth/callback",  # Cursor
        "vscode://vscode.github-authentication/did-authenticate",  # VS Code
        "com.example.app:/oauth2redirect",  # RFC 8252 §7.1's own example
        "https://claude.ai/api/mcp/auth_callback",
        "https://chatgpt.com/connector/oauth/abc123",
        "http://127.0.0.1:33418/callback",
        "http://localhost:6274/oauth/callback",
    ],
)
async def test_real_clients_redirects_register_by_default(auth_client: httpx.AsyncClient, uri: str) -> None:
    # The control for every refusal above.
    response = await auth_client.post("/register", json={"redirect_uris": [uri]})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "uri", ["https://\u0441..ai/cb", "https://xn--zz.example/cb", "https://\u0441laude\u200d.ai/cb"]
)
async def test_redirect_host_no_browser_resolves_is_refused(auth_client: httpx.AsyncClient, uri: str) -> None:
    # What the consent page could only show as "not a valid host name" is not registered at all.
    body = assert_oauth_error(
        await auth_client.post("/register", json=registration(uri)), "invalid_redirect_uri"
    )
    assert "internationalised domain name" in body["error_description"]


async def test_unicode_redirect_host_registers_and_is_shown_as_punycode(
    auth_client: httpx.AsyncClient,
) -> None:
    # Control: a valid IDN registers (tests/security/test_consent_display_attacks.py shows how it is shown).
    response = await auth_client.post("/register", json=registration("https://b\u00fccher.example/cb"))
    assert response.status_code == 201, response.text


WEB_URIS = {
    "logo_uri": "javascript:alert(document.domain)",
    "client_uri": "http://evil.example/",
    "policy_uri": "data:text/html,<script>alert(1)</script>",
    "tos_uri": "https://user@evil.example/tos",
}


async def test_non_https_logo_client_policy_and_tos_uris_are_dropped_not_stored(
    auth_client: httpx.AsyncClient,
    database: Database,
) -> None:
    response = await auth_client.post(
        "/register", json={**registration(), **WEB_URIS, "client_name": "Dropped links"}
    )
    assert response.status_code == 201, response.text  # dropped, as the issue says: not an error
    answer = response.json()
    assert not WEB_URIS.keys() & answer.keys()  # the response says what was registered (RFC 7591 §3.2.1)
    async with database() as session:
        client = await session.scalar(select(Client).where(Client.client_id == answer["client_id"]))
    assert client is not None
    assert not WEB_URIS.keys() & (client.metadata_document or {}).keys()


async def test_https_logo_and_client_uris_are_kept(auth_client: httpx.AsyncClient) -> None:
    links = {"logo_uri": "https://claude.ai/logo.png", "client_uri": "https://claude.ai/"}
    response = await auth_client.post("/register", json={**registration(), **links})
    assert response.status_code == 201, response.text
    assert {key: response.json()[key] for key in links} == links
