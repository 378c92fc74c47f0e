"""The Kubernetes manifests render, are valid Kubernetes objects, and keep the deployment's rules.

Each overlay (and the base with each optional component) is rendered with `kubectl kustomize`, checked
against the Kubernetes OpenAPI schemas shipped in kubernetes-validate (offline, strict: unknown fields
fail), then against this deployment's own rules: hardened pods, probes, migrations before serving,
Secrets only by reference, NetworkPolicies that let exactly the intended traffic through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from .conftest import RENDER_TARGETS

Manifest = dict[str, Any]

ALL_TARGETS = list(RENDER_TARGETS)
OVERLAYS = ["dev", "prod", "example-third-mcp-server"]
# Each target rendered with the migration-job component -> the same target without it.
WITHOUT_COMPONENT = {target: target.split("+")[0] for target in RENDER_TARGETS if "+migration-job" in target}
# Overlays for a local cluster: loopback issuer and resource URLs, port-forwards instead of Ingresses.
LOCAL_CLUSTER = {"dev", "example-third-mcp-server"}
# The oldest Kubernetes these manifests promise to work on, and the newest whose schemas are shipped.
KUBERNETES_VERSIONS = ["1.32.0", "1.37.0"]
# Custom resources: no built-in schema; allowed only where listed.
CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# Secrets the operator creates outside this repository (README.md says how); base and prod only refer.
EXTERNAL_SECRETS = {"mcp-auth-secrets", "mcp-server-one-client", "mcp-server-two-client"}
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
# Deployments that run exactly one pod and are never scaled: the auth service's Redis (two would be two
# rate-limit budgets). They have no HPA and no metrics port of their own.
SINGLE_INSTANCE = {"mcp-auth-redis"}
INGRESS_NAMESPACE = "ingress-nginx"


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    return found


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def all_containers(workload: Manifest) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    containers: list[dict[str, Any]] = spec.get("initContainers", []) + spec["containers"]
    return containers


def mcp_servers(objects: list[Manifest]) -> list[Manifest]:
    return [d for d in of_kind(objects, "Deployment") if component(d) == "mcp-server"]


def component(obj: Manifest) -> str | None:
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component")


def config_data(objects: list[Manifest], prefix: str) -> dict[str, str]:
    """The data of the one generated ConfigMap whose name starts with prefix (names carry a hash)."""
    (found,) = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith(prefix + "-")]
    data: dict[str, str] = found["data"]
    return data


# --- rendering and schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_renders_with_kustomize(renders: dict[str, list[Manifest]], target: str) -> None:
    assert of_kind(renders[target], "Deployment"), f"{target} rendered no Deployment"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", ALL_TARGETS)
def test_objects_match_kubernetes_schemas(
    renders: dict[str, list[Manifest]], target: str, version: str
) -> None:
    problems = []
    for obj in renders[target]:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            problems.append(f"{obj['kind']}/{obj['metadata']['name']} {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(error.message)
    assert not problems, "\n".join(problems)


def test_base_needs_no_custom_resource_definitions(renders: dict[str, list[Manifest]]) -> None:
    api_groups = {obj["apiVersion"] for obj in renders["base"]}
    assert "monitoring.coreos.com/v1" not in api_groups
    assert of_kind(renders["base+monitoring"], "ServiceMonitor")


# --- pods -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_container_is_hardened(renders: dict[str, list[Manifest]], target: str) -> None:
    workloads = [obj for obj in renders[target] if obj["kind"] in WORKLOADS]
    for workload in workloads:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert isinstance(pod_security["runAsUser"], int), f"{where}: runAsUser must be numeric"
        assert pod_security["runAsUser"] > 0, where
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec.get("automountServiceAccountToken") is False, where
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in all_containers(workload):
            who = f"{where} container {container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, who
            assert security["allowPrivilegeEscalation"] is False, who
            assert security["capabilities"]["drop"] == ["ALL"], who
            assert "add" not in security["capabilities"], who
            assert security.get("runAsNonRoot", True) is True, who
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{who}: {kind} cpu and memory"
            tmp_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp_mounts, f"{who}: /tmp must be a writable emptyDir (the root filesystem is read-only)"
            assert tmp_mounts[0]["name"] in tmp_volumes, who


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_long_running_containers_have_three_probes(renders: dict[str, list[Manifest]], target: str) -> None:
    for workload in renders[target]:
        if workload["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        for container in pod_spec(workload)["containers"]:
            who = f"{workload['metadata']['name']}/{container['name']}"
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{who} has no {probe}"
            if "httpGet" in container["readinessProbe"]:
                # Ready and alive are different questions: /readyz checks dependencies, /healthz does not.
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", who
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", who


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_auth_service_migrates_before_it_serves(renders: dict[str, list[Manifest]], target: str) -> None:
    auth = named(renders[target], "Deployment", "mcp-auth-server")
    (init,) = pod_spec(auth)["initContainers"]
    (main,) = pod_spec(auth)["containers"]
    assert init["command"] + init.get("args", []) == ["mcp-auth", "migrate", "--wait", "60"]
    assert main["command"] + main.get("args", []) == ["mcp-auth", "serve"]
    assert init["image"] == main["image"], "migrations must come from the release being rolled out"
    assert init["env"] == main["env"], "same database and secrets"
    assert init["envFrom"] == main["envFrom"], "same settings"


@pytest.mark.parametrize("target", sorted(WITHOUT_COMPONENT))
def test_migration_job_runs_what_the_deployment_runs_however_it_is_layered(
    renders: dict[str, list[Manifest]], target: str
) -> None:
    """Layered from outside on any overlay, the Job pins the Deployment's image, settings and namespace."""
    objects = renders[target]
    (job,) = of_kind(objects, "Job")
    (container,) = pod_spec(job)["containers"]
    assert container["command"] + container.get("args", []) == ["mcp-auth", "migrate", "--wait", "60"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert pod_spec(job)["restartPolicy"] == "Never"
    auth = named(objects, "Deployment", "mcp-auth-server")
    (init,) = pod_spec(auth)["initContainers"]
    assert container["image"] == init["image"] == pod_spec(auth)["containers"][0]["image"]
    assert container["env"] == init["env"]
    assert container["envFrom"] == init["envFrom"]
    assert job["metadata"].get("namespace") == auth["metadata"].get("namespace")
    policy = named(objects, "NetworkPolicy", "mcp-auth-migrate")
    assert policy["metadata"].get("namespace") == auth["metadata"].get("namespace")
    # Adding the component changes nothing else's images.
    assert images(objects, exclude={"Job"}) == images(renders[WITHOUT_COMPONENT[target]])


def images(objects: list[Manifest], exclude: frozenset[str] | set[str] = frozenset()) -> dict[str, list[str]]:
    return {
        f"{obj['kind']}/{obj['metadata']['name']}": [c["image"] for c in all_containers(obj)]
        for obj in objects
        if obj["kind"] in WORKLOADS and obj["kind"] not in exclude
    }


# --- objects that belong together ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_deployment_has_a_service_hpa_and_pdb(renders: dict[str, list[Manifest]], target: str) -> None:
    objects = renders[target]
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        hpas = [
            h
            for h in of_kind(objects, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == name
        ]
        if name in SINGLE_INSTANCE:
            assert deployment["spec"]["replicas"] == 1, name
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}, f"{name}: never two at once"
            assert not hpas, f"{name} is never scaled"
        else:
            assert "replicas" not in deployment["spec"], f"{name}: the HPA owns replicas"
            (hpa,) = hpas
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        pdbs = [p for p in of_kind(objects, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
        assert len(pdbs) == 1, f"{name}: {len(pdbs)} PodDisruptionBudgets"
        services = [s for s in of_kind(objects, "Service") if matches(s["spec"].get("selector", {}), labels)]
        assert len(services) == 1, f"{name}: {len(services)} Services"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_references_resolve(renders: dict[str, list[Manifest]], target: str) -> None:
    """Every ConfigMap, Secret and Service that a workload or Ingress names is rendered (or made by hand)."""
    objects = renders[target]
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    external = EXTERNAL_SECRETS if not of_kind(objects, "Secret") else set()
    missing = []
    for workload in (obj for obj in objects if obj["kind"] in WORKLOADS):
        for container in all_containers(workload):
            for kind, name in referenced(container):
                if (kind, name) not in names and not (kind == "Secret" and name in external):
                    missing.append(f"{workload['metadata']['name']} -> {kind}/{name}")
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = named(objects, "Service", backend["name"])
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert not missing, "\n".join(missing)


def referenced(container: dict[str, Any]) -> list[tuple[str, str]]:
    refs = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            refs.append(("ConfigMap", source["configMapRef"]["name"]))
        if "secretRef" in source:
            refs.append(("Secret", source["secretRef"]["name"]))
    for variable in container.get("env", []):
        value_from = variable.get("valueFrom", {})
        if "configMapKeyRef" in value_from:
            refs.append(("ConfigMap", value_from["configMapKeyRef"]["name"]))
        if "secretKeyRef" in value_from:
            refs.append(("Secret", value_from["secretKeyRef"]["name"]))
    return refs


# --- secrets ------------------------------------------------------------------------------------------

SECRET_WORDS = ("SECRET", "PASSWORD", "DATABASE_URL", "PRIVATE")


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.split("+")[0] in ("base", "prod")])
def test_no_secret_values_outside_dev(renders: dict[str, list[Manifest]], target: str) -> None:
    objects = renders[target]
    assert not of_kind(objects, "Secret"), "base and prod only refer to Secrets created outside the repo"
    for config in of_kind(objects, "ConfigMap"):
        for key in config.get("data", {}):
            assert not any(word in key for word in SECRET_WORDS), f"{key} belongs in a Secret"
    for workload in (obj for obj in objects if obj["kind"] in WORKLOADS):
        for container in all_containers(workload):
            for variable in container.get("env", []):
                if any(word in variable["name"] for word in SECRET_WORDS):
                    assert "value" not in variable, f"{variable['name']} must come from a secretKeyRef"


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.split("+")[0] in LOCAL_CLUSTER])
def test_dev_secrets_are_obvious_placeholders(renders: dict[str, list[Manifest]], target: str) -> None:
    import base64

    for secret in of_kind(renders[target], "Secret"):
        for key, encoded in secret["data"].items():
            assert "dev-only-placeholder" in base64.b64decode(encoded).decode(), (
                f"{secret['metadata']['name']}/{key}"
            )


