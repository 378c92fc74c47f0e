"""Where DPoP's extra CPU per MCP tool call goes: the proof's signature, in the context of a whole request.

    uv run python bench/dpop_cost_split.py [--reps 8] [--calls 3000] [--alg ES256]

`dpop_tool_calls.py` measures the rates; this splits the difference, in one process so that other work
on the machine cancels out. The mcp-tools app (auth on, DPoP allowed, replay memory in process) is built
here and called directly through ASGI (no sockets, no uvicorn), pinned to CPU 0; an idle `mcp-auth serve`
on CPU 1 issues the two tokens. Four kinds of call are interleaved one by one and this thread's CPU time
is summed per kind:

- `bearer`: the bearer token's call (its check cached by the kit);
- `bearer+verify`: the same call right after an untimed check of one proof signature (of another
  request): what a signature check costs the rest of the request, by the CPU caches it evicts;
- `dpop`: a DPoP-bound token's call with a fresh proof;
- `dpop-nosig`: the same with the proof signature check answered "valid" without computing it — an
  experiment to measure the rest of DPoP's cost, never the shipped behaviour (every proof here is
  genuinely signed).

Printed: the median µs of each over the repetitions, and the split of DPoP's extra CPU per call into its
signature (in context) and everything else. A tight loop of signature checks is printed for comparison.
The tool runs in a worker thread in both modes; its CPU is not counted (thread time of the event loop).
Logging is set up as `mcp-tools serve` does it (JSON access lines), written to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import jwt
from _harness import auth_service, free_port, pin_self
from dpop_tool_calls import dpop_requests, signature_check_us, token
from mcp_tool_calls import tools_call_request

from mcp_auth_kit import DPoPKey, setup_json_logging
from mcp_auth_kit.rfc7515_compact_jws import split_compact

KINDS = ("bearer", "bearer+verify", "dpop", "dpop-nosig")


def asgi_request(raw: bytes, port: int) -> tuple[dict[str, Any], bytes]:
    """The ASGI scope and body of one HTTP/1.1 request as `_harness.http_request` builds it."""
    head, body = raw.split(b"\r\n\r\n", 1)
    request_line, *lines = head.split(b"\r\n")
    method, target, _ = request_line.split(b" ")
    headers = [
        (name.strip().lower(), value.strip()) for name, _, value in (line.partition(b":") for line in lines)
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method.decode(),
        "scheme": "http",
        "path": target.decode(),
        "raw_path": target,
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", port),
    }
    return scope, body


async def call(app: Any, request: tuple[dict[str, Any], bytes]) -> int:
    """One request through the app; `request` from `asgi_request` (parsed before the clock starts)."""
    scope, body = request
    scope = {**scope, "headers": list(scope["headers"])}  # each call gets a scope of its own
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the app never reads past the body here
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def switchable_signature_check(alg: str) -> dict[str, bool]:
    """Make PyJWT's algorithm class for `alg` answer "valid" without checking while the flag is set."""
    algorithm_class = type(jwt.get_algorithm_by_name(alg))
    real: Callable[..., bool] = algorithm_class.verify
    skip = {"on": False}

    def verify(self: Any, message: bytes, key: Any, signature: bytes) -> bool:
        return True if skip["on"] else real(self, message, key, signature)

    algorithm_class.verify = verify  # type: ignore[method-assign]
    return skip


