"""An enterprise identity provider on 127.0.0.1 that issues ID-JAGs (MCP Enterprise-Managed Authorization).

It does what Okta or Entra ID do in that flow, over real HTTP: OpenID discovery, a JWKS, ID tokens for
its users (`id_token(...)`, as if the client had signed the user in), and RFC 8693 token exchange at
`/token` that turns such an ID token into an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant
§"Token Exchange") when a policy allows that client to reach that audience and resource:

- the IdP client authenticates (`client_secret_post` or Basic) and the ID token's `aud` is that client;
- `requested_token_type` is `urn:ietf:params:oauth:token-type:id-jag`, `audience` and `resource` are set;
- a `Policy` names the IdP client, the audience (the MCP authorization server's issuer), the resources,
  the scopes it may get, and the `client_id` the client has at that authorization server (the ID-JAG's
  `client_id`, §"Cross-Domain Client ID Handling").

Tests also mint ID-JAGs directly (`id_jag(...)`, any claims) to play the attacker, rotate and retire
keys, and switch failures on per route group ("discovery", "jwks", "token").
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_testing.background_server import BackgroundServer, ServedInBackground
from mcp_testing.standin_http import RecordAndMisbehave
from mcp_testing.token_issuer import (
    IssuerState,
    RouteGroup,
    discovery_document,
    jwks_response,
    new_secret,
    state_from,
)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TYP = "oauth-id-jag+jwt"


@dataclass(frozen=True)
class Person:
    sub: str
    email: str
    name: str


@dataclass(frozen=True)
class Policy:
    """The admin's decision: `idp_client` may get ID-JAGs for `audience` and these resources and scopes."""

    idp_client: str
    audience: str
    resources: tuple[str, ...]
    scopes: tuple[str, ...]
    client_id_at_audience: str  # the client's id at the MCP authorization server (the ID-JAG's client_id)


@dataclass
class EnterpriseIdpState(IssuerState):
    clients: dict[str, str] = field(default_factory=dict)  # IdP client id -> secret
    people: dict[str, Person] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    id_jag_lifetime: int = 300

    def add_client(self, client_id: str) -> str:
        secret = new_secret()
        self.clients[client_id] = secret
        return secret

    def add_person(self, sub: str, email: str, name: str | None = None) -> Person:
        person = Person(sub, email, name or sub.title())
        self.people[sub] = person
        return person

    def allow(
        self,
        idp_client: str,
        *,
        audience: str,
        resources: Sequence[str],
        scopes: Sequence[str],
        client_id_at_audience: str,
    ) -> Policy:
        policy = Policy(idp_client, audience, tuple(resources), tuple(scopes), client_id_at_audience)
        self.policies.append(policy)
        return policy

    def id_token(self, person: Person, client_id: str, lifetime: int = 300) -> str:
        """An OpenID Connect ID token for `person`, issued to the IdP client `client_id` (its `aud`)."""
        claims = {"sub": person.sub, "aud": client_id, "email": person.email, "email_verified": True}
        return self.sign({**claims, "name": person.name, "auth_time": int(time.time())}, lifetime=lifetime)

    def id_jag(
        self,
        *,
        sub: str,
        audience: Any,
        client_id: str,
        resource: Any = None,
        scope: str | None = None,
        **extra: Any,
    ) -> str:
        """An ID-JAG with exactly these claims (None drops one); `typ=...` or `key=...` change the header."""
        typ = extra.pop("typ", ID_JAG_TYP)
        key = extra.pop("key", None)
        lifetime = extra.pop("lifetime", self.id_jag_lifetime)
        claims = {"sub": sub, "aud": audience, "client_id": client_id, "resource": resource, "scope": scope}
        return self.sign({**claims, **extra}, typ=typ, key=key, lifetime=lifetime)


def state_of(request: Request) -> EnterpriseIdpState:
    state = state_from(request, "idp")
    assert isinstance(state, EnterpriseIdpState)
    return state


def _group(path: str) -> RouteGroup | None:
    groups: dict[str, RouteGroup] = {
        "/.well-known/openid-configuration": "discovery",
        "/jwks": "jwks",
        "/token": "token",
    }
    return groups.get(path)