# --- configuration that must agree --------------------------------------------------------------------


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_issuer_resources_and_hosts_agree(renders: dict[str, list[Manifest]], target: str) -> None:
    objects = renders[target]
    auth_config = config_data(objects, "mcp-auth-config")
    issuer = auth_config["AUTH_ISSUER"]
    assert not issuer.endswith("/"), "the issuer is compared byte for byte: no trailing slash"
    listed = {entry["resource"] for entry in json.loads(auth_config["AUTH_RESOURCES"])}
    served = set()
    for deployment in mcp_servers(objects):
        (container,) = pod_spec(deployment)["containers"]
        issuer_ref = next(v for v in container["env"] if v["name"] == "MCP_AUTH_ISSUER")
        assert issuer_ref["valueFrom"]["configMapKeyRef"]["key"] == "AUTH_ISSUER"
        (config_name,) = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
        served.add(named(objects, "ConfigMap", config_name)["data"]["MCP_RESOURCE_URL"])
    assert served == listed, "AUTH_RESOURCES must list exactly the MCP servers deployed"
    if target.split("+")[0] in LOCAL_CLUSTER:
        # Reached through port-forwards: loopback URLs (the only ones plain http is allowed for), no Ingress.
        assert issuer == "http://localhost:9000"
        assert all(urlsplit(url).hostname == "localhost" for url in served)
        assert len({urlsplit(url).port for url in served}) == len(served), "one port-forward per server"
        assert not of_kind(objects, "Ingress")
        return
    assert issuer.startswith("https://"), issuer
    hosts = {rule["host"] for ingress in of_kind(objects, "Ingress") for rule in ingress["spec"]["rules"]}
    assert hosts == {urlsplit(url).hostname for url in {issuer} | served}
    for ingress in of_kind(objects, "Ingress"):
        tls_hosts = {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
        assert tls_hosts == {rule["host"] for rule in ingress["spec"]["rules"]}, "TLS for every host"


@pytest.mark.parametrize("target", sorted(LOCAL_CLUSTER))
def test_local_cluster_overlays_choose_the_dev_upstream_explicitly(
    renders: dict[str, list[Manifest]], target: str
) -> None:
    """The base says github; only the overlay's own AUTH_UPSTREAM=dev (on a loopback issuer) allows dev."""
    assert config_data(renders["base"], "mcp-auth-config")["AUTH_UPSTREAM"] == "github"
    assert config_data(renders[target], "mcp-auth-config")["AUTH_UPSTREAM"] == "dev"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_mcp_servers_reach_the_auth_service_inside_the_cluster(
    renders: dict[str, list[Manifest]], target: str
) -> None:
    objects = renders[target]
    auth_service = named(objects, "Service", "mcp-auth-server")
    (http_port,) = [p["port"] for p in auth_service["spec"]["ports"] if p["name"] == "http"]
    for deployment in mcp_servers(objects):
        (container,) = pod_spec(deployment)["containers"]
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["MCP_AUTH_INTERNAL_URL"] == f"http://mcp-auth-server:{http_port}"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_auth_replica_shares_the_in_cluster_redis(
    renders: dict[str, list[Manifest]], target: str
) -> None:
    """One rate-limit budget for all replicas (issue 12): AUTH_REDIS_URL names the Redis Service and port."""
    objects = renders[target]
    url = urlsplit(config_data(objects, "mcp-auth-config")["AUTH_REDIS_URL"])
    service = named(objects, "Service", url.hostname or "")
    assert url.scheme == "redis"
    assert url.port in {p["port"] for p in service["spec"]["ports"]}
    redis = named(objects, "Deployment", "mcp-auth-redis")
    assert matches(service["spec"]["selector"], redis["spec"]["template"]["metadata"]["labels"])
    (container,) = pod_spec(redis)["containers"]
    assert {"--save", "--appendonly", "--maxmemory", "--maxmemory-policy"} <= set(container["args"])
    policy = container["args"][container["args"].index("--maxmemory-policy") + 1]
    assert policy == "noeviction", "an evicted single-use identifier would let a replay through"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_the_client_address_is_taken_from_proxies_in_private_ranges_only(
    renders: dict[str, list[Manifest]], target: str
) -> None:
    """Behind the ingress controller the peer is a proxy: X-Forwarded-For is believed from private ranges."""
    trusted = config_data(renders[target], "mcp-auth-config")["AUTH_FORWARDED_ALLOW_IPS"].split(",")
    assert trusted == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_pin_every_image(renders: dict[str, list[Manifest]], target: str) -> None:
    for workload in (obj for obj in renders[target] if obj["kind"] in WORKLOADS):
        for container in all_containers(workload):
            image = container["image"]
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else None
            assert tag, f"{workload['metadata']['name']}: {image} has no tag"
            assert tag != "latest", f"{workload['metadata']['name']}: {image} is not pinned"


def test_third_server_overlay_adds_exactly_one_server(renders: dict[str, list[Manifest]]) -> None:
    dev = {d["metadata"]["name"] for d in mcp_servers(renders["dev"])}
    third = {d["metadata"]["name"] for d in mcp_servers(renders["example-third-mcp-server"])}
    assert third - dev == {"mcp-server-three"}
    assert dev <= third


# --- network policies ---------------------------------------------------------------------------------


def matches(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match_labels.items())


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) applied to labels."""
    if not matches(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (in some namespace) or an address outside the cluster."""

    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)


