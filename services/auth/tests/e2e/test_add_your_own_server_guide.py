"""docs/add-your-own-server.md, followed verbatim: every `sh` block, in order, in one bash session.

`make dev` runs on free ports (its stack script, as in test_dev_stack.py) in a scratch directory that
holds links to this checkout's `.venv` and `shared/`, so the guide's relative paths work and its
`.data/` is the stack's. Only the guide's first block (the default addresses) is replaced, by the same
variables for those free ports.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from mcp_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[4]
GUIDE = ROOT / "docs" / "add-your-own-server.md"
DEV_STACK = ROOT / "scripts" / "dev_stack.py"
DEFAULTS = "export AUTH=http://127.0.0.1:9000 TOOLS=http://127.0.0.1:9101/mcp NOTES_PORT=9200\n"


def guide_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.DOTALL)


def test_the_guide_works_as_written(tmp_path: Path) -> None:
    blocks = guide_blocks()
    assert blocks[0] == DEFAULTS  # the one block this test replaces
    auth_port, tools_port, other_port, notes_port = (free_port() for _ in range(4))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "shared").symlink_to(ROOT / "shared")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "GITHUB_", "MCP_", "VIRTUAL_ENV"))
    }
    stack = subprocess.Popen(
        [sys.executable, str(DEV_STACK)],
        cwd=tmp_path,
        env={
            **env,
            "AUTH_ISSUER": f"http://127.0.0.1:{auth_port}",
            "DEV_MCP_PORTS": f"{tools_port},{other_port}",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert stack.stdout is not None
        banner = ""
        while "Ctrl-C stops everything" not in banner:
            line = stack.stdout.readline()
            assert line, f"make dev ended before it was ready:\n{banner}"
            banner += line
        addresses = (
            f"export AUTH=http://127.0.0.1:{auth_port} TOOLS=http://127.0.0.1:{tools_port}/mcp"
            f" NOTES_PORT={notes_port}\n"
        )
        script = "set -euo pipefail\n" + addresses + "".join(blocks[1:])
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=30)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    output = result.stdout
    assert '"text":"saved: hello"' in output  # step 5: the tool answered
    assert output.splitlines()[-1] == "401"  # step 6: the Notes token is refused by the tools server
