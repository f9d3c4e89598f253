"""Liveness and readiness of the CPA against real MongoDB-wire, Redis and etcd servers."""

from __future__ import annotations

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from control_plane_api.main import create_app
from control_plane_api.settings import ControlPlaneSettings
from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.processes import free_port
from lcm_core.testing.servers import Endpoint
from tests.deploy.deployment_model import ROOT
from tests.fixtures.polling import wait_for
from tests.fixtures.settings import from_environment


def settings_for(mongo, redis_url: str, etcd_port: int) -> ControlPlaneSettings:
    return from_environment(
        ControlPlaneSettings,
        LCM_ENVIRONMENT="test",
        MONGODB_URL=f"mongodb://{mongo.address}",
        REDIS_URL=redis_url,
        ETCD_HOST="127.0.0.1",
        ETCD_PORT=etcd_port,
        CONTROL_PLANE_API_KEY="test-internal-key",
        CPA_DEPENDENCY_TIMEOUT=1.0,
    )


def test_health_and_ready_with_every_dependency_up(mongo_server, redis_server, etcd_server) -> None:
    settings = settings_for(mongo_server, f"redis://{redis_server.address}/0", etcd_server.port)
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/api/health").json() == {"status": "ok"}
        ready = httpx.get(f"{url}/api/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "checks": {"mongodb": "ok", "redis": "ok", "etcd": "ok"},
        }


def test_ready_stays_200_degraded_and_names_redis_when_redis_is_down(mongo_server, etcd_server) -> None:
    """Without Redis the CPA serves on (events buffered for the log): it stays ready, so a readinessProbe on
    /api/ready does not take every replica out of its Service at once; `checks` still says what is down."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_for(mongo_server, dead_redis, etcd_server.port)
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/api/health").status_code == 200  # liveness does not depend on Redis
        ready = httpx.get(f"{url}/api/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded"
        checks = ready.json()["checks"]
        assert checks["mongodb"] == "ok"
        assert checks["etcd"] == "ok"
        assert checks["redis"].startswith("error: ")


def test_ready_stays_200_degraded_and_names_etcd_when_etcd_is_down(mongo_server, redis_server) -> None:
    settings = settings_for(mongo_server, f"redis://{redis_server.address}/0", free_port())
    with serve_in_thread(create_app(settings)) as url:
        ready = httpx.get(f"{url}/api/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded"
        checks = ready.json()["checks"]
        assert checks["mongodb"] == "ok"
        assert checks["redis"] == "ok"
        assert checks["etcd"].startswith("error: ")


def test_ready_is_503_when_mongodb_is_down(redis_server, etcd_server) -> None:
    """Every read and write is a MongoDB query: without it the replica leaves its Service."""
    dead_mongo = Endpoint("127.0.0.1", free_port())
    settings = settings_for(dead_mongo, f"redis://{redis_server.address}/0", etcd_server.port)
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/api/health").status_code == 200
        ready = httpx.get(f"{url}/api/ready", timeout=10)
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "not_ready"
        checks = ready.json()["checks"]
        assert checks["mongodb"].startswith("error: ")
        assert checks["redis"] == "ok"
        assert checks["etcd"] == "ok"


def test_kubernetes_readiness_probe_passes_while_the_cpa_serves_without_redis(control_plane_factory) -> None:
    """The CPA Deployment's readinessProbe, asked of a CPA whose Redis is down while it serves degraded (and
    says so on /metrics for LcmEventLogUnavailable): the probe passes, so the replica stays in the Service the
    API, the controllers' internal calls and the scrape go through."""
    cp = control_plane_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    def event_log_down() -> bool:
        scraped = httpx.get(f"{cp.url}/metrics", headers=cp.internal())
        return scraped.status_code == 200 and any(
            s.name == "lcm_event_log_available" and s.value == 0
            for family in text_string_to_metric_families(scraped.text) for s in family.samples)

    wait_for("the CPA to see Redis down", event_log_down)
    assert httpx.get(f"{cp.url}/api/workers", headers=cp.viewer()).status_code == 200  # it serves
    manifests = [d for d in yaml.safe_load_all((ROOT / "deploy/k8s/base/control-plane-api.yaml").read_text()) if d]
    (deployment,) = [d for d in manifests if d["kind"] == "Deployment"]
    readiness = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    answer = httpx.get(f"{cp.url}{readiness}")
    assert answer.status_code == 200, f"readinessProbe {readiness}: {answer.status_code} {answer.text}"


def test_openapi_document_is_served(mongo_server, redis_server, etcd_server) -> None:
    settings = settings_for(mongo_server, f"redis://{redis_server.address}/0", etcd_server.port)
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/api/openapi.json").status_code == 401
        assert httpx.get(f"{url}/api/docs").status_code == 401
        key = {"X-API-Key": "test-internal-key"}
        document = httpx.get(f"{url}/api/openapi.json", headers=key).json()
        assert "/api/ready" in document["paths"]
        assert httpx.get(f"{url}/api/docs", headers=key).status_code == 200
