"""A workload identity issuer on 127.0.0.1: a Kubernetes cluster's service-account token issuer, or
GitHub Actions' OIDC token service (MCP Workload Identity Federation).

Like the real ones it publishes OpenID discovery and its keys at a JWKS URL (`/openid/v1/jwks`, the
Kubernetes API server's path), and hands out tokens to "workloads": `service_account_token(...)` is
what the kubelet projects into a pod (`sub` `system:serviceaccount:<ns>:<name>`, the audience of the
projection, a `kubernetes.io` claim), `github_actions_token(...)` what a job gets from
`ACTIONS_ID_TOKEN_REQUEST_URL` (`sub` `repo:<owner>/<repo>:ref:<ref>`). Keys rotate and retire,
and failures switch on per route group ("discovery", "jwks"), like the other stand-ins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_testing.background_server import BackgroundServer, ServedInBackground
from mcp_testing.oidc_state import SigningKey
from mcp_testing.standin_http import RecordAndMisbehave
from mcp_testing.token_issuer import IssuerState, RouteGroup, discovery_document, jwks_response, state_from

JWKS_PATH = "/openid/v1/jwks"


class WorkloadIssuerState(IssuerState):
    def service_account_token(
        self,
        namespace: str,
        name: str,
        audience: str,
        lifetime: int = 600,
        key: SigningKey | None = None,
        **extra: Any,
    ) -> str:
        """A projected service-account token (Kubernetes `serviceAccountToken` volume source)."""
        claims = {
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": [audience],
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": str(uuid.uuid4())},
                "pod": {"name": f"{name}-7d4b9c-x2x9q", "uid": str(uuid.uuid4())},
            },
            **extra,
        }
        return self.sign(claims, typ=None, lifetime=lifetime, key=key)

    def github_actions_token(
        self,
        repository: str,
        ref: str,
        audience: str,
        lifetime: int = 300,
        key: SigningKey | None = None,
        **extra: Any,
    ) -> str:
        """A GitHub Actions OIDC token for a job of `repository` running on `ref`."""
        owner = repository.split("/")[0]
        claims = {
            "sub": f"repo:{repository}:ref:{ref}",
            "aud": audience,
            "repository": repository,
            "repository_owner": owner,
            "ref": ref,
            "workflow": "deploy",
            "event_name": "push",
            **extra,
        }
        return self.sign(claims, typ="JWT", lifetime=lifetime, key=key)


def state_of(request: Request) -> WorkloadIssuerState:
    state = state_from(request, "workload")
    assert isinstance(state, WorkloadIssuerState)
    return state


def _group(path: str) -> RouteGroup | None:
    groups: dict[str, RouteGroup] = {"/.well-known/openid-configuration": "discovery", JWKS_PATH: "jwks"}
    return groups.get(path)


async def discovery(request: Request) -> Response:
    state = state_of(request)
    response = discovery_document(
        state,
        {
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({key.alg for key in state.keys}),
        },
        JWKS_PATH,
    )
    return response


async def jwks(request: Request) -> Response:
    return jwks_response(state_of(request))


def create_app(state: WorkloadIssuerState) -> Starlette:
    app = Starlette(
        routes=[Route("/.well-known/openid-configuration", discovery), Route(JWKS_PATH, jwks)],
        middleware=[Middleware(RecordAndMisbehave, group_of=_group, state_of=state_of)],
    )
    app.state.workload = state
    return app


class WorkloadIssuerStandIn(ServedInBackground):
    def __init__(self, state: WorkloadIssuerState | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(state or WorkloadIssuerState())
        self._server = BackgroundServer(self.app, host=host)

    def start(self) -> WorkloadIssuerStandIn:
        super().start()
        self.state.base_url = self._server.base_url
        return self

    @property
    def state(self) -> WorkloadIssuerState:
        state = self.app.state.workload
        assert isinstance(state, WorkloadIssuerState)
        return state

    def reset(self) -> WorkloadIssuerState:
        self.app.state.workload = WorkloadIssuerState(base_url=self._server.base_url)
        return self.state

    @property
    def issuer(self) -> str:
        return self._server.base_url

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}{JWKS_PATH}"


@pytest.fixture(scope="session")
def workload_issuer_server() -> Iterator[WorkloadIssuerStandIn]:
    with WorkloadIssuerStandIn() as server:
        yield server


@pytest.fixture
def workload_issuer(workload_issuer_server: WorkloadIssuerStandIn) -> WorkloadIssuerStandIn:
    """The workload issuer stand-in with a fresh state (new keys)."""
    workload_issuer_server.reset()
    return workload_issuer_server
