"""Postgres stopped and restarted under a steady stream of token requests (issue 8).

A real `mcp-auth serve` runs on a throwaway cluster of the test's own. While Postgres is down every
request must fail fast with 503, `Retry-After` and `temporarily_unavailable` JSON (RFC 6749 §5.2;
never a 500, a traceback or a hang); within 5 s of Postgres returning the service answers again (a
request on a dead pooled connection fails with 503 and SQLAlchemy drops the pool); and nothing is
lost or half-written: every refresh chain goes on from the last token it was given, every redeemed
code has its grant, every grant with `offline_access` has its refresh token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, select

from mcp_auth_server.db.engine import create_engine, create_session_factory
from mcp_auth_server.db.models import AuthorizationCode, Grant, RefreshToken
from mcp_testing.browser import Arrival, Page
from mcp_testing.processes import ServiceProcess

from ..auth_process import dev_auth_service
from ..conftest import RESOURCE_A
from ..e2e.stack import mcp_auth
from ..flow import (
    CLAUDE_CALLBACK,
    Tokens,
    approve_and_sign_in,
    browser_for,
    new_request,
    query,
    redeem,
    refresh,
    register,
    tokens_for,
)
from .throwaway_postgres import ThrowawayCluster, throwaway_cluster

WARM_UP = 1.0
OUTAGE = 3.0
FAIL_FAST = 6.0  # no request may take longer than this, outage or not
RECOVERY = 5.0  # every kind of request succeeds again this soon after Postgres is back
GIVE_UP = 15.0  # the stream stops this long after Postgres is back, recovered or not
PAUSE = 0.05  # between one worker's requests: a steady stream, not a flood
REFRESH_CHAINS = 3


@dataclass(frozen=True)
class Sample:
    kind: str
    started: float
    elapsed: float
    status: int  # 0: no answer at all (transport error or the client's own timeout)
    headers: httpx.Headers
    text: str

    def describe(self) -> str:
        return f"{self.kind} {self.status} after {self.elapsed:.2f}s: {self.text[:200]}"


@dataclass
class Stream:
    """The requests of every worker, in order, and when Postgres went away and came back."""

    samples: list[Sample] = field(default_factory=list)
    stopped_at: float = float("inf")
    back_at: float = float("inf")
    running: bool = True

    async def timed(self, kind: str, answer_of: Awaitable[httpx.Response | Page | Arrival]) -> object:
        started = time.monotonic()
        try:
            answer = await answer_of
        except httpx.HTTPError as exc:
            self.samples.append(
                Sample(kind, started, time.monotonic() - started, 0, httpx.Headers(), repr(exc))
            )
            return None
        elapsed = time.monotonic() - started
        if isinstance(answer, Arrival):  # /authorize redirected to the client with a code
            self.samples.append(Sample(kind, started, elapsed, 200, httpx.Headers(), answer.url))
        else:
            status, headers, text = answer.status_code, answer.headers, answer.text
            self.samples.append(Sample(kind, started, elapsed, status, headers, text))
        return answer

    def of(self, kind: str) -> list[Sample]:
        return [sample for sample in self.samples if sample.kind == kind]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    yield from throwaway_cluster()


@pytest.fixture(scope="module")
def auth_on_cluster(cluster: ThrowawayCluster) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    # No client cache: every kind of request must reach the database, so each meets the outage (with the
    # cache, a client_credentials token for a client read in the last few seconds needs no database).
    with dev_auth_service(cluster.url, migrate=True, env={"AUTH_CLIENT_CACHE_SECONDS": "0"}) as service:
        yield service.process, service.env


def connection(service: ServiceProcess) -> httpx.AsyncClient:
    # Longer than FAIL_FAST, so a hung request shows up as slow rather than being cut short.
    return httpx.AsyncClient(base_url=service.url, timeout=3 * FAIL_FAST, trust_env=False)


async def client_credentials_worker(stream: Stream, http: httpx.AsyncClient, machine: dict[str, str]) -> None:
    credentials = (machine["client_id"], machine["client_secret"])
    form = {"grant_type": "client_credentials", "resource": RESOURCE_A}
    while stream.running:
        await stream.timed("client_credentials", http.post("/token", data=form, auth=credentials))
        await asyncio.sleep(PAUSE)


@dataclass
class Chain:
    """One refresh-token family, rotated again and again: `current` is the newest token it was given."""

    tokens: Tokens
    current: str
    rotations: int = 0


async def refresh_worker(stream: Stream, http: httpx.AsyncClient, chain: Chain) -> None:
    while stream.running:
        response = await stream.timed("refresh", refresh(http, chain.tokens.client, chain.current))
        if isinstance(response, httpx.Response) and response.status_code == 200:
            chain.current, chain.rotations = response.json()["refresh_token"], chain.rotations + 1
        await asyncio.sleep(PAUSE)


async def code_worker(stream: Stream, http: httpx.AsyncClient, issuer: str) -> None:
    """A signed-in browser with a remembered consent: every /authorize yields a code at once (an https
    redirect URI assures the client's identity, so no page is needed)."""
    registered = await register(http, redirect_uris=[CLAUDE_CALLBACK])
    first = new_request(registered["client_id"], issuer=issuer, redirect_uri=CLAUDE_CALLBACK)
    await approve_and_sign_in(browser_for(http, CLAUDE_CALLBACK), first.url())
    while stream.running:
        request = new_request(registered["client_id"], issuer=issuer, redirect_uri=CLAUDE_CALLBACK)
        arrival = await stream.timed("authorize", browser_for(http, CLAUDE_CALLBACK).open(request.url()))
        if isinstance(arrival, Arrival):
            await stream.timed("code_exchange", redeem(http, request, query(arrival.url)["code"]))
        await asyncio.sleep(PAUSE)


async def run_outage(stream: Stream, cluster: ThrowawayCluster, kinds: list[str]) -> None:
    await asyncio.sleep(WARM_UP)
    stream.stopped_at = time.monotonic()
    await asyncio.to_thread(cluster.stop)
    await asyncio.sleep(OUTAGE)
    await asyncio.to_thread(cluster.start)
    stream.back_at = time.monotonic()
    while time.monotonic() - stream.back_at < GIVE_UP and not all(recovered(stream, k) for k in kinds):
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a few more successes after recovery
    stream.running = False


def recovered(stream: Stream, kind: str) -> float | None:
    """Seconds from Postgres being back to the first success of `kind` sent after that."""
    after = [s for s in stream.of(kind) if s.started >= stream.back_at and s.status == 200]
    return min(s.started + s.elapsed for s in after) - stream.back_at if after else None


def assert_fails_fast_and_cleanly(sample: Sample) -> None:
    assert sample.elapsed < FAIL_FAST, sample.describe()
    if sample.status == 200:
        return
    assert sample.status == 503, sample.describe()
    assert sample.headers.get("retry-after", "").isdigit(), sample.describe()
    assert sample.headers["content-type"].startswith("application/json"), sample.describe()
    body = json.loads(sample.text)
    assert body["error"] == "temporarily_unavailable", sample.describe()
    assert isinstance(body["error_description"], str)
    assert "Traceback" not in sample.text


@pytest.fixture(scope="module")
async def stream_through_outage(
    auth_on_cluster: tuple[ServiceProcess, dict[str, str]], cluster: ThrowawayCluster
) -> AsyncIterator[tuple[Stream, list[Chain]]]:
    service, env = auth_on_cluster
    add = ["clients", "add", "--name", "CI", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools"]
    machine = json.loads(mcp_auth(env, *add, "--json"))
    stream = Stream()
    async with (
        connection(service) as cc_http,
        connection(service) as refresh_http,
        connection(service) as code_http,
    ):
        chains = []
        for index in range(REFRESH_CHAINS):
            tokens = await tokens_for(refresh_http, f"chain-{index}", issuer=service.url)
            chains.append(Chain(tokens, tokens.refresh_token))
        kinds = ["client_credentials", "refresh", "authorize", "code_exchange"]
        async with asyncio.TaskGroup() as workers:  # one failing worker cancels the rest
            workers.create_task(client_credentials_worker(stream, cc_http, machine))
            for chain in chains:
                workers.create_task(refresh_worker(stream, refresh_http, chain))
            workers.create_task(code_worker(stream, code_http, service.url))
            workers.create_task(run_outage(stream, cluster, kinds))
        yield stream, chains


async def test_requests_during_the_outage_fail_fast_with_503_retry_after_and_oauth_json(
    stream_through_outage: tuple[Stream, list[Chain]],
) -> None:
    stream, _ = stream_through_outage
    during = [s for s in stream.samples if stream.stopped_at <= s.started < stream.back_at]
    for kind in ("client_credentials", "refresh", "authorize"):
        assert any(s.kind == kind and s.status == 503 for s in during), f"no {kind} request saw the outage"
    for sample in stream.samples:
        assert_fails_fast_and_cleanly(sample)


async def test_service_answers_again_within_five_seconds_of_postgres_returning(
    stream_through_outage: tuple[Stream, list[Chain]],
) -> None:
    stream, _ = stream_through_outage
    for kind in ("client_credentials", "refresh", "authorize", "code_exchange"):
        seconds = recovered(stream, kind)
        assert seconds is not None, f"no {kind} request succeeded after Postgres came back"
        assert seconds < RECOVERY, (kind, seconds)


async def test_every_refresh_chain_goes_on_from_the_last_token_it_was_given(
    stream_through_outage: tuple[Stream, list[Chain]],
    auth_on_cluster: tuple[ServiceProcess, dict[str, str]],
) -> None:
    _, chains = stream_through_outage
    async with connection(auth_on_cluster[0]) as http:
        for chain in chains:
            assert chain.rotations > 0
            response = await refresh(http, chain.tokens.client, chain.current)
            assert response.status_code == 200, response.text


async def test_no_grant_or_code_is_lost_or_half_written(
    stream_through_outage: tuple[Stream, list[Chain]], cluster: ThrowawayCluster
) -> None:
    stream, chains = stream_through_outage
    engine = create_engine(cluster.url)
    try:
        async with create_session_factory(engine)() as session:
            grants = (await session.scalars(select(Grant))).all()
            counts = select(RefreshToken.grant_id, func.count()).group_by(RefreshToken.grant_id)
            family_sizes = {grant_id: size for grant_id, size in (await session.execute(counts)).all()}
            redeemed_without_grant = await session.scalar(
                select(func.count())
                .select_from(AuthorizationCode)
                .where(AuthorizationCode.redeemed_at.is_not(None), AuthorizationCode.grant_id.is_(None))
            )
    finally:
        await engine.dispose()
    assert redeemed_without_grant == 0
    assert all(grant.revoked_at is None for grant in grants), [g.revoked_reason for g in grants]
    assert all(family_sizes.get(grant.id, 0) >= 1 for grant in grants), family_sizes
    exchanged = sum(1 for s in stream.of("code_exchange") if s.status == 200)
    # One grant per chain and per answered exchange; an exchange whose answer was lost may add one.
    assert len(grants) >= REFRESH_CHAINS + exchanged
    for chain in chains:
        [grant_id] = [g.id for g in grants if g.client_id == chain.tokens.client["client_id"]]
        assert family_sizes[grant_id] >= 1 + chain.rotations
