"""deploy/k8s: each overlay rendered by `kubectl kustomize` (what an operator applies), validated strictly
against the API schemas of a current Kubernetes release (kubernetes-validate), and checked for what the
deployment promises: hardened containers, probes on the real health endpoints, a PodDisruptionBudget per
Deployment, and NetworkPolicies that let only the CPA be reached from outside."""

from __future__ import annotations

from functools import cache
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml
from packaging.version import Version

from tests.deploy import network_policy as netpol
from tests.deploy.deployment_model import (
    CONTROLLERS,
    LCM_SERVICES,
    ROOT,
    SECRET_NAME,
    SECRET_TEMPLATE,
    allowed_env,
    default_port,
    release_version,
    secret_env_names,
    settings_class,
)
from tests.deploy.rendering import OVERLAYS, documents, render_overlay

#: The newest Kubernetes release whose schemas kubernetes-validate (pinned in requirements.lock) ships.
KUBERNETES_VERSION = kubernetes_validate.latest_version()
#: Where the data services are expected (ConfigMap ETCD_HOST, networkpolicies.yaml).
DATA_NAMESPACE = "lcm-data"
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(documents(render_overlay(overlay)))


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered(overlay) if d["kind"] == kind}


def namespace_of(overlay: str) -> str:
    (namespace,) = of_kind(overlay, "Namespace")
    return namespace


def pod_templates(overlay: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"] for d in rendered(overlay) if d["kind"] in POD_KINDS}


def secret_template_keys() -> set[str]:
    (secret,) = [d for d in yaml.safe_load_all(SECRET_TEMPLATE.read_text()) if d]
    return set(secret.get("stringData", {})) | set(secret.get("data", {}))


# ------------------------------------------------------------------------------------ render, validate

def test_the_kubernetes_schemas_are_a_current_release() -> None:
    assert Version(KUBERNETES_VERSION) >= Version("1.33"), (
        f"kubernetes-validate only ships schemas up to {KUBERNETES_VERSION}: move its pin forward (make lock)")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ConfigMap", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget",
            "NetworkPolicy"} <= kinds, f"{overlay}: rendered kinds {sorted(kinds)}"
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {error}")
    assert not problems, f"{overlay} against Kubernetes {KUBERNETES_VERSION}:\n" + "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlays_namespace_under_pod_security_restricted(overlay: str) -> None:
    namespace = namespace_of(overlay)
    labels = of_kind(overlay, "Namespace")[namespace]["metadata"].get("labels", {})
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", f"{namespace}: enforce restricted"
    stray = [f"{d['kind']}/{d['metadata']['name']}" for d in rendered(overlay)
             if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespace]
    assert not stray, f"{overlay}: not in namespace {namespace}: {stray}"


def test_the_overlays_differ_where_they_should() -> None:
    dev, production = (of_kind(o, "Deployment") for o in ("dev", "production"))
    assert namespace_of("dev") != namespace_of("production")
    for service in LCM_SERVICES:
        assert dev[service]["spec"]["replicas"] == 1, f"dev runs one {service}"
        assert production[service]["spec"]["replicas"] >= 2, f"production runs a standby/second {service}"
        dev_image = dev[service]["spec"]["template"]["spec"]["containers"][0]["image"]
        production_image = production[service]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert dev_image != production_image, f"{service}: both overlays run {dev_image}"
        assert production_image.endswith(f":{release_version()}") or "@sha256:" in production_image, (
            f"production runs the release ({release_version()}) or a pinned digest, got {production_image}")
    assert production["control-plane-api"]["spec"]["replicas"] >= 3, "production serves the API from 3 replicas"


# --------------------------------------------------------------------------- the services' containers

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_lcm_deployments_run_the_services_with_their_settings(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    assert set(LCM_SERVICES) <= set(deployments), f"{overlay}: Deployments {sorted(deployments)}"
    config_keys = {k for d in of_kind(overlay, "ConfigMap").values() for k in d.get("data", {})}
    secret_keys = secret_template_keys()
    for service, spec in LCM_SERVICES.items():
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        port = default_port(service)
        assert container["ports"] == [{"name": "http", "containerPort": port}], service
        assert container["readinessProbe"]["httpGet"] == {"path": spec.ready_path, "port": port}, service
        assert container["livenessProbe"]["httpGet"] == {"path": spec.live_path, "port": port}, service
        assert container["startupProbe"]["httpGet"] == {"path": spec.live_path, "port": port}, service
        env = container.get("env", [])
        unknown = {e["name"] for e in env} - allowed_env(service)
        assert not unknown, f"{service}: {sorted(unknown)} are not settings"
        secret_names = secret_env_names(settings_class(service))
        literal_secrets = [e["name"] for e in env
                           if "value" in e and (SECRET_NAME.search(e["name"]) or e["name"] in secret_names)]
        assert not literal_secrets, f"{service}: secrets must come from a Secret: {literal_secrets}"
        refs = [e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})]
        missing = {r["key"] for r in refs} - secret_keys
        assert not missing, f"{service} reads {sorted(missing)} from lcm-secrets; add them to {SECRET_TEMPLATE.name}"
        assert {r["name"] for r in refs} <= {"lcm-secrets"}, service
    every_setting = set().union(*(allowed_env(s) for s in LCM_SERVICES))
    unread = (config_keys | secret_keys) - every_setting
    assert not unread, f"ConfigMap/Secret keys that no service reads: {sorted(unread)}"


