"""What the JWT-bearer grant costs the token endpoint: ID-JAG exchanges per second versus client_credentials.

    uv run python bench/jwt_bearer.py [--rounds 5] [--seconds 3] [--concurrency 32] [--workers 2]

One temporary PostgreSQL database and one `mcp-auth serve --workers N` trusting the enterprise IdP
stand-in (served by this process; the service fetches its JWKS once per worker, then verifies from
memory). Rounds alternate between:
  client_credentials  a machine client (Basic auth) asks for a token for one resource (the baseline);
  id_jag              a confidential client (Basic auth) presents an ID-JAG (ES256, each with its own
                      `jti`, for one of 1,000 people already known here) for the same resource.
The ID-JAG path does what client_credentials does plus one signature check, one `jti` insert in the replay
cache (Redis, as replicated deployments run; `--replay database` for the database) and one read of the
person's user. ID-JAGs are signed before each run, so the load generator's signing does not count; it
shares the machine's cores with the service and PostgreSQL, as in token_endpoint.py.
Figure: median per second of each, and the ratio id_jag/client_credentials (target >= 0.7).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
from collections.abc import Iterator
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
    service_pid,
    wait_for_quiet,
    write_json,
)
from _seed import form
from token_endpoint import FORM_HEADERS, RESOURCE, RESOURCES, client_credentials_requests, issued

from mcp_testing.enterprise_idp import EnterpriseIdpStandIn, EnterpriseIdpState
from mcp_testing.postgres import temporary_database

TARGET_RATIO = 0.7
REDIS_URL = "redis://127.0.0.1:6379/0"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MODES = ("client_credentials", "id_jag")
PEOPLE = 1000


def id_jag_requests(
    service: AuthService, idp: EnterpriseIdpState, client: tuple[str, str], count: int, start: int
) -> list[bytes]:
    client_id, secret = client
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = {**FORM_HEADERS, "Authorization": f"Basic {basic}"}
    requests = []
    for index in range(start, start + count):
        person = index % PEOPLE
        grant = idp.id_jag(
            sub=f"person-{person}",
            audience=service.issuer,
            client_id=client_id,
            resource=RESOURCE,
            scope="mcp:tools",
            email=f"person-{person}@acme.example",
        )
        body = form({"grant_type": JWT_BEARER, "assertion": grant, "resource": RESOURCE})
        requests.append(http_request("POST", "/token", service.port, headers, body))
    return requests


async def measure(
    service: AuthService,
    idp: EnterpriseIdpState,
    machine: tuple[str, str],
    enterprise: tuple[str, str],
    options: argparse.Namespace,
) -> dict[str, Any]:
    tree = process_tree(service_pid(service.process))
    results: dict[str, list[LoadResult]] = {mode: [] for mode in MODES}
    cpu_ms: dict[str, list[float]] = {mode: [] for mode in MODES}
    minted = 0

    async def once(mode: str, seconds: float, count: int, concurrency: int | None = None) -> LoadResult:
        nonlocal minted
        requests: Iterator[bytes]
        if mode == "id_jag":
            requests = iter(id_jag_requests(service, idp, enterprise, count, minted))
            minted += count
        else:
            requests = client_credentials_requests(service.port, *machine)
        await wait_for_quiet(max_wait=options.quiet_wait)
        with CpuWindow(tree) as cpu:
            result = await drive(
                service.port,
                requests,
                check=issued,
                concurrency=concurrency or options.concurrency,
                duration=seconds,
                max_requests=count,
                reconnect_every=options.reconnect_every,
            )
        if result.errors:
            raise SystemExit(f"{mode}: {result.errors} failed, first: {result.first_error}")
        if seconds == options.seconds:
            cpu_ms[mode].append(cpu.service_ms_per_request(result.completed))
        print(
            f"  {mode:18}: {result.rate:6.0f}/s  p50 {result.percentile_ms(0.5):6.1f} ms  "
            f"service {cpu.service_ms_per_request(result.completed):.2f} CPU-ms/req; cores: service "
            f"{cpu.service_cores:.2f} loadgen {cpu.loadgen_cores:.2f} postgres {cpu.postgres_cores:.2f} "
            f"other {cpu.other_cores:.2f}"
        )
        return result

    # Warm-up: pools, the IdP's JWKS in every worker, and every person seen once (created here, a few at
    # a time: first sight is a longer transaction, and the shared PostgreSQL has few connections to spare).
    await once("client_credentials", 0.5, 500)
    await once("id_jag", 120.0, PEOPLE, concurrency=4)
    for index in range(options.rounds):
        print(f" round {index + 1}")
        for mode in MODES if index % 2 == 0 else tuple(reversed(MODES)):
            results[mode].append(await once(mode, options.seconds, options.per_run))
    figures: dict[str, Any] = {
        mode: {
            "per_s": median([r.rate for r in done]),
            "p50_ms": median([r.percentile_ms(0.5) for r in done]),
            "cpu_ms_per_request": median(cpu_ms[mode]),
            "rounds": [round(r.rate, 1) for r in done],
        }
        for mode, done in results.items()
    }
    figures["ratio"] = figures["id_jag"]["per_s"] / figures["client_credentials"]["per_s"]
    figures["cpu_ratio"] = (
        figures["client_credentials"]["cpu_ms_per_request"] / figures["id_jag"]["cpu_ms_per_request"]
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run (at most)")
    parser.add_argument("--per-run", type=int, default=6000, help="requests prepared for each run (its cap)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reconnect-every", type=int, default=20, help="as in token_endpoint.py")
    parser.add_argument(
        "--replay", choices=["redis", "database"], default="redis", help="where jtis are kept"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=5.0, help="max seconds to wait for an idle machine"
    )
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()

    with EnterpriseIdpStandIn() as idp, temporary_database() as url:
        trusted = [{"issuer": idp.issuer, "kind": "enterprise-idp", "user_claim": "sub"}]
        env = {"AUTH_TRUSTED_ISSUERS": json.dumps(trusted), "AUTH_SECRET_KEY": secrets.token_urlsafe(48)}
        if options.replay == "redis":
            env["AUTH_REDIS_URL"] = REDIS_URL
        with auth_service(url, RESOURCES, workers=options.workers, env=env) as service:
            machine = service.machine_client(RESOURCE, ["mcp:tools"])
            created = json.loads(service.cli("clients", "add", "--name", "bench", "--jwt-bearer", "--json"))
            enterprise = (created["client_id"], created["client_secret"])
            print(
                f"PostgreSQL temporary database; {options.workers} worker(s); jtis in {options.replay}; "
                f"{options.concurrency} in flight, {options.rounds} x {options.seconds:g} s per run, "
                f"interleaved; {os.cpu_count()} cores shared with PostgreSQL and the load generator"
            )
            figures = run(measure(service, idp.state, machine, enterprise, options))
    print(f"{'grant':20}{'per s':>9}{'p50 ms':>9}{'CPU ms':>8}")
    for mode in MODES:
        values = figures[mode]
        print(f"{mode:20}{values['per_s']:9.0f}{values['p50_ms']:9.1f}{values['cpu_ms_per_request']:8.2f}")
    ratio = figures["ratio"]
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"ratio id_jag/client_credentials: {ratio:.3f} (target >= {TARGET_RATIO}) {verdict}")
    print(f"service CPU per request, client_credentials/id_jag: {figures['cpu_ratio']:.3f}")
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
