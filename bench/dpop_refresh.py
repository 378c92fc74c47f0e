"""What DPoP costs the token endpoint: refreshes per second with a DPoP proof versus without.

    uv run python bench/dpop_refresh.py [--rounds 5] [--seconds 3] [--concurrency 32]

One temporary PostgreSQL database; `mcp-auth serve --workers 1` on it twice, with the same secret: once
with AUTH_REDIS_URL (proofs' `jti`s remembered in Redis, as replicated deployments run) and once without
(remembered in the database, one INSERT in a transaction of its own per proof). On each, rounds alternate
between refreshes without a proof and refreshes with one (a fresh ES256 proof per request: §11.1 allows
no reuse), every seeded refresh token used once (bench/_seed.py; public clients, so a proof binds the
grant's refresh tokens to the key, which costs nothing extra: the grant row is written anyway).
Requests are built before each run, proofs included, so the load generator's signing does not count; it
shares the machine's cores with the service and PostgreSQL (nothing is pinned), as in token_endpoint.py.
Figures: median refreshes/s of each, the ratio with/without per replay store (target >= 0.85, Redis).
"""

from __future__ import annotations

import argparse
import os
import secrets
from itertools import islice
from typing import Any

from _harness import (
    AuthService,
    CpuWindow,
    LoadResult,
    auth_service,
    drive,
    median,
    process_tree,
    run,
    service_pid,
    wait_for_quiet,
    write_json,
)
from _seed import Redeemable, connect, seed_grants, seed_population
from token_endpoint import RESOURCE, RESOURCES, issued, refresh_requests

from mcp_auth_kit import DPoPKey
from mcp_testing.postgres import temporary_database

TARGET_RATIO = 0.85
REDIS_URL = "redis://127.0.0.1:6379/0"
MODES = ("plain", "dpop")


async def measure(
    services: dict[str, AuthService], tokens: list[Redeemable], options: argparse.Namespace
) -> dict[str, Any]:
    key = DPoPKey.generate("ES256")
    remaining = iter(tokens)
    results: dict[str, dict[str, list[LoadResult]]] = {store: {m: [] for m in MODES} for store in services}
    cpu_ms: dict[str, dict[str, list[float]]] = {store: {m: [] for m in MODES} for store in services}

    async def once(store: str, mode: str, seconds: float, count: int) -> LoadResult:
        service = services[store]
        url = f"{service.issuer}/token"
        proof = (lambda: key.proof("POST", url)) if mode == "dpop" else None
        requests = list(refresh_requests(service.port, islice(remaining, count), proof))
        if len(requests) < count:
            raise SystemExit("not enough seeded refresh tokens: raise --seed")
        await wait_for_quiet(max_wait=options.quiet_wait)
        with CpuWindow(process_tree(service_pid(service.process))) as cpu:
            result = await drive(
                service.port,
                iter(requests),
                check=issued,
                concurrency=options.concurrency,
                duration=seconds,
                max_requests=count,
                reconnect_every=options.reconnect_every,
            )
        if result.errors:
            raise SystemExit(f"{store}/{mode}: {result.errors} failed, first: {result.first_error}")
        if seconds == options.seconds:
            cpu_ms[store][mode].append(cpu.service_ms_per_request(result.completed))
        print(
            f"  {store:8} {mode:5}: {result.rate:6.0f}/s  p50 {result.percentile_ms(0.5):6.1f} ms  "
            f"service {cpu.service_ms_per_request(result.completed):.2f} CPU-ms/req; cores: service "
            f"{cpu.service_cores:.2f} loadgen {cpu.loadgen_cores:.2f} postgres {cpu.postgres_cores:.2f} "
            f"other {cpu.other_cores:.2f}"
        )
        return result

    for store in services:  # warm-up: pools, first-use imports, the proof key's first parse
        for mode in MODES:
            await once(store, mode, 0.5, 300)
    per_run = options.per_run
    for index in range(options.rounds):
        print(f" round {index + 1}")
        for store in services:
            for mode in MODES if index % 2 == 0 else tuple(reversed(MODES)):
                results[store][mode].append(await once(store, mode, options.seconds, per_run))
    figures: dict[str, Any] = {}
    for store, by_mode in results.items():
        figures[store] = {
            mode: {
                "per_s": median([r.rate for r in done]),
                "p50_ms": median([r.percentile_ms(0.5) for r in done]),
                "cpu_ms_per_request": median(cpu_ms[store][mode]),
                "rounds": [round(r.rate, 1) for r in done],
            }
            for mode, done in by_mode.items()
        }
        values = figures[store]
        values["ratio"] = values["dpop"]["per_s"] / values["plain"]["per_s"]
        # The service's own CPU per request barely moves when other work loads the machine.
        values["cpu_ratio"] = values["plain"]["cpu_ms_per_request"] / values["dpop"]["cpu_ms_per_request"]
    return figures


async def seed(url: str, count: int) -> list[Redeemable]:
    connection = await connect(url)
    try:
        population = await seed_population(connection, users=1000, clients=100, resource=RESOURCE)
        tokens = await seed_grants(connection, population, RESOURCE, count, keep=count)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run (at most)")
    parser.add_argument("--per-run", type=int, default=3000, help="requests prepared for each run (its cap)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--reconnect-every", type=int, default=20, help="as in token_endpoint.py")
    parser.add_argument(
        "--quiet-wait", type=float, default=5.0, help="max seconds to wait for an idle machine"
    )
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()

    needed = (options.rounds + 1) * 2 * len(MODES) * options.per_run
    shared = {"AUTH_SECRET_KEY": secrets.token_urlsafe(48)}
    with (
        temporary_database() as url,
        auth_service(url, RESOURCES, env={**shared, "AUTH_REDIS_URL": REDIS_URL}) as with_redis,
    ):
        tokens = run(seed(url, needed))
        with auth_service(url, RESOURCES, env=shared, migrate=False) as without_redis:
            print(
                f"PostgreSQL temporary database, {len(tokens)} refresh tokens seeded; one worker each; "
                f"{options.concurrency} in flight, {options.rounds} x {options.seconds:g} s per run, "
                f"interleaved; {os.cpu_count()} cores shared with PostgreSQL and the load generator"
            )
            figures = run(measure({"redis": with_redis, "database": without_redis}, tokens, options))
    print(f"{'jti store':10}{'plain /s':>10}{'DPoP /s':>10}{'ratio':>8}")
    for store in ("redis", "database"):
        values = figures[store]
        print(
            f"{store:10}{values['plain']['per_s']:10.0f}{values['dpop']['per_s']:10.0f}{values['ratio']:8.3f}"
        )
    ratio = figures["redis"]["ratio"]
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"ratio with/without a proof (Redis): {ratio:.3f} (target >= {TARGET_RATIO}) {verdict}")
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