def test_the_secret_template_holds_no_value() -> None:
    (secret,) = [d for d in yaml.safe_load_all(SECRET_TEMPLATE.read_text()) if d]
    filled = [key for key, value in {**secret.get("data", {}), **secret.get("stringData", {})}.items() if value]
    assert not filled, f"{SECRET_TEMPLATE.name} is a template: leave {filled} empty"
    for overlay in OVERLAYS:
        assert not of_kind(overlay, "Secret"), f"{overlay} renders a Secret: secrets are created out of band"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_hardened(overlay: str) -> None:
    accounts = of_kind(overlay, "ServiceAccount")
    problems: list[str] = []
    for name, template in pod_templates(overlay).items():
        pod = template["spec"]
        pod_security = pod.get("securityContext", {})
        account = pod.get("serviceAccountName")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken must be false")
        if account not in accounts or accounts[account].get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: its own ServiceAccount (automountServiceAccountToken: false), got {account}")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name}/{container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            if security.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot")
            if not isinstance(security.get("runAsUser"), int) or security["runAsUser"] < 10000:
                problems.append(f"{where}: runAsUser must be a uid >= 10000, got {security.get('runAsUser')}")
            if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile RuntimeDefault")
            container_security = container.get("securityContext", {})
            if container_security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation false")
            if container_security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem true")
            capabilities = container_security.get("capabilities", {})
            if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
                problems.append(f"{where}: capabilities drop [ALL], add none, got {capabilities}")
            if container_security.get("privileged"):
                problems.append(f"{where}: privileged")
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(section, {}):
                        problems.append(f"{where}: resources.{section}.{resource}")
            if container in pod["containers"]:
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    if "httpGet" not in container.get(probe, {}):
                        problems.append(f"{where}: {probe} (httpGet)")
            mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in container.get("volumeMounts", [])}
            if "emptyDir" not in mounts.get("/tmp", {}):
                problems.append(f"{where}: /tmp must be an emptyDir (the root filesystem is read-only)")
            writable = [path for path, volume in mounts.items() if "emptyDir" not in volume]
            if writable:
                problems.append(f"{where}: only emptyDir volumes are mounted, got {writable}")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problems.append(f"{name}: host namespaces")
    assert not problems, f"{overlay}:\n" + "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_that_lets_one_pod_go(overlay: str) -> None:
    budgets = of_kind(overlay, "PodDisruptionBudget")
    templates = pod_templates(overlay)
    for name, deployment in of_kind(overlay, "Deployment").items():
        labels = templates[name]["metadata"]["labels"]
        covering = [b for b in budgets.values() if netpol.selects(b["spec"]["selector"], labels)]
        assert len(covering) == 1, f"{overlay}: {name} needs exactly one PodDisruptionBudget, got {len(covering)}"
        spec, replicas = covering[0]["spec"], deployment["spec"]["replicas"]
        others = [other for other, template in templates.items()
                  if other != name and netpol.selects(spec["selector"], template["metadata"]["labels"])]
        assert not others, f"{overlay}: the budget of {name} also selects {others}"
        # A budget that never allows an eviction blocks every node drain: with one replica too.
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] >= 1, f"{overlay}: {name}"
        else:
            assert spec["minAvailable"] < replicas, f"{overlay}: {name} minAvailable must stay below {replicas}"
        # Every replica is unready while a dependency is down (MongoDB for the CPA, etcd for the controllers),
        # e.g. while the drain itself moves it: the default IfHealthyBudget then refuses every eviction.
        assert spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow", f"{overlay}: {name} {spec}"


