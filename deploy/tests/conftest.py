"""Fixtures for the deployment checks: kustomize renders and parsed Dockerfiles, built once per session.

Nothing here needs a container engine or a cluster: manifests are rendered with `kubectl kustomize`
(offline) and Dockerfiles are read as text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_ROOT = REPO_ROOT / "deploy" / "k8s"

# What `kubectl kustomize` renders: the overlays, the base alone, and the base or an overlay with an
# optional component (components have no kustomization of their own to render), optionally naming a
# namespace in the outer kustomization as an operator might.
RENDER_TARGETS: dict[str, tuple[str, list[str], str | None]] = {
    "base": ("base", [], None),
    "dev": ("overlays/dev", [], None),
    "prod": ("overlays/prod", [], None),
    "example-third-mcp-server": ("overlays/example-third-mcp-server", [], None),
    "base+monitoring": ("base", ["components/monitoring"], None),
    # The migration Job layered from outside on every overlay's output, with and without the outer
    # kustomization naming the namespace: it must run the very image and settings the Deployment runs.
    "base+migration-job": ("base", ["components/migration-job"], None),
    "dev+migration-job": ("overlays/dev", ["components/migration-job"], None),
    "dev+migration-job+namespace": ("overlays/dev", ["components/migration-job"], "mcp-auth-dev"),
    "prod+migration-job": ("overlays/prod", ["components/migration-job"], None),
    "example-third-mcp-server+migration-job": (
        "overlays/example-third-mcp-server",
        ["components/migration-job"],
        None,
    ),
}

Manifest = dict[str, Any]
Instruction = tuple[str, str]  # (INSTRUCTION, its arguments), continuation lines joined
Stage = dict[str, Any]  # {"image": str, "name": str | None, "instructions": list[Instruction]}


def _kustomize_version(kubectl: str) -> tuple[int, ...]:
    out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Kustomize Version: v(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else (0,)


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl with kustomize v5+; missing, the checks skip locally and fail in CI (CI=true)."""
    how = "install it with deploy/scripts/install-kubectl.sh"
    path = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if path is None:
        problem = f"kubectl not found; {how}"
    elif _kustomize_version(path) < (5,):
        problem = f"{path} has kustomize older than v5 (Debian's kubernetes-client is); {how}"
    else:
        return path
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def renders(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Every render target's objects, rendered once."""
    rendered: dict[str, list[Manifest]] = {}
    for target, (directory, components, namespace) in RENDER_TARGETS.items():
        root = K8S_ROOT / directory
        if components:
            # kustomize wants relative paths: a throwaway kustomization beside nothing, pointing back here.
            root = tmp_path_factory.mktemp("kustomize")
            kustomization: dict[str, Any] = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S_ROOT / directory, root)],
                "components": [os.path.relpath(K8S_ROOT / c, root) for c in components],
            }
            if namespace:
                kustomization["namespace"] = namespace
            (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        result = subprocess.run([kubectl, "kustomize", str(root)], capture_output=True, text=True)
        assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
        rendered[target] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return rendered


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: FROM starts one; backslash continuations joined; comments dropped."""
    stages: list[Stage] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        instruction, _, args = logical.partition(" ")
        logical = ""
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"image": words[0], "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((instruction, args.strip()))
    return stages


# Repository-relative, as docker-compose.yml's `build.dockerfile` names them.
DOCKERFILES = ["services/auth/Dockerfile", "services/mcp/Dockerfile", "deploy/docker/standin.Dockerfile"]


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, list[Stage]]:
    """Every Dockerfile of the project, parsed, by repository-relative path."""
    return {path: parse_dockerfile((REPO_ROOT / path).read_text()) for path in DOCKERFILES}
