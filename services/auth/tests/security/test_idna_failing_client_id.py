"""`client_id=https://a..b/x` — a host that fails IDNA encoding — gave a 500 text/plain on /token,
/authorize, /revoke and /introspect (issue 12, finding 4). The host is now checked where the client_id
URL is parsed (oauth/client_id_metadata_document.ascii_host): a clear refusal in each endpoint's format."""

from __future__ import annotations

import httpx
import pytest

from ..flow import CALLBACK

BAD_HOSTS = [
    "https://a..b/x",
    "https://xn--/x",
    "https://" + "a" * 64 + ".example/x",
    "https://a\x00b.example/x",
    "https://\u2488.example/x",
]


@pytest.mark.parametrize("client_id", BAD_HOSTS)
async def test_idna_failing_client_id_at_token_is_invalid_client(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    data = {
        "grant_type": "authorization_code",
        "code": "c",
        "code_verifier": "v" * 43,
        "redirect_uri": CALLBACK,
    }
    response = await auth_client.post("/token", data={**data, "client_id": client_id})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("client_id", BAD_HOSTS)
async def test_idna_failing_client_id_at_authorize_is_a_page(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    response = await auth_client.get(
        "/authorize", params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


@pytest.mark.parametrize("client_id", BAD_HOSTS)
async def test_idna_failing_client_id_at_revoke_is_invalid_client(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    response = await auth_client.post("/revoke", data={"token": "t", "client_id": client_id})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("client_id", BAD_HOSTS)
async def test_idna_failing_client_id_at_introspect_is_invalid_client(
    auth_client: httpx.AsyncClient, client_id: str
) -> None:
    response = await auth_client.post("/introspect", data={"token": "t"}, auth=(client_id, "secret"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
