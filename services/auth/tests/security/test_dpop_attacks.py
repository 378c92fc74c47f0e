"""DPoP (RFC 9449) at the auth service, attacked: one attack per test, named after it, on the real app."""

from __future__ import annotations

import httpx

from mcp_auth_kit.dpop_client import DPoPKey

from ..dpop.test_token_endpoint import code_for, redeem, refresh
from ..flow import Database, assert_oauth_error, audit_events
from .test_refresh_token_attacks import rotated_long_ago


async def test_a_thief_cannot_bind_a_stolen_bearer_refresh_token_to_escape_reuse_detection(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    """A public client that does not use DPoP (every real client today) has its refresh token stolen.
    The thief refreshes first, with a proof of its own key. Had that bound the grant to the thief's key,
    the client's next refresh (with its now-rotated token) would be refused as a key mismatch before
    reuse detection (RFC 9700 §4.14.2) could revoke the grant: the thief would keep the grant and the
    client be locked out. A public client's refresh tokens are bound when they are issued (RFC 9449
    §5), so an unbound grant is not re-bound by a later proof."""
    _, request, code = await code_for(auth_client)
    stolen = (await redeem(auth_client, request, code, None)).json()["refresh_token"]
    registered = {"client_id": request.client_id}
    thief = DPoPKey.generate()

    binding = await refresh(auth_client, registered, stolen, thief)
    assert_oauth_error(binding, "invalid_grant")
    [event] = await audit_events(database, "refresh_token_key_mismatch", request.client_id)
    assert event.details["proof_dpop_jkt"] == thief.jkt
    assert "dpop_jkt" not in event.details

    # Without the proof the thief gets what any bearer refresh token gives, and reuse detection still
    # catches it: the client's presentation of the rotated token revokes the whole grant.
    used_by_thief = await refresh(auth_client, registered, stolen, None)
    assert used_by_thief.status_code == 200, used_by_thief.text
    await rotated_long_ago(database, stolen)  # the client comes back after the grace window
    assert_oauth_error(await refresh(auth_client, registered, stolen, None), "invalid_grant")
    assert_oauth_error(
        await refresh(auth_client, registered, used_by_thief.json()["refresh_token"], None), "invalid_grant"
    )
