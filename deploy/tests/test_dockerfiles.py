"""The Dockerfiles follow the image rules of issue 7, read as text (no container engine is needed).

Pinned bases, a multi-stage build that installs from the lock, a non-root numeric user, no build tools
in the final stage, a HEALTHCHECK, and an ENTRYPOINT that is the packaged command.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
Stage = dict[str, Any]

# Dockerfile -> (the workspace member it installs, the command it runs, its health path)
SERVICES = {
    "services/auth/Dockerfile": ("services/auth", "mcp-auth", "/readyz"),
    "services/mcp/Dockerfile": ("services/mcp", "mcp-tools", "/readyz"),
    "deploy/docker/standin.Dockerfile": ("testing", "mcp-standin", "/readyz"),
}
PYTHON_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
PINNED_TAG = re.compile(r":\d+\.\d+\.\d+([-.][\w.-]+)?(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cmake|[\w.+-]+-dev)\b")


def instructions(stage: Stage, kind: str) -> list[str]:
    return [args for instruction, args in stage["instructions"] if instruction == kind]


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (CMD, ENTRYPOINT, HEALTHCHECK ... CMD)."""
    words: list[str] = json.loads(args[args.index("[") :])
    return words


def copy_sources(args: str) -> tuple[list[str], bool]:
    """A COPY's sources, and whether they come from another stage or image (--from)."""
    words = shlex.split(args)
    sources = [w for w in words if not w.startswith("--")][:-1]
    return sources, any(w.startswith("--from=") for w in words)


def project(member: str) -> dict[str, Any]:
    with (REPO_ROOT / member / "pyproject.toml").open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)["project"]
    return data


@pytest.mark.parametrize("path", SERVICES)
def test_every_base_image_is_pinned(dockerfiles: dict[str, list[Stage]], path: str) -> None:
    stages = dockerfiles[path]
    stage_names = {stage["name"] for stage in stages}
    for stage in stages:
        if stage["image"] in stage_names:
            continue
        assert PINNED_TAG.search(stage["image"]), f"{stage['image']}: pin an exact version"
    python_bases = [s["image"] for s in stages if s["image"].startswith("python:")]
    assert python_bases, "a python base image"
    for image in python_bases:
        assert PYTHON_BASE.match(image), f"{image}: slim Python 3.11 with its patch version"
    assert len(set(python_bases)) == 1, "build and runtime on the same Python, so the venv moves over"


@pytest.mark.parametrize("path", SERVICES)
def test_builds_in_stages_from_the_lock(dockerfiles: dict[str, list[Stage]], path: str) -> None:
    member, _, _ = SERVICES[path]
    stages = dockerfiles[path]
    build_stages = [s for s in stages[:-1] if s["image"].startswith("python:")]
    assert build_stages, "multi-stage: dependencies are installed in a build stage"
    syncs = [run for s in build_stages for run in instructions(s, "RUN") if "uv sync" in run]
    assert syncs, "installs with uv sync"
    distribution = project(member)["name"]
    for sync in syncs:
        assert "--frozen" in sync, "the committed uv.lock, never a fresh resolution"
        assert "--no-dev" in sync
        assert f"--package {distribution}" in sync
    copies = instructions(stages[-1], "COPY")
    assert any(f"--from={build_stages[-1]['name']}" in copy for copy in copies), (
        "the final stage copies the venv"
    )


@pytest.mark.parametrize("path", SERVICES)
def test_copied_sources_exist(dockerfiles: dict[str, list[Stage]], path: str) -> None:
    for stage in dockerfiles[path]:
        for copy in instructions(stage, "COPY"):
            sources, from_elsewhere = copy_sources(copy)
            for source in [] if from_elsewhere else sources:
                assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path in the repository"


@pytest.mark.parametrize("path", SERVICES)
def test_final_stage_is_lean_and_unprivileged(dockerfiles: dict[str, list[Stage]], path: str) -> None:
    final = dockerfiles[path][-1]
    users = instructions(final, "USER")
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric UID, so Kubernetes' runAsNonRoot can check it"
    assert int(uid) != 0
    assert int(uid) == 10001, "the UID the Kubernetes manifests run as"
    for run in instructions(final, "RUN"):
        assert not BUILD_TOOLS.search(run), f"build tools in the final stage: {run}"
    for copy in instructions(final, "COPY"):
        assert "/uv" not in copy_sources(copy)[0], "uv stays in the build stage"


@pytest.mark.parametrize("path", SERVICES)
def test_healthcheck_and_entrypoint(dockerfiles: dict[str, list[Stage]], path: str) -> None:
    member, command, health_path = SERVICES[path]
    final = dockerfiles[path][-1]
    (healthcheck,) = instructions(final, "HEALTHCHECK")
    probe = exec_form(healthcheck)
    assert probe[:2] == ["python", "-c"], "slim has no curl: the standard library asks"
    assert re.search(rf"/{health_path.strip('/')}'", probe[2]), f"HEALTHCHECK asks {health_path}"
    compile(probe[2], "<HEALTHCHECK>", "exec")  # the inline program at least parses
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    assert exec_form(entrypoint) == [command]
    assert command in project(member)["scripts"], f"{command} is a script of {member}"
    assert instructions(final, "CMD"), "a default subcommand"


def test_dockerignore_sends_only_what_the_images_copy() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything is excluded first"
    reincluded = [line[1:] for line in lines if line.startswith("!")]
    for private in (".env", ".venv", ".data", ".git"):
        assert not any(pattern.startswith(private) for pattern in reincluded), private
