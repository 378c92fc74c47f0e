"""A Postgres cluster of one test's own (initdb + pg_ctl on a free port): stopping it never touches
the shared server on 5432.

initdb refuses to run as root, and CI runs as root: there every cluster command runs as the
`postgres` OS user (which the Debian package creates) through `runuser`, in a directory it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_testing.processes import free_port

CLUSTER_OWNER = "postgres"


def _binary(name: str) -> str:
    """A server binary: on PATH, else Debian's versioned directory (newest version first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]), reverse=True
    )
    if not candidates:
        pytest.fail(f"{name} not found on PATH nor under /usr/lib/postgresql/*/bin", pytrace=False)
    return candidates[0]


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", CLUSTER_OWNER, "--", *argv] if os.geteuid() == 0 else argv


class ThrowawayCluster:
    """`start()`, `stop()` (fast shutdown, as an outage) and `destroy()`; `url` is a SQLAlchemy URL."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mcp-fault-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam(CLUSTER_OWNER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self._run(_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            _as_owner(list(argv)), cwd=self.root, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> None:
        # Its socket lives in its own directory, so it cannot collide with the shared server's.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "log")
        self._run(
            _binary("pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-t", "30", "-o", options, "start"
        )

    def stop(self) -> None:
        """What an outage looks like to clients: every connection is cut and new ones are refused."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def destroy(self) -> None:
        subprocess.run(
            _as_owner([_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            cwd=self.root,
            capture_output=True,
            timeout=30,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started cluster, destroyed afterwards (for a fixture: `yield from throwaway_cluster()`)."""
    cluster = ThrowawayCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
