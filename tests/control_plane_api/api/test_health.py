"""Liveness and readiness of the CPA against real MongoDB-wire, Redis and etcd servers."""

from __future__ import annotations

import httpx

from control_plane_api.main import create_app
from control_plane_api.settings import ControlPlaneSettings
from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.processes import free_port
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


def test_ready_names_the_dependency_that_is_down(mongo_server, etcd_server) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_for(mongo_server, dead_redis, etcd_server.port)
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/api/health").status_code == 200  # liveness does not depend on Redis
        ready = httpx.get(f"{url}/api/ready", timeout=10)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["mongodb"] == "ok"
        assert checks["etcd"] == "ok"
        assert checks["redis"].startswith("error: ")


def test_openapi_document_is_served(mongo_server, redis_server, etcd_server) -> None:
    settings = settings_for(mongo_server, f"redis://{redis_server.address}/0", etcd_server.port)
    with serve_in_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/api/openapi.json").status_code == 401
        assert httpx.get(f"{url}/api/docs").status_code == 401
        key = {"X-API-Key": "test-internal-key"}
        document = httpx.get(f"{url}/api/openapi.json", headers=key).json()
        assert "/api/ready" in document["paths"]
        assert httpx.get(f"{url}/api/docs", headers=key).status_code == 200
