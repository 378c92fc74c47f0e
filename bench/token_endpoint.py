"""Token endpoint throughput on PostgreSQL, with 1 and 2 worker processes, per grant type.

    uv run python bench/token_endpoint.py [--rounds 5] [--seconds 3] [--concurrency 32]

One temporary database, two `mcp-auth serve` instances on it (--workers 1 and --workers 2, the same
AUTH_SECRET_KEY), measured in interleaved rounds: for each round and grant type, one run against each
(alternating which goes first). Grants:
  client_credentials  a machine client (Basic auth) asks for a token for one resource;
  refresh_token       a public client presents a seeded, never-used refresh token (each used once);
  authorization_code  a public client redeems a seeded code with its PKCE verifier (each used once).
Codes and refresh tokens are COPYed into the database beforehand (bench/_seed.py): this measures the
endpoint, not the browser flow. Each connection is replaced every 20 requests (--reconnect-every), as
a stream of clients would: uvicorn's workers share one listening socket and a keep-alive connection
stays with the worker that accepted it, so 32 connections opened at once sometimes all landed on one
worker of two (measured: 705/s with one worker doing all the work, 1,171-1,462/s when spread).
The load generator is this process and shares the machine's cores with the service and PostgreSQL
(nothing is pinned); the output says how much CPU each used.
Targets (2 workers, this 2-vCPU machine): client_credentials >= 1,000/s, refresh >= 600/s,
code exchange >= 500/s.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from _harness import (
    AuthService,
    CpuWindow,
    LoadResult,
    auth_service,
    drive,
    http_request,
    median,
    process_tree,
    run,
    service_memory,
    service_pid,
    wait_for_quiet,
    write_json,
)
from _seed import REDIRECT_URI, Redeemable, connect, form, seed_codes, seed_grants, seed_population

from mcp_testing.postgres import temporary_database

RESOURCE = "http://127.0.0.1:9101/mcp"
RESOURCES = [{"resource": RESOURCE, "scopes": ["mcp:tools", "github:repos"]}]
TARGETS = {"client_credentials": 1000.0, "refresh_token": 600.0, "authorization_code": 500.0}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
WORKERS = (1, 2)


def issued(status: int, body: bytes) -> bool:
    return status == 200 and b'"access_token"' in body


def client_credentials_requests(port: int, client_id: str, secret: str) -> Iterator[bytes]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    body = form({"grant_type": "client_credentials", "resource": RESOURCE, "scope": "mcp:tools"})
    return repeat(
        http_request("POST", "/token", port, {**FORM_HEADERS, "Authorization": f"Basic {basic}"}, body)
    )


def refresh_requests(
    port: int, tokens: Iterator[Redeemable], proof: Callable[[], str] | None = None
) -> Iterator[bytes]:
    """Refresh requests, each with a DPoP header made by `proof()` when given (bench/dpop_refresh.py)."""
    for token in tokens:
        body = form(
            {
                "grant_type": "refresh_token",
                "refresh_token": token.secret,
                "client_id": token.client_id,
                "resource": RESOURCE,
            }
        )
        headers = FORM_HEADERS if proof is None else {**FORM_HEADERS, "DPoP": proof()}
        yield http_request("POST", "/token", port, headers, body)


def code_requests(port: int, codes: Iterator[Redeemable]) -> Iterator[bytes]:
    for code in codes:
        body = form(
            {
                "grant_type": "authorization_code",
                "code": code.secret,
                "code_verifier": code.verifier,
                "redirect_uri": REDIRECT_URI,
                "client_id": code.client_id,
                "resource": RESOURCE,
            }
        )
        yield http_request("POST", "/token", port, FORM_HEADERS, body)


class Workload:
    """Request streams per grant type; refresh tokens and codes are shared, so each is redeemed once."""

    def __init__(self, machine: tuple[str, str], tokens: list[Redeemable], codes: list[Redeemable]) -> None:
        self.machine = machine
        self.tokens = iter(tokens)
        self.codes = iter(codes)

    def requests(self, grant: str, port: int) -> Iterator[bytes]:
        if grant == "client_credentials":
            return client_credentials_requests(port, *self.machine)
        if grant == "refresh_token":
            return refresh_requests(port, self.tokens)
        return code_requests(port, self.codes)


@dataclass
class Run:
    result: LoadResult
    cpu: CpuWindow
    background_before: float


async def measure(
    services: dict[int, AuthService], work: Workload, options: argparse.Namespace
) -> dict[str, Any]:
    trees = {w: process_tree(service_pid(s.process)) for w, s in services.items()}
    grants = options.grants
    runs: dict[str, dict[int, list[Run]]] = {g: {w: [] for w in WORKERS} for g in grants}

    async def once(grant: str, workers: int, seconds: float) -> Run:
        port = services[workers].port
        background = await wait_for_quiet(max_wait=options.quiet_wait)
        with CpuWindow(trees[workers]) as cpu:
            result = await drive(
                port,
                work.requests(grant, port),
                check=issued,
                concurrency=options.concurrency,
                duration=seconds,
                max_requests=options.max_requests,
                reconnect_every=options.reconnect_every,
            )
        if result.errors:
            raise SystemExit(
                f"{grant} ({workers} workers): {result.errors} failed, first: {result.first_error}"
            )
        return Run(result, cpu, background)

    for grant in grants:  # warm-up: connection pools, first-use imports
        for workers in WORKERS:
            await once(grant, workers, 0.5)
    for index in range(options.rounds):
        for grant in grants:
            order = WORKERS if index % 2 == 0 else tuple(reversed(WORKERS))
            for workers in order:
                run_ = await once(grant, workers, options.seconds)
                runs[grant][workers].append(run_)
                result, cpu = run_.result, run_.cpu
                print(
                    f"  round {index + 1} {grant:18} {workers} worker(s): {result.rate:6.0f}/s  "
                    f"p50 {result.percentile_ms(0.5):6.1f} ms  "
                    f"service {cpu.service_ms_per_request(result.completed):.2f} CPU-ms/req; "
                    f"cores: service {cpu.service_cores:.2f} loadgen {cpu.loadgen_cores:.2f} "
                    f"postgres {cpu.postgres_cores:.2f} other {cpu.other_cores:.2f}"
                )
    figures: dict[str, Any] = {}
    for grant, by_workers in runs.items():
        for workers, done in by_workers.items():
            figures[f"{grant}/{workers}"] = {
                "per_s": median([r.result.rate for r in done]),
                "p50_ms": median([r.result.percentile_ms(0.5) for r in done]),
                "p95_ms": median([r.result.percentile_ms(0.95) for r in done]),
                "service_cpu_ms_per_request": median(
                    [r.cpu.service_ms_per_request(r.result.completed) for r in done]
                ),
                "rounds": [round(r.result.rate, 1) for r in done],
                "cores_service": median([r.cpu.service_cores for r in done]),
                "cores_loadgen": median([r.cpu.loadgen_cores for r in done]),
                "cores_postgres": median([r.cpu.postgres_cores for r in done]),
                "cores_other_max": max(r.cpu.other_cores for r in done),
            }
    return figures


async def seed(url: str, options: argparse.Namespace) -> tuple[list[Redeemable], list[Redeemable]]:
    connection = await connect(url)
    try:
        population = await seed_population(connection, users=1000, clients=100, resource=RESOURCE)
        tokens = await seed_grants(connection, population, RESOURCE, options.seed, keep=options.seed)
        codes = await seed_codes(connection, population, RESOURCE, options.seed, ttl=3600)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return tokens, codes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap per run")
    parser.add_argument(
        "--reconnect-every",
        type=int,
        default=20,
        help="replace each connection after this many requests (0: never); see the docstring",
    )
    parser.add_argument("--seed", type=int, default=60_000, help="refresh tokens and codes to seed, each")
    parser.add_argument(
        "--quiet-wait", type=float, default=5.0, help="max seconds to wait for an idle machine before a run"
    )
    parser.add_argument("--grants", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()

    shared = {"AUTH_SECRET_KEY": secrets.token_urlsafe(48)}  # both instances open the same signing key
    with temporary_database() as url, auth_service(url, RESOURCES, workers=1, env=shared) as one:
        machine = one.machine_client(RESOURCE, ["mcp:tools"])
        tokens, codes = run(seed(url, options))
        with auth_service(url, RESOURCES, workers=2, env=shared, migrate=False) as two:
            services = {1: one, 2: two}
            print(
                f"PostgreSQL temporary database; {len(tokens)} refresh tokens and {len(codes)} codes seeded; "
                f"{options.concurrency} in flight, {options.rounds} x {options.seconds:g} s per run, "
                f"interleaved.\nThe load generator shares the {os.cpu_count()} cores with the service "
                "and PostgreSQL."
            )
            figures = run(measure(services, Workload(machine, tokens, codes), options))
            figures["memory_mib"] = {
                str(w): {"largest": m.largest_mib, "total": m.total_mib, "processes": m.processes}
                for w, m in ((w, service_memory(s.process)) for w, s in services.items())
            }
    print(
        f"{'grant':20}{'workers':>8}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'CPU ms':>8}{'target':>8}{'ratio':>8}"
    )
    for grant, target in TARGETS.items():
        for workers in WORKERS if grant in options.grants else ():
            values = figures[f"{grant}/{workers}"]
            ratio = values["per_s"] / target
            verdict = ("PASS" if ratio >= 1 else "FAIL") if workers == 2 else ""
            print(
                f"{grant:20}{workers:8}{values['per_s']:9.0f}{values['p50_ms']:9.1f}{values['p95_ms']:9.1f}"
                f"{values['service_cpu_ms_per_request']:8.2f}{target:8.0f}{ratio:7.2f}x {verdict}"
            )
    for workers, memory in figures["memory_mib"].items():
        print(
            f"peak RSS, {workers} worker(s): {memory['largest']:.0f} MiB largest process, "
            f"{memory['total']:.0f} MiB over {memory['processes']} processes"
        )
    print(
        "targets apply to 2 workers; the load generator shares the cores (see the cores per run above);\n"
        "CPU ms = the service's own CPU time per request (all its processes), robust to other load"
    )
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
