"""What every benchmark here shares: real services on loopback, a lean HTTP load generator, and the meters.

The load generator speaks HTTP/1.1 over keep-alive sockets with pre-built request bytes, so it costs a
few tens of µs per request and the figures describe the service, not the client. Every loop is bounded
by a request count and a deadline. Services are the shipped commands (`mcp-auth serve`, `mcp-tools
serve`) started through `mcp_testing.processes.ServiceProcess`, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from mcp_testing.postgres import admin_url
from mcp_testing.processes import ServiceProcess, free_port, venv_script

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RESULTS_DIR = Path(__file__).parent / "results"

# --- the machine ------------------------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def postgres_version() -> str:
    try:
        connection = await asyncpg.connect(admin_url(), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return f"unavailable ({type(error).__name__})"
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def machine() -> dict[str, str]:
    """The machine the figures were measured on, as the report prints it."""
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "postgres": asyncio.run(postgres_version()),
        "kernel": platform.release(),
    }


# --- processes: memory, CPU, pinning ----------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces; fields after it are space-separated.
    name_end = raw.rfind(")")
    return [raw[raw.find("(") + 1 : name_end], *raw[name_end + 2 :].split()]


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (a uvicorn supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[2]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def peak_rss_mib(pid: int) -> float:
    """VmHWM (the peak resident set size) of one process, in MiB; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Memory:
    """Peak RSS of a service: its largest process and all its processes together."""

    largest_mib: float
    total_mib: float
    processes: int

    def describe(self) -> str:
        if self.processes == 1:
            return f"{self.largest_mib:.0f} MiB"
        return f"{self.largest_mib:.0f} MiB per process max, {self.total_mib:.0f} MiB over {self.processes}"


def service_memory(service: ServiceProcess) -> Memory:
    pid = service_pid(service)
    peaks = [peak_rss_mib(p) for p in process_tree(pid)]
    return Memory(max(peaks), sum(peaks), len(peaks))


def service_pid(service: ServiceProcess) -> int:
    process = service._process  # ServiceProcess keeps the Popen private; the pid is all we read
    assert process is not None, "the service is not running"
    return process.pid


def _cpu_ticks_by_pid() -> dict[int, tuple[str, int]]:
    ticks = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            ticks[int(entry.name)] = (fields[0], int(fields[12]) + int(fields[13]))  # utime + stime
    return ticks


@dataclass
class CpuWindow:
    """CPU used during a measurement (in cores): the service's processes, this load generator,
    PostgreSQL (every `postgres` process: ours cannot be told apart) and everybody else (noise)."""

    service: Sequence[int]
    _start: dict[int, tuple[str, int]] = field(default_factory=dict)
    _started_at: float = 0.0
    elapsed: float = 0.0
    service_cores: float = 0.0
    loadgen_cores: float = 0.0
    postgres_cores: float = 0.0
    other_cores: float = 0.0

    def __enter__(self) -> CpuWindow:
        self._start = _cpu_ticks_by_pid()
        self._started_at = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.elapsed = time.monotonic() - self._started_at
        end = _cpu_ticks_by_pid()
        used = {"service": 0, "loadgen": 0, "postgres": 0, "other": 0}
        service = set(self.service)
        for pid, (name, ticks) in end.items():
            delta = ticks - self._start.get(pid, (name, 0))[1]
            if pid in service:
                used["service"] += delta
            elif pid == os.getpid():
                used["loadgen"] += delta
            elif name == "postgres":
                used["postgres"] += delta
            else:
                used["other"] += delta
        scale = CLOCK_TICKS * max(self.elapsed, 1e-9)
        self.service_cores = used["service"] / scale
        self.loadgen_cores = used["loadgen"] / scale
        self.postgres_cores = used["postgres"] / scale
        self.other_cores = used["other"] / scale

    def service_ms_per_request(self, completed: int) -> float:
        """The service's CPU time per request: unlike a rate, it barely moves when others load the machine."""
        return self.service_cores * self.elapsed * 1000 / completed if completed else float("nan")


def _busy_ticks() -> int:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


async def wait_for_quiet(threshold_cores: float = 0.3, max_wait: float = 20.0) -> float:
    """Wait (at most `max_wait` s) until the machine, with our services idle, is almost idle; returns the
    CPU others used in the last half second. Other work on a shared machine would skew the next run."""
    deadline = time.monotonic() + max_wait
    while True:
        before = _busy_ticks()
        await asyncio.sleep(0.5)
        busy = (_busy_ticks() - before) / CLOCK_TICKS / 0.5
        if busy <= threshold_cores or time.monotonic() > deadline:
            return busy


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """`argv` run on the given CPUs (every thread and child inherits it), or as is when `cpus` is None."""
    return ["taskset", "-c", cpus, *argv] if cpus is not None else list(argv)


def pin_self(cpus: set[int]) -> None:
    with contextlib.suppress(OSError):  # fewer cores than asked: the report says so anyway
        os.sched_setaffinity(0, cpus & os.sched_getaffinity(0) or os.sched_getaffinity(0))


# --- the load generator -----------------------------------------------------------------------------


