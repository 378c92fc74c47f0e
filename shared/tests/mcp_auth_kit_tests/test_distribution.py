"""Finding 2 of issue 14: the kit installs by name, outside this repository, and its examples run there.

Builds the wheel with uv, installs it into a fresh virtual environment under the system temp directory
(nothing of the workspace on its path), and runs there both the README's ten lines and the kit page's
example under uvicorn, against the issuer stand-in: a request without a token gets the challenge, a
token with the scopes gets the tool's answer.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from .conftest import LEGACY_HEADERS, IssuerStandIn, Signer, claims_for, rpc, sign, unused_port

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT / "shared"


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to build the wheel (make install bootstraps it)")
    return found


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
    }
    result = subprocess.run(
        [str(part) for part in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the workspace with the freshly built wheel (and uvicorn to serve it)."""
    place = tmp_path_factory.mktemp("kit-distribution")
    run(uv(), "build", "--wheel", "--out-dir", place / "dist", SHARED, cwd=place)
    (wheel,) = (place / "dist").glob("mcp_auth_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "mcp_auth_kit/py.typed" in names
    assert "Name: mcp-auth-kit" in metadata
    assert "pip install mcp-auth-kit" in metadata  # the README is the package's description
    venv = place / "venv"
    run(uv(), "venv", "--python", sys.executable, venv, cwd=place)
    run(uv(), "pip", "install", "--python", venv / "bin" / "python", wheel, "uvicorn", cwd=place)
    return venv


def readme_example() -> str:
    match = re.search(r"## Ten lines\n\n```python\n(.*?)```", (SHARED / "README.md").read_text(), re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_wheel_is_importable_alone_and_reports_its_version(installed: Path) -> None:
    version = run(installed / "bin" / "python", "-c", "import mcp_auth_kit; print(mcp_auth_kit.__version__)")
    assert version.strip() == "0.2.0"
    location = run(installed / "bin" / "python", "-c", "import mcp_auth_kit; print(mcp_auth_kit.__file__)")
    assert str(installed) in location  # not the workspace's editable copy


@pytest.mark.parametrize("example", ["readme", "kit-page"])
async def test_the_examples_run_from_the_installed_wheel(
    installed: Path, issuer: IssuerStandIn, es256: Signer, tmp_path: Path, example: str
) -> None:
    source = (
        readme_example() if example == "readme" else (SHARED / "examples" / "notes_server.py").read_text()
    )
    port = unused_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    # The README's lines name 9200 and the stand-in's address; only those two literals change here.
    source = source.replace("http://127.0.0.1:9200/mcp", resource).replace(
        "http://127.0.0.1:9000", issuer.url
    )
    (tmp_path / "notes_server.py").write_text(source)
    env = {"PATH": os.environ["PATH"], "MCP_RESOURCE_URL": resource, "MCP_AUTH_ISSUER": issuer.url}
    server = await asyncio.create_subprocess_exec(
        str(installed / "bin" / "uvicorn"), "notes_server:app", "--port", str(port), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            call = rpc("tools/call", {"name": "add_note", "arguments": {"text": "hi"}})
            anonymous = await client.post("/mcp", json=call, headers=LEGACY_HEADERS)
            token = sign(es256, claims_for(issuer.url, resource, scope="notes:read notes:write"))
            allowed = await client.post(
                "/mcp", json=call, headers={**LEGACY_HEADERS, "Authorization": f"Bearer {token}"}
            )
    finally:
        server.terminate()
        await server.wait()
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Bearer resource_metadata="http://127.0.0.1:')
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["result"]["content"][0]["text"] == "saved: hi"
