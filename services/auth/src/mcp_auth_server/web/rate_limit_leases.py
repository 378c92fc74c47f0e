"""Leases on a shared rate-limit budget: a busy key asks Redis once per many requests, not once each.

A replica that needs to count a request against a key takes a *lease* from the shared budget instead of
a single unit: it spends `size` units in Redis in one round trip (the `limits` library's own counting,
with `cost=size`), uses one, and keeps the rest for the key's next requests, which then cost no round
trip. Units are counted when leased, never after they are used, so the replicas together never allow
more than the configured rate; a lease's unused rest is lost when it expires, which only makes the
key's budget stricter, never looser.

How large: a key's first lease is one unit (exact counting, as without leases). When a lease is used up
before it expires, the next one holds what the key used in the last `1/LEASE_HORIZON_SHARE` of a lease's
lifetime at the rate it just showed (half a second for a per-minute limit), at most twice the last lease
and at most a hundredth of the limit (`LEASE_SHARE`); otherwise (a lease expired with units left, the
budget refused one) the next is one unit again. So a key that sends a few requests is counted exactly,
one that sends thousands a minute costs a round trip every half second or every `limit / 100`
requests, whichever comes later. A lease expires after a twentieth of the limit's period (3 s for a
per-minute limit, 5 s at most): units are counted at most that much before they are used, which a sliding
window over the whole period hardly notices. What leases can cost a key when its traffic stops: the rest
of a lease on each replica, at most about half a second of its traffic there and a hundredth of its limit.
Traffic that stops and starts again every few seconds loses a lease's rest each time: once what a key
lost in a period of its limit reaches a hundredth of the limit, it is counted one unit at a time on that
replica until the period ends. So leasing costs a bursty key about two hundredths of its limit per
period and replica (what it lost before the threshold, and the lease that crossed it; a sliding window
spanning two periods can see twice that), as long as the key stays among the MAX_KEYS remembered; steady
traffic loses nothing and keeps its leases.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from limits import RateLimitItem

LEASE_SHARE = 100  # a lease is at most limit / LEASE_SHARE units
LEASE_PERIOD_SHARE = 20  # a lease lives period / LEASE_PERIOD_SHARE ...
LEASE_MAX_SECONDS = 5.0  # ... and never longer than this
LEASE_HORIZON_SHARE = 6  # a lease holds the traffic of 1/6 of its lifetime at the key's recent rate
MAX_KEYS = 10_000  # leases kept per process; the least recently used is dropped (its rest is lost)


@dataclass
class _Lease:
    units: int  # counted in the shared budget, not used yet
    since: float  # when the last lease was taken
    until: float  # when the units left are dropped
    size: int  # the size of the last lease taken
    leasing: bool = False  # a request of this key is taking a lease now
    # Units lost (leases expired with units left) in the period that began at `period_start`; once they
    # reach a hundredth of the limit, one unit at a time until `exact_until`.
    lost: int = 0
    period_start: float = 0.0
    exact_until: float = 0.0


def lifetime(item: RateLimitItem) -> float:
    return min(item.get_expiry() / LEASE_PERIOD_SHARE, LEASE_MAX_SECONDS)


class Leases:
    """The leases this process holds, by key; `now` is a monotonic clock in seconds."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._leases: OrderedDict[Hashable, _Lease] = OrderedDict()

    def take(self, key: Hashable) -> bool:
        """Use one unit of the key's lease, if it has one left: the request is counted already."""
        lease = self._with_units(key)
        if lease is None:
            return False
        lease.units -= 1
        return True

    def has_units(self, key: Hashable) -> bool:
        """Whether the key could spend a unit without asking the shared budget."""
        return self._with_units(key) is not None

    def _with_units(self, key: Hashable) -> _Lease | None:
        lease = self._leases.get(key)
        return lease if lease is not None and lease.units > 0 and self._now() < lease.until else None

    def next_size(self, item: RateLimitItem, key: Hashable) -> int:
        """How many units to lease for `key` now (see the module). While another request of the key is
        taking a lease, one: concurrent requests must not each take a whole lease."""
        lease = self._leases.get(key)
        now = self._now()
        if lease is None or lease.leasing or lease.units > 0 or now >= lease.until or now < lease.exact_until:
            return 1
        per_second = lease.size / max(now - lease.since, 1e-3)
        wanted = math.ceil(per_second * lifetime(item) / LEASE_HORIZON_SHARE)
        size = max(1, min(wanted, 2 * lease.size, item.amount // LEASE_SHARE))
        lease.leasing = size > 1
        return size

    def keep(self, item: RateLimitItem, key: Hashable, size: int) -> None:
        """A lease of `size` units was counted in the shared budget; one of them is used now."""
        now = self._now()
        lease = self._leases.get(key)
        if lease is None:
            self._leases[key] = _Lease(size - 1, now, now + lifetime(item), size, period_start=now)
        else:
            expired = now >= lease.until
            if expired and lease.units > 0:
                self._lost(item, lease, now)
                lease.units = 0
            # A single unit counted while another request leases leaves the lease be.
            if expired or size > 1:
                lease.units += size - 1
                lease.since, lease.until, lease.size, lease.leasing = now, now + lifetime(item), size, False
        self._leases.move_to_end(key)
        if len(self._leases) > MAX_KEYS:
            self._leases.popitem(last=False)

    def _lost(self, item: RateLimitItem, lease: _Lease, now: float) -> None:
        """The lease expired with `lease.units` unused: count them against the key's allowance for losses."""
        period = item.get_expiry()
        if now - lease.period_start >= period:
            lease.lost, lease.period_start = 0, now
        lease.lost += lease.units
        if lease.lost >= max(1, item.amount // LEASE_SHARE):
            lease.exact_until = lease.period_start + period

    def drop(self, key: Hashable) -> None:
        """The shared budget refused the key a lease: it starts again at one unit (what it lost this period
        is remembered)."""
        lease = self._leases.get(key)
        if lease is not None:
            lease.units, lease.until, lease.leasing = 0, self._now(), False
