"""Does a refresh slow down as grants pile up? Refresh latency with 1,000 versus 1,000,000 stored grants.

    uv run python bench/refresh_scaling.py [--large 1000000] [--rounds 4] [--per-round 200]

Two temporary databases, one seeded with `--small` grants and one with `--large` (each grant with one
unused refresh-token row; 1,000 users with a `dev` identity and 100 public clients in both), loaded with
COPY (asyncpg `copy_records_to_table`) and then VACUUM ANALYZEd, as autovacuum would leave a real
database. One `mcp-auth serve` (1 worker) per database; rounds alternate between them, each redeeming
`--per-round` refresh tokens drawn evenly from the whole population, one request at a time (latency,
not throughput). Figures: p50 and p95 per size, and the growth ratio large/small (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
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
    service_memory,
    service_pid,
    wait_for_quiet,
    write_json,
)
from _seed import Redeemable, connect, seed_grants, seed_population
from token_endpoint import RESOURCE, RESOURCES, issued, refresh_requests

from mcp_testing.postgres import temporary_database

TARGET_GROWTH = 1.2


@dataclass
class Size:
    grants: int
    tokens: list[Redeemable]
    seconds_to_seed: float
    results: list[LoadResult] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


async def seed(url: str, grants: int, keep: int) -> Size:
    started = time.monotonic()
    connection = await connect(url)
    try:
        population = await seed_population(connection, users=1000, clients=100, resource=RESOURCE)
        tokens = await seed_grants(connection, population, RESOURCE, grants, keep=keep)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return Size(grants, tokens, time.monotonic() - started)


async def measure(
    sizes: dict[str, Size], services: dict[str, AuthService], options: argparse.Namespace
) -> None:
    streams = {name: iter(size.tokens) for name, size in sizes.items()}
    trees = {name: process_tree(service_pid(s.process)) for name, s in services.items()}

    async def once(name: str, count: int) -> tuple[LoadResult, CpuWindow]:
        port = services[name].port
        await wait_for_quiet(max_wait=options.quiet_wait)
        with CpuWindow(trees[name]) as cpu:
            result = await drive(
                port,
                refresh_requests(port, streams[name]),
                check=issued,
                concurrency=1,
                duration=120,
                max_requests=count,
            )
        if result.errors:
            raise SystemExit(f"refresh with {name} grants: {result.errors} failed: {result.first_error}")
        return result, cpu

    for name in sizes:  # warm-up: pools, caches of the hot index pages
        await once(name, options.warmup)
    for index in range(options.rounds):
        order = list(sizes) if index % 2 == 0 else list(reversed(sizes))
        for name in order:
            result, cpu = await once(name, options.per_round)
            sizes[name].results.append(result)
            sizes[name].cpu_ms.append(cpu.service_ms_per_request(result.completed))
            print(
                f"  round {index + 1} {sizes[name].grants:>9,} grants: "
                f"p50 {result.percentile_ms(0.5):6.2f} ms"
                f"  p95 {result.percentile_ms(0.95):6.2f} ms  service {sizes[name].cpu_ms[-1]:.2f} CPU-ms/req"
                f"  (other processes: {cpu.other_cores:.2f} cores)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4, help="rounds per size, alternating")
    parser.add_argument("--per-round", type=int, default=200, help="refreshes per round")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--quiet-wait", type=float, default=5.0)
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()
    needed = options.warmup + options.rounds * options.per_round
    if needed > options.small:
        parser.error(f"--small must hold at least {needed} grants (warm-up + rounds x per-round)")

    with (
        temporary_database() as small_url,
        temporary_database() as large_url,
        auth_service(small_url, RESOURCES) as small_service,
        auth_service(large_url, RESOURCES) as large_service,
    ):
        sizes = {
            "small": run(seed(small_url, options.small, needed)),
            "large": run(seed(large_url, options.large, needed)),
        }
        for name, size in sizes.items():
            print(f"seeded {size.grants:,} grants + refresh tokens ({name}) in {size.seconds_to_seed:.1f} s")
        services = {"small": small_service, "large": large_service}
        run(measure(sizes, services, options))
        memory = {name: service_memory(s.process).largest_mib for name, s in services.items()}
    figures: dict[str, Any] = {}
    for name, size in sizes.items():
        figures[name] = {
            "grants": size.grants,
            "p50_ms": median([r.percentile_ms(0.5) for r in size.results]),
            "p95_ms": median([r.percentile_ms(0.95) for r in size.results]),
            "service_cpu_ms_per_request": median(size.cpu_ms),
            "seed_seconds": size.seconds_to_seed,
            "peak_rss_mib": memory[name],
        }
    small, large = figures["small"], figures["large"]
    figures["growth_p50"] = large["p50_ms"] / small["p50_ms"]
    figures["growth_p95"] = large["p95_ms"] / small["p95_ms"]
    print(f"{'grants':>11}{'p50 ms':>9}{'p95 ms':>9}{'CPU ms':>9}{'peak RSS':>11}")
    for values in (small, large):
        print(
            f"{values['grants']:>11,}{values['p50_ms']:9.2f}{values['p95_ms']:9.2f}"
            f"{values['service_cpu_ms_per_request']:9.2f}{values['peak_rss_mib']:8.0f} MiB"
        )
    verdict = "PASS" if figures["growth_p50"] <= TARGET_GROWTH else "FAIL"
    print(
        f"growth {large['grants']:,} / {small['grants']:,} grants: p50 {figures['growth_p50']:.2f}x "
        f"(target <= {TARGET_GROWTH}x) {verdict}; p95 {figures['growth_p95']:.2f}x"
    )
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
