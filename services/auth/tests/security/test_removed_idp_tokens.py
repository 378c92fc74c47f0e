"""An enterprise IdP removed from the trusted issuers (`mcp-auth issuers remove`: it was compromised, or
the company left) must stop vouching at once: the access tokens issued on its ID-JAGs are the grant's
credentials, and the grant is the IdP's trust. Until the fix, introspection still said `active: true`
and token exchange still handed out the user's upstream token for such a token, until it expired."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import delete

from mcp_auth_server.app import create_app
from mcp_auth_server.clock import now
from mcp_auth_server.db.models import TrustedIssuer
from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig
from mcp_auth_server.settings import AuthSettings
from mcp_auth_server.store.trusted_issuers import TrustedIssuerRegistry
from mcp_testing.enterprise_idp import EnterpriseIdpStandIn

from ..conftest import ISSUER, RESOURCE_A, serve_in_process
from ..federation import JWT_BEARER, enterprise_client, idp_entry
from ..flow import Database
from ..operator_clients import resource_server_client


async def test_tokens_issued_on_a_removed_idps_id_jags_are_no_longer_active(
    make_settings: Callable[..., AuthSettings], enterprise_idp: EnterpriseIdpStandIn, database: Database
) -> None:
    entry = TrustedIssuerConfig.model_validate(idp_entry(enterprise_idp))
    async with database() as session:
        session.add(
            TrustedIssuer(
                issuer=entry.issuer,
                config=entry.model_dump(mode="json", exclude_none=True),
                created_at=now(),
            )
        )
        await session.commit()
    try:
        app = create_app(make_settings())
        async with serve_in_process(app) as client:
            client_id, secret = await enterprise_client(client)
            grant = enterprise_idp.state.id_jag(
                sub="frank-at-idp",
                audience=ISSUER,
                client_id=client_id,
                resource=RESOURCE_A,
                scope="mcp:tools",
                email="frank@acme.example",
                email_verified=True,
            )
            issued = await client.post(
                "/token", auth=(client_id, secret), data={"grant_type": JWT_BEARER, "assertion": grant}
            )
            assert issued.status_code == 200, issued.text
            token = issued.json()["access_token"]
            resource_server = await resource_server_client(client, RESOURCE_A)
            before = await client.post("/introspect", auth=resource_server, data={"token": token})
            assert before.json()["active"] is True, before.text  # the control

            async with database() as session:  # mcp-auth issuers remove
                await session.execute(delete(TrustedIssuer).where(TrustedIssuer.issuer == entry.issuer))
                await session.commit()
            await asyncio.sleep(TrustedIssuerRegistry.RELOAD_SECONDS + 0.2)  # every replica's reload

            after = await client.post("/introspect", auth=resource_server, data={"token": token})
            assert after.json() == {"active": False}, after.text
            exchanged = await client.post(
                "/token",
                auth=resource_server,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": token,
                    "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                },
            )
            assert exchanged.status_code == 400, exchanged.text
            assert exchanged.json()["error"] == "invalid_grant"
    finally:
        async with database() as session:
            await session.execute(delete(TrustedIssuer).where(TrustedIssuer.issuer == entry.issuer))
            await session.commit()