def http_request(method: str, path: str, port: int, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class LoadError(Exception):
    pass


@dataclass
class LoadResult:
    completed: int
    errors: int
    elapsed: float
    latencies: list[float]
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


Check = Callable[[int, bytes], bool]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    marker = lowered.find(b"\r\ncontent-length:")
    if marker < 0:
        raise LoadError("a response without Content-Length (chunked responses are not expected here)")
    length = int(lowered[marker + 17 : lowered.find(b"\r\n", marker + 2)])
    body = await reader.readexactly(length)
    return status, body, b"\r\nconnection: close" in lowered


async def drive(
    port: int,
    requests: Iterator[bytes],
    *,
    check: Check,
    concurrency: int,
    duration: float,
    max_requests: int,
    reconnect_every: int = 0,
) -> LoadResult:
    """Send `requests` over `concurrency` keep-alive connections until the deadline, the count, or the
    iterator runs out; responses `check` refuses are counted as errors (and the first one kept).

    `reconnect_every` N > 0 replaces each connection after N requests, as a stream of clients would:
    `--workers N` share one listening socket, and a connection stays with the worker that accepted it.
    """
    result = LoadResult(0, 0, 0.0, [])
    connections = [await asyncio.open_connection(HOST, port) for _ in range(concurrency)]
    sent = 0
    deadline = 0.0

    async def worker(index: int) -> None:
        nonlocal sent
        reader, writer = connections[index]
        on_this_connection = 0
        while sent < max_requests and time.monotonic() < deadline:
            request = next(requests, None)
            if request is None:
                return
            sent += 1
            started = time.perf_counter()
            writer.write(request)
            status, body, closing = await _read_response(reader)
            if check(status, body):
                result.completed += 1
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1
                result.first_error = result.first_error or f"{status} {body[:300]!r}"
            on_this_connection += 1
            if closing or on_this_connection == reconnect_every:
                on_this_connection = 0
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                connections[index] = reader, writer

    started = time.monotonic()
    deadline = started + duration
    try:
        # A hard stop a little after the deadline, in case the service stops answering.
        async with asyncio.timeout(duration + 30):
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
    finally:
        result.elapsed = time.monotonic() - started
        for _, writer in connections:
            writer.close()
    return result


def run(coroutine: Any) -> Any:
    """asyncio.run on uvloop when it is installed (the servers use it too), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the services -----------------------------------------------------------------------------------


@dataclass
class AuthService:
    """A running `mcp-auth serve` and how to administer it."""

    process: ServiceProcess
    issuer: str
    env: dict[str, str]
    workdir: str
    command: tuple[str, ...] = ()  # how to run `mcp-auth` (default: this environment's)

    @property
    def port(self) -> int:
        return self.process.port

    def cli(self, *args: str) -> str:
        return mcp_auth(self.env, self.workdir, *args, command=self.command)

    def machine_client(self, resource: str, scopes: Sequence[str]) -> tuple[str, str]:
        scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
        created = json.loads(
            self.cli(
                "clients",
                "add",
                "--name",
                "bench",
                "--machine",
                "--resource",
                resource,
                *scope_args,
                "--json",
            )
        )
        return created["client_id"], created["client_secret"]


def mcp_auth(env: Mapping[str, str], workdir: str, *args: str, command: Sequence[str] = ()) -> str:
    completed = subprocess.run(
        [*(command or [venv_script("mcp-auth")]), *args],
        env={**os.environ, **env},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"mcp-auth {' '.join(args)} failed: {completed.stderr.strip()}")
    return completed.stdout


def auth_env(database_url: str, port: int, resources: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {
        "AUTH_ISSUER": f"http://{HOST}:{port}",
        "AUTH_DATABASE_URL": database_url,
        "AUTH_SECRET_KEY": secrets.token_urlsafe(48),
        "AUTH_UPSTREAM": "dev",
        "AUTH_RESOURCES": json.dumps(list(resources)),
        "AUTH_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def auth_service(
    database_url: str,
    resources: Sequence[Mapping[str, Any]],
    *,
    workers: int = 1,
    cpus: str | None = None,
    env: Mapping[str, str] | None = None,
    migrate: bool = True,
    command: Sequence[str] = (),
) -> Iterator[AuthService]:
    """`mcp-auth serve --workers N` on a free loopback port, its working directory a temporary one.

    `command` runs another checkout's `mcp-auth` (bench/token_compare.py); by default this environment's."""
    port = free_port()
    settings = {**auth_env(database_url, port, resources), **(env or {})}
    executable = tuple(command) or (venv_script("mcp-auth"),)
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as workdir:
        if migrate:
            mcp_auth(settings, workdir, "migrate", command=executable)
        argv = pinned([*executable, "serve", "--workers", str(workers)], cpus)
        with ServiceProcess(argv, port=port, env=settings, cwd=workdir, ready_timeout=60) as process:
            yield AuthService(process, settings["AUTH_ISSUER"], settings, workdir, executable)


@contextlib.contextmanager
def tools_service(
    env: Mapping[str, str], *, port: int | None = None, cpus: str | None = None
) -> Iterator[ServiceProcess]:
    """One `mcp-tools serve` process (no --workers) on a loopback port, free unless given."""
    port = port or free_port()
    settings = {"MCP_RESOURCE_URL": f"http://{HOST}:{port}/mcp", "MCP_PORT": str(port), **env}
    argv = pinned([venv_script("mcp-tools"), "serve"], cpus)
    with (
        tempfile.TemporaryDirectory(prefix="bench-tools-") as workdir,
        ServiceProcess(argv, port=port, env=settings, cwd=workdir, ready_timeout=60) as process,
    ):
        yield process


def write_json(path: str | None, figures: Mapping[str, Any]) -> None:
    """Machine-readable figures for bench/report.py."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(figures, indent=2))
