"""The auth service's public endpoints as OpenAPI operations with their real parameters and bodies.

The endpoints read raw query strings and forms themselves (to refuse a repeated parameter, RFC 6749
§3.1 and §3.2), so FastAPI's /openapi.json lists them without inputs. Fuzzing needs the inputs: this
fills them in for every operation the app publishes and refuses an operation it has no description
for, so a new public endpoint is described here before it goes unfuzzed. Valid cases use values the
service knows (registered client ids and secrets, its resource), so they get past client
authentication into the grants; invalid cases (schemathesis' negative mode) use anything else.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any

FORM = "application/x-www-form-urlencoded"
STRING: dict[str, Any] = {"type": "string"}


@dataclass(frozen=True)
class KnownValues:
    """Things the running service recognises: client ids, a secret, a resource, a redirect URI."""

    client_ids: list[str]
    client_secret: str
    machine_basic: str  # an Authorization header value that authenticates the machine client
    resource: str
    redirect_uri: str


def valid(*values: str) -> dict[str, Any]:
    """Valid cases use these values; the invalid ones schemathesis derives use anything else."""
    return {"enum": list(values)}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _form(properties: dict[str, dict[str, Any]], *required: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"required": True, "content": {FORM: {"schema": schema}}}


def _query(properties: dict[str, dict[str, Any]], *required: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in properties.items()
    ]


def _authorization(known: KnownValues) -> list[dict[str, Any]]:
    schema = valid(known.machine_basic, basic(known.client_ids[0], known.client_secret))
    return [{"name": "Authorization", "in": "header", "required": False, "schema": schema}]


def operations(known: KnownValues) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> the inputs of that operation."""
    client = {
        "client_id": valid(*known.client_ids),
        "client_secret": valid(known.client_secret),
    }
    grant_types = ["authorization_code", "refresh_token", "client_credentials"]
    token_exchange = "urn:ietf:params:oauth:grant-type:token-exchange"
    no_inputs: dict[str, Any] = {}
    return {
        ("get", "/.well-known/oauth-authorization-server"): no_inputs,
        ("get", "/.well-known/openid-configuration"): no_inputs,
        ("get", "/jwks.json"): no_inputs,
        ("post", "/register"): {  # RFC 7591 §2 client metadata, as JSON
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "redirect_uris": {"type": "array", "items": valid(known.redirect_uri)},
                                "token_endpoint_auth_method": valid(
                                    "none", "client_secret_basic", "client_secret_post"
                                ),
                                "grant_types": {"type": "array", "items": valid(*grant_types)},
                                "response_types": {"type": "array", "items": valid("code")},
                                "application_type": valid("web", "native"),
                                "client_name": STRING,
                                "client_uri": STRING,
                                "logo_uri": STRING,
                                "scope": STRING,
                                "contacts": {"type": "array", "items": STRING},
                                "software_id": STRING,
                            },
                            "required": ["redirect_uris"],
                        }
                    }
                },
            }
        },
        ("get", "/authorize"): {  # RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2
            "parameters": _query(
                {
                    "response_type": valid("code"),
                    "client_id": valid(*known.client_ids),
                    "redirect_uri": valid(known.redirect_uri),
                    "code_challenge": STRING,
                    "code_challenge_method": valid("S256", "plain"),
                    "state": STRING,
                    "scope": valid("mcp:tools offline_access"),
                    "resource": valid(known.resource),
                    "prompt": valid("consent", "none", "login"),
                },
                "client_id",
                "redirect_uri",
            )
        },
        ("post", "/token"): {  # RFC 6749 §4.1.3, §4.4.2, §6; RFC 8693 §2.1
            "parameters": _authorization(known),
            "requestBody": _form(
                {
                    "grant_type": valid(*grant_types, token_exchange),
                    **client,
                    "code": STRING,
                    "redirect_uri": valid(known.redirect_uri),
                    "code_verifier": STRING,
                    "refresh_token": STRING,
                    "scope": valid("mcp:tools"),
                    "resource": valid(known.resource),
                    "subject_token": STRING,
                    "subject_token_type": valid("urn:ietf:params:oauth:token-type:access_token"),
                    "audience": STRING,
                },
                "grant_type",
            ),
        },
        ("post", "/revoke"): {  # RFC 7009 §2.1
            "parameters": _authorization(known),
            "requestBody": _form(
                {"token": STRING, "token_type_hint": valid("access_token", "refresh_token"), **client},
                "token",
            ),
        },
        ("post", "/introspect"): {  # RFC 7662 §2.1
            "parameters": _authorization(known),
            "requestBody": _form(
                {"token": STRING, "token_type_hint": valid("access_token", "refresh_token"), **client},
                "token",
            ),
        },
    }


def operations_described() -> list[tuple[str, str]]:
    """(method, path) of every described operation; the values offered do not matter here."""
    return list(operations(KnownValues([""], "", "", "", "")))


def describe(published: dict[str, Any], known: KnownValues) -> dict[str, Any]:
    """The app's own OpenAPI document with every operation's inputs filled in."""
    document = copy.deepcopy(published)
    described = operations(known)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            inputs = described.pop((method, path), None)
            assert inputs is not None, f"{method.upper()} {path} is public but not described for fuzzing"
            operation.update(copy.deepcopy(inputs))
    assert not described, f"described but not published: {sorted(described)}"
    return document
