"""`mcp-auth serve` keeps /metrics, /openapi.json and /docs off the public port (issue 13, finding 1),
and with `--workers N` every scrape counts every worker's requests.
"""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from mcp_testing.processes import free_port

from ..auth_process import dev_auth_service

OPERATOR_PATHS = ["/metrics", "/openapi.json", "/docs"]


def healthz_count(metrics: str) -> float:
    match = re.search(
        r'^http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$', metrics, re.M
    )
    return float(match.group(1)) if match else 0.0


def test_operator_documents_only_on_the_metrics_port(migrated_database: str) -> None:
    metrics_port = free_port()
    with dev_auth_service(migrated_database, env={"AUTH_METRICS_PORT": str(metrics_port)}) as service:
        for path in OPERATOR_PATHS:
            assert httpx.get(f"{service.issuer}{path}", trust_env=False).status_code == 404, path
        operator = f"http://127.0.0.1:{metrics_port}"
        httpx.get(f"{service.issuer}/healthz", trust_env=False)
        assert healthz_count(httpx.get(f"{operator}/metrics", trust_env=False).text) >= 1
        openapi = httpx.get(f"{operator}/openapi.json", trust_env=False).json()
        assert "/token" in openapi["paths"]
        assert not any(path in openapi["paths"] for path in OPERATOR_PATHS)
        docs = httpx.get(f"{operator}/docs", trust_env=False)
        assert "swagger" in docs.text.lower()
        assert docs.headers["content-type"].startswith("text/html")
        # The operator port serves nothing of the public surface.
        assert httpx.get(f"{operator}/token", trust_env=False).status_code == 404


def test_several_workers_answer_every_scrape_with_their_sum(migrated_database: str, tmp_path: Path) -> None:
    metrics_port = free_port()
    directory = tmp_path / "prometheus"
    env = {"AUTH_METRICS_PORT": str(metrics_port), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    requests = 60
    with dev_auth_service(migrated_database, workers=2, env=env) as service:

        def probe(_: int) -> int:
            # A fresh connection each time, so both workers get some of them.
            return httpx.get(f"{service.issuer}/healthz", trust_env=False).status_code

        before = healthz_count(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", trust_env=False).text)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(probe, range(requests))) == {200}
        assert len(workers_that_served_healthz(directory)) == 2, "both workers should have served requests"
        # Each scrape is a fresh connection that either worker may accept: all must report the sum.
        seen = {
            healthz_count(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", trust_env=False).text)
            - before
            for _ in range(12)
        }
    assert seen == {requests}


def workers_that_served_healthz(directory: Path) -> set[str]:
    """The process ids whose metric files count /healthz requests (prometheus-client's own file format)."""
    served = set()
    for path in directory.glob("counter_*.db"):
        values = MmapedDict(str(path), read_mode=True)  # type: ignore[no-untyped-call]
        try:
            entries = values.read_all_values()  # type: ignore[no-untyped-call]
            if any('"/healthz"' in key and value > 0 for key, value, _ in entries):
                served.add(path.stem.rsplit("_", 1)[1])
        finally:
            values.close()  # type: ignore[no-untyped-call]
    return served


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_port_must_differ_from_the_public_port(workers: str, migrated_database: str) -> None:
    import subprocess

    from mcp_testing.processes import venv_script

    from ..conftest import TEST_SECRET

    result = subprocess.run(
        [venv_script("mcp-auth"), "serve", "--workers", workers],
        env={
            "PATH": "/usr/bin:/bin",
            "AUTH_DATABASE_URL": migrated_database,
            "AUTH_SECRET_KEY": TEST_SECRET,
            "AUTH_PORT": "9555",
            "AUTH_METRICS_PORT": "9555",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mcp-auth: AUTH_METRICS_PORT: must differ from the public port 9555: metrics stay off it"
    )
