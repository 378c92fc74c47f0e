"""The kit page's example is `shared/examples/notes_server.py` verbatim, and it works as documented."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import httpx
import pytest

from .conftest import LEGACY_HEADERS, IssuerStandIn, Signer, claims_for, rpc, serve, sign, unused_port

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "shared" / "examples" / "notes_server.py"


def documented_example() -> str:
    page = (ROOT / "docs" / "kit.md").read_text()
    match = re.search(r"```python\n(.*?)```", page, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_kit_page_shows_the_example_file_verbatim() -> None:
    assert documented_example() == EXAMPLE.read_text()


async def test_the_example_protects_its_tools(
    issuer: IssuerStandIn, es256: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = unused_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    monkeypatch.setenv("MCP_RESOURCE_URL", resource)
    monkeypatch.setenv("MCP_AUTH_ISSUER", issuer.url)
    app = runpy.run_path(str(EXAMPLE))["app"]
    call = rpc("tools/call", {"name": "add_note", "arguments": {"text": "hi"}})

    async def post(scope: str | None) -> httpx.Response:
        headers = dict(LEGACY_HEADERS)
        if scope is not None:
            headers["Authorization"] = "Bearer " + sign(es256, claims_for(issuer.url, resource, scope=scope))
        async with httpx.AsyncClient() as client:
            return await client.post(resource, json=call, headers=headers)

    async with serve(app, port):
        anonymous, reader, writer = (
            await post(None),
            await post("notes:read"),
            await post("notes:read notes:write"),
        )
    metadata = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
    assert anonymous.status_code == 401
    assert (
        anonymous.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata}", scope="notes:read"'
    )
    assert reader.status_code == 403
    assert 'scope="notes:read notes:write"' in reader.headers["www-authenticate"]
    assert writer.status_code == 200
    assert writer.json()["result"]["content"][0]["text"] == "saved: hi"
