"""Runs every benchmark here and prints one table: figure, value, baseline, ratio, target, verdict.

    make bench                       # = uv run python bench/report.py
    uv run python bench/report.py --quick

Each benchmark runs as its own process (its output is shown as it goes) and hands its figures over as
JSON in bench/results/ (gitignored; nothing else is written). Every ratio is against a baseline
measured in the same run. The machine (CPU, cores, Python, PostgreSQL) is printed with the table,
and so is how busy it was with other work: on a shared 2-vCPU machine that moves every rate.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import RESULTS_DIR, machine

HERE = Path(__file__).parent
BENCH_TIMEOUT = 1500  # seconds per benchmark process, so `make bench` always ends


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("pass" if self.passed else "FAIL")


def run_script(name: str, args: list[str]) -> tuple[str, dict[str, Any] | None]:
    """Run bench/<name>.py, echoing its output; its JSON figures if it writes any."""
    RESULTS_DIR.mkdir(exist_ok=True)
    json_path = RESULTS_DIR / f"{name}.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / f"{name}.py"), *args]
    if name != "token_check":
        command += ["--json", str(json_path)]
    print(f"\n=== {name} ({' '.join(args) or 'defaults'})", flush=True)
    started = time.monotonic()
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            output.append(line)
        try:
            process.wait(timeout=BENCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    print(f"=== {name}: exit {process.returncode} after {time.monotonic() - started:.0f} s", flush=True)
    figures = json.loads(json_path.read_text()) if json_path.exists() else None
    return "".join(output), figures


def token_check_rows(output: str) -> list[Row]:
    rows = []
    for alg, raw, cold, cached in re.findall(
        r"^(ES256|RS256)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s", output, flags=re.MULTILINE
    ):
        raw_us, cold_us, cached_us = float(raw), float(cold), float(cached)
        rows.append(row(f"token check {alg}, cold (µs)", cold_us, raw_us, "<= 3x raw verify", 3.0, "µs"))
        rows.append(row(f"token check {alg}, cached (µs)", cached_us, raw_us, "<= 1x raw verify", 1.0, "µs"))
    return rows or [Row("token check", "no figures (see its output above)", "", None, "", False)]


def row(
    figure: str, value: float, baseline: float, target: str, limit: float, unit: str, at_least: bool = False
) -> Row:
    ratio = value / baseline if baseline else float("nan")
    passed = ratio >= limit if at_least else ratio <= limit
    return Row(figure, f"{value:,.1f} {unit}", f"{baseline:,.1f} {unit}", ratio, target, passed)


def info(figure: str, value: str) -> Row:
    return Row(figure, value, "", None, "", None)


def tool_call_rows(figures: dict[str, Any] | None) -> list[Row]:
    if figures is None:
        return [Row("MCP tool calls/s", "failed (see output above)", "", None, "", False)]
    on, off, memory = figures["on"], figures["off"], figures["memory_mib"]
    return [
        row(
            "MCP tool calls/s, auth on (1 process)",
            on["calls_per_s"],
            off["calls_per_s"],
            ">= 0.95x auth off",
            0.95,
            "/s",
            at_least=True,
        ),
        info("MCP tool call p50, auth on / off", f"{on['p50_ms']:.2f} / {off['p50_ms']:.2f} ms"),
        info("peak RSS mcp-tools, auth on / off", f"{memory['on']:.0f} / {memory['off']:.0f} MiB"),
    ]


TOKEN_TARGETS = {"client_credentials": 1000.0, "refresh_token": 600.0, "authorization_code": 500.0}


def token_endpoint_rows(figures: dict[str, Any] | None) -> list[Row]:
    if figures is None:
        return [Row("/token", "failed (see output above)", "", None, "", False)]
    rows = []
    for grant, target in TOKEN_TARGETS.items():
        two, one = figures.get(f"{grant}/2"), figures.get(f"{grant}/1")
        if two is None or one is None:
            continue
        rows.append(
            row(f"/token {grant}, 2 workers (/s)", two["per_s"], target, ">= 1x target", 1.0, "/s", True)
        )
        rows.append(
            info(
                f"/token {grant} 1 worker; CPU/req",
                f"{one['per_s']:,.0f}/s; {two['service_cpu_ms_per_request']:.2f} ms CPU/req",
            )
        )
    for workers, memory in figures["memory_mib"].items():
        rows.append(
            info(
                f"peak RSS mcp-auth, {workers} worker(s)",
                f"{memory['largest']:.0f} MiB per process, {memory['total']:.0f} MiB in all",
            )
        )
    return rows


def refresh_scaling_rows(figures: dict[str, Any] | None) -> list[Row]:
    if figures is None:
        return [Row("refresh scaling", "failed (see output above)", "", None, "", False)]
    small, large = figures["small"], figures["large"]
    return [
        row(
            f"refresh p50 at {large['grants']:,} grants (ms)",
            large["p50_ms"],
            small["p50_ms"],
            f"<= 1.2x at {small['grants']:,}",
            1.2,
            "ms",
        ),
        info(
            f"refresh p95 at {large['grants']:,} / {small['grants']:,}",
            f"{large['p95_ms']:.2f} / {small['p95_ms']:.2f} ms ({figures['growth_p95']:.2f}x)",
        ),
        info(f"seeding {large['grants']:,} grants with COPY", f"{large['seed_seconds']:.1f} s"),
    ]


def cli_startup_rows(figures: dict[str, Any] | None) -> list[Row]:
    if figures is None:
        return [Row("CLI start-up", "failed (see output above)", "", None, "", False)]
    baseline = figures["python -c pass"]["median_s"]
    rows = []
    for name, figure in figures.items():
        if figure["target_s"] is None:
            continue
        median = figure["median_s"]
        rows.append(
            Row(
                f"{name} (s)",
                f"{median:.3f} s (min {figure['min_s']:.3f})",
                f"python -c pass {baseline:.3f} s",
                median / baseline,
                f"< {figure['target_s']} s",
                median < figure["target_s"],
            )
        )
    return rows


def dpop_rows(tool_calls: dict[str, Any] | None, refreshes: dict[str, Any] | None) -> list[Row]:
    rows = []
    if tool_calls is None:
        rows.append(Row("MCP tool calls/s, DPoP", "failed (see output above)", "", None, "", False))
    else:
        bearer, dpop = tool_calls["bearer"]["calls_per_s"], tool_calls["dpop"]["calls_per_s"]
        rows.append(
            row("MCP tool calls/s, DPoP (1 process)", dpop, bearer, ">= 0.85x bearer", 0.85, "/s", True)
        )
    if refreshes is None:
        rows.append(Row("/token refresh, DPoP", "failed (see output above)", "", None, "", False))
    else:
        redis, database = refreshes["redis"], refreshes["database"]
        rows.append(
            row(
                "/token refresh/s, DPoP (jtis in Redis)",
                redis["dpop"]["per_s"],
                redis["plain"]["per_s"],
                ">= 0.85x without",
                0.85,
                "/s",
                True,
            )
        )
        rows.append(
            info("/token refresh CPU, without / with DPoP", _cpu(redis["plain"], redis["dpop"], "request"))
        )
        rows.append(
            info(
                "/token refresh/s, DPoP (jtis in Postgres)",
                f"{database['dpop']['per_s']:,.0f} vs {database['plain']['per_s']:,.0f}/s "
                f"({database['ratio']:.2f}x)",
            )
        )
    return rows


def jwt_bearer_rows(figures: dict[str, Any] | None) -> list[Row]:
    if figures is None:
        return [Row("/token ID-JAG exchanges/s", "failed (see output above)", "", None, "", False)]
    baseline, measured = figures["client_credentials"], figures["id_jag"]
    return [
        row(
            "/token ID-JAG exchanges/s (jwt-bearer)",
            measured["per_s"],
            baseline["per_s"],
            ">= 0.7x client_credentials",
            0.7,
            "/s",
            True,
        ),
        info("/token CPU, client_credentials / ID-JAG", _cpu(baseline, measured, "request")),
    ]


def _cpu(baseline: dict[str, Any], measured: dict[str, Any], unit: str) -> str:
    """The service's own CPU per request of two modes, and their ratio (robust to other load)."""
    key = next(name for name in baseline if name.startswith("cpu_ms_per"))
    before, after = baseline[key], measured[key]
    return f"{before:.3f} / {after:.3f} CPU-ms per {unit} ({before / after:.2f}x)"


