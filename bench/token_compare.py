"""`/token` of several versions of the service (and optionally the peer), side by side in one run.

    uv run python bench/token_compare.py --variant before=main --variant after=. [--peer]
        [--grants client_credentials refresh_token authorization_code] [--rounds 5] [--seconds 5]

Each variant is a git ref (`git archive` into a temporary folder, run with this environment's
interpreter and that folder's sources first on PYTHONPATH; `.` is this checkout as installed), with
optional settings: `--variant small-pool=.,AUTH_DATABASE_POOL_SIZE=10,AUTH_DATABASE_MAX_OVERFLOW=10`.
Every variant runs `mcp-auth serve --workers 1` pinned to CPU 0 on a PostgreSQL database of its own
(migrated by its own code, seeded alike: bench/_seed.py); `--peer` adds panva's oidc-provider
(bench/token_peer.py) on CPU 0 too, for client_credentials only. The load generator (this process) is
pinned to CPU 1; PostgreSQL is shared and unpinned. Rounds interleave the variants (the order reverses
every round), so the machine's other load falls on all of them alike.

Per run and variant: tokens/s, the service's CPU per token (its processes' CPU time from /proc over the
tokens issued: the measure that survives a loaded machine), PostgreSQL CPU per token (the backends
connected to the variant's own database, from /proc; a backend that ends mid-run is missed, so this
undercounts under connection churn), and the PostgreSQL sessions opened during the run
(pg_stat_database.sessions: each is a backend started). Medians over rounds, and each variant's ratio
against the first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import asyncpg
from _harness import (
    CLOCK_TICKS,
    CpuWindow,
    LoadResult,
    _stat_fields,
    auth_service,
    drive,
    http_request,
    median,
    pin_self,
    process_tree,
    run,
    service_pid,
    wait_for_quiet,
    write_json,
)
from _seed import asyncpg_url, connect, form, seed_codes, seed_grants, seed_population
from token_endpoint import FORM_HEADERS, RESOURCE, RESOURCES, Workload, issued

from mcp_testing.postgres import admin_url, temporary_database

SERVICE_CPU, LOADGEN_CPU = "0", "1"
REPOSITORY = Path(__file__).resolve().parent.parent
GRANTS = ("client_credentials", "refresh_token", "authorization_code")
PEER = "oidc-provider"
# The targets of issue 17: the service's CPU per token on one core, in ms.
CPU_TARGETS_MS = {"client_credentials": 0.5, "refresh_token": 1.0, "authorization_code": 1.0}


@dataclass(frozen=True)
class VariantSpec:
    label: str
    ref: str  # "." for this checkout
    env: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> VariantSpec:
        label, _, rest = text.partition("=")
        ref, *settings = rest.split(",")
        return cls(label, ref or ".", dict(setting.split("=", 1) for setting in settings))


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[tuple[tuple[str, ...], dict[str, str]]]:
    """How to run `mcp-auth` of `ref`: this environment's, or `ref`'s sources exported to a folder."""
    if ref == ".":
        yield (), {}
        return
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(REPOSITORY), "archive", "--format=tar", ref, "services/auth/src", "shared/src"],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        sources = [f"{folder}/services/auth/src", f"{folder}/shared/src"]
        command = (sys.executable, "-c", "from mcp_auth_server.cli import main; main()")
        yield command, {"PYTHONPATH": os.pathsep.join(sources)}


@dataclass
class Target:
    """One server under load: a variant of ours, or the peer."""

    label: str
    port: int
    pid: int
    database: str  # its own PostgreSQL database
    work: Workload | None  # request streams (None for the peer: client_credentials only)
    cc_request: bytes
    runs: dict[str, list[Measured]] = field(default_factory=dict)

    def requests(self, grant: str) -> Iterator[bytes]:
        if grant == "client_credentials":
            return repeat(self.cc_request)
        assert self.work is not None
        return self.work.requests(grant, self.port)


@dataclass
class Measured:
    result: LoadResult
    service_ms: float
    postgres_ms: float
    sessions: int
    load: float

    def row(self) -> str:
        return (
            f"{self.result.rate:6.0f}/s  p50 {self.result.percentile_ms(0.5):5.1f} ms  "
            f"service {self.service_ms:.3f} CPU-ms/token  postgres {self.postgres_ms:.3f} CPU-ms/token  "
            f"{self.sessions:3d} new PG sessions  load {self.load:.2f}"
            + (f"  {self.result.errors} FAILED" if self.result.errors else "")
        )


class Postgres:
    """The shared server, seen from the admin connection: one database's backends and sessions."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def backends(self, database: str) -> list[int]:
        rows = await self.connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
        return [row["pid"] for row in rows]

    async def sessions(self, database: str) -> int:
        await self.connection.execute("SELECT pg_stat_clear_snapshot()")
        value = await self.connection.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", database
        )
        return int(value or 0)


