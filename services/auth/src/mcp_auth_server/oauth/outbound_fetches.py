"""Bounds on fetching from hosts that anyone may name (a client ID metadata document's URL).

A request can make this server fetch from a host of the requester's choosing, so that host must not be
able to make the server wait, pile up work, or starve its other clients:
  * one overall deadline per fetch, covering DNS, connect, TLS, the headers and the whole body (a
    per-read timeout alone lets a host answer one byte every few seconds for ever);
  * at most `per_host` fetches from one host at a time and `overall` in all; waiting for a slot is bounded
    by the deadline too, and the host's own deadline starts only once it has a slot: anyone can fill the
    slots with slow hosts of their own (a wildcard DNS zone gives any number), and a good host that waited
    behind them must neither be cut short nor be remembered as failing (it was never given its time);
  * one fetch in flight per URL: concurrent requests naming the same URL share its outcome;
  * a host that failed (too slow, unreachable, broken TLS or HTTP) is remembered for
    `failing_host_seconds` and refused at once meanwhile; at most `remembered_hosts` are kept.
What the host *answered* (a document, or a refusal of it) is never remembered here: that is the caller's
business, and errors are never cached as documents.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from mcp_auth_server.clock import now

T = TypeVar("T")


class HostFailure(Exception):
    """The host itself failed (unreachable, broken TLS or HTTP); it is remembered for a while."""


class FetchRefused(Exception):
    """The fetch was not made or not finished; the message says why (safe to show)."""


@dataclass(frozen=True)
class FetchLimits:
    deadline_seconds: float = 3.0
    per_host: int = 4
    overall: int = 32
    failing_host_seconds: int = 30
    remembered_hosts: int = 10_000
    resolver_threads: int = 8  # DNS lookups in flight (client_id_metadata_document.resolve_once)


DEFAULT_LIMITS = FetchLimits()


@dataclass
class _HostSlot:
    semaphore: asyncio.Semaphore
    users: int = 0


class OutboundFetches(Generic[T]):
    def __init__(self, limits: FetchLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._overall = asyncio.Semaphore(limits.overall)
        self._per_host: dict[str, _HostSlot] = {}
        self._in_flight: dict[str, asyncio.Task[T]] = {}
        self._failing_until: dict[str, int] = {}

    def is_failing(self, host: str) -> bool:
        until = self._failing_until.get(host)
        if until is None:
            return False
        if until > now():
            return True
        del self._failing_until[host]
        return False

    async def fetch(self, host: str, url: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """`fetch()`'s result, within the bounds above; FetchRefused when it could not be had in time.

        `fetch` raises HostFailure for a failure of the host; any other exception it raises passes
        through unchanged and is not held against the host.
        """
        if self.is_failing(host):
            raise FetchRefused(f"{host} failed recently; not trying it again yet")
        task = self._in_flight.get(url)
        if task is None:
            task = asyncio.create_task(self._bounded(host, fetch))
            self._in_flight[url] = task
            task.add_done_callback(lambda done: self._finished(url, done))
        # Shielded: one requester giving up (its client went away) does not cancel the others' fetch.
        return await asyncio.shield(task)

    def _finished(self, url: str, task: asyncio.Task[T]) -> None:
        self._in_flight.pop(url, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an outcome nobody waited for is not logged as lost

    async def _bounded(self, host: str, fetch: Callable[[], Awaitable[T]]) -> T:
        deadline = self.limits.deadline_seconds
        async with contextlib.AsyncExitStack() as slots:
            try:
                async with asyncio.timeout(deadline):
                    # Per host first: a hostile host queues behind its own requests, not in front of others.
                    await slots.enter_async_context(self._host_slot(host))
                    await slots.enter_async_context(self._overall)
            except TimeoutError:
                # Not the host's fault: held against nobody (above).
                raise FetchRefused(f"no fetch slot came free within {deadline:g} seconds") from None
            if self.is_failing(host):
                raise FetchRefused(f"{host} failed recently; not trying it again yet")
            try:
                async with asyncio.timeout(deadline):
                    return await fetch()
            except TimeoutError:
                self._remember_failing(host)
                raise FetchRefused(f"{host} did not answer completely within {deadline:g} seconds") from None
            except HostFailure as failure:
                self._remember_failing(host)
                raise FetchRefused(str(failure)) from None

    @contextlib.asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        slot = self._per_host.get(host)
        if slot is None:
            slot = self._per_host[host] = _HostSlot(asyncio.Semaphore(self.limits.per_host))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if not slot.users:  # the table holds only hosts being fetched from now
                del self._per_host[host]

    def _remember_failing(self, host: str) -> None:
        moment = now()
        if len(self._failing_until) >= self.limits.remembered_hosts:
            self._failing_until = {h: t for h, t in self._failing_until.items() if t > moment}
            while len(self._failing_until) >= self.limits.remembered_hosts:
                del self._failing_until[next(iter(self._failing_until))]  # the oldest goes first
        self._failing_until.pop(host, None)
        self._failing_until[host] = moment + self.limits.failing_host_seconds
