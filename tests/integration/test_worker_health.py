"""Honest health end to end: the worker-controller's metrics cycle reads the CML simulator over real sockets and
reports to a real CPA; the simulator's fault injection makes CML endpoints fail, answer garbage or go down."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from lcm_core.cml import CmlClient
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks
from tests.fixtures.cml_simulator import new_instance_id
from tests.fixtures.control_plane import API_KEY, discovered
from worker_controller.application.metrics import MetricsCollector
from worker_controller.infrastructure.control_plane import ControlPlaneGateway


class _NoAws:
    """EC2 and CloudWatch have nothing to say here: the test is about what CML says."""

    async def status_checks(self, region: str, ids: list[str]) -> dict[str, Ec2Checks]:
        return {}

    async def cloudwatch(self, region: str, ids: list[str], *, now: datetime) -> dict[str, CloudWatchSample]:
        return {}


def test_failing_malformed_and_down_cml_endpoints_show_as_stale_and_unhealthy(control_plane, cml_simulator_clean
                                                                             ) -> None:
    cp, sim = control_plane, cml_simulator_clean
    instance = new_instance_id()
    epoch = int(cp.leader()["X-LCM-Leader-Epoch"])
    with cp.client() as http:
        imported = http.post("/api/internal/workers/bulk-import", headers=cp.leader(), json={
            "instances": [discovered(1, aws_instance_id=instance)]})
        worker_id = imported.json()["created"][0]

        def worker() -> dict[str, Any]:
            return http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()

        async def cycle() -> None:
            async with CmlClient(sim.username, sim.password) as cml, \
                    ControlPlaneClient(cp.url, API_KEY, epoch_provider=lambda: epoch) as client:
                collector = MetricsCollector(_NoAws(), cml, ControlPlaneGateway(client),  # type: ignore[arg-type]
                                             cml_url_template=f"{sim.url}/hosts/{{instance_id}}")
                outcome = await collector.run_once()
                assert outcome.reported == 1

        asyncio.run(cycle())
        fresh = worker()
        assert (fresh["service_status"], fresh["health_status"], fresh["telemetry"]["stale"]) == (
            "available", "healthy", {})
        cpu, seen = fresh["telemetry"]["utilisation"]["cpu_percent"], fresh["telemetry"]["last_seen_at"]
        assert cpu is not None

        with sim.fault(instance, endpoints=["system_health"], malformed="non_json"):
            asyncio.run(cycle())
        broken = worker()
        assert broken["health_status"] == "degraded"
        assert list(broken["telemetry"]["stale"]) == ["cml.system_health"]
        assert any(r.startswith("CML system_health failed (CmlResponseError")
                   for r in broken["telemetry"]["health_reasons"])
        assert broken["telemetry"]["cml"]["health_valid"] is True  # the last values, kept

        with sim.fault(instance, endpoints=["system_stats"], malformed="nulls"):
            asyncio.run(cycle())
        garbled = worker()
        assert garbled["health_status"] == "degraded"
        assert list(garbled["telemetry"]["stale"]) == ["cml.system_stats"]  # system_health answers again
        assert garbled["telemetry"]["health_reasons"] == [
            "CML system_stats failed (malformed answer: none of its values could be read)"]
        assert garbled["telemetry"]["utilisation"]["cpu_percent"] == cpu  # not replaced by nothing

        with sim.fault(instance, down=True):
            asyncio.run(cycle())
            asyncio.run(cycle())
        down = worker()
        assert down["health_status"] == "unreachable"
        assert "cml" in down["telemetry"]["stale"]
        # last seen moved while CML answered, not since
        assert down["telemetry"]["last_seen_at"] == garbled["telemetry"]["last_seen_at"] > seen

        asyncio.run(cycle())
        back = worker()
    assert (back["health_status"], back["telemetry"]["stale"]) == ("healthy", {})
    assert back["telemetry"]["last_seen_at"] > down["telemetry"]["last_seen_at"]