def cpu_ticks(pids: Sequence[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks[pid] = int(fields[12]) + int(fields[13])
    return ticks


async def measure_once(
    postgres: Postgres, target: Target, grant: str, options: argparse.Namespace, seconds: float
) -> Measured:
    await wait_for_quiet(max_wait=options.quiet_wait)
    sessions_before = await postgres.sessions(target.database)
    backends_before = cpu_ticks(await postgres.backends(target.database))
    load = os.getloadavg()[0]
    with CpuWindow(process_tree(target.pid)) as cpu:
        result = await drive(
            target.port,
            target.requests(grant),
            check=issued,
            concurrency=options.concurrency,
            duration=seconds,
            max_requests=options.max_requests,
            reconnect_every=options.reconnect_every,
        )
    backends_after = cpu_ticks(await postgres.backends(target.database))
    await asyncio.sleep(1.0)  # backends report their start to the statistics within about a second
    sessions = await postgres.sessions(target.database) - sessions_before
    if result.errors:  # reported with the run (e.g. 503s when PostgreSQL runs out of connections)
        print(f"  {target.label} {grant}: {result.errors} failed, first: {result.first_error}", flush=True)
    postgres_ticks = sum(t - backends_before.get(pid, 0) for pid, t in backends_after.items())
    completed = max(result.completed, 1)
    return Measured(
        result,
        cpu.service_ms_per_request(result.completed),
        postgres_ticks / CLOCK_TICKS * 1000 / completed,
        sessions,
        load,
    )


async def compare(postgres: Postgres, targets: list[Target], options: argparse.Namespace) -> None:
    for grant in options.grants:  # warm-up: pools filled, first-use imports done
        for target in targets:
            if grant == "client_credentials" or target.work is not None:
                await measure_once(postgres, target, grant, options, options.warmup)
    for index in range(options.rounds):
        for grant in options.grants:
            order = targets if index % 2 == 0 else list(reversed(targets))
            for target in order:
                if grant != "client_credentials" and target.work is None:
                    continue
                measured = await measure_once(postgres, target, grant, options, options.seconds)
                target.runs.setdefault(grant, []).append(measured)
                print(f"  round {index + 1} {grant:18} {target.label:14} {measured.row()}", flush=True)


def summary(targets: list[Target], grants: Sequence[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for grant in grants:
        for target in targets:
            done = target.runs.get(grant)
            if not done:
                continue
            figures[f"{grant}/{target.label}"] = {
                "per_s": median([m.result.rate for m in done]),
                "rounds_per_s": [round(m.result.rate) for m in done],
                "service_cpu_ms_per_token": median([m.service_ms for m in done]),
                "postgres_cpu_ms_per_token": median([m.postgres_ms for m in done]),
                "new_postgres_sessions": [m.sessions for m in done],
                "p50_ms": median([m.result.percentile_ms(0.5) for m in done]),
                "load_average": [round(m.load, 2) for m in done],
            }
    return figures


def print_table(targets: list[Target], grants: Sequence[str], figures: dict[str, Any]) -> None:
    print(
        f"\n{'grant':20}{'server':16}{'tokens/s':>10}{'ratio':>8}{'svc CPU ms':>12}{'PG CPU ms':>11}"
        f"{'new PG sessions/run':>22}{'target':>9}"
    )
    for grant in grants:
        baseline = figures.get(f"{grant}/{targets[0].label}")
        for target in targets:
            values = figures.get(f"{grant}/{target.label}")
            if values is None:
                continue
            ratio = values["per_s"] / baseline["per_s"] if baseline else float("nan")
            goal = CPU_TARGETS_MS[grant] if target.label != PEER else None
            verdict = (
                ""
                if goal is None
                else f"{'PASS' if values['service_cpu_ms_per_token'] <= goal else 'FAIL'} ≤{goal}"
            )
            print(
                f"{grant:20}{target.label:16}{values['per_s']:10.0f}{ratio:7.2f}x"
                f"{values['service_cpu_ms_per_token']:12.3f}{values['postgres_cpu_ms_per_token']:11.3f}"
                f"{values['new_postgres_sessions']!s:>22}{verdict:>9}"
            )
    print(
        f"ratio: against {targets[0].label}, the first variant; CPU ms per token: the server's own processes "
        "(svc) and the PostgreSQL backends of its database (PG)"
    )
    peer = figures.get(f"client_credentials/{PEER}")
    for target in targets if peer else ():
        values = figures.get(f"client_credentials/{target.label}")
        if target.label != PEER and values:
            rate = values["per_s"] / peer["per_s"]
            cpu = values["service_cpu_ms_per_token"] / peer["service_cpu_ms_per_token"]
            print(
                f"{target.label} / {PEER}, client_credentials: {rate:.2f}x the tokens/s (target >= 1.0x), "
                f"{cpu:.2f}x the service CPU per token"
            )


async def seed(url: str, options: argparse.Namespace, grants: Sequence[str]) -> Workload:
    connection = await connect(url)
    try:
        population = await seed_population(connection, users=1000, clients=100, resource=RESOURCE)
        count = options.seed if "refresh_token" in grants else 0
        tokens = await seed_grants(connection, population, RESOURCE, count, keep=count) if count else []
        codes = (
            await seed_codes(connection, population, RESOURCE, options.seed, ttl=3600)
            if "authorization_code" in grants
            else []
        )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return Workload(("", ""), tokens, codes)


def basic_request(port: int, client_id: str, secret: str) -> bytes:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    body = form({"grant_type": "client_credentials", "resource": RESOURCE, "scope": "mcp:tools"})
    return http_request("POST", "/token", port, {**FORM_HEADERS, "Authorization": f"Basic {basic}"}, body)


def database_name(url: str) -> str:
    return asyncpg_url(url).rsplit("/", 1)[1]


def options_parser(description: str | None = __doc__) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", action="append", default=[], help="label=ref[,SETTING=value...]")
    parser.add_argument("--peer", action="store_true", help="add oidc-provider (client_credentials)")
    parser.add_argument("--grants", nargs="+", choices=GRANTS, default=list(GRANTS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per target and grant")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per run")
    parser.add_argument(
        "--reconnect-every", type=int, default=20, help="replace each connection after N requests (0: never)"
    )
    parser.add_argument("--seed", type=int, default=25_000, help="refresh tokens and codes per variant")
    parser.add_argument(
        "--quiet-wait", type=float, default=3.0, help="max seconds to wait for a quiet machine"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    return parser


def main(argv: Sequence[str] | None = None, description: str | None = None) -> None:
    options = options_parser(description).parse_args(argv)
    specs = [VariantSpec.parse(v) for v in options.variant] or [VariantSpec("this", ".", {})]
    pin_self({int(LOADGEN_CPU)})
    targets: list[Target] = []
    with contextlib.ExitStack() as stack:
        for spec in specs:
            command, ref_env = stack.enter_context(checkout(spec.ref))
            url = stack.enter_context(temporary_database())
            env = {"AUTH_SECRET_KEY": secrets.token_urlsafe(48), **ref_env, **spec.env}
            service = stack.enter_context(
                auth_service(url, RESOURCES, cpus=SERVICE_CPU, env=env, command=command)
            )
            client_id, secret = service.machine_client(RESOURCE, ["mcp:tools"])
            work = run(seed(url, options, options.grants))
            targets.append(
                Target(
                    spec.label,
                    service.port,
                    service_pid(service.process),
                    database_name(url),
                    work,
                    basic_request(service.port, client_id, secret),
                )
            )
            print(f"{spec.label}: {spec.ref} {spec.env or ''} on port {service.port}", flush=True)
        if options.peer:
            from token_peer import peer_service

            url = stack.enter_context(temporary_database())
            peer = stack.enter_context(peer_service(asyncpg_url(url), RESOURCE, cpus=SERVICE_CPU))
            targets.append(
                Target(
                    PEER,
                    peer.port,
                    peer.pid,
                    database_name(url),
                    None,
                    basic_request(peer.port, peer.client_id, peer.client_secret),
                )
            )
            print(f"{PEER}: {peer.version} on Node {peer.node_version}, port {peer.port}", flush=True)
        print(
            f"{options.concurrency} in flight, {options.rounds} x {options.seconds:g} s per run, "
            "interleaved; "
            f"servers on CPU {SERVICE_CPU}, load generator on CPU {LOADGEN_CPU}; load {os.getloadavg()}",
            flush=True,
        )
        started = time.monotonic()

        async def go() -> None:
            postgres = Postgres(await asyncpg.connect(admin_url(), timeout=10))
            try:
                await compare(postgres, targets, options)
            finally:
                await postgres.connection.close()

        run(go())
        figures = summary(targets, options.grants)
        print_table(targets, options.grants, figures)
        print(f"({time.monotonic() - started:.0f} s; load average now {os.getloadavg()})")
        write_json(options.json, figures)


if __name__ == "__main__":
    main()
