"""The cache under the verified-token and upstream-token caches: bounded, and every entry dies on time."""

from __future__ import annotations

import pytest

from mcp_auth_kit.expiring_lru import ExpiringLRU


def test_entries_expire_at_their_own_time() -> None:
    cache: ExpiringLRU[str, int] = ExpiringLRU(10)
    cache.put("a", 1, expires_at=100.0)
    assert cache.get("a", now=99.9) == 1
    assert cache.get("a", now=100.0) is None
    assert len(cache) == 0


def test_least_recently_used_entry_is_evicted() -> None:
    cache: ExpiringLRU[str, int] = ExpiringLRU(2)
    cache.put("a", 1, 100.0)
    cache.put("b", 2, 100.0)
    cache.get("a", 0.0)
    cache.put("c", 3, 100.0)
    assert (cache.get("a", 0.0), cache.get("b", 0.0), cache.get("c", 0.0)) == (1, None, 3)


def test_discard_and_bounds() -> None:
    cache: ExpiringLRU[str, int] = ExpiringLRU(1)
    cache.put("a", 1, 100.0)
    cache.discard("a")
    cache.discard("missing")
    assert cache.get("a", 0.0) is None
    with pytest.raises(ValueError, match="at least 1"):
        ExpiringLRU(0)
