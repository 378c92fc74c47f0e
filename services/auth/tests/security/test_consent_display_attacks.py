"""The consent page shows what the browser will do: look-alike hosts and self-asserted names.

Issue 12: "the consent page shows Unicode look-alike redirect hosts as they look (`\u0441laude.ai` with a
Cyrillic U+0441) and does not mark self-registered clients as unverified". The host is shown as the browser
resolves it (UTS #46 / IDNA 2008 punycode, as browsers do; RFC 8252 §8.6 and RFC 9700 §4.11.2 on
showing where the response goes), the Unicode form beside it; a dynamically registered client's name is
marked unverified; a client ID metadata document client shows its verified domain.
"""

from __future__ import annotations

import httpx
import pytest

from mcp_auth_server.web.hosts import ShownHost, redirect_target, shown_host
from mcp_testing.browser import Page

from ..flow import browser_for, new_request, register
from ..operator_clients import add_client

LOOKALIKE = "https://\u0441laude.ai/api/mcp/auth_callback"  # the first letter is Cyrillic U+0441
LOOKALIKE_PUNYCODE = "xn--laude-0ye.ai"


async def consent_page(client: httpx.AsyncClient, client_id: str, redirect_uri: str) -> Page:
    page = await browser_for(client).open(new_request(client_id, redirect_uri=redirect_uri).url())
    assert isinstance(page, Page), page
    assert page.status_code == 200, page.text
    return page


def destination(page: Page) -> str:
    """The paragraph saying where the browser goes after approval."""
    return page.text.split('id="redirect-target">', 1)[1].split("</p>", 1)[0]


async def test_cyrillic_lookalike_redirect_host_is_shown_in_punycode_with_the_unicode_beside(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client, redirect_uris=[LOOKALIKE], client_name="Claude")
    page = await consent_page(auth_client, registered["client_id"], LOOKALIKE)
    shown = destination(page)
    # The browser goes to the punycode host: that is what the person is told, first and in bold.
    assert shown.split("<strong>", 1)[1].startswith(LOOKALIKE_PUNYCODE + "</strong>")
    assert "\u0441laude.ai" in shown  # the Unicode spelling beside it, labelled as such
    assert "outside the Latin alphabet" in page.text
    assert "<strong>claude.ai</strong>" not in page.text  # never the name it imitates


async def test_punycode_registered_directly_is_shown_with_its_unicode_form(
    auth_client: httpx.AsyncClient,
) -> None:
    uri = f"https://{LOOKALIKE_PUNYCODE}/cb"
    registered = await register(auth_client, redirect_uris=[uri])
    shown = destination(await consent_page(auth_client, registered["client_id"], uri))
    assert shown.split("<strong>", 1)[1].startswith(LOOKALIKE_PUNYCODE + "</strong>")
    assert "\u0441laude.ai" in shown


async def test_ascii_redirect_host_is_shown_plainly(auth_client: httpx.AsyncClient) -> None:
    uri = "https://claude.ai/api/mcp/auth_callback"
    registered = await register(auth_client, redirect_uris=[uri])
    page = await consent_page(auth_client, registered["client_id"], uri)
    assert "<strong>claude.ai</strong>." in destination(page)
    assert "outside the Latin alphabet" not in page.text


async def test_self_registered_client_borrowing_a_famous_name_is_marked_unverified(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(
        auth_client, redirect_uris=["https://claude.ai/api/mcp/auth_callback"], client_name="Claude"
    )
    page = await consent_page(auth_client, registered["client_id"], "https://claude.ai/api/mcp/auth_callback")
    assert "(unverified)" in page.text.split("</h1>", 1)[0]
    assert "Unverified application" in page.text
    assert "Verified domain" not in page.text


async def test_pre_registered_client_is_not_marked_unverified(auth_client: httpx.AsyncClient) -> None:
    client_id, _ = await add_client(
        auth_client,
        origin="preregistered",
        redirect_uris=["http://127.0.0.1:33418/callback"],
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code"],
        client_name="Operator's client",
    )
    page = await consent_page(auth_client, client_id, "http://127.0.0.1:33418/callback")
    assert "(unverified)" not in page.text
    assert "Unverified application" not in page.text
    assert "administrator" in page.text


async def test_private_use_scheme_redirect_names_the_app_not_a_host(auth_client: httpx.AsyncClient) -> None:
    uri = "cursor://anysphere.cursor-mcp/oauth/callback"
    registered = await register(auth_client, redirect_uris=[uri])
    shown = destination(await consent_page(auth_client, registered["client_id"], uri))
    assert "application on this computer" in shown
    assert "<strong>cursor:</strong>" in shown


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("\u0441laude.ai", ShownHost(LOOKALIKE_PUNYCODE, "\u0441laude.ai")),
        (LOOKALIKE_PUNYCODE, ShownHost(LOOKALIKE_PUNYCODE, "\u0441laude.ai")),
        ("Claude.AI", ShownHost("claude.ai")),
        ("fa\u00df.de", ShownHost("xn--fa-hia.de", "fa\u00df.de")),  # UTS #46 non-transitional, as browsers
        ("claude.ai.", ShownHost("claude.ai")),
        ("127.0.0.1", ShownHost("127.0.0.1")),
        ("my_host.example", ShownHost("my_host.example")),
        ("\u0441..ai", ShownHost("\\u0441..ai", malformed=True)),  # no browser reaches it
        ("xn--zz.example", ShownHost("xn--zz.example", malformed=True)),
    ],
)
def test_hosts_are_shown_as_the_browser_resolves_them(host: str, expected: ShownHost) -> None:
    assert shown_host(host) == expected


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("https://\u0441laude.ai:8443/cb", f"{LOOKALIKE_PUNYCODE}:8443"),
        ("http://[::1]:33418/cb", "[::1]:33418"),
        ("http://localhost:6274/oauth/callback", "localhost:6274"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
    ],
)
def test_redirect_addresses(uri: str, address: str) -> None:
    assert redirect_target(uri).address == address
