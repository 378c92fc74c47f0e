"""What authentication costs an MCP server: tool calls per second on one process, auth on versus off.

    uv run python bench/mcp_tool_calls.py [--rounds 5] [--seconds 5] [--concurrency 16]

Two `mcp-tools serve` processes, one with MCP_AUTH=on (tokens checked by the kit's JWTVerifier against a
real `mcp-auth serve`, dev upstream, SQLite) and one with MCP_AUTH=off, both pinned to CPU 0; the load
generator (this process) and the idle auth service are pinned to CPU 1, so the server has a core of its
own. Rounds alternate between the two (on/off, then off/on), each posting 2026-07-28 stateless JSON-mode
`tools/call calculate` requests over keep-alive connections. The token is one ES256 access token minted
by client_credentials for the MCP server's URL and presented on every call, as a client does.
Figures: median calls/s of each, their ratio (target >= 0.95), p50 latency, and peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from collections.abc import Iterator
from itertools import repeat
from typing import Any

import httpx
from _harness import (
    CpuWindow,
    LoadResult,
    auth_service,
    drive,
    free_port,
    http_request,
    median,
    pin_self,
    process_tree,
    run,
    service_memory,
    service_pid,
    tools_service,
    write_json,
)

from mcp_testing.processes import ServiceProcess

TARGET_RATIO = 0.95
SERVER_CPU, CLIENT_CPU = "0", "1"
PROTOCOL = "2026-07-28"
EXPRESSION = "7 ** 8"
EXPECTED = b'"text":"5764801"'


def tools_call_request(port: int, token: str | None) -> bytes:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "calculate",
            "arguments": {"expression": EXPRESSION},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": PROTOCOL,
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "calculate",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http_request("POST", "/mcp", port, headers, json.dumps(body).encode())


def answered(status: int, body: bytes) -> bool:
    return status == 200 and EXPECTED in body and b'"isError":false' in body


def mint_token(issuer: str, client_id: str, secret: str, resource: str) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = httpx.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "resource": resource, "scope": "mcp:tools"},
        headers={"Authorization": f"Basic {basic}"},
        trust_env=False,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def one_round(service: ServiceProcess, token: str | None, options: argparse.Namespace) -> LoadResult:
    requests: Iterator[bytes] = repeat(tools_call_request(service.port, token))
    return await drive(
        service.port,
        requests,
        check=answered,
        concurrency=options.concurrency,
        duration=options.seconds,
        max_requests=options.max_calls,
    )


async def measure(
    on: ServiceProcess, off: ServiceProcess, token: str, options: argparse.Namespace
) -> dict[str, Any]:
    services = {"on": (on, token), "off": (off, None)}
    for name, (service, bearer) in services.items():  # warm-up: imports, caches, JIT-less but still
        warm = await drive(
            service.port,
            repeat(tools_call_request(service.port, bearer)),
            check=answered,
            concurrency=options.concurrency,
            duration=1.5,
            max_requests=50_000,
        )
        if warm.errors or not warm.completed:
            raise SystemExit(f"auth {name}: calls fail during warm-up: {warm.first_error}")
    samples: dict[str, list[LoadResult]] = {"on": [], "off": []}
    noise: list[float] = []
    ours = process_tree(service_pid(on)) + process_tree(service_pid(off))
    for index in range(options.rounds):
        order = ("on", "off") if index % 2 == 0 else ("off", "on")
        for name in order:
            service, bearer = services[name]
            with CpuWindow(ours) as cpu:
                result = await one_round(service, bearer, options)
            if result.errors:
                raise SystemExit(f"auth {name}: {result.errors} failed calls, first: {result.first_error}")
            samples[name].append(result)
            noise.append(cpu.other_cores)
            print(
                f"  round {index + 1} auth {name:3}: {result.rate:8.0f} calls/s  "
                f"p50 {result.percentile_ms(0.5):6.2f} ms  p95 {result.percentile_ms(0.95):6.2f} ms  "
                f"(other processes used {cpu.other_cores:.2f} cores)"
            )
    figures: dict[str, Any] = {
        name: {
            "calls_per_s": median([r.rate for r in results]),
            "p50_ms": median([r.percentile_ms(0.5) for r in results]),
            "p95_ms": median([r.percentile_ms(0.95) for r in results]),
            "rounds": [round(r.rate, 1) for r in results],
        }
        for name, results in samples.items()
    }
    figures["ratio"] = figures["on"]["calls_per_s"] / figures["off"]["calls_per_s"]
    figures["background_cores_max"] = max(noise)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per mode, alternating")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each round")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--max-calls", type=int, default=200_000, help="cap per round")
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py does)")
    options = parser.parse_args()

    pin_self({int(CLIENT_CPU)})
    port_on = free_port()
    resource = f"http://127.0.0.1:{port_on}/mcp"
    with (
        # SQLite: the auth service only mints one token here and serves the JWKS once.
        auth_service(
            "sqlite+aiosqlite:///auth.db",
            [{"resource": resource, "scopes": ["mcp:tools", "github:repos"]}],
            cpus=CLIENT_CPU,
        ) as auth,
        tools_service(
            {"MCP_AUTH": "on", "MCP_AUTH_ISSUER": auth.issuer}, port=port_on, cpus=SERVER_CPU
        ) as on,
        tools_service({"MCP_AUTH": "off"}, cpus=SERVER_CPU) as off,
    ):
        client_id, secret = auth.machine_client(resource, ["mcp:tools"])
        token = mint_token(auth.issuer, client_id, secret, resource)
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        refused = httpx.post(on.url + "/mcp", content=b"{}", trust_env=False)
        assert refused.status_code == 401, "the auth-on service must refuse a call without a token"
        print(
            f"one mcp-tools process per mode on CPU {SERVER_CPU}; load generator on CPU {CLIENT_CPU} "
            f"(of {os.cpu_count()}); token alg {header['alg']}, {options.concurrency} in flight, "
            f"{options.rounds} x {options.seconds:g} s per mode, interleaved"
        )
        figures = run(measure(on, off, token, options))
        figures["memory_mib"] = {
            "on": service_memory(on).largest_mib,
            "off": service_memory(off).largest_mib,
            "auth": service_memory(auth.process).largest_mib,
        }
    on_, off_ = figures["on"], figures["off"]
    print(f"{'':10}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'peak RSS':>11}")
    for name, values in (("auth on", on_), ("auth off", off_)):
        key = name.split()[1]
        print(
            f"{name:10}{values['calls_per_s']:10.0f}{values['p50_ms']:9.2f}{values['p95_ms']:9.2f}"
            f"{figures['memory_mib'][key]:8.0f} MiB"
        )
    verdict = "PASS" if figures["ratio"] >= TARGET_RATIO else "FAIL"
    print(f"ratio on/off: {figures['ratio']:.3f}  (target >= {TARGET_RATIO}) {verdict}")
    print(f"auth service peak RSS (idle, minted one token): {figures['memory_mib']['auth']:.0f} MiB")
    if figures["background_cores_max"] > 0.2:
        print(f"note: other processes used up to {figures['background_cores_max']:.2f} cores during a round")
    write_json(options.json, figures)


if __name__ == "__main__":
    main()
