"""What DPoP costs an MCP server: tool calls per second with DPoP-bound tokens versus bearer tokens.

    uv run python bench/dpop_tool_calls.py [--rounds 5] [--seconds 5] [--concurrency 16]

One `mcp-tools serve` process (MCP_AUTH=on, MCP_DPOP=allowed) pinned to CPU 0; the load generator and an
idle `mcp-auth serve` (dev upstream, SQLite) on CPU 1. Two access tokens from client_credentials for the
server: a bearer one, and one bound to an ES256 key (a DPoP token request). Rounds alternate between the
two (bearer/DPoP, then DPoP/bearer) on the same process, posting 2026-07-28 stateless JSON-mode
`tools/call calculate` requests over keep-alive connections. Every DPoP request carries a fresh proof
(its own `jti`, `iat`, `ath`; ES256 unless --alg says otherwise), made before the round starts so the
load generator's signing does not count: the server verifies a proof per request, and remembers each
`jti` (in its memory: one process).
The bearer token's check is cached by the kit, as is the bound token's; the proof never is.
Figures: median calls/s of each, their ratio (target >= 0.85), p50/p95 latency, the service's CPU per
call of each, and the floor DPoP cannot go below: one signature verification per call (timed here, in
the same run, with PyJWT's algorithm object as the kit uses it).
"""

from __future__ import annotations

import argparse
import base64
import os
import time
from collections.abc import Iterator
from itertools import repeat
from typing import Any

import httpx
import jwt
from _harness import (
    CpuWindow,
    LoadResult,
    auth_service,
    drive,
    free_port,
    median,
    pin_self,
    process_tree,
    run,
    service_pid,
    tools_service,
    write_json,
)
from mcp_tool_calls import answered, tools_call_request

from mcp_auth_kit import DPoPAuth, DPoPKey
from mcp_auth_kit.rfc7515_compact_jws import split_compact
from mcp_testing.processes import ServiceProcess

TARGET_RATIO = 0.85
SERVER_CPU, CLIENT_CPU = "0", "1"


def token(issuer: str, client_id: str, secret: str, resource: str, key: DPoPKey | None) -> str:
    """An access token by client_credentials; bound to `key` when a proof is sent with the request."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = httpx.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "resource": resource, "scope": "mcp:tools"},
        headers={"Authorization": f"Basic {basic}"},
        auth=DPoPAuth(key) if key is not None else None,
        trust_env=False,
    )
    response.raise_for_status()
    expected = "DPoP" if key is not None else "Bearer"
    assert response.json()["token_type"] == expected, response.text
    return str(response.json()["access_token"])


def dpop_requests(port: int, resource: str, key: DPoPKey, access_token: str, count: int) -> list[bytes]:
    """`count` requests, each with a new proof (made now, outside the measurement)."""
    requests = []
    for _ in range(count):
        request = tools_call_request(port, access_token)
        proof = key.proof("POST", resource, access_token=access_token)
        head, body = request.split(b"\r\n\r\n", 1)
        head = head.replace(b"Authorization: Bearer ", b"Authorization: DPoP ")
        requests.append(head + f"\r\nDPoP: {proof}".encode() + b"\r\n\r\n" + body)
    return requests


def signature_check_us(key: DPoPKey, count: int = 1000) -> float:
    """µs per proof signature verification (best of three batches): DPoP's floor on this machine now."""
    proofs = [split_compact(key.proof("POST", "http://127.0.0.1/mcp"), 8192) for _ in range(count)]
    algorithm, public_key = jwt.get_algorithm_by_name(key.algorithm), jwt.PyJWK(key.public_jwk).key
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for jws in proofs:
            algorithm.verify(jws.signing_input, public_key, jws.signature)
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


async def one_round(port: int, requests: Iterator[bytes], options: argparse.Namespace) -> LoadResult:
    return await drive(
        port,
        requests,
        check=answered,
        concurrency=options.concurrency,
        duration=options.seconds,
        max_requests=options.max_calls,
    )


