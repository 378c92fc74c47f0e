"""Rate limits across replicas: two `mcp-auth serve` behind the round-robin proxy draw from one budget in
Redis (issue 12), and go on serving, unlimited and saying so on /metrics, when Redis goes away.

Every request goes to the other replica than the one before, so a budget kept in one process's memory
would allow twice the rate: the control (no AUTH_REDIS_URL) shows exactly that. Through the proxy every
request comes from the proxy's address, 127.0.0.1, which is one address's budget.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mcp_testing.processes import ServiceProcess, free_port, venv_script
from mcp_testing.redis_server import RedisServer
from mcp_testing.round_robin_proxy import RoundRobinProxy

from ..conftest import RESOURCE_A, RESOURCES, TEST_SECRET
from ..flow import CALLBACK, new_request
from .stack import mcp_auth

SHARED_REDIS = "redis://127.0.0.1:6379/0"
RATE = 6
LIMITS = {
    "AUTH_RATE_LIMITS": "true",
    "AUTH_RATE_LIMIT_TOKEN": f"{RATE}/minute",
    "AUTH_RATE_LIMIT_AUTHORIZE": f"{RATE}/minute",
}
CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "resource": RESOURCE_A}


@dataclass
class Replicas:
    issuer: str
    env: dict[str, str]
    proxy: RoundRobinProxy
    metrics_ports: list[int]

    def post_token(self, form: dict[str, str], auth: tuple[str, str]) -> int:
        return httpx.post(f"{self.issuer}/token", data=form, auth=auth, trust_env=False).status_code

    def metric(self, name: str) -> list[float]:
        """`name`'s value at each replica's /metrics (AUTH_METRICS_PORT)."""
        values = []
        for port in self.metrics_ports:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text
            samples = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
            values.append(samples[0].value)
        return values


@contextlib.contextmanager
def two_replicas(database_url: str, extra: dict[str, str]) -> Iterator[Replicas]:
    ports = [free_port(), free_port()]
    with RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports]) as proxy:
        # A path of its own makes this run's budgets its own in the machine's shared Redis: the keys are
        # per issuer (one deployment's replicas share them, another deployment's do not).
        issuer = f"{proxy.url}/run-{secrets.token_hex(4)}"
        env = {
            "AUTH_ISSUER": issuer,
            "AUTH_DATABASE_URL": database_url,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "AUTH_UPSTREAM": "dev",
            "AUTH_RESOURCES": json.dumps(RESOURCES),
            **LIMITS,
            **extra,
        }
        metrics_ports = [free_port(), free_port()]
        processes = [
            ServiceProcess(
                [venv_script("mcp-auth"), "serve"],
                port=port,
                env={**env, "AUTH_PORT": str(port), "AUTH_METRICS_PORT": str(metrics)},
            )
            for port, metrics in zip(ports, metrics_ports, strict=True)
        ]
        with contextlib.ExitStack() as running:
            for process in processes:
                running.enter_context(process)
            yield Replicas(issuer, env, proxy, metrics_ports)


def redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def guesses(replicas: Replicas, count: int) -> list[int]:
    """`count` client_credentials requests with a wrong secret, alternating between the replicas."""
    return [replicas.post_token(CLIENT_CREDENTIALS, ("guessed", f"wrong-{n}")) for n in range(count)]


def machine_client(replicas: Replicas) -> dict[str, Any]:
    add = ["clients", "add", "--name", "CI", "--machine", "--resource", RESOURCE_A, "--scope", "mcp:tools"]
    created: dict[str, Any] = json.loads(mcp_auth(replicas.env, *add, "--json"))
    return created


@pytest.mark.parametrize(
    ("store", "allowed"),
    [({"AUTH_REDIS_URL": SHARED_REDIS}, RATE), ({}, 2 * RATE)],
    ids=["redis: one budget", "memory: the control, one budget per replica"],
)
def test_two_replicas_allow_the_configured_rate_not_twice_it(
    migrated_database: str, store: dict[str, str], allowed: int
) -> None:
    if store and not redis_answers(SHARED_REDIS):
        pytest.fail(f"no Redis at {SHARED_REDIS} (.ci/run starts one): limits would fail open")
    with two_replicas(migrated_database, store) as replicas:
        statuses = guesses(replicas, 2 * RATE + 2)
        served = replicas.proxy.counts
    assert statuses == [401] * allowed + [429] * (2 * RATE + 2 - allowed)
    assert sorted(served.values()) == [RATE + 1, RATE + 1]  # both replicas answered half


def test_redis_stopped_mid_test_requests_are_served_unlimited_and_metrics_say_so(
    migrated_database: str,
) -> None:
    with RedisServer() as redis, two_replicas(migrated_database, {"AUTH_REDIS_URL": redis.url}) as replicas:
        machine = machine_client(replicas)
        public = ["clients", "add", "--name", "App", "--public", "--redirect-uri", CALLBACK, "--json"]
        sign_in = new_request(
            json.loads(mcp_auth(replicas.env, *public))["client_id"], issuer=replicas.issuer
        )
        credentials = (machine["client_id"], machine["client_secret"])
        assert guesses(replicas, RATE + 2) == [401] * RATE + [429] * 2  # one budget, in Redis
        assert replicas.metric("mcp_auth_rate_limit_storage_up") == [1, 1]

        redis.stop()
        # The address's budget is spent, yet tokens and sign-in pages are served: limits are off, not closed.
        tokens = [replicas.post_token(CLIENT_CREDENTIALS, credentials) for _ in range(2 * RATE)]
        assert tokens == [200] * (2 * RATE)
        pages = [httpx.get(sign_in.url(), trust_env=False).status_code for _ in range(2 * RATE)]
        assert pages == [200] * (2 * RATE)  # the consent page, each time
        assert replicas.metric("mcp_auth_rate_limit_storage_up") == [0, 0]
        assert all(skipped >= RATE for skipped in replicas.metric("mcp_auth_rate_limit_checks_skipped_total"))

        redis.start()  # back, empty: counting starts again once each replica has tried it (after 1 s)
        time.sleep(1.2)
        statuses = guesses(replicas, RATE + 2)
        assert replicas.metric("mcp_auth_rate_limit_storage_up") == [1, 1]
        assert statuses[-1] == 429
