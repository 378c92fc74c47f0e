"""How `mcp-auth serve --workers N` shares `/token` load: requests and CPU per request, per worker.

    uv run python bench/token_workers.py [--workers 2] [--rounds 3] [--seconds 5] [--concurrency 32]

One `mcp-auth serve --workers N` on a PostgreSQL database of its own, unpinned (its workers may use every
core; so do the load generator and PostgreSQL), driven with client_credentials and refresh_token as in
bench/token_compare.py, each connection replaced every 20 requests as a stream of clients would
(uvicorn's workers share one listening socket and a keep-alive connection stays with the worker that
accepted it). Each worker's requests are read from its own Prometheus file (`http_requests_total` for
/token, the metrics every worker keeps in PROMETHEUS_MULTIPROC_DIR) and its CPU time from /proc, so the
table shows how evenly the work is spread and what each request costs on each worker. The last line
states the ceiling this implies on a machine whose N cores serve only the workers: N / CPU per request.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path

from _harness import _stat_fields, auth_service, drive, median, process_tree, run, service_pid
from prometheus_client.mmap_dict import MmapedDict
from token_compare import basic_request, seed
from token_endpoint import RESOURCE, RESOURCES, issued

from mcp_testing.postgres import temporary_database


def token_requests_by_worker(directory: Path) -> dict[int, float]:
    """/token requests each worker has answered so far, from its own `counter_<pid>.db`."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
            _metric, sample, labels, _help = json.loads(key)
            if sample == "http_requests_total" and labels.get("route") == "/token":
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            found[pid] = (int(fields[12]) + int(fields[13])) / ticks
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=20_000)
    options = parser.parse_args()
    grants = ["client_credentials", "refresh_token"]
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics, temporary_database() as url:
        env = {"AUTH_SECRET_KEY": secrets.token_urlsafe(48), "PROMETHEUS_MULTIPROC_DIR": metrics}
        with auth_service(url, RESOURCES, workers=options.workers, env=env) as service:
            client_id, secret = service.machine_client(RESOURCE, ["mcp:tools"])
            work = run(seed(url, argparse.Namespace(seed=options.seed), grants))
            root = service_pid(service.process)
            cc = basic_request(service.port, client_id, secret)

            def requests(grant: str) -> Iterator[bytes]:
                return repeat(cc) if grant == "client_credentials" else work.requests(grant, service.port)

            async def load(grant: str, seconds: float) -> float:
                result = await drive(
                    service.port,
                    requests(grant),
                    check=issued,
                    concurrency=options.concurrency,
                    duration=seconds,
                    max_requests=1_000_000,
                    reconnect_every=20,
                )
                return result.rate

            for grant in grants:
                run(load(grant, 1.0))  # warm-up
            # The workers: the processes keeping metrics (not the supervisor, nor multiprocessing's helper).
            keeping = {int(path.stem.split("_")[1]) for path in Path(metrics).glob("counter_*.db")}
            workers = [pid for pid in process_tree(root) if pid in keeping]
            print(f"--workers {options.workers}: worker pids {workers}; load {os.getloadavg()}")
            for grant in grants:
                shares, costs, rates = [], [], []
                for index in range(options.rounds):
                    counts_before = token_requests_by_worker(Path(metrics))
                    cpu_before = cpu_seconds(workers)
                    rate = run(load(grant, options.seconds))
                    counts = token_requests_by_worker(Path(metrics))
                    cpu = cpu_seconds(workers)
                    done = {pid: counts.get(pid, 0) - counts_before.get(pid, 0) for pid in workers}
                    total = sum(done.values()) or 1
                    parts = []
                    for pid in workers:
                        used = (cpu.get(pid, 0) - cpu_before.get(pid, 0)) * 1000
                        per = used / done[pid] if done[pid] else float("nan")
                        parts.append(
                            f"pid {pid}: {done[pid]:6.0f} req ({done[pid] / total:4.0%}) {per:.3f} CPU-ms/req"
                        )
                        costs.append(per)
                    shares.append(max(done.values()) / total)
                    rates.append(rate)
                    print(f"  round {index + 1} {grant:18} {rate:6.0f}/s  " + "; ".join(parts), flush=True)
                per_request = median(costs)
                print(
                    f"{grant}: {median(rates):.0f}/s over {options.workers} workers; busiest worker's share "
                    f"{median(shares):.0%} (even: {1 / options.workers:.0%}); {per_request:.3f} CPU-ms per "
                    f"request per worker -> ceiling about {1000 / per_request:,.0f}/s per core serving "
                    "only workers (N cores: N times that, before PostgreSQL's share)"
                )


if __name__ == "__main__":
    main()