def print_table(rows: list[Row], description: dict[str, str], load: str) -> None:
    print("\n" + "=" * 100)
    print(
        f"machine: {description['cpu']}, {description['cores']} cores; Python {description['python']}; "
        f"PostgreSQL {description['postgres']}; Linux {description['kernel']}"
    )
    print(f"load average before / after: {load}")
    widths = (46, 30, 14, 8, 22, 5)
    header = ("figure", "value", "baseline", "ratio", "target", "")
    print("".join(f"{cell:<{width}}" for cell, width in zip(header, widths, strict=True)))
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        cells = (r.figure, r.value, r.baseline, ratio, r.target, r.verdict)
        print("".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test, noisier)")
    options = parser.parse_args()
    quick = options.quick
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    description = machine()

    token_check_output, _ = run_script("token_check", ["--rounds", "3"] if quick else [])
    _, tool_calls = run_script("mcp_tool_calls", ["--rounds", "3", "--seconds", "2"] if quick else [])
    _, token_endpoint = run_script(
        "token_endpoint", ["--rounds", "2", "--seconds", "2", "--seed", "20000"] if quick else []
    )
    _, scaling = run_script(
        "refresh_scaling", ["--large", "100000", "--rounds", "2", "--per-round", "200"] if quick else []
    )
    _, cli = run_script("cli_startup", ["--rounds", "3"] if quick else [])
    _, dpop_calls = run_script("dpop_tool_calls", ["--rounds", "3", "--seconds", "2"] if quick else [])
    _, dpop_refreshes = run_script(
        "dpop_refresh", ["--rounds", "2", "--seconds", "2", "--per-run", "1500"] if quick else []
    )
    _, jwt_bearer = run_script("jwt_bearer", ["--rounds", "2", "--seconds", "2"] if quick else [])
    rows = [
        *cli_startup_rows(cli),
        *token_check_rows(token_check_output),
        *tool_call_rows(tool_calls),
        *token_endpoint_rows(token_endpoint),
        *refresh_scaling_rows(scaling),
        *dpop_rows(dpop_calls, dpop_refreshes),
        *jwt_bearer_rows(jwt_bearer),
    ]
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print_table(rows, description, f"{' '.join(load_before)} / {' '.join(load_after)} (1, 5, 15 min)")
    summary = {"machine": description, "rows": [r.__dict__ for r in rows]}
    (RESULTS_DIR / "report.json").write_text(json.dumps(summary, indent=2, default=str))
    failed = [r.figure for r in rows if r.passed is False]
    print(f"\n{len(failed)} target(s) missed" + (f": {', '.join(failed)}" if failed else ""))


if __name__ == "__main__":
    main()
