"""What the OIDC provider stand-in knows per test: clients, users, signing keys, codes, tokens, failures, log.

Tests arrange this state directly (add a client and users, revoke tokens, rotate keys, forge the next ID
token, switch a failure on) and read the request log afterwards. Handlers run on the server's single
event-loop thread, so check-then-update steps (consuming a code) need no lock.

`flavour="google"` behaves like accounts.google.com where it differs from a generic provider: a refresh
token only with `access_type=offline` (and then only on first consent or with `prompt=consent`), no
rotation of refresh tokens, `include_granted_scopes`, and the `hd` claim for hosted-domain accounts.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import Request

from mcp_testing.standin_http import FailureMode, LoggedRequest, consume

__all__ = ["FailureMode", "Flavour", "OidcState", "RouteGroup", "SigningKey", "state_of"]

Flavour = Literal["generic", "google"]
RouteGroup = Literal["discovery", "jwks", "authorize", "token", "userinfo"]
KeyAlgorithm = Literal["RS256", "ES256"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: KeyAlgorithm
    private_key: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        headers = {"kid": self.kid, **(headers or {})}
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=headers)


def new_signing_key(alg: KeyAlgorithm) -> SigningKey:
    private_key: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(kid=f"{alg.lower()}-{secrets.token_hex(4)}", alg=alg, private_key=private_key)


@functools.cache
def _shared_key(alg: KeyAlgorithm) -> SigningKey:
    """One key per algorithm for the whole test run: RSA generation is too slow for every test."""
    return new_signing_key(alg)


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class User:
    login: str  # what the sign-in form asks for
    sub: str
    email: str | None
    email_verified: bool
    name: str | None
    hd: str | None  # Google: the hosted (Workspace) domain, absent for consumer accounts
    groups: list[str]


@dataclass
class AuthorizationCode:
    value: str
    client_id: str
    redirect_uri: str
    user: User
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    offline: bool  # the token response carries a refresh token
    expires_at: float  # time.monotonic()
    used: bool = False


@dataclass
class IssuedToken:
    value: str
    client_id: str
    sub: str
    scopes: tuple[str, ...]
    expires_at: float | None = None  # time.time(); refresh tokens do not expire
    revoked: bool = False


@dataclass
class OidcState:
    flavour: Flavour = "generic"
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    keys: list[SigningKey] = field(default_factory=lambda: [_shared_key("RS256"), _shared_key("ES256")])
    signing_alg: KeyAlgorithm = "RS256"  # which of `keys` signs ID tokens
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    # Scopes each (sub, client_id) has granted so far: Google's include_granted_scopes and first consent.
    granted: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # Sign in as this login without showing the form, as a provider does for a remembered session.
    auto_login: str | None = None
    # Called with the claims of each ID token the token endpoint is about to sign; returns the token to
    # send instead (tests forge bad tokens with it). `issuer_override` changes only the discovery document.
    forge_id_token: Callable[[dict[str, Any]], str] | None = None
    issuer_override: str | None = None
    signing_algs_override: list[str] | None = None
    access_token_lifetime: int = 3600
    id_token_lifetime: int = 3600
    code_lifetime_seconds: float = 600.0
    rotate_refresh_tokens: bool | None = None  # None: the flavour's habit (generic rotates, Google not)
    failures: dict[RouteGroup, FailureMode] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    requests: list[LoggedRequest] = field(default_factory=list)

    # --- arranging --------------------------------------------------------------------------------

    def add_client(
        self, redirect_uri: str, *, client_id: str | None = None, client_secret: str | None = None
    ) -> Client:
        client = Client(
            client_id=client_id or f"{secrets.token_hex(6)}.apps.example.test",
            client_secret=client_secret or secrets.token_urlsafe(24),
            redirect_uris=(redirect_uri,),
        )
        self.clients[client.client_id] = client
        return client

    def add_user(
        self,
        login: str,
        *,
        email: str | None = None,
        email_verified: bool = True,
        name: str | None = None,
        hd: str | None = None,
        groups: Iterable[str] = (),
        sub: str | None = None,
    ) -> User:
        user = User(
            login=login,
            sub=sub or str(10**20 + secrets.randbelow(10**20)),  # Google-style numeric subject
            email=email if email is not None else f"{login}@example.com",
            email_verified=email_verified,
            name=name or login.title(),
            hd=hd,
            groups=list(groups),
        )
        self.users[login] = user
        return user

    def rotate_key(self, alg: KeyAlgorithm = "RS256") -> SigningKey:
        """A new signing key, published first and used from now on."""
        key = new_signing_key(alg)
        self.keys.insert(0, key)
        self.signing_alg = alg
        return key

    def revoke_refresh_tokens(self, login: str) -> int:
        """As when the user removes the app from their account: every token of theirs stops working."""
        sub = self.users[login].sub
        revoked = 0
        for token in [*self.refresh_tokens.values(), *self.access_tokens.values()]:
            if token.sub == sub and not token.revoked:
                token.revoked = True
                revoked += 1
        self.granted = {key: value for key, value in self.granted.items() if key[0] != sub}
        return revoked

    def fail(self, group: RouteGroup, mode: FailureMode) -> None:
        self.failures[group] = mode

    def recover(self) -> None:
        self.failures.clear()

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [entry for entry in self.requests if entry.path == path]

    # --- what the endpoints do ----------------------------------------------------------------------

    @property
    def signing_key(self) -> SigningKey:
        return next(key for key in self.keys if key.alg == self.signing_alg)

    @property
    def rotates_refresh_tokens(self) -> bool:
        if self.rotate_refresh_tokens is not None:
            return self.rotate_refresh_tokens
        return self.flavour == "generic"

    def user_by_sub(self, sub: str) -> User | None:
        return next((user for user in self.users.values() if user.sub == sub), None)

    def issue_code(
        self,
        client: Client,
        user: User,
        redirect_uri: str,
        scopes: tuple[str, ...],
        *,
        nonce: str | None,
        code_challenge: str | None,
        offline: bool,
    ) -> str:
        code = AuthorizationCode(
            value=secrets.token_urlsafe(16),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            user=user,
            scopes=scopes,
            nonce=nonce,
            code_challenge=code_challenge,
            offline=offline,
            expires_at=time.monotonic() + self.code_lifetime_seconds,
        )
        self.codes[code.value] = code
        return code.value

    def consume_code(self, value: str, client_id: str) -> AuthorizationCode | None:
        return consume(self.codes, value, client_id)

    def issue_access_token(self, client_id: str, sub: str, scopes: tuple[str, ...]) -> IssuedToken:
        token = IssuedToken(
            value="at-" + secrets.token_urlsafe(24),
            client_id=client_id,
            sub=sub,
            scopes=scopes,
            expires_at=time.time() + self.access_token_lifetime,
        )
        self.access_tokens[token.value] = token
        return token

    def issue_refresh_token(self, client_id: str, sub: str, scopes: tuple[str, ...]) -> IssuedToken:
        value = "rt-" + secrets.token_urlsafe(24)
        token = IssuedToken(value=value, client_id=client_id, sub=sub, scopes=scopes)
        self.refresh_tokens[token.value] = token
        return token

    def live_access_token(self, value: str) -> IssuedToken | None:
        token = self.access_tokens.get(value)
        if token is None or token.revoked or (token.expires_at or 0) <= time.time():
            return None
        return token

    def id_token(self, issuer: str, client_id: str, user: User, nonce: str | None) -> str:
        moment = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": user.sub,
            "aud": client_id,
            "azp": client_id,
            "iat": moment,
            "exp": moment + self.id_token_lifetime,
            **self.profile_claims(user),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if self.forge_id_token is not None:
            return self.forge_id_token(claims)
        return self.signing_key.sign(claims)

    def profile_claims(self, user: User) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "picture": f"https://pictures.example.test/{user.sub}",
        }
        if self.flavour == "google" and user.hd:
            claims["hd"] = user.hd
        if self.flavour == "generic":
            claims["preferred_username"] = user.login
            if user.groups:
                claims["groups"] = user.groups
        return {key: value for key, value in claims.items() if value is not None}


def state_of(request: Request) -> OidcState:
    """The state the stand-in app currently serves (swapped whole when a test resets it)."""
    state = request.app.state.oidc
    assert isinstance(state, OidcState)
    return state
