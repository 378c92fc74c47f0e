"""What `private_key_jwt` client authentication costs the token endpoint, against a client secret.

    uv run python bench/private_key_jwt.py [--rounds 5] [--seconds 3] [--concurrency 32] [--workers 2]

One temporary PostgreSQL database and one `mcp-auth serve --workers N`; two machine clients for the same
resource and scope, asking for client_credentials tokens. Rounds alternate between:
  client_secret    HTTP Basic with the client's secret (the baseline: a hash compared in constant time);
  private_key_jwt  a client assertion (RFC 7523 §2.2, ES256, each with its own `jti`) signed by the key
                   the client registered inline (`clients add --jwks`).
The assertion path adds one short read of the client's keys before the transaction, one ES256 signature
check and one `jti` insert in the replay cache (Redis, as replicated deployments run; `--replay database`
for the database). Assertions are signed before each run, so the load generator's signing does not count.
Figure: median per second of each, and the ratio private_key_jwt/client_secret.
"""

from __future__ import annotations

import argparse
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

from mcp_auth_kit import DPoPKey, PrivateKeyJWT
from mcp_testing.postgres import temporary_database

REDIS_URL = "redis://127.0.0.1:6379/0"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MODES = ("client_secret", "private_key_jwt")


def assertion_requests(service: AuthService, client_id: str, key: PrivateKeyJWT, count: int) -> list[bytes]:
    fields = {"grant_type": "client_credentials", "resource": RESOURCE, "scope": "mcp:tools"}
    return [
        http_request(
            "POST",
            "/token",
            service.port,
            FORM_HEADERS,
            form(
                {
                    **fields,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": key.assertion(client_id, service.issuer),
                }
            ),
        )
        for _ in range(count)
    ]


async def measure(
    service: AuthService,
    secret_client: tuple[str, str],
    key_client: tuple[str, PrivateKeyJWT],
    options: argparse.Namespace,
) -> dict[str, Any]:
    tree = process_tree(service_pid(service.process))
    results: dict[str, list[LoadResult]] = {mode: [] for mode in MODES}
    cpu_ms: dict[str, list[float]] = {mode: [] for mode in MODES}

    async def once(mode: str, seconds: float, count: int) -> LoadResult:
        requests: Iterator[bytes]
        if mode == "private_key_jwt":
            requests = iter(assertion_requests(service, *key_client, count))
        else:
            requests = client_credentials_requests(service.port, *secret_client)
        await wait_for_quiet(max_wait=options.quiet_wait)
        with CpuWindow(tree) as cpu:
            result = await drive(
                service.port,
                requests,
                check=issued,
                concurrency=options.concurrency,
                duration=seconds,
                max_requests=count,
                reconnect_every=options.reconnect_every,
            )
        if result.errors:
            raise SystemExit(f"{mode}: {result.errors} failed, first: {result.first_error}")
        if seconds == options.seconds:
            cpu_ms[mode].append(cpu.service_ms_per_request(result.completed))
        print(
            f"  {mode:16}: {result.rate:6.0f}/s  p50 {result.percentile_ms(0.5):6.1f} ms  "
            f"service {cpu.service_ms_per_request(result.completed):.2f} CPU-ms/req"
        )
        return result

    for mode in MODES:  # warm-up: pools, and the client's keys parsed in every worker
        await once(mode, 0.5, 300)
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
    figures["ratio"] = figures["private_key_jwt"]["per_s"] / figures["client_secret"]["per_s"]
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
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args()

    key = PrivateKeyJWT.from_pem(DPoPKey.generate("ES256").private_key_pem())
    with temporary_database() as url:
        env = {"AUTH_SECRET_KEY": secrets.token_urlsafe(48)}
        if options.replay == "redis":
            env["AUTH_REDIS_URL"] = REDIS_URL
        with auth_service(url, RESOURCES, workers=options.workers, env=env) as service:
            secret_client = service.machine_client(RESOURCE, ["mcp:tools"])
            created = json.loads(
                service.cli(
                    *("clients", "add", "--name", "bench-key", "--machine", "--resource", RESOURCE),
                    *("--scope", "mcp:tools", "--jwks", json.dumps(key.public_jwks()), "--json"),
                )
            )
            print(
                f"PostgreSQL temporary database; {options.workers} worker(s); jtis in {options.replay}; "
                f"{options.concurrency} in flight, {options.rounds} x {options.seconds:g} s per run, "
                f"interleaved; {os.cpu_count()} cores shared with PostgreSQL and the load generator"
            )
            figures = run(measure(service, secret_client, (created["client_id"], key), options))
    print(f"{'client authentication':24}{'per s':>9}{'p50 ms':>9}{'CPU ms':>8}")
    for mode in MODES:
        values = figures[mode]
        print(f"{mode:24}{values['per_s']:9.0f}{values['p50_ms']:9.1f}{values['cpu_ms_per_request']:8.2f}")
    print(f"ratio private_key_jwt/client_secret: {figures['ratio']:.3f}")
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
