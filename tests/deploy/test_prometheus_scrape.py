"""deploy/prometheus/prometheus.yml against the rendered production overlay: which pods its scrape reaches. The
CPA's HTTP, SSE and event-log counters are per replica, so each replica must be its own target: a scrape
through a Service's cluster IP reaches one replica at random, and the replicas' counters then look like resets
(a spurious LcmSseClientsOverflowing). promtool cannot resolve names, so the DNS answer is derived from the
manifests by the rules of Kubernetes DNS: a headless Service's name answers with one A record per pod it
selects (ready pods, and unready ones too under publishNotReadyAddresses); any other Service's name answers
with its one cluster IP."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy import network_policy as netpol
from tests.deploy.prometheus_rules import PROMETHEUS
from tests.deploy.test_kubernetes import namespace_of, of_kind, pod_templates

OVERLAY = "production"


def scrape_job() -> dict[str, Any]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "lcm-control-plane"]
    return job


def service_named(dns_name: str, namespace: str) -> dict[str, Any]:
    """The Service a cluster DNS name (<service>.<namespace>.svc[.cluster.local]) stands for."""
    service, service_namespace, *rest = dns_name.split(".")
    assert rest[:1] == ["svc"], f"{dns_name}: not a Service name"
    assert service_namespace == namespace, f"{dns_name}: the overlay deploys to {namespace}"
    services = of_kind(OVERLAY, "Service")
    assert service in services, f"{dns_name}: no Service {service} in {sorted(services)}"
    return services[service]


def a_records(service: dict[str, Any], ready: int) -> list[tuple[str, str]]:
    """(pod, address) for each A record of the Service's name, with `ready` replicas of each Deployment ready."""
    spec = service["spec"]
    if spec.get("clusterIP") != "None":
        return [("<cluster IP>", "10.96.0.10")]
    records = []
    for index, (name, template) in enumerate(pod_templates(OVERLAY).items()):
        if not netpol.selects({"matchLabels": spec["selector"]}, template["metadata"]["labels"]):
            continue
        replicas = of_kind(OVERLAY, "Deployment")[name]["spec"]["replicas"]
        for replica in range(replicas):
            if replica < ready or spec.get("publishNotReadyAddresses"):
                records.append((f"{name}-{replica}", f"10.42.{index}.{replica + 10}"))
    return records


def container_port(service: dict[str, Any], port: int) -> int:
    """The CPA container port a connection to the Service's pods on `port` lands on (targetPort by name)."""
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    (container,) = pod_templates(OVERLAY)["control-plane-api"]["spec"]["containers"]
    (target,) = [p for p in container["ports"] if p["name"] == service_port["targetPort"]]
    return int(target["containerPort"])


def test_the_example_scrape_reaches_every_cpa_replica_as_its_own_target() -> None:
    job = scrape_job()
    assert "static_configs" not in job, f"{job['static_configs']}: a Service address, one replica per scrape"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["type"] == "A"
    (name,) = discovery["names"]
    service = service_named(name, namespace_of(OVERLAY))
    replicas = of_kind(OVERLAY, "Deployment")["control-plane-api"]["spec"]["replicas"]
    assert replicas > 1, "the production overlay runs several CPA replicas"
    for ready in (replicas, 0):  # all ready; none ready (MongoDB down: each still serves /metrics)
        targets = a_records(service, ready)
        assert sorted(pod for pod, _ in targets) == [f"control-plane-api-{r}" for r in range(replicas)], (
            f"{name} with {ready} of {replicas} ready: targets {targets}")
        assert len({address for _, address in targets}) == replicas
    assert container_port(service, discovery["port"]) == 8030
    assert job["authorization"]["credentials_file"], "/metrics needs credentials"


def test_the_example_scrape_through_the_api_service_would_reach_one_replica() -> None:
    """The check above can tell: the API's own Service (a cluster IP) is one target, whatever the replicas."""
    api = of_kind(OVERLAY, "Service")["control-plane-api"]
    assert a_records(api, ready=3) == [("<cluster IP>", "10.96.0.10")]


def test_the_network_policies_let_prometheus_reach_each_cpa_pod_on_the_scraped_port() -> None:
    namespace = namespace_of(OVERLAY)
    policies = list(of_kind(OVERLAY, "NetworkPolicy").values())
    prometheus = netpol.pod("monitoring", **{"app.kubernetes.io/name": "prometheus"})
    (discovery,) = scrape_job()["dns_sd_configs"]
    assert netpol.allowed(policies, prometheus, netpol.lcm_pod(namespace, "control-plane-api"), discovery["port"])
    for controller in ("worker-controller", "lablet-controller"):
        assert not netpol.allowed(policies, prometheus, netpol.lcm_pod(namespace, controller), discovery["port"])