async def discovery(request: Request) -> Response:
    state = state_of(request)
    return discovery_document(
        state,
        {
            "token_endpoint": f"{state.base_url}/token",
            "grant_types_supported": [TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            # draft-ietf-oauth-identity-assertion-authz-grant §"IdP Authorization Server Metadata"
            "identity_chaining_requested_token_types_supported": [ID_JAG_TOKEN_TYPE],
            "id_token_signing_alg_values_supported": sorted({key.alg for key in state.keys}),
        },
    )


async def jwks(request: Request) -> Response:
    return jwks_response(state_of(request))


def _error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description}, status, {"Cache-Control": "no-store"}
    )


def _client(request: Request, form: dict[str, str]) -> str | None:
    state = state_of(request)
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    return client_id if state.clients.get(client_id) == secret and secret else None


async def token(request: Request) -> Response:
    """RFC 8693 token exchange of an ID token for an ID-JAG, under the admin's policies."""
    state = state_of(request)
    form = {key: str(value) for key, value in (await request.form()).items()}
    client_id = _client(request, form)
    if client_id is None:
        return _error("invalid_client", "client authentication failed", 401)
    if form.get("grant_type") != TOKEN_EXCHANGE:
        return _error("unsupported_grant_type", "only token exchange is supported")
    if (
        form.get("requested_token_type") != ID_JAG_TOKEN_TYPE
        or form.get("subject_token_type") != ID_TOKEN_TYPE
    ):
        return _error("invalid_request", "this IdP exchanges ID tokens for ID-JAGs only")
    audience, resource = form.get("audience", ""), form.get("resource", "")
    if not audience or not resource:
        return _error("invalid_request", "audience and resource are required")
    try:
        subject = jwt.decode(
            form.get("subject_token", ""),
            options={"verify_signature": False, "require": ["sub", "aud", "exp"]},
        )
        key = next(k for k in state.keys if k.kid == jwt.get_unverified_header(form["subject_token"])["kid"])
        jwt.decode(
            form["subject_token"], key.private_key.public_key(), algorithms=[key.alg], audience=client_id
        )
    except (jwt.PyJWTError, StopIteration, KeyError):
        return _error("invalid_grant", "the subject token is not a valid ID token for this client")
    policy = next(
        (
            p
            for p in state.policies
            if p.idp_client == client_id and p.audience == audience and resource in p.resources
        ),
        None,
    )
    if policy is None:
        return _error("invalid_grant", "policy does not allow this client to reach that resource")
    asked = form.get("scope", "").split()
    scopes = [scope for scope in (asked or policy.scopes) if scope in policy.scopes]
    person = state.people.get(str(subject["sub"]))
    grant = state.id_jag(
        sub=str(subject["sub"]),
        audience=audience,
        client_id=policy.client_id_at_audience,
        resource=resource,
        scope=" ".join(scopes),
        email=person.email if person else subject.get("email"),
        email_verified=subject.get("email_verified"),
        auth_time=subject.get("auth_time"),
    )
    body = {
        "issued_token_type": ID_JAG_TOKEN_TYPE,
        "access_token": grant,
        "token_type": "N_A",
        "scope": " ".join(scopes),
        "expires_in": state.id_jag_lifetime,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def create_app(state: EnterpriseIdpState) -> Starlette:
    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/token", token, methods=["POST"]),
        ],
        middleware=[Middleware(RecordAndMisbehave, group_of=_group, state_of=state_of)],
    )
    app.state.idp = state
    return app


class EnterpriseIdpStandIn(ServedInBackground):
    def __init__(self, state: EnterpriseIdpState | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(state or EnterpriseIdpState())
        self._server = BackgroundServer(self.app, host=host)

    def start(self) -> EnterpriseIdpStandIn:
        super().start()
        self.state.base_url = self._server.base_url
        return self

    @property
    def state(self) -> EnterpriseIdpState:
        return state_of_app(self.app)

    def reset(self) -> EnterpriseIdpState:
        self.app.state.idp = EnterpriseIdpState(base_url=self._server.base_url)
        return self.state

    @property
    def issuer(self) -> str:
        return self._server.base_url


def state_of_app(app: Starlette) -> EnterpriseIdpState:
    state = app.state.idp
    assert isinstance(state, EnterpriseIdpState)
    return state


@pytest.fixture(scope="session")
def enterprise_idp_server() -> Iterator[EnterpriseIdpStandIn]:
    with EnterpriseIdpStandIn() as server:
        yield server


@pytest.fixture
def enterprise_idp(enterprise_idp_server: EnterpriseIdpStandIn) -> EnterpriseIdpStandIn:
    """The enterprise IdP stand-in with a fresh state (new keys, no clients, people or policies)."""
    enterprise_idp_server.reset()
    return enterprise_idp_server
