"""Calling an MCP server's tools with DPoP-bound tokens (the DPoP documentation's example).

Discovers the auth service from the MCP server, registers, authorizes with PKCE and `dpop_jkt`, redeems
the code with a DPoP proof, calls a tool with the bound token, and refreshes with a proof by the same key.
"""

import asyncio
import base64
import hashlib
import os
import secrets
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_auth_kit import DPoPAuth, DPoPKey

RESOURCE = os.environ.get("MCP_RESOURCE_URL", "http://127.0.0.1:9101/mcp")
REDIRECT_URI = "http://127.0.0.1:33418/callback"
# Opens the authorization URL in a browser; returns the URL the browser was redirected to.
Browser = Callable[[str], Awaitable[str]]


async def discover(http: httpx.AsyncClient, resource: str) -> dict[str, Any]:
    """RFC 9728 then RFC 8414: which auth service issues tokens for `resource`, and its endpoints."""
    parts = urlsplit(resource)
    well_known = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"
    prm = (await http.get(well_known)).json()
    issuer = prm["authorization_servers"][0]
    metadata: dict[str, Any] = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
    if metadata["issuer"] != issuer or "ES256" not in metadata.get("dpop_signing_alg_values_supported", []):
        raise RuntimeError(f"{issuer} is not an auth service that binds tokens to ES256 DPoP keys")
    return metadata


async def sign_in(
    http: httpx.AsyncClient,
    metadata: dict[str, Any],
    key: DPoPKey,
    resource: str,
    browser: Browser,
    scope: str = "mcp:tools offline_access",
) -> tuple[str, dict[str, Any]]:
    """Register a public client, authorize it (PKCE, `dpop_jkt`) and redeem the code with a proof."""
    registration = {
        "client_name": "DPoP example",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    client_id = (await http.post(metadata["registration_endpoint"], json=registration)).json()["client_id"]
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
        "resource": resource,
        "scope": scope,
        "dpop_jkt": key.jkt,  # RFC 9449 §10: the code can be redeemed only with this key
    }
    redirected_to = await browser(f"{metadata['authorization_endpoint']}?{urlencode(query)}")
    answer = {name: values[0] for name, values in parse_qs(urlsplit(redirected_to).query).items()}
    if answer.get("state") != state or answer.get("iss") != metadata["issuer"] or "code" not in answer:
        raise RuntimeError(f"authorization failed: {answer.get('error_description', answer)}")
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": client_id,
        "resource": resource,
    }
    tokens = (await http.post(metadata["token_endpoint"], data=form, auth=DPoPAuth(key))).json()
    if tokens.get("token_type") != "DPoP":  # RFC 9449 §5: anything else is not bound to the key
        raise RuntimeError(f"the auth service did not bind the tokens: {tokens}")
    return client_id, tokens


async def refresh(
    http: httpx.AsyncClient, metadata: dict[str, Any], key: DPoPKey, client_id: str, refresh_token: str
) -> dict[str, Any]:
    """A public client's refresh token is bound to the key too: only a proof by it refreshes."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    tokens: dict[str, Any] = (
        await http.post(metadata["token_endpoint"], data=form, auth=DPoPAuth(key))
    ).json()
    return tokens


async def call_tool(resource: str, auth: DPoPAuth, tool: str, arguments: dict[str, Any]) -> Any:
    """The mcp SDK's client over httpx2, every request with `Authorization: DPoP` and a fresh proof."""
    async with (
        httpx2.AsyncClient(auth=auth.for_httpx2(), timeout=30) as http,
        Client(streamable_http_client(resource, http_client=http)) as client,
    ):
        return await client.call_tool(tool, arguments)


async def open_browser(url: str) -> str:
    """The person's browser, and a one-shot loopback server catching the redirect (RFC 8252 §7.3)."""
    arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def catch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = (await reader.readline()).split()[1].decode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nYou can close this window.\n")
        await writer.drain()
        writer.close()
        if not arrived.done():
            arrived.set_result(REDIRECT_URI.rsplit("/", 1)[0] + target)

    server = await asyncio.start_server(catch, "127.0.0.1", urlsplit(REDIRECT_URI).port)
    async with server:
        webbrowser.open(url)
        return await arrived


async def main() -> None:
    key = DPoPKey.generate()  # keep it (key.private_key_pem()) as long as the tokens
    async with httpx.AsyncClient(timeout=30) as http:
        metadata = await discover(http, RESOURCE)
        client_id, tokens = await sign_in(http, metadata, key, RESOURCE, open_browser)
        print(
            await call_tool(
                RESOURCE, DPoPAuth(key, tokens["access_token"]), "calculate", {"expression": "6 * 7"}
            )
        )
        tokens = await refresh(http, metadata, key, client_id, tokens["refresh_token"])
        print("refreshed:", tokens["token_type"])


if __name__ == "__main__":
    asyncio.run(main())
