"""Client impersonation and malformed requests at the token endpoint.

Covers RFC 6749 §2.3 (one authentication method per request), §2.3.1 (Basic, with the id and
secret form-urlencoded), §3.2 (POST, application/x-www-form-urlencoded, parameters not repeated),
§5.1 and §5.2 (JSON errors, 401 `invalid_client` with `WWW-Authenticate`, `Cache-Control:
no-store`), and RFC 7591 §3.2.1 (a deleted client is unknown, which makes MCP clients register
again). Whatever the input, the answer is a 4xx JSON error, never a 500.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from mcp_auth_server.db.models import Client

from ..flow import (
    AuthorizationRequest,
    Database,
    approve_and_sign_in,
    assert_oauth_error,
    browser_for,
    execute,
    new_request,
    redeem,
    register,
)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def confidential_code(
    client: httpx.AsyncClient, username: str
) -> tuple[dict[str, Any], AuthorizationRequest, str]:
    registered = await register(client, token_endpoint_auth_method="client_secret_basic")
    request = new_request(registered["client_id"])
    answer = await approve_and_sign_in(browser_for(client), request.url(), username)
    return registered, request, answer["code"]


def code_form(request: AuthorizationRequest, code: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        **extra,
    }


def assert_invalid_client(response: httpx.Response) -> None:
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_confidential_client_with_a_wrong_secret_is_invalid_client(
    auth_client: httpx.AsyncClient,
) -> None:
    registered, request, code = await confidential_code(auth_client, "wrong-secret")
    client_id = registered["client_id"]
    for headers, extra in (
        (basic(client_id, "wrong"), {}),
        (basic(client_id, registered["client_secret"][:-1]), {}),
        ({}, {"client_id": client_id, "client_secret": "wrong"}),
        ({}, {"client_id": client_id}),  # no secret at all
        ({}, {"client_id": client_id, "client_secret": ""}),
    ):
        response = await auth_client.post("/token", data=code_form(request, code, **extra), headers=headers)
        assert_invalid_client(response)
    # The control: the right secret redeems the code the failed attempts left alone.
    right = await auth_client.post(
        "/token", data=code_form(request, code), headers=basic(client_id, registered["client_secret"])
    )
    assert right.status_code == 200, right.text


async def test_client_registered_for_client_secret_basic_cannot_authenticate_with_client_secret_post(
    auth_client: httpx.AsyncClient,
) -> None:
    """Issue 12: "a client registered for client_secret_basic may authenticate with client_secret_post".

    The right secret, sent by the method the client did not register (RFC 7591 §2
    `token_endpoint_auth_method`; RFC 6749 §2.3), is refused at /token and /revoke alike.
    """
    registered, request, code = await confidential_code(auth_client, "basic-not-post")
    client_id, secret = registered["client_id"], registered["client_secret"]
    assert registered["token_endpoint_auth_method"] == "client_secret_basic"
    posted = {"client_id": client_id, "client_secret": secret}
    assert_invalid_client(await auth_client.post("/token", data=code_form(request, code, **posted)))
    assert_invalid_client(await auth_client.post("/revoke", data={"token": "anything", **posted}))
    # The control: the same secret by Basic redeems the code the refused attempt left alone.
    right = await auth_client.post("/token", data=code_form(request, code), headers=basic(client_id, secret))
    assert right.status_code == 200, right.text


async def test_client_registered_for_client_secret_post_cannot_authenticate_with_client_secret_basic(
    auth_client: httpx.AsyncClient,
) -> None:
    registered = await register(auth_client, token_endpoint_auth_method="client_secret_post")
    client_id, secret = registered["client_id"], registered["client_secret"]
    request = new_request(client_id)
    code = (await approve_and_sign_in(browser_for(auth_client), request.url(), "post-not-basic"))["code"]
    refused = await auth_client.post(
        "/token", data=code_form(request, code), headers=basic(client_id, secret)
    )
    assert_invalid_client(refused)
    revoke = await auth_client.post("/revoke", data={"token": "anything"}, headers=basic(client_id, secret))
    assert_invalid_client(revoke)
    right = await auth_client.post(
        "/token", data=code_form(request, code, client_id=client_id, client_secret=secret)
    )
    assert right.status_code == 200, right.text


async def test_unknown_client_is_invalid_client(auth_client: httpx.AsyncClient) -> None:
    _, request, code = await confidential_code(auth_client, "unknown-client")
    for headers, extra in (
        (basic("nobody", "secret"), {}),
        ({}, {"client_id": "nobody"}),
        ({}, {"client_id": "nobody", "client_secret": "secret"}),
        ({}, {}),
    ):
        assert_invalid_client(
            await auth_client.post("/token", data=code_form(request, code, **extra), headers=headers)
        )


async def test_deleted_client_is_invalid_client(auth_client: httpx.AsyncClient, database: Database) -> None:
    registered, request, code = await confidential_code(auth_client, "deleted-client")
    await execute(database, delete(Client).where(Client.client_id == registered["client_id"]))
    response = await auth_client.post(
        "/token",
        data=code_form(request, code),
        headers=basic(registered["client_id"], registered["client_secret"]),
    )
    assert_invalid_client(response)


async def test_basic_and_client_secret_together_is_invalid_request(auth_client: httpx.AsyncClient) -> None:
    registered, request, code = await confidential_code(auth_client, "two-methods")
    response = await auth_client.post(
        "/token",
        data=code_form(request, code, client_secret=registered["client_secret"]),
        headers=basic(registered["client_id"], registered["client_secret"]),
    )
    assert_oauth_error(response, "invalid_request")


async def test_basic_for_one_client_and_client_id_of_another_is_invalid_request(
    auth_client: httpx.AsyncClient,
) -> None:
    registered, request, code = await confidential_code(auth_client, "two-ids")
    response = await auth_client.post(
        "/token",
        data=code_form(request, code, client_id="someone-else"),
        headers=basic(registered["client_id"], registered["client_secret"]),
    )
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
    ],
)
async def test_malformed_basic_credentials_are_invalid_client(
    auth_client: httpx.AsyncClient, authorization: str
) -> None:
    _, request, code = await confidential_code(auth_client, "malformed-basic")
    assert_invalid_client(
        await auth_client.post(
            "/token", data=code_form(request, code), headers={"Authorization": authorization}
        )
    )


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
@pytest.mark.parametrize("credentials", [b"\xff\xfe==", "\u00e9t\u00e9:x".encode("latin-1"), b"YTpi\xa0"])
async def test_basic_credentials_outside_ascii_are_invalid_client_not_a_500(
    auth_client: httpx.AsyncClient, path: str, credentials: bytes
) -> None:
    """A header's bytes arrive as latin-1 text; base64 of non-ASCII text raises ValueError, not
    binascii.Error (RFC 7617 §2: the credentials are token68, ASCII only)."""
    response = await auth_client.post(
        path,
        data={"grant_type": "client_credentials", "token": "t"},
        headers={b"Authorization": b"Basic " + credentials},
    )
    assert_invalid_client(response)


async def test_public_client_sending_a_secret_is_invalid_client(auth_client: httpx.AsyncClient) -> None:
    registered = await register(auth_client)
    request = new_request(registered["client_id"])
    answer = await approve_and_sign_in(browser_for(auth_client), request.url(), "public-with-secret")
    assert_invalid_client(await redeem(auth_client, request, answer["code"], client_secret="made-up"))
    assert_invalid_client(
        await auth_client.post(
            "/token",
            data=code_form(request, answer["code"]),
            headers=basic(registered["client_id"], "made-up"),
        )
    )


async def test_registered_public_client_cannot_use_client_credentials(auth_client: httpx.AsyncClient) -> None:
    registered = await register(auth_client)
    response = await auth_client.post(
        "/token", data={"grant_type": "client_credentials", "client_id": registered["client_id"]}
    )
    assert_oauth_error(response, "unauthorized_client")


async def test_client_registered_without_refresh_token_cannot_refresh(auth_client: httpx.AsyncClient) -> None:
    registered = await register(auth_client, grant_types=["authorization_code"])
    response = await auth_client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": registered["client_id"]},
    )
    assert_oauth_error(response, "unauthorized_client")


MALFORMED: dict[str, dict[str, Any]] = {
    "json_body": {"json": {"grant_type": "authorization_code"}},
    "no_content_type": {"content": b"grant_type=authorization_code"},
    "text_plain": {"content": b"grant_type=refresh_token", "headers": {"Content-Type": "text/plain"}},
    "multipart": {"files": {"grant_type": (None, "authorization_code")}},
    "junk_form": {
        "content": b"\xff\xfe\x00=&&&=%%%zz",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "nul_client_id": {"data": {"grant_type": "authorization_code", "client_id": "\x00", "code": "x"}},
    "repeated_grant_type": {
        "content": b"grant_type=authorization_code&grant_type=refresh_token&client_id=x",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "repeated_code": {
        "content": b"grant_type=authorization_code&code=a&code=b&client_id=x",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "missing_grant_type": {"data": {"code": "x", "client_id": "x"}},
    "empty_body": {"content": b"", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    "huge_body": {
        "content": b"grant_type=authorization_code&code=" + b"a" * 2_000_000,
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "unsupported_grant_type": {"data": {"grant_type": "password", "username": "u", "password": "p"}},
    "implicit_grant_type": {"data": {"grant_type": "implicit", "client_id": "x"}},
}


@pytest.mark.parametrize("request_kwargs", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_token_request_is_a_400_json_error_never_a_500(
    auth_client: httpx.AsyncClient, request_kwargs: dict[str, Any]
) -> None:
    response = await auth_client.post("/token", **request_kwargs)
    assert response.status_code in (400, 401, 413), (response.status_code, response.text)  # 413: huge_body
    assert_oauth_error(response, response.json()["error"], response.status_code)
    assert set(response.json()) == {"error", "error_description"}


async def test_token_endpoint_refuses_get(auth_client: httpx.AsyncClient) -> None:
    response = await auth_client.get("/token", params={"grant_type": "authorization_code"})
    assert response.status_code == 405
