"""The credential policy on its own: no HTTP, no database, a fake upstream admission.

Each rule refuses with its own reason; the upstream is asked last and only when everything else
holds; a user it refuses is reported as deprovisioned (`persist`).
"""

from __future__ import annotations

import dataclasses

import pytest

from mcp_auth_server.clock import now
from mcp_auth_server.policy.credentials import CredentialPolicy, CredentialRefused, Refusal
from mcp_auth_server.policy.question import Path, Question
from mcp_auth_server.store.resources import RegisteredResource
from mcp_auth_server.store.standings import ClientStanding, ConsentStanding, GrantStanding, UserStanding

RESOURCE = "https://tools.example.com/mcp"
TOOLS = RegisteredResource(RESOURCE, "Tools", ("mcp:tools", "github:repos"), ("mcp:tools",), "github:repos")
PLAIN = RegisteredResource("https://plain.example.com/mcp", "Plain", ("mcp:tools",), ("mcp:tools",))
CLAUDE = ClientStanding("claude", ("authorization_code", "refresh_token"), "dcr")
MACHINE = ClientStanding("ci", ("client_credentials",), "machine", (RESOURCE,), ("mcp:tools",))
ALICE = UserStanding("alice", disabled=False, identity_id="gh-1", checked_at=None)
CONSENT = ConsentStanding(frozenset({"mcp:tools", "github:repos", "offline_access"}), now() + 3600)
LIVE = GrantStanding("g1", revoked=False, expires_at=now() + 3600)


class FakeAdmission:
    """Admits everyone but `refused`, counting the questions it was asked."""

    def __init__(self, refused: set[str] | None = None) -> None:
        self.refused = refused or set()
        self.asked: list[str] = []

    async def still_admitted(self, user: UserStanding) -> None:
        self.asked.append(user.id)
        if user.id in self.refused:
            raise CredentialRefused(Refusal.USER_NOT_ADMITTED, "not in the org", persist=True)


class Registry:
    def get(self, resource: str) -> RegisteredResource | None:
        return {TOOLS.resource: TOOLS, PLAIN.resource: PLAIN}.get(resource)


def policy(admission: FakeAdmission | None = None) -> CredentialPolicy:
    return CredentialPolicy(Registry(), admission or FakeAdmission())


def refresh_question(**changes: object) -> Question:
    question = Question(
        Path.REFRESH,
        CLAUDE,
        RESOURCE,
        ["mcp:tools", "offline_access"],
        user=ALICE,
        grant=LIVE,
        consent=CONSENT,
    )
    return dataclasses.replace(question, **changes)  # type: ignore[arg-type]


async def refused(question: Question, admission: FakeAdmission | None = None) -> CredentialRefused:
    with pytest.raises(CredentialRefused) as caught:
        await policy(admission).decide(question)
    return caught.value


async def test_a_refresh_within_every_rule_is_allowed_and_asks_the_upstream_once() -> None:
    admission = FakeAdmission()
    await policy(admission).decide(refresh_question())
    assert admission.asked == ["alice"]


async def test_a_disabled_user_gets_nothing() -> None:
    disabled = dataclasses.replace(ALICE, disabled=True)
    assert (await refused(refresh_question(user=disabled))).refusal is Refusal.USER_DISABLED


async def test_a_user_the_upstream_refuses_is_refused_and_the_refusal_persists() -> None:
    outcome = await refused(refresh_question(), FakeAdmission(refused={"alice"}))
    assert outcome.refusal is Refusal.USER_NOT_ADMITTED
    assert outcome.persist
    assert outcome.oauth_error().persist


@pytest.mark.parametrize(
    "grant",
    [dataclasses.replace(LIVE, revoked=True), dataclasses.replace(LIVE, expires_at=now() - 1)],
    ids=["revoked", "past its family lifetime"],
)
async def test_an_ended_grant_yields_nothing_and_the_upstream_is_not_asked(grant: GrantStanding) -> None:
    admission = FakeAdmission()
    assert (await refused(refresh_question(grant=grant), admission)).refusal is Refusal.GRANT_ENDED
    assert admission.asked == []  # cheap checks first: nothing leaves the process for a dead grant


async def test_without_a_remembered_consent_nothing_is_issued() -> None:
    assert (await refused(refresh_question(consent=None))).refusal is Refusal.NO_CONSENT


async def test_an_expired_consent_counts_as_none() -> None:
    lapsed = dataclasses.replace(CONSENT, expires_at=now() - 1)
    assert (await refused(refresh_question(consent=lapsed))).refusal is Refusal.NO_CONSENT


