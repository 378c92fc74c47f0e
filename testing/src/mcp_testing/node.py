"""Node.js for tests that run JavaScript: the TypeScript example server, the MCP conformance suite.

Without Node a developer's run skips those tests; in CI (`CI` set) their absence is a failure, so a
machine that lost Node cannot pass the suite by skipping. Dependencies come from committed lock files
(`npm ci`), never from whatever the registry serves today.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NPM_TIMEOUT = 600


def require_node() -> tuple[str, str]:
    """The paths of `node` and `npm`; skips the test without them, or fails it in CI."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm are needed (Debian: apt-get install nodejs npm)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the Node tests")
        pytest.skip(message)
    return node, npm


def npm_ci(directory: Path, *scripts: str) -> None:
    """`npm ci` against the directory's package-lock.json, then `npm run` each of `scripts`."""
    _, npm = require_node()
    for argv in ([npm, "ci", "--no-audit", "--no-fund"], *([npm, "run", script] for script in scripts)):
        result = subprocess.run(
            argv, cwd=directory, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
        )
        assert result.returncode == 0, (
            f"{' '.join(argv[1:])} in {directory}:\n{result.stdout}\n{result.stderr}"
        )
