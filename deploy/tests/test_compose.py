"""docker-compose.yml is a valid Compose file whose services start in the right order and stay checked.

The file is validated against the Compose Specification's JSON schema (vendored in data/, see
data/README.md), then against this stack's rules: Postgres healthy before migrations, migrations done
before the auth service, a healthcheck for every long-running service, the issuer shared by everyone,
and .env.example documenting every variable of INTERFACE.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from mcp_auth_server.db.migrate import upgrade
from mcp_testing.processes import venv_script

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
INTERFACE = REPO_ROOT.parent / "shared" / "INTERFACE.md"  # beside the repository, as in CI
Stage = dict[str, Any]
# Services that run nothing to check: the one-shot migration and the network-namespace holder.
UNCHECKED = {
    "migrate": "one-shot: exits when migrations are applied",
    "mcp-1-client": "one-shot: declares MCP server 1's client",
    "mcp-2-client": "one-shot: declares MCP server 2's client",
    "edge": "holds the shared network",
}
MCP_SERVICES = ["mcp-1", "mcp-2"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """KEY=VALUE lines of .env.example, quotes removed as Compose does."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match[1]] = match[2].strip("'\"")
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, nested defaults included; an error raises."""
    out, i = "", 0
    while i < len(text):
        if text.startswith("$$", i):
            out, i = out + "$", i + 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:  # find the matching brace: defaults may hold ${...} themselves
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            match = re.fullmatch(r"([A-Za-z_]\w*)(?:(:-|:\?)(.*))?", text[i + 2 : j - 1], re.S)
            assert match, f"unsupported interpolation {text[i:j]}"
            name, operator, rest = match.groups()
            value = env.get(name, "")
            if not value and operator == ":-":
                value = interpolate(rest, env)
            elif not value and operator == ":?":
                raise KeyError(f"{name}: {rest}")
            out, i = out + value, j
        else:
            out, i = out + text[i], i + 1
    return out


def interpolate_all(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_all(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    return node


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_env_example_supplies_every_required_variable(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    """`docker compose config` would succeed with .env.example copied to .env (all ${X:?} are set)."""
    rendered = interpolate_all(compose, env_example)
    auth = rendered["services"]["auth"]["environment"]
    assert auth["AUTH_DATABASE_URL"].startswith("postgresql+asyncpg://mcp_auth:")
    assert "@postgres:5432/" in auth["AUTH_DATABASE_URL"]
    assert len(auth["AUTH_SECRET_KEY"]) >= 32, "the auth service refuses shorter root secrets"


def test_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate", "--wait", "60"], (
        "a database still starting is waited for"
    )
    assert services["migrate"]["restart"] == "no"
    assert services["auth"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in MCP_SERVICES:
        assert services[name]["depends_on"]["auth"]["condition"] == "service_healthy"


def test_migrate_runs_the_auth_image_with_its_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["image"] == services["auth"]["image"]
    assert services["migrate"]["environment"] == services["auth"]["environment"]


def test_every_long_running_service_is_health_checked(
    compose: dict[str, Any], dockerfiles: dict[str, list[Stage]]
) -> None:
    for name, service in compose["services"].items():
        if name in UNCHECKED:
            continue
        check = service.get("healthcheck")
        if check is None:
            # No healthcheck here: the image's own HEALTHCHECK applies.
            final = dockerfiles[service["build"]["dockerfile"]][-1]
            assert any(i == "HEALTHCHECK" for i, _ in final["instructions"]), f"{name} has no healthcheck"
        else:
            assert not check.get("disable"), name
            assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
    # Over TCP: the socket-only temporary server of a first start must not pass (finding 3 of issue 13).
    assert compose["services"]["postgres"]["healthcheck"]["test"][1:3] == ["pg_isready", "--host=127.0.0.1"]
    assert compose["services"]["edge"]["healthcheck"] == {"disable": True}


def test_entrypoints_match_the_images(compose: dict[str, Any], dockerfiles: dict[str, list[Stage]]) -> None:
    """migrate's `command: [migrate]` relies on the auth image's ENTRYPOINT being mcp-auth."""
    dockerfile = compose["services"]["migrate"]["build"]["dockerfile"]
    (entrypoint,) = [args for i, args in dockerfiles[dockerfile][-1]["instructions"] if i == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["mcp-auth"]


def test_postgres_is_pinned_and_persistent(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert re.match(r"^postgres:\d+\.\d+-\w+$", postgres["image"]), "pin major.minor and the distribution"
    (volume,) = postgres["volumes"]
    assert volume.split(":")[0] in compose["volumes"], "a named volume"
    assert "ports" not in postgres, "Postgres is not published"


def test_every_auth_replica_shares_one_redis(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    """Rate limits are one budget however many auth replicas run: AUTH_REDIS_URL names the redis service."""
    rendered = interpolate_all(compose, env_example)["services"]
    url = urlsplit(rendered["auth"]["environment"]["AUTH_REDIS_URL"])
    assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)
    redis = compose["services"]["redis"]
    assert re.match(r"^redis:\d+\.\d+-\w+$", redis["image"]), "pin major.minor and the distribution"
    assert "ports" not in redis, "Redis is not published"
    assert redis["read_only"] is True
    assert redis["cap_drop"] == ["ALL"]
    assert redis["user"] == "999:999", "the image's redis user: no root entrypoint, no capabilities needed"
    command = redis["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert compose["services"]["auth"]["depends_on"]["redis"]["condition"] == "service_started"


def test_forwarded_for_is_believed_only_from_the_edge_namespace(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    """The published ports reach the auth service from outside edge's namespace; only a proxy inside it is
    believed about the client's address."""
    rendered = interpolate_all(compose, env_example)["services"]
    assert rendered["auth"]["environment"]["AUTH_FORWARDED_ALLOW_IPS"] == "127.0.0.1"