async def measure(
    app: Any, port: int, resource: str, key: DPoPKey, tokens: dict[str, str], options: argparse.Namespace
) -> dict[str, list[float]]:
    bearer = tools_call_request(port, tokens["bearer"])
    skip = switchable_signature_check(options.alg)
    algorithm = jwt.get_algorithm_by_name(options.alg)
    public_key = jwt.PyJWK(key.public_jwk).key
    spare = [split_compact(key.proof("POST", resource), 8192) for _ in range(200)]
    for raw in [bearer] * 200 + dpop_requests(port, resource, key, tokens["dpop"], 200):
        assert await call(app, asgi_request(raw, port)) == 200
    per_kind: dict[str, list[float]] = defaultdict(list)
    for rep in range(options.reps):
        proofs = iter(dpop_requests(port, resource, key, tokens["dpop"], options.calls))
        spent: dict[str, float] = defaultdict(float)
        for index in range(options.calls):
            kind = KINDS[(index + rep) % len(KINDS)]
            request = asgi_request(next(proofs) if kind.startswith("dpop") else bearer, port)
            if kind == "bearer+verify":
                jws = spare[index % len(spare)]
                algorithm.verify(jws.signing_input, public_key, jws.signature)
            skip["on"] = kind == "dpop-nosig"
            started = time.thread_time()
            status = await call(app, request)
            spent[kind] += time.thread_time() - started
            if status != 200:
                raise SystemExit(f"{kind}: HTTP {status}")
        calls_per_kind = options.calls / len(KINDS)
        for kind in KINDS:
            per_kind[kind].append(spent[kind] / calls_per_kind * 1e6)
        print(
            "  rep",
            rep + 1,
            "  ".join(f"{kind} {per_kind[kind][-1]:.0f}" for kind in KINDS),
            "µs",
            flush=True,
        )
    skip["on"] = False
    return per_kind


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--calls", type=int, default=3000, help="calls per repetition, all kinds together")
    parser.add_argument("--alg", default="ES256", choices=["ES256", "PS256", "RS256", "EdDSA"])
    options = parser.parse_args()

    pin_self({0})
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    key = DPoPKey.generate(options.alg)
    with auth_service(
        "sqlite+aiosqlite:///auth.db", [{"resource": resource, "scopes": ["mcp:tools"]}], cpus="1"
    ) as auth:
        client_id, secret = auth.machine_client(resource, ["mcp:tools"])
        tokens = {
            "bearer": token(auth.issuer, client_id, secret, resource, None),
            "dpop": token(auth.issuer, client_id, secret, resource, key),
        }
        os.environ.update(
            {
                "MCP_AUTH": "on",
                "MCP_AUTH_ISSUER": auth.issuer,
                "MCP_RESOURCE_URL": resource,
                "MCP_PORT": str(port),
            }
        )
        from mcp_tools_server.app import create_app
        from mcp_tools_server.settings import load_settings

        # As `mcp-tools serve` logs (one JSON access line per call), written nowhere.
        setup_json_logging(stream=open(os.devnull, "w"))  # noqa: SIM115 - open for the process's life
        app = create_app(load_settings())

        async def run_app() -> dict[str, list[float]]:
            async with app.router.lifespan_context(app):
                return await measure(app, port, resource, key, tokens, options)

        per_kind = asyncio.run(run_app())
    median = {kind: statistics.median(values) for kind, values in per_kind.items()}

    def paired(a: str, b: str) -> float:
        return statistics.median(x - y for x, y in zip(per_kind[a], per_kind[b], strict=True))

    print(
        f"one process, CPU 0; {options.alg} proofs; {options.reps} x {options.calls} calls, kinds interleaved"
    )
    print(
        "median µs of event-loop CPU per call: " + ", ".join(f"{kind} {median[kind]:.0f}" for kind in KINDS)
    )
    ratio = median["bearer"] / median["dpop"]
    print(f"DPoP's extra per call: {paired('dpop', 'bearer'):.0f} µs (CPU ratio bearer/DPoP {ratio:.3f})")
    print(f"  its signature check, in context: {paired('dpop', 'dpop-nosig'):.0f} µs")
    print(f"  everything else DPoP adds: {paired('dpop-nosig', 'bearer'):.0f} µs")
    toll = paired("bearer+verify", "bearer")
    print(f"a signature check's toll on the rest of a bearer call (CPU caches): {toll:.0f} µs")
    print(f"one signature check in a tight loop: {signature_check_us(key):.0f} µs")


if __name__ == "__main__":
    main()