def eviction_allowed(budget: dict[str, Any], replicas: int, ready: int, evicting_ready: bool) -> bool:
    """The eviction API's decision for one pod (PodDisruptionBudgetSpec, policy/v1): desiredHealthy is
    replicas - maxUnavailable; a ready pod may go while currentHealthy - desiredHealthy > 0; a running but
    unready pod, under the default IfHealthyBudget, only while currentHealthy >= desiredHealthy, under
    AlwaysAllow at any time."""
    spec = budget["spec"]
    desired = replicas - int(spec["maxUnavailable"])
    if evicting_ready:
        return ready - desired > 0
    if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    return ready >= desired


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_drain_is_not_blocked_while_every_replica_is_unready(overlay: str) -> None:
    """docs/deployment.md promises that a node drain "never blocks": with no replica ready, one unready pod may
    still be evicted; with every replica ready, one may go."""
    assert "never blocks" in (ROOT / "docs" / "deployment.md").read_text()
    budgets = of_kind(overlay, "PodDisruptionBudget")
    for name, deployment in of_kind(overlay, "Deployment").items():
        replicas = deployment["spec"]["replicas"]
        assert eviction_allowed(budgets[name], replicas, ready=0, evicting_ready=False), (
            f"{overlay}: {name}, {replicas} replicas none ready: every eviction refused ({budgets[name]['spec']})")
        assert eviction_allowed(budgets[name], replicas, ready=replicas, evicting_ready=True), f"{overlay}: {name}"


# ------------------------------------------------------------------------------------ NetworkPolicies

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default(overlay: str) -> None:
    policies = list(of_kind(overlay, "NetworkPolicy").values())
    catch_all = [p for p in policies if p["spec"]["podSelector"] == {}
                 and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                 and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert catch_all, f"{overlay}: a default-deny policy (every pod, both directions, no rule)"
    namespace = namespace_of(overlay)
    for name, template in pod_templates(overlay).items():
        subject = netpol.Endpoint(namespace=namespace, labels=template["metadata"]["labels"])
        for direction in ("Ingress", "Egress"):
            assert netpol.isolated(policies, subject, direction), f"{overlay}: {name} is open for {direction}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_only_the_cpa_be_reached(overlay: str) -> None:
    policies = list(of_kind(overlay, "NetworkPolicy").values())
    ns = namespace_of(overlay)
    cpa, internet, elsewhere = netpol.lcm_pod(ns, "control-plane-api"), netpol.outside("203.0.113.7"), \
        netpol.pod("ingress-nginx", app="ingress-nginx")
    assert netpol.allowed(policies, internet, cpa, 8030)
    assert netpol.allowed(policies, elsewhere, cpa, 8030)
    assert not netpol.allowed(policies, internet, cpa, 22), "the CPA accepts its port only"
    for controller in CONTROLLERS:
        target, port = netpol.lcm_pod(ns, controller), default_port(controller)
        for source in (internet, elsewhere, cpa, *(netpol.lcm_pod(ns, c) for c in CONTROLLERS if c != controller)):
            assert not netpol.allowed(policies, source, target, port), f"{source} reaches {controller}:{port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_each_service_reach_only_what_it_uses(overlay: str) -> None:
    policies = list(of_kind(overlay, "NetworkPolicy").values())
    ns = namespace_of(overlay)
    cpa = netpol.lcm_pod(ns, "control-plane-api")
    data = netpol.pod(DATA_NAMESPACE, app="data")
    dns = netpol.pod("kube-system", **{"k8s-app": "kube-dns"})
    aws, cml_host = netpol.outside("52.94.236.248"), netpol.outside("10.0.12.34")
    for port in (27017, 6379, 2379):
        assert netpol.allowed(policies, cpa, data, port), f"CPA -> {DATA_NAMESPACE}:{port}"
    assert netpol.allowed(policies, cpa, aws, 443), "CPA -> the OIDC issuer (HTTPS)"
    assert not netpol.allowed(policies, cpa, aws, 80)
    assert not netpol.allowed(policies, cpa, netpol.pod("other", app="x"), 27017), "CPA -> another namespace"
    for controller in CONTROLLERS:
        source = netpol.lcm_pod(ns, controller)
        assert netpol.allowed(policies, source, cpa, 8030), f"{controller} -> CPA"
        assert netpol.allowed(policies, source, data, 2379), f"{controller} -> etcd"
        assert not netpol.allowed(policies, source, data, 27017), f"{controller} must not reach MongoDB"
        assert not netpol.allowed(policies, source, data, 6379), f"{controller} must not reach Redis"
        assert netpol.allowed(policies, source, aws, 443), f"{controller} -> AWS (HTTPS)"
        assert netpol.allowed(policies, source, cml_host, 443), f"{controller} -> a CML host (HTTPS)"
        assert not netpol.allowed(policies, source, aws, 80), f"{controller}: plain HTTP out"
        assert not netpol.allowed(policies, source, cpa, 9090), f"{controller} -> CPA on another port"
    for service in LCM_SERVICES:
        source = netpol.lcm_pod(ns, service)
        assert netpol.allowed(policies, source, dns, 53, "UDP"), f"{service} -> DNS (UDP)"
        assert netpol.allowed(policies, source, dns, 53, "TCP"), f"{service} -> DNS (TCP)"
        assert not netpol.allowed(policies, source, netpol.pod("kube-system", app="other"), 53, "UDP")
