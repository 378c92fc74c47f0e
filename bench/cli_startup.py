"""How long an operator waits for the commands: `mcp-auth --help`, `mcp-auth clients list` (SQLite),
`mcp-tools --help`, and from `mcp-auth serve` starting to its `/readyz` answering 200.

Each figure is the median wall time of interleaved rounds, with bytecode compiled (as in the images, which
build with UV_COMPILE_BYTECODE=1): a first untimed run writes the .pyc files even where the environment
sets PYTHONDONTWRITEBYTECODE. The baseline, measured in the same rounds, is the interpreter starting and
exiting (`python -c pass`); the targets are absolute (issue 13). Everything runs in a temporary directory
on a SQLite database there, and `serve` on a free loopback port.

    uv run python bench/cli_startup.py [--rounds 9] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mcp_testing.processes import free_port, venv_script

# Seconds (issue 13): under these on this machine.
TARGETS = {
    "mcp-auth --help": 0.3,
    "mcp-auth clients list": 0.8,
    "mcp-tools --help": 0.3,
    "serve to /readyz": 2.0,
}
READY_TIMEOUT = 30.0


def environment(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["AUTH_DATABASE_URL"] = f"sqlite+aiosqlite:///{directory / 'auth.db'}"
    return env


def timed_command(argv: list[str], directory: Path) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        subprocess.run(argv, cwd=directory, env=environment(directory), capture_output=True, check=True)
        return time.perf_counter() - started

    return run


def serve_until_ready(directory: Path) -> Callable[[], float]:
    def run() -> float:
        port = free_port()
        env = environment(directory) | {"AUTH_ISSUER": f"http://127.0.0.1:{port}"}
        started = time.perf_counter()
        process = subprocess.Popen(
            [venv_script("mcp-auth"), "serve"],
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while time.perf_counter() - started < READY_TIMEOUT:
                if process.poll() is not None:
                    raise RuntimeError(f"mcp-auth serve exited with {process.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                        if answer.status == 200:
                            return time.perf_counter() - started
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.01)
            raise RuntimeError(f"/readyz did not answer 200 within {READY_TIMEOUT} s")
        finally:
            process.terminate()
            process.wait(timeout=15)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, help="write the figures here")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as temporary:
        directory = Path(temporary)
        subprocess.run(
            [venv_script("mcp-auth"), "migrate"], cwd=directory, env=environment(directory), check=True
        )
        measures: dict[str, Callable[[], float]] = {
            "python -c pass": timed_command([sys.executable, "-c", "pass"], directory),
            "mcp-auth --help": timed_command([venv_script("mcp-auth"), "--help"], directory),
            "mcp-auth clients list": timed_command([venv_script("mcp-auth"), "clients", "list"], directory),
            "mcp-tools --help": timed_command([venv_script("mcp-tools"), "--help"], directory),
            "serve to /readyz": serve_until_ready(directory),
        }
        for measure in measures.values():
            measure()  # untimed: writes bytecode, warms the page cache
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(options.rounds):
            for name, measure in measures.items():  # interleaved, so a busy moment hits every figure alike
                samples[name].append(measure())
    baseline = statistics.median(samples["python -c pass"])
    print(f"{'figure':<24}{'median':>10}{'min':>10}{'vs python':>12}{'target':>10}")
    figures = {}
    for name, values in samples.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        verdict = "" if target is None else ("pass" if median < target else "FAIL")
        print(
            f"{name:<24}{median:>9.3f}s{min(values):>9.3f}s{median / baseline:>11.1f}x"
            f"{'' if target is None else f'{target:>9.1f}s'}  {verdict}"
        )
        figures[name] = {"median_s": median, "min_s": min(values), "target_s": target, "samples": values}
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
