"""JSON that `json.loads` accepts but the service cannot handle or store gave 500s at /register (found by
fuzz/test_hostile_input.py): nesting thousands deep (RecursionError), an escaped unpaired surrogate (not
encodable for the database), an escaped NUL (PostgreSQL refuses it). oauth/rfc8259_json.py refuses each,
for registrations and client metadata documents alike."""

from __future__ import annotations

import httpx
import pytest

from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument, parse_document

from ..flow import CALLBACK

HOSTILE_JSON = {
    "nested_thirty_thousand_deep": b"[" * 30_000 + b"]" * 30_000,
    "nested_inside_a_field": b'{"redirect_uris": ["%s"], "x": ' % CALLBACK.encode()
    + b"[" * 5000
    + b"]" * 5000
    + b"}",
    "surrogate_in_a_redirect_uri": b'{"redirect_uris": ["https://\\ud800.example/cb"]}',
    "surrogate_in_an_unknown_field": b'{"redirect_uris": ["%s"], "x": "\\udfff"}' % CALLBACK.encode(),
    "surrogate_in_a_key": b'{"redirect_uris": ["%s"], "\\ud800": 1}' % CALLBACK.encode(),
    "nul_in_an_unknown_field": b'{"redirect_uris": ["%s"], "x": "a\\u0000b"}' % CALLBACK.encode(),
}


@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
async def test_hostile_json_registration_is_invalid_client_metadata(
    auth_client: httpx.AsyncClient, body: bytes
) -> None:
    response = await auth_client.post("/register", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_hostile_json_metadata_document_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidMetadataDocument, match="not acceptable JSON"):
        parse_document("https://client.example/doc.json", body, 300, allowed_schemes=())