def peer_matches(rule_peer: dict[str, Any], peer: Peer, own_namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        return peer.namespace is None  # the blocks used here are the whole internet
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        namespace_labels = {"kubernetes.io/metadata.name": peer.namespace}
        if not selects(rule_peer["namespaceSelector"], namespace_labels):
            return False
    elif peer.namespace != own_namespace:
        return False
    return selects(rule_peer.get("podSelector", {}), peer.labels)


def rule_allows(rule: dict[str, Any], direction: str, peer: Peer, port: int, protocol: str, ns: str) -> bool:
    peers = rule.get("from" if direction == "ingress" else "to")
    if peers and not any(peer_matches(p, peer, ns) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def allowed(policies: list[Manifest], source: Peer, target: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether NetworkPolicies let source open a connection to target:port (both ends are checked)."""
    ns = "app"  # the deployment's namespace; every pod of ours lives there
    for pod, direction, other in ((source, "egress", target), (target, "ingress", source)):
        if pod.namespace != ns:
            continue  # not ours: outside these policies
        applying = [
            p
            for p in policies
            if selects(p["spec"]["podSelector"], pod.labels)
            and direction.capitalize() in p["spec"]["policyTypes"]
        ]
        rules = [rule for p in applying for rule in p["spec"].get(direction, [])]
        if applying and not any(rule_allows(r, direction, other, port, protocol, ns) for r in rules):
            return False
    return True


AUTH = Peer(
    "auth", "app", {"app.kubernetes.io/name": "mcp-auth-server", "app.kubernetes.io/component": "auth-server"}
)
MCP = Peer(
    "mcp",
    "app",
    {
        "app.kubernetes.io/name": "mcp-tools-server",
        "app.kubernetes.io/component": "mcp-server",
        "app.kubernetes.io/instance": "mcp-server-three",
    },
)
POSTGRES = Peer("postgres", "app", {"app.kubernetes.io/name": "postgres"})
REDIS = Peer(
    "redis",
    "app",
    {"app.kubernetes.io/name": "mcp-auth-redis", "app.kubernetes.io/component": "shared-state"},
)
MIGRATE = Peer(
    "migrate-job",
    "app",
    {"app.kubernetes.io/name": "mcp-auth-migrate", "app.kubernetes.io/component": "migration"},
)
INGRESS_CONTROLLER = Peer(
    "ingress-controller", INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}
)
OTHER_POD = Peer("other-pod", "app", {"app": "something-else"})
OTHER_NAMESPACE = Peer("other-namespace", "elsewhere", {"app.kubernetes.io/name": "mcp-auth-server"})
KUBE_DNS = Peer("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
INTERNET = Peer("internet", None)
PROMETHEUS = Peer("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})

# (source, target, port, protocol, allowed?); rows naming Postgres or the migration Job apply where
# those are deployed.
TRAFFIC = [
    (INGRESS_CONTROLLER, AUTH, 9000, "TCP", True),
    (MCP, AUTH, 9000, "TCP", True),
    (OTHER_POD, AUTH, 9000, "TCP", False),
    (OTHER_NAMESPACE, AUTH, 9000, "TCP", False),
    (INGRESS_CONTROLLER, MCP, 8000, "TCP", True),
    (AUTH, MCP, 8000, "TCP", False),
    (OTHER_POD, MCP, 8000, "TCP", False),
    (AUTH, INTERNET, 443, "TCP", True),  # GitHub
    (MCP, INTERNET, 443, "TCP", True),  # GitHub API
    # Metrics: never from the ingress controller or other pods; Prometheus only where it scrapes, and
    # only the metrics port.
    (INGRESS_CONTROLLER, AUTH, 9090, "TCP", False),
    (INGRESS_CONTROLLER, MCP, 9090, "TCP", False),
    (MCP, AUTH, 9090, "TCP", False),
    (OTHER_POD, MCP, 9090, "TCP", False),
    (PROMETHEUS, AUTH, 9090, "TCP", "monitoring"),
    (PROMETHEUS, MCP, 9090, "TCP", "monitoring"),
    (PROMETHEUS, AUTH, 9000, "TCP", False),
    (PROMETHEUS, MCP, 8000, "TCP", False),
    (AUTH, INTERNET, 5432, "TCP", True),  # external Postgres
    (MCP, INTERNET, 5432, "TCP", False),
    (AUTH, INTERNET, 22, "TCP", False),
    (AUTH, KUBE_DNS, 53, "UDP", True),
    (MCP, KUBE_DNS, 53, "UDP", True),
    (MIGRATE, INTERNET, 5432, "TCP", True),
    (MIGRATE, INTERNET, 443, "TCP", False),
    (AUTH, POSTGRES, 5432, "TCP", True),
    (MIGRATE, POSTGRES, 5432, "TCP", True),
    (MCP, POSTGRES, 5432, "TCP", False),
    (OTHER_POD, POSTGRES, 5432, "TCP", False),
    (INGRESS_CONTROLLER, POSTGRES, 5432, "TCP", False),
    # Redis: the auth service only, and Redis reaches nothing.
    (AUTH, REDIS, 6379, "TCP", True),
    (MCP, REDIS, 6379, "TCP", False),
    (OTHER_POD, REDIS, 6379, "TCP", False),
    (INGRESS_CONTROLLER, REDIS, 6379, "TCP", False),
    (OTHER_NAMESPACE, REDIS, 6379, "TCP", False),
    (REDIS, INTERNET, 443, "TCP", False),
    (REDIS, AUTH, 9000, "TCP", False),
    (REDIS, KUBE_DNS, 53, "UDP", True),
]


# Where the dev Postgres StatefulSet, the migration Job and Prometheus scraping are rendered (checked
# below, so this can't drift).
WITH_POSTGRES = {t for t in ALL_TARGETS if t.split("+")[0] in LOCAL_CLUSTER}
WITH_MIGRATION_JOB = set(WITHOUT_COMPONENT)
WITH_MONITORING = {t for t in ALL_TARGETS if "monitoring" in t or t.split("+")[0] == "prod"}


def traffic_cases() -> list[Any]:
    cases = []
    for target in ALL_TARGETS:
        for source, destination, port, protocol, expected in TRAFFIC:
            if POSTGRES in (source, destination) and target not in WITH_POSTGRES:
                continue
            if source == MIGRATE and target not in WITH_MIGRATION_JOB:
                continue
            if expected == "monitoring":
                expected = target in WITH_MONITORING
            case_id = f"{target}:{source.name}->{destination.name}:{port}/{protocol}"
            cases.append(pytest.param(target, source, destination, port, protocol, expected, id=case_id))
    return cases


@pytest.mark.parametrize(("target", "source", "destination", "port", "protocol", "expected"), traffic_cases())
def test_network_policies_allow_only_intended_traffic(
    renders: dict[str, list[Manifest]],
    target: str,
    source: Peer,
    destination: Peer,
    port: int,
    protocol: str,
    expected: bool,
) -> None:
    objects = renders[target]
    assert bool(of_kind(objects, "StatefulSet")) is (target in WITH_POSTGRES)
    assert bool(of_kind(objects, "Job")) is (target in WITH_MIGRATION_JOB)
    assert bool(of_kind(objects, "ServiceMonitor")) is (target in WITH_MONITORING)
    assert allowed(of_kind(objects, "NetworkPolicy"), source, destination, port, protocol) is expected


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_pod_is_under_default_deny(renders: dict[str, list[Manifest]], target: str) -> None:
    deny = named(renders[target], "NetworkPolicy", "default-deny-all")
    assert deny["spec"]["podSelector"] == {}, "selects every pod"
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"], "allows nothing in"
    assert "egress" not in deny["spec"], "allows nothing out"


# --- what the Ingresses expose ------------------------------------------------------------------------

# Served by the applications but never public: probes (kubelet), and operator documents (their own port).
NOT_PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"}


def route_paths(routes: Any, prefix: str = "") -> set[str]:
    """Every path an app serves: plain routes and mounts, and routers included into FastAPI apps."""
    paths = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            paths |= route_paths(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            paths.add(prefix + route.path)
    return paths


@pytest.fixture(scope="module")
def public_paths() -> dict[str, set[str]]:
    """What the auth service and an MCP server answer on their public port, as production builds them."""
    from mcp_auth_server.app import create_app as create_auth_app
    from mcp_auth_server.settings import load_settings
    from mcp_tools_server.app import create_app as create_mcp_app
    from mcp_tools_server.settings import Settings

    auth = create_auth_app(
        load_settings(
            auth_issuer="https://auth.example.com",
            github_client_id="id",
            github_client_secret="secret",
            auth_secret_key="k" * 40,
        )
    )
    mcp = create_mcp_app(
        Settings(resource_url="https://one.mcp.example.com/mcp", auth_issuer="https://auth.example.com")
    )
    return {"auth-server": route_paths(auth.routes), "mcp-server": route_paths(mcp.routes)}


def ingress_routes(path: str, rule: dict[str, Any]) -> bool:
    """Kubernetes path matching: Exact is the whole path; Prefix matches whole path elements."""
    routed: str = rule["path"]
    if rule["pathType"] == "Exact":
        return path == routed
    prefix = routed.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.split("+")[0] not in LOCAL_CLUSTER])
def test_ingresses_route_the_public_paths_only(
    renders: dict[str, list[Manifest]], target: str, public_paths: dict[str, set[str]]
) -> None:
    """No public path to metrics: each Ingress routes exactly what its application serves publicly."""
    objects = renders[target]
    for ingress in of_kind(objects, "Ingress"):
        name = ingress["metadata"]["name"]
        served = public_paths[str(component(ingress))]
        (rule,) = ingress["spec"]["rules"]
        routed = rule["http"]["paths"]
        for path_rule in routed:
            backend = path_rule["backend"]["service"]
            assert backend["port"] == {"name": "http"}, f"{name}: only the public port is routed"
            assert any(ingress_routes(path, path_rule) for path in served), (
                f"{name}: {path_rule['path']} serves nothing"
            )
        for path in served - NOT_PUBLIC:
            assert any(ingress_routes(path, r) for r in routed), f"{name} does not route {path}"
        for path in NOT_PUBLIC:
            assert not any(ingress_routes(path, r) for r in routed), f"{name} routes {path}"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_metrics_are_a_port_of_their_own(renders: dict[str, list[Manifest]], target: str) -> None:
    objects = renders[target]
    for deployment in of_kind(objects, "Deployment"):
        if deployment["metadata"]["name"] in SINGLE_INSTANCE:
            continue  # Redis: no metrics of its own (the auth service exports its reachability)
        (container,) = pod_spec(deployment)["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        env = {v["name"]: v.get("value") for v in container.get("env", [])}
        if component(deployment) == "auth-server":
            assert config_data(objects, "mcp-auth-config")["AUTH_METRICS_PORT"] == str(ports["metrics"])
        else:
            assert env["MCP_METRICS_PORT"] == str(ports["metrics"])
        assert ports["metrics"] != ports["http"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (service,) = [
            s for s in of_kind(objects, "Service") if matches(s["spec"].get("selector", {}), labels)
        ]
        assert {"http", "metrics"} == {p["targetPort"] for p in service["spec"]["ports"]}
    for monitor in of_kind(objects, "ServiceMonitor"):
        assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]
