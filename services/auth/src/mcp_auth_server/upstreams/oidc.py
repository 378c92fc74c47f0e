"""Any OpenID Connect provider as the upstream: discovery, code flow with PKCE and nonce, checked ID tokens.

Users are keyed by the provider's `sub`, the only stable identifier (OIDC Core §5.7). The profile comes
from the ID token, completed from the userinfo endpoint when the ID token carries no email. Refresh
tokens (asked for with `offline_access`, or Google's `access_type=offline`) keep the provider's access
token usable by tools and let each refresh of ours ask the provider again whether the user may stay.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx

from mcp_auth_server.clock import now
from mcp_auth_server.oauth.rfc7636_pkce import s256_challenge
from mcp_auth_server.upstreams.base import Identity, UpstreamRejected, UpstreamRequest, UpstreamTokens
from mcp_auth_server.upstreams.http import check_authorization_response, request_json, tokens_from
from mcp_auth_server.upstreams.oidc_admission import Admission, verified_email
from mcp_auth_server.upstreams.oidc_discovery import OidcProviderClient, ProviderMetadata
from mcp_auth_server.upstreams.oidc_id_token import validate_id_token


class OidcConnector:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        admission: Admission,
        name: str = "oidc",
        display_name: str | None = None,
        authorize_params: Mapping[str, str] | None = None,
        also_accepted_issuers: Collection[str] = (),
    ) -> None:
        self.name = name
        self.display_name = display_name or urlsplit(issuer).hostname or issuer
        self._http = http
        self._provider = OidcProviderClient(http, issuer, self.display_name)
        self._issuers = [issuer, *also_accepted_issuers]
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = scopes
        self._admission = admission
        self._authorize_params = dict(authorize_params or {})
        if "offline_access" in scopes.split():
            # OIDC Core §11: offline access MUST be asked for with prompt=consent.
            self._authorize_params.setdefault("prompt", "consent")

    async def login_url(self, request: UpstreamRequest) -> str:
        metadata = await self._provider.metadata()
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": request.callback_url,
            "scope": self._scopes,
            "state": request.state,
            "nonce": request.nonce,  # OIDC Core §3.1.2.1, §15.5.2
            "code_challenge": s256_challenge(request.code_verifier),  # RFC 7636 §4.3
            "code_challenge_method": "S256",
            **self._authorize_params,
        }
        endpoint = metadata.authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    async def handle_callback(self, params: Mapping[str, str], request: UpstreamRequest) -> Identity:
        # RFC 9207 §2.4: a provider that says who it is must be the one we sent the browser to.
        if "iss" in params and params["iss"] not in self._issuers:
            raise UpstreamRejected("the answer came from another identity provider than the one asked")
        code = check_authorization_response(params, self.display_name)
        metadata = await self._provider.metadata()
        body = await self._token_request(
            metadata,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": request.callback_url,
                "code_verifier": request.code_verifier,
            },
        )
        tokens = tokens_from(body, self.display_name)
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamRejected(
                f"{self.display_name} returned no ID token (is 'openid' among the scopes?)"
            )
        claims = await validate_id_token(
            id_token,
            provider=self._provider,
            issuers=self._issuers,
            client_id=self._client_id,
            nonce=request.nonce,
        )
        if "email" not in claims and metadata.userinfo_endpoint:
            # Userinfo claims never override the signed ones (OIDC Core §5.3.2: same sub or discard).
            claims = {**await self._userinfo(metadata, tokens.access_token, claims["sub"]), **claims}
        self._admission.check(claims, self.display_name)
        return _identity(self.name, claims, tokens)

    async def check_access(self, identity: Identity) -> None:
        """Asked on refresh: the (already refreshed) token still works and the claims still pass."""
        tokens = identity.tokens
        if tokens is None:
            raise UpstreamRejected(f"no {self.display_name} token is stored for this user")
        if tokens.expires_at is not None and tokens.expires_at <= now():
            raise UpstreamRejected(
                f"the {self.display_name} token has expired and there is no refresh token; sign in again"
            )
        metadata = await self._provider.metadata()
        if metadata.userinfo_endpoint is None:
            return  # nothing to ask; a successful token refresh already showed the grant is alive
        claims = await self._userinfo(metadata, tokens.access_token, identity.subject)
        self._admission.check(claims, self.display_name)

    async def refresh(self, tokens: UpstreamTokens) -> UpstreamTokens:
        """RFC 6749 §6 / OIDC Core §12. An ID token in the answer is not needed: userinfo is asked instead."""
        if tokens.refresh_token is None:
            return tokens
        metadata = await self._provider.metadata()
        body = await self._token_request(
            metadata, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )
        return tokens_from(body, self.display_name, previous=tokens)

    async def _token_request(self, metadata: ProviderMetadata, data: dict[str, str]) -> Any:
        """POST to the token endpoint, authenticated as the provider asks (OIDC Core §9)."""
        auth: httpx.BasicAuth | None = None
        if "client_secret_basic" in metadata.token_endpoint_auth_methods_supported:
            # RFC 6749 §2.3.1: both parts are form-encoded before they go into the Basic header.
            auth = httpx.BasicAuth(quote_plus(self._client_id), quote_plus(self._client_secret))
        else:
            data = {**data, "client_id": self._client_id, "client_secret": self._client_secret}
        return await request_json(
            self._http, self.display_name, "POST", metadata.token_endpoint, data=data, auth=auth
        )

    async def _userinfo(self, metadata: ProviderMetadata, access_token: str, subject: str) -> dict[str, Any]:
        assert metadata.userinfo_endpoint is not None
        claims = await request_json(
            self._http,
            self.display_name,
            "GET",
            metadata.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if not isinstance(claims, dict) or claims.get("sub") != subject:
            # OIDC Core §5.3.2: a userinfo answer about anyone else MUST NOT be used.
            raise UpstreamRejected(f"{self.display_name}'s userinfo answered for another user")
        return claims


def _identity(provider: str, claims: Mapping[str, Any], tokens: UpstreamTokens) -> Identity:
    email = verified_email(claims)

    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    groups = claims.get("groups")
    return Identity(
        provider=provider,
        subject=claims["sub"],
        login=text("preferred_username") or email,
        name=text("name") or text("preferred_username") or email,
        email=email,  # only a verified address reaches tools
        avatar_url=text("picture"),
        tokens=tokens,
        groups=[group for group in groups if isinstance(group, str)] if isinstance(groups, list) else [],
    )