async def measure(
    service: ServiceProcess, resource: str, key: DPoPKey, tokens: dict[str, str], options: argparse.Namespace
) -> dict[str, Any]:
    port = service.port
    warm = await one_round(port, repeat(tools_call_request(port, tokens["bearer"])), options)
    if warm.errors:
        raise SystemExit(f"bearer calls fail during warm-up: {warm.first_error}")
    # Enough fresh proofs for a DPoP round at the bearer rate and then some (the round stops at its
    # deadline; running out would only shorten it, never skew the rate).
    per_round = min(options.max_calls, int(warm.rate * options.seconds * 1.5) + 500)
    check = await one_round(port, iter(dpop_requests(port, resource, key, tokens["dpop"], 200)), options)
    if check.errors or not check.completed:
        raise SystemExit(f"DPoP calls fail during warm-up: {check.first_error}")
    samples: dict[str, list[LoadResult]] = {"bearer": [], "dpop": []}
    cpu_ms: dict[str, list[float]] = {"bearer": [], "dpop": []}
    noise: list[float] = []
    for index in range(options.rounds):
        order = ("bearer", "dpop") if index % 2 == 0 else ("dpop", "bearer")
        for mode in order:
            if mode == "dpop":
                requests: Iterator[bytes] = iter(
                    dpop_requests(port, resource, key, tokens["dpop"], per_round)
                )
            else:
                requests = repeat(tools_call_request(port, tokens["bearer"]))
            with CpuWindow(process_tree(service_pid(service))) as cpu:
                result = await one_round(port, requests, options)
            if result.errors:
                raise SystemExit(f"{mode}: {result.errors} failed calls, first: {result.first_error}")
            samples[mode].append(result)
            cpu_ms[mode].append(cpu.service_ms_per_request(result.completed))
            noise.append(cpu.other_cores)
            print(
                f"  round {index + 1} {mode:6}: {result.rate:8.0f} calls/s  "
                f"p50 {result.percentile_ms(0.5):6.2f} ms  p95 {result.percentile_ms(0.95):6.2f} ms  "
                f"service {cpu.service_ms_per_request(result.completed):.3f} CPU-ms/call  "
                f"(other processes used {cpu.other_cores:.2f} cores)"
            )
    figures: dict[str, Any] = {
        mode: {
            "calls_per_s": median([r.rate for r in results]),
            "p50_ms": median([r.percentile_ms(0.5) for r in results]),
            "p95_ms": median([r.percentile_ms(0.95) for r in results]),
            "cpu_ms_per_call": median(cpu_ms[mode]),
            "rounds": [round(r.rate, 1) for r in results],
        }
        for mode, results in samples.items()
    }
    figures["ratio"] = figures["dpop"]["calls_per_s"] / figures["bearer"]["calls_per_s"]
    # The service's own CPU per call barely moves when other work loads the machine: the robust ratio.
    figures["cpu_ratio"] = figures["bearer"]["cpu_ms_per_call"] / figures["dpop"]["cpu_ms_per_call"]
    figures["background_cores_max"] = max(noise)
    figures["signature_check_us"] = signature_check_us(key)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per mode, alternating")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each round")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--max-calls", type=int, default=60_000, help="cap per round")
    parser.add_argument(
        "--alg",
        default="ES256",
        choices=["ES256", "PS256", "RS256", "EdDSA"],
        help="the client key's algorithm",
    )
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()

    pin_self({int(CLIENT_CPU)})
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    key = DPoPKey.generate(options.alg)
    with (
        auth_service(
            "sqlite+aiosqlite:///auth.db", [{"resource": resource, "scopes": ["mcp:tools"]}], cpus=CLIENT_CPU
        ) as auth,
        tools_service(
            {"MCP_AUTH": "on", "MCP_AUTH_ISSUER": auth.issuer}, port=port, cpus=SERVER_CPU
        ) as tools,
    ):
        client_id, secret = auth.machine_client(resource, ["mcp:tools"])
        tokens = {
            "bearer": token(auth.issuer, client_id, secret, resource, None),
            "dpop": token(auth.issuer, client_id, secret, resource, key),
        }
        print(
            f"one mcp-tools process on CPU {SERVER_CPU}; load generator on CPU {CLIENT_CPU} "
            f"(of {os.cpu_count()}); proofs {options.alg}, {options.concurrency} in flight, "
            f"{options.rounds} x {options.seconds:g} s per mode, interleaved"
        )
        figures = run(measure(tools, resource, key, tokens, options))
    bearer, dpop = figures["bearer"], figures["dpop"]
    print(f"{'':10}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'CPU ms':>9}")
    for name, values in (("bearer", bearer), ("DPoP", dpop)):
        print(
            f"{name:10}{values['calls_per_s']:10.0f}{values['p50_ms']:9.2f}{values['p95_ms']:9.2f}"
            f"{values['cpu_ms_per_call']:9.3f}"
        )
    verdict = "PASS" if figures["ratio"] >= TARGET_RATIO else "FAIL"
    print(f"ratio DPoP/bearer: {figures['ratio']:.3f}  (target >= {TARGET_RATIO}) {verdict}")
    print(f"CPU per call, bearer/DPoP: {figures['cpu_ratio']:.3f} (the same ratio, robust to other load)")
    extra = (dpop["cpu_ms_per_call"] - bearer["cpu_ms_per_call"]) * 1000
    print(
        f"DPoP's extra CPU per call: {extra:.0f} µs, of which one {options.alg} signature check "
        f"is {figures['signature_check_us']:.0f} µs on this machine now"
    )
    if figures["background_cores_max"] > 0.2:
        print(f"note: other processes used up to {figures['background_cores_max']:.2f} cores during a round")
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