def test_one_issuer_for_browser_and_services(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    """Everyone shares edge's network namespace, so http://localhost:9000 means the auth service to all."""
    rendered = interpolate_all(compose, env_example)["services"]
    issuer = rendered["auth"]["environment"]["AUTH_ISSUER"]
    assert issuer == "http://localhost:9000"
    for name in ["auth", "github", *MCP_SERVICES]:
        assert compose["services"][name]["network_mode"] == "service:edge", name
    published = {port.split(":")[1] for port in compose["services"]["edge"]["ports"]}
    assert all(port.startswith("127.0.0.1:") for port in compose["services"]["edge"]["ports"])
    assert issuer.rsplit(":", 1)[1] in published
    resources = {entry["resource"] for entry in json.loads(rendered["auth"]["environment"]["AUTH_RESOURCES"])}
    served = set()
    for name in MCP_SERVICES:
        env = rendered[name]["environment"]
        assert env["MCP_AUTH_ISSUER"] == issuer
        assert env["MCP_RESOURCE_URL"] == f"http://localhost:{env['MCP_PORT']}/mcp"
        assert env["MCP_PORT"] in published
        served.add(env["MCP_RESOURCE_URL"])
    assert served == resources, "AUTH_RESOURCES lists exactly the two MCP servers"
    client_ids = {compose["services"][name]["environment"]["MCP_CLIENT_ID"] for name in MCP_SERVICES}
    assert len(client_ids) == len(MCP_SERVICES), "each MCP server has its own confidential client"


def test_offline_profile_stands_in_for_github(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    rendered = interpolate_all(compose, env_example)["services"]
    github = compose["services"]["github"]
    assert github["profiles"] == ["offline"]
    assert github["build"]["dockerfile"] == "deploy/docker/standin.Dockerfile"
    assert "offline" in env_example["COMPOSE_PROFILES"].split(",")
    assert rendered["auth"]["environment"]["GITHUB_URL"] == "http://localhost:8080"
    assert rendered["auth"]["environment"]["GITHUB_API_URL"] == "http://localhost:8080/api/v3"
    assert rendered["mcp-1"]["environment"]["MCP_GITHUB_API_URL"] == "http://localhost:8080/api/v3"
    assert "--callback-url=http://localhost:9000/callback" in rendered["github"]["command"]
    assert not any("github" in s.get("depends_on", {}) for s in compose["services"].values()), (
        "nothing may depend on a service that exists only in a profile"
    )


def test_env_example_documents_every_interface_variable() -> None:
    if not INTERFACE.exists():
        pytest.skip(f"{INTERFACE} not beside the repository")
    variables = set()
    for row in INTERFACE.read_text().splitlines():
        if row.startswith("| `"):  # a table row; its first cell names one or more variables or commands
            variables |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    assert len(variables) > 20, "INTERFACE.md's environment tables were found"
    documented = ENV_EXAMPLE.read_text()
    missing = sorted(v for v in variables if not re.search(rf"\b{v}\b", documented))
    assert not missing, f".env.example does not mention {missing}"


def test_env_example_holds_no_real_secret(env_example: dict[str, str]) -> None:
    for name in (
        "POSTGRES_PASSWORD",
        "AUTH_SECRET_KEY",
        "GITHUB_CLIENT_SECRET",
        "MCP1_CLIENT_SECRET",
        "MCP2_CLIENT_SECRET",
    ):
        assert re.search(r"change-me|standin", env_example[name]), f"{name} must be an obvious placeholder"


@pytest.mark.parametrize("number", ["1", "2"])
def test_each_mcp_server_starts_after_its_client_is_declared_with_the_same_credentials(
    compose: dict[str, Any], env_example: dict[str, str], number: str
) -> None:
    services = compose["services"]
    declare, server = services[f"mcp-{number}-client"], services[f"mcp-{number}"]
    assert declare["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert server["depends_on"][f"mcp-{number}-client"]["condition"] == "service_completed_successfully"
    assert declare["image"] == services["auth"]["image"]
    command = [interpolate(part, env_example) for part in declare["command"]]
    environment = {key: interpolate(str(value), env_example) for key, value in server["environment"].items()}
    assert command[command.index("--client-id") + 1] == environment["MCP_CLIENT_ID"]
    assert command[command.index("--resource-server") + 1] == environment["MCP_RESOURCE_URL"]
    secret_variable = command[command.index("--secret-env") + 1]
    assert (
        interpolate(declare["environment"][secret_variable], env_example) == environment["MCP_CLIENT_SECRET"]
    )
    assert "--update" in command  # idempotent across `docker compose up` runs


def test_the_declaring_command_works_against_a_database(
    compose: dict[str, Any], env_example: dict[str, str], fresh_postgres_database: str
) -> None:
    """The one-shot's exact command, run twice (as on a restart), with the image's entrypoint."""
    upgrade(fresh_postgres_database)
    declare = compose["services"]["mcp-1-client"]
    command = [interpolate(part, env_example) for part in declare["command"]]
    env = {
        "AUTH_DATABASE_URL": fresh_postgres_database,
        "AUTH_SECRET_KEY": "k" * 40,
        "PATH": "/usr/bin:/bin",
        "MCP_CLIENT_SECRET": interpolate(declare["environment"]["MCP_CLIENT_SECRET"], env_example),
    }
    for _ in range(2):
        result = subprocess.run(
            [venv_script("mcp-auth"), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    listing = subprocess.run(
        [venv_script("mcp-auth"), "clients", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert env_example["MCP1_CLIENT_ID"] in listing


# Capabilities the Postgres image's entrypoint needs to prepare its directories before dropping to postgres.
POSTGRES_CAPABILITIES = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}


def test_every_service_is_hardened_as_in_kubernetes(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("read_only") is True, f"{name}: read-only root filesystem"
        assert service.get("cap_drop") == ["ALL"], f"{name}: no capabilities"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert "/tmp" in service.get("tmpfs", []), f"{name}: a writable /tmp"
        allowed = POSTGRES_CAPABILITIES if name == "postgres" else set()
        assert set(service.get("cap_add", [])) <= allowed, name


def test_metrics_are_published_on_loopback_only_and_apart_from_the_public_ports(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    rendered = interpolate_all(compose, env_example)["services"]
    published = {port.split(":")[1]: port for port in compose["services"]["edge"]["ports"]}
    metrics = [rendered["auth"]["environment"]["AUTH_METRICS_PORT"]]
    metrics += [rendered[name]["environment"]["MCP_METRICS_PORT"] for name in MCP_SERVICES]
    public = [rendered["auth"]["environment"]["AUTH_PORT"]] + [
        rendered[n]["environment"]["MCP_PORT"] for n in MCP_SERVICES
    ]
    assert len(set(metrics + public)) == len(metrics + public), "one namespace: every port distinct"
    for port in metrics:
        assert published[port].startswith("127.0.0.1:"), port
