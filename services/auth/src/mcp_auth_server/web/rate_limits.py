"""Per-replica rate limits on /register, /authorize and /token, per IP and per client.

Token buckets in memory, bounded in size: cheap, and enough to blunt registration spam and
secret guessing at one replica. Several replicas multiply the allowance, so a multi-replica
deployment should also limit at the ingress (README, Deployment).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from starlette.requests import Request

from mcp_auth_server.oauth.errors import OAuthError
from mcp_auth_server.settings import AuthSettings, parse_rate

MAX_KEYS = 100_000


def client_ip(request: Request) -> str | None:
    """The peer address as uvicorn reports it (behind a proxy, set --forwarded-allow-ips accordingly)."""
    return request.client.host if request.client else None


class TokenBuckets:
    def __init__(self, rate: str) -> None:
        count, period = parse_rate(rate)
        self.capacity = float(count)
        self.per_second = count / period
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token for `key`; 0 if allowed, else the seconds until one is available."""
        moment = time.monotonic()
        tokens, updated = self._buckets.pop(key, (self.capacity, moment))
        tokens = min(self.capacity, tokens + (moment - updated) * self.per_second)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, moment)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, moment)
            wait = (1 - tokens) / self.per_second
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)  # forget the least recently seen key
        return wait


class RateLimits:
    def __init__(self, settings: AuthSettings) -> None:
        self.enabled = settings.rate_limits_enabled
        self.register = TokenBuckets(settings.auth_rate_limit_register)
        self.authorize = TokenBuckets(settings.auth_rate_limit_authorize)
        self.token = TokenBuckets(settings.auth_rate_limit_token)

    def check(self, buckets: TokenBuckets, *keys: str | None) -> None:
        """Raise 429 (with Retry-After, as OAuth JSON) when any of the keys is over its rate."""
        if not self.enabled:
            return
        wait = max((buckets.take(key) for key in keys if key), default=0.0)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise OAuthError(
                "temporarily_unavailable",
                f"too many requests; retry in {seconds} s",
                429,
                {"Retry-After": str(seconds)},
            )
