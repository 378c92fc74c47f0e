"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3).

`client_secret_basic` (§2.3.1: id and secret form-urlencoded inside Basic), `client_secret_post`,
`private_key_jwt` (RFC 7523 §2.2: a signed `client_assertion`, checked by rfc7523_client_assertions.py),
or `none` for public clients, which identify themselves with `client_id` alone. A client uses
exactly one method (§2.3), the one it registered (RFC 7591 §2 `token_endpoint_auth_method`): a
secret registered for Basic is refused in the body, so it cannot end up in logs of form bodies; a
client with keys cannot fall back to a secret, nor a client with a secret to an assertion.
Secrets are compared as hashes in constant time.

Framework-free: this module reads what the request presented and checks it against a registration;
finding the registration is the caller's (grants/client_authentication.py).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from mcp_auth_server.crypto.opaque_tokens import secret_matches
from mcp_auth_server.oauth.errors import invalid_client, invalid_request
from mcp_auth_server.oauth.rfc7523_client_assertions import (
    CLIENT_ASSERTION_TYPE,
    PRIVATE_KEY_JWT,
    assertion_subject,
)

BASIC = "client_secret_basic"
POST = "client_secret_post"
NONE = "none"


@dataclass(frozen=True)
class PresentedClient:
    """Who the request says it is, and how it proves it."""

    client_id: str
    method: str  # BASIC, POST, PRIVATE_KEY_JWT or NONE
    secret: str | None = field(default=None, repr=False)
    assertion: str | None = field(default=None, repr=False)  # PRIVATE_KEY_JWT: the client_assertion
    named_client_id: str | None = None  # PRIVATE_KEY_JWT: the `client_id` parameter, when one was sent


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # RFC 7617 §2: token68, ASCII only. Header bytes arrive as latin-1 text, and b64decode refuses
        # non-ASCII text with a plain ValueError (binascii.Error and UnicodeDecodeError are ValueErrors too).
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        raise invalid_client("malformed Basic credentials") from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise invalid_client("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def presented_client(authorization: str | None, form: Mapping[str, str]) -> PresentedClient:
    """The client credentials of a request: its Authorization header and form parameters."""
    basic = _basic_credentials(authorization)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        if basic or form_secret is not None:
            raise invalid_request("use one client authentication method, not a secret and an assertion")
        return _asserted_client(form_id, assertion_type, assertion)
    if basic:
        if form_secret is not None:
            raise invalid_request(
                "use one client authentication method, not Basic and client_secret together"
            )
        client_id, secret = basic
        if form_id is not None and form_id != client_id:
            raise invalid_request("client_id in the body differs from the authenticated client")
        return PresentedClient(client_id, BASIC, secret)
    if not form_id:
        raise invalid_client("client authentication is required")
    if form_secret is not None:
        return PresentedClient(form_id, POST, form_secret)
    return PresentedClient(form_id, NONE)


def _asserted_client(
    form_id: str | None, assertion_type: str | None, assertion: str | None
) -> PresentedClient:
    """RFC 7521 §4.2: the assertion's subject names the client; a `client_id` sent too must agree (checked
    once the assertion is known to be the client's own: a workload token's subject is the workload's)."""
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise invalid_client(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
    if not assertion:
        raise invalid_request("client_assertion is required with client_assertion_type")
    subject = assertion_subject(assertion)
    if subject is None:
        raise invalid_client("the client assertion is not a JWT naming its client in sub")
    return PresentedClient(subject, PRIVATE_KEY_JWT, assertion=assertion, named_client_id=form_id)


def presents_client(authorization: str | None, form: Mapping[str, str]) -> bool:
    """Whether the request names a client at all (a workload token may be the caller's only credential).
    A client assertion (RFC 7523 §2.2) counts too: it names its client in `sub`, without `client_id`."""
    return bool(authorization) or any(
        name in form for name in ("client_id", "client_secret", "client_assertion", "client_assertion_type")
    )


def check_client_method(presented: PresentedClient, registered_method: str) -> None:
    """The request authenticates by the method the client registered, and no other (§2.3)."""
    if registered_method == NONE:
        if presented.method != NONE:
            raise invalid_client("this is a public client; it has no secret")
        return
    if presented.method == NONE:
        raise invalid_client("client authentication failed")
    if presented.method != registered_method:
        raise invalid_client(f"this client authenticates with {registered_method}")


def check_client_secret(presented: PresentedClient, secret_hash: str | None) -> None:
    """A secret-authenticated client's secret matches the hash it registered (after `check_client_method`)."""
    if presented.secret is None or not secret_matches(presented.secret, secret_hash):
        raise invalid_client("client authentication failed")
