"""Google as the upstream: an OIDC provider with Google's own parameters and rules for who may sign in.

- `access_type=offline` is how Google hands out refresh tokens (it refuses the `offline_access` scope),
  and it does so only when the person sees the consent screen, hence `prompt=consent` on every sign-in:
  without it a returning user would come back without one, and tools would lose Google access an
  hour later.
- `include_granted_scopes=true` keeps scopes granted earlier to the same Google client (incremental
  authorization), so adding a scope recipe does not drop the ones already in use.
- `hd` in the request only pre-selects the account chooser; the restriction is enforced on the `hd`
  claim of the signed ID token (Google's "validating an ID token" advice). Every Google user must
  have a verified email.
- Google's ID tokens name the issuer with or without the scheme (`accounts.google.com`); both count.
"""

from __future__ import annotations

import httpx

from mcp_auth_server.upstreams.oidc import OidcConnector
from mcp_auth_server.upstreams.oidc_admission import Admission

GOOGLE_ISSUER = "https://accounts.google.com"


def google_connector(
    *,
    http: httpx.AsyncClient,
    client_id: str,
    client_secret: str,
    scopes: str,
    hosted_domains: list[str],
    allowed_users: list[str],
    allowed_domains: list[str],
    issuer: str = GOOGLE_ISSUER,
) -> OidcConnector:
    params = {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}
    if hosted_domains:
        # One domain pre-selects it; with several, "*" asks for any Workspace account.
        params["hd"] = hosted_domains[0] if len(hosted_domains) == 1 else "*"
    return OidcConnector(
        http=http,
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        admission=Admission.of(
            allowed_users=allowed_users,
            allowed_domains=allowed_domains,
            hosted_domains=hosted_domains,
            require_verified_email=True,
        ),
        name="google",
        display_name="Google",
        authorize_params=params,
        also_accepted_issuers=[issuer.split("://", 1)[1]],
    )