async def test_scopes_beyond_the_consent_are_refused() -> None:
    narrow = ConsentStanding(frozenset({"mcp:tools"}), now() + 60)
    question = refresh_question(consent=narrow, scopes=["mcp:tools", "github:repos"])
    assert (await refused(question)).refusal is Refusal.SCOPE_NOT_CONSENTED


async def test_a_scope_the_resource_no_longer_offers_is_refused() -> None:
    question = refresh_question(resource=PLAIN.resource, scopes=["github:repos"])
    outcome = await refused(question)
    assert outcome.refusal is Refusal.SCOPE_NOT_OFFERED
    assert outcome.oauth_error().error == "invalid_scope"


async def test_a_resource_no_longer_registered_is_refused() -> None:
    outcome = await refused(refresh_question(resource="https://gone.example.com/mcp"))
    assert outcome.refusal is Refusal.UNKNOWN_RESOURCE
    assert outcome.oauth_error().error == "invalid_target"


async def test_a_client_not_registered_for_refresh_tokens_cannot_refresh() -> None:
    code_only = dataclasses.replace(CLAUDE, grant_types=("authorization_code",))
    outcome = await refused(refresh_question(client=code_only))
    assert outcome.refusal is Refusal.CLIENT_NOT_ALLOWED
    assert outcome.oauth_error().error == "unauthorized_client"


async def test_consent_approval_needs_no_remembered_consent_but_an_admitted_user() -> None:
    approval = Question(Path.CONSENT_APPROVAL, CLAUDE, RESOURCE, ["mcp:tools"], user=ALICE)
    await policy().decide(approval)
    assert (await refused(approval, FakeAdmission(refused={"alice"}))).refusal is Refusal.USER_NOT_ADMITTED


async def test_token_exchange_needs_the_resources_upstream_token_scope_granted_and_consented() -> None:
    exchange = refresh_question(path=Path.TOKEN_EXCHANGE, scopes=["mcp:tools", "github:repos"])
    await policy().decide(exchange)
    without = dataclasses.replace(exchange, scopes=["mcp:tools"])
    assert (await refused(without)).refusal is Refusal.SCOPE_NOT_CONSENTED
    not_consented = dataclasses.replace(
        exchange, consent=ConsentStanding(frozenset({"mcp:tools"}), now() + 60)
    )
    assert (await refused(not_consented)).refusal is Refusal.SCOPE_NOT_CONSENTED


async def test_a_resource_without_an_upstream_token_scope_never_gets_upstream_tokens() -> None:
    exchange = refresh_question(path=Path.TOKEN_EXCHANGE, resource=PLAIN.resource, scopes=["mcp:tools"])
    assert (await refused(exchange)).refusal is Refusal.SCOPE_NOT_CONSENTED


async def test_machine_clients_get_only_what_the_operator_allowed() -> None:
    allowed = Question(Path.CLIENT_CREDENTIALS, MACHINE, RESOURCE, ["mcp:tools"])
    await policy().decide(allowed)
    other = dataclasses.replace(allowed, resource=PLAIN.resource)
    assert (await refused(other)).refusal is Refusal.RESOURCE_NOT_ALLOWED
    wider = dataclasses.replace(allowed, scopes=["mcp:tools", "github:repos"])
    assert (await refused(wider)).refusal is Refusal.SCOPE_NOT_ALLOWED


async def test_only_machine_clients_use_client_credentials() -> None:
    question = Question(Path.CLIENT_CREDENTIALS, CLAUDE, RESOURCE, ["mcp:tools"])
    assert (await refused(question)).refusal is Refusal.CLIENT_NOT_ALLOWED


@pytest.mark.parametrize("path", [Path.REFRESH, Path.TOKEN_EXCHANGE, Path.CODE_REDEMPTION])
async def test_a_user_credential_path_without_a_user_is_refused(path: Path) -> None:
    question = Question(path, CLAUDE, RESOURCE, ["mcp:tools"], grant=LIVE, consent=CONSENT)
    assert (await refused(question)).refusal is Refusal.NO_USER


async def test_introspecting_a_machine_token_checks_the_machine_allowance() -> None:
    question = Question(Path.INTROSPECTION, MACHINE, RESOURCE, ["mcp:tools"])
    await policy().decide(question)
    revoked_scope = dataclasses.replace(MACHINE, allowed_scopes=())
    refusal = (await refused(dataclasses.replace(question, client=revoked_scope))).refusal
    assert refusal is Refusal.SCOPE_NOT_ALLOWED
