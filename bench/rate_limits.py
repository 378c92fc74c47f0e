"""What rate limiting costs the token endpoint: client_credentials/s with limits in Redis, in memory, and off.

    uv run python bench/rate_limits.py [--rounds 5] [--seconds 3] [--concurrency 32]

One temporary PostgreSQL database; `mcp-auth serve --workers 1` on it three times, with the same secret:
  off     AUTH_RATE_LIMITS=off (the baseline);
  memory  rate limits on, counted in the process's memory (one replica, `make dev`);
  redis   rate limits on, counted in Redis at 127.0.0.1:6379 (AUTH_REDIS_URL, as replicas share them).
Every request is a machine client's client_credentials request (Basic auth), so with limits on it is
counted twice: its address before authentication, the client after (web/rate_limits.py). The limit is set
far above what the run sends (no 429s: any refusal stops the benchmark), so what is measured is the
counting. Rounds are interleaved, the order rotating each round. The load generator shares the machine's
cores with the services, PostgreSQL and Redis (nothing is pinned); the output says how busy the machine
was (load average before and after) and the services' own CPU per request, which other load moves less.
Figures: median requests/s of each, the ratios against `off`. Target: redis >= 0.9x off.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
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
from token_endpoint import RESOURCE, RESOURCES, client_credentials_requests, issued

from mcp_testing.postgres import temporary_database

TARGET_RATIO = 0.9
REDIS_URL = "redis://127.0.0.1:6379/0"
UNREACHABLE = "1000000/minute"  # counted on every request, never reached by a run
MODES = {
    "off": {"AUTH_RATE_LIMITS": "off"},
    "memory": {"AUTH_RATE_LIMITS": "on", "AUTH_RATE_LIMIT_TOKEN": UNREACHABLE},
    "redis": {"AUTH_RATE_LIMITS": "on", "AUTH_RATE_LIMIT_TOKEN": UNREACHABLE, "AUTH_REDIS_URL": REDIS_URL},
}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def measure(
    services: dict[str, AuthService], machine: tuple[str, str], options: argparse.Namespace
) -> dict[str, Any]:
    trees = {mode: process_tree(service_pid(service.process)) for mode, service in services.items()}
    results: dict[str, list[LoadResult]] = {mode: [] for mode in services}
    cpu_ms: dict[str, list[float]] = {mode: [] for mode in services}

    async def once(mode: str, seconds: float) -> LoadResult:
        port = services[mode].port
        await wait_for_quiet(max_wait=options.quiet_wait)
        with CpuWindow(trees[mode]) as cpu:
            result = await drive(
                port,
                client_credentials_requests(port, *machine),
                check=issued,
                concurrency=options.concurrency,
                duration=seconds,
                max_requests=options.max_requests,
                reconnect_every=options.reconnect_every,
            )
        if result.errors:
            raise SystemExit(f"{mode}: {result.errors} failed, first: {result.first_error}")
        if seconds == options.seconds:
            cpu_ms[mode].append(cpu.service_ms_per_request(result.completed))
        print(
            f"  {mode:7}: {result.rate:6.0f}/s  p50 {result.percentile_ms(0.5):6.1f} ms  "
            f"service {cpu.service_ms_per_request(result.completed):.2f} CPU-ms/req; cores: service "
            f"{cpu.service_cores:.2f} loadgen {cpu.loadgen_cores:.2f} postgres {cpu.postgres_cores:.2f} "
            f"other {cpu.other_cores:.2f}"
        )
        return result

    for mode in services:  # warm-up: connection pools, Redis scripts, first-use imports
        await once(mode, 0.5)
    order = list(services)
    for index in range(options.rounds):
        print(f" round {index + 1} (load average {load_average()})")
        turn = order[index % len(order) :] + order[: index % len(order)]
        for mode in turn:
            results[mode].append(await once(mode, options.seconds))
    figures: dict[str, Any] = {
        mode: {
            "per_s": median([r.rate for r in done]),
            "p50_ms": median([r.percentile_ms(0.5) for r in done]),
            "p95_ms": median([r.percentile_ms(0.95) for r in done]),
            "cpu_ms_per_request": median(cpu_ms[mode]),
            "rounds": [round(r.rate, 1) for r in done],
        }
        for mode, done in results.items()
    }
    off = figures["off"]
    for mode in ("memory", "redis"):
        figures[mode]["ratio"] = figures[mode]["per_s"] / off["per_s"]
        figures[mode]["cpu_ratio"] = off["cpu_ms_per_request"] / figures[mode]["cpu_ms_per_request"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap per run")
    parser.add_argument("--reconnect-every", type=int, default=20, help="as in token_endpoint.py")
    parser.add_argument(
        "--quiet-wait", type=float, default=5.0, help="max seconds to wait for an idle machine before a run"
    )
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()

    load_before = load_average()
    shared = {"AUTH_SECRET_KEY": secrets.token_urlsafe(48)}
    with (
        temporary_database() as url,
        auth_service(url, RESOURCES, env={**shared, **MODES["off"]}) as off,
        auth_service(url, RESOURCES, env={**shared, **MODES["memory"]}, migrate=False) as memory,
        auth_service(url, RESOURCES, env={**shared, **MODES["redis"]}, migrate=False) as redis,
    ):
        machine = off.machine_client(RESOURCE, ["mcp:tools"])
        print(
            f"PostgreSQL temporary database; one worker each; {options.concurrency} in flight, "
            f"{options.rounds} x {options.seconds:g} s per run, interleaved; {os.cpu_count()} cores shared "
            "with PostgreSQL, Redis and the load generator"
        )
        figures = run(measure({"off": off, "memory": memory, "redis": redis}, machine, options))
    figures["load_average"] = {"before": load_before, "after": load_average()}
    print(
        f"{'rate limits':14}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'CPU ms':>9}{'ratio':>8}{'CPU ratio':>11}"
    )
    for mode in MODES:
        values = figures[mode]
        ratio = f"{values['ratio']:8.3f}{values['cpu_ratio']:11.3f}" if mode != "off" else ""
        print(
            f"{mode:14}{values['per_s']:9.0f}{values['p50_ms']:9.1f}{values['p95_ms']:9.1f}"
            f"{values['cpu_ms_per_request']:9.2f}{ratio}"
        )
    ratio = figures["redis"]["ratio"]
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(
        f"client_credentials/s, Redis limits / limits off: {ratio:.3f} (target >= {TARGET_RATIO}) {verdict}"
    )
    print(f"load average before / after: {load_before} / {figures['load_average']['after']}")
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
