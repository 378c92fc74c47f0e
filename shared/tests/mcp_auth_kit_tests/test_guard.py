"""Over real HTTP: exact RFC 6750 challenges, and per-tool scopes enforced before any tool runs."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import LEGACY_HEADERS, Served, modern_call, rpc, tool_call

TokenFor = Callable[..., str]


async def post(served: Served, body: Any, token: str | None = None, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            served.resource_url, content=content, headers={**LEGACY_HEADERS, **auth, **headers}
        )


def challenge(
    served: Served, scope: str, error: str | None = None, description: str | None = None, path: str = "/mcp"
) -> str:
    parts = [f'error="{error}"', f'error_description="{description}"'] if error else []
    metadata = f"{served.url}/.well-known/oauth-protected-resource{path}"
    parts += [f'resource_metadata="{metadata}"', f'scope="{scope}"']
    return "Bearer " + ", ".join(parts)


# --- RFC 6750 §3 challenges ---


async def test_no_token_gets_401_with_metadata_and_scope_but_no_error(served: Served) -> None:
    response = await post(served, tool_call("list_notes"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{served.metadata_url}", scope="mcp:tools"'
    )
    assert "error" not in response.json()


async def test_no_token_for_a_step_up_tool_asks_for_its_scopes_too(served: Served) -> None:
    headers, body = modern_call("delete_notes")
    response = await post(served, body, **headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge(served, "mcp:tools notes:admin")


async def test_other_auth_schemes_count_as_no_token(served: Served) -> None:
    response = await post(served, tool_call("list_notes"), Authorization="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge(served, "mcp:tools")


MALFORMED_AUTHORIZATION = {
    "padding_inside": b"Bearer a.b=.c",
    "no_token": b"Bearer",
    "tab_separator": b"Bearer\tabc",
    "not_token68": b"Bearer abc$def",
    "two_words": b"Bearer abc def",
    "non_ascii": "Bearer abc\u00e9".encode("latin-1"),
}


@pytest.mark.parametrize("value", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys())
async def test_malformed_bearer_header_gets_400_invalid_request(served: Served, value: bytes) -> None:
    """Issue 12: `Bearer a.b=.c` got 401 without `error`; RFC 6750 §3.1 says 400 invalid_request."""
    headers = [
        *((name.encode(), field.encode()) for name, field in LEGACY_HEADERS.items()),
        (b"authorization", value),
    ]
    async with httpx.AsyncClient() as client:
        response = await client.post(served.resource_url, json=tool_call("list_notes"), headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request"')
    assert f'resource_metadata="{served.metadata_url}"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_request"
    assert served.notes.executed == []


async def test_well_formed_header_with_two_spaces_is_read_and_its_token_checked(
    served: Served, token_for: TokenFor
) -> None:
    # The control: RFC 6750 §2.1 allows 1*SP, so this is a token, judged on its merits.
    response = await post(served, tool_call("list_notes"), Authorization=f"Bearer  {token_for(served)}")
    assert response.status_code == 200, response.text
    bad = await post(served, tool_call("list_notes"), Authorization="Bearer  not-a-jwt")
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_token"


BAD_TOKENS: dict[str, Callable[[Served, TokenFor], str]] = {
    "garbage": lambda served, token_for: "not-a-jwt",
    "expired": lambda served, token_for: token_for(served, exp=1, iat=0),
    "other-resource": lambda served, token_for: token_for(served, aud=served.resource_url + "-other"),
    "wrong-issuer": lambda served, token_for: token_for(served, iss="http://127.0.0.1:1"),
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_token_gets_401_invalid_token(served: Served, token_for: TokenFor, kind: str) -> None:
    token = BAD_TOKENS[kind](served, token_for)
    response = await post(served, tool_call("list_notes"), token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge(
        served, "mcp:tools", "invalid_token", "The access token is invalid or expired"
    )
    assert response.json()["error"] == "invalid_token"


async def test_two_authorization_headers_are_an_invalid_request(served: Served, token_for: TokenFor) -> None:
    token = token_for(served)
    headers = [
        *LEGACY_HEADERS.items(),
        ("Authorization", f"Bearer {token}"),
        ("Authorization", f"Bearer {token}"),
    ]
    async with httpx.AsyncClient() as client:
        response = await client.post(served.resource_url, json=tool_call("list_notes"), headers=headers)
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request"')


async def test_token_without_the_base_scope_gets_403(served: Served, token_for: TokenFor) -> None:
    response = await post(served, rpc("tools/list"), token_for(served, scope="profile"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == challenge(
        served, "mcp:tools", "insufficient_scope", "The access token lacks scopes this operation needs"
    )


# --- per-tool scopes (MCP step-up) ---

STEP_UP = 'error="insufficient_scope"'


def assert_step_up(served: Served, response: httpx.Response) -> None:
    assert response.status_code == 403
    header = response.headers["www-authenticate"]
    assert STEP_UP in header
    assert 'scope="mcp:tools notes:admin"' in header  # every scope needed, not only the missing one
    assert served.notes.executed == []


async def test_step_up_from_a_legacy_json_rpc_body(served: Served, token_for: TokenFor) -> None:
    assert_step_up(served, await post(served, tool_call("delete_notes"), token_for(served)))


async def test_step_up_from_2026_routing_headers(served: Served, token_for: TokenFor) -> None:
    headers, body = modern_call("delete_notes")
    assert_step_up(served, await post(served, body, token_for(served), **headers))


async def test_step_up_from_a_base64_wrapped_mcp_name(served: Served, token_for: TokenFor) -> None:
    wrapped = "=?base64?" + base64.b64encode(b"delete_notes").decode() + "?="
    headers, body = modern_call("delete_notes", header_name=wrapped)
    assert_step_up(served, await post(served, body, token_for(served), **headers))


async def test_step_up_from_a_json_rpc_batch(served: Served, token_for: TokenFor) -> None:
    batch = [tool_call("list_notes", 1), tool_call("delete_notes", 2)]
    assert_step_up(served, await post(served, batch, token_for(served)))


async def test_legacy_request_cannot_hide_a_call_behind_routing_headers(
    served: Served, token_for: TokenFor
) -> None:
    # A 2025 request: the SDK ignores Mcp-* headers, so the guard must read the body.
    response = await post(
        served,
        tool_call("delete_notes"),
        token_for(served),
        **{"Mcp-Method": "tools/call", "Mcp-Name": "list_notes"},
    )
    assert_step_up(served, response)


async def test_modern_request_with_lying_headers_is_refused_by_the_sdk(
    served: Served, token_for: TokenFor
) -> None:
    headers, body = modern_call("delete_notes", header_name="list_notes")
    response = await post(served, body, token_for(served), **headers)
    assert response.status_code == 400  # HEADER_MISMATCH: rung 2 of the SDK's inbound ladder
    assert served.notes.executed == []


async def test_duplicate_json_keys_are_read_as_the_sdk_reads_them(
    served: Served, token_for: TokenFor
) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_notes","name":"delete_notes"}}'
    )
    assert_step_up(served, await post(served, body, token_for(served)))


async def test_unparseable_body_needs_every_tool_scope(served: Served, token_for: TokenFor) -> None:
    response = await post(served, b'{"jsonrpc": "2.0", "method": "tools/call", ', token_for(served))
    assert_step_up(served, response)


async def test_step_up_scope_admits_the_call(served: Served, token_for: TokenFor) -> None:
    response = await post(served, tool_call("delete_notes"), token_for(served, scope="mcp:tools notes:admin"))
    assert response.status_code == 200
    assert served.notes.executed == ["delete_notes"]


async def test_modern_call_with_enough_scope_runs(served: Served, token_for: TokenFor) -> None:
    headers, body = modern_call("list_notes")
    response = await post(served, body, token_for(served), **headers)
    assert response.status_code == 200
    assert response.json()["result"]["content"][0]["text"] == "no notes"
    assert served.notes.executed == ["list_notes"]


async def test_public_tool_runs_with_the_base_scope(served: Served, token_for: TokenFor) -> None:
    response = await post(served, tool_call("list_notes"), token_for(served))
    assert response.status_code == 200
    assert served.notes.executed == ["list_notes"]


# --- legacy SSE transport ---


async def test_sse_needs_a_token(served: Served, token_for: TokenFor) -> None:
    async with httpx.AsyncClient() as client:
        refused = await client.get(f"{served.url}/sse")
        assert refused.status_code == 401
        # RFC 9728 §3.3: /sse's challenge points at /sse's own metadata, whose resource is …/sse.
        assert refused.headers["www-authenticate"] == challenge(served, "mcp:tools", path="/sse")
        headers = {"Authorization": f"Bearer {token_for(served)}"}
        async with client.stream("GET", f"{served.url}/sse", headers=headers) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    assert "/messages/?session_id=" in line
                    break


async def test_sse_messages_enforce_tool_scopes(served: Served, token_for: TokenFor) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{served.url}/messages/?session_id=0123456789abcdef0123456789abcdef",
            json=tool_call("delete_notes"),
            headers={"Authorization": f"Bearer {token_for(served)}"},
        )
    assert_step_up(served, response)
