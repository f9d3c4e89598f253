"""Discovery imports each region as soon as its own scan is back, reads the worker list once (orphans), and
hands that list, without the orphans, to the metrics cycle."""

from __future__ import annotations

import asyncio
from typing import Any

from worker_controller.application.discovery import Discovery
from worker_controller.application.fleet_settings import FleetSettings
from worker_controller.domain.worker_view import WorkerView
from worker_controller.infrastructure.aws import Ec2Instance

REGIONS = ("us-east-1", "us-west-2")


class Settings:
    async def refresh(self) -> FleetSettings:
        return FleetSettings(True, REGIONS, "CML-*", 60.0, 60.0, "environment")


class FakeAws:
    def __init__(self, instances: dict[str, list[str]], log: list[str]) -> None:
        self.instances = instances
        self.log = log
        self.slow_region_may_finish = asyncio.Event()
        self.failing: set[str] = set()

    async def find_amis(self, region: str, pattern: str) -> dict[str, str]:
        if region in self.failing:
            raise RuntimeError(f"{region} unavailable")
        return {"ami-1": "CML-2.9"}

    async def instances_from_amis(self, region: str, amis: list[str]) -> list[Ec2Instance]:
        if region == "us-west-2":
            await self.slow_region_may_finish.wait()
        self.log.append(f"scanned {region}")
        return [Ec2Instance(i, region, "running", image_id="ami-1") for i in self.instances[region]]

    async def instances_by_id(self, region: str, ids: list[str]) -> dict[str, Ec2Instance]:
        return {}  # gone from EC2


class FakeGateway:
    def __init__(self, aws: FakeAws, known: list[WorkerView], log: list[str]) -> None:
        self.aws = aws
        self.known = known
        self.log = log
        self.list_reads = 0
        self.status_reports: list[str] = []

    async def bulk_import(self, bodies: list[dict[str, Any]], source: str) -> dict[str, list[str]]:
        self.log.append(f"imported {bodies[0]['aws_region']}")
        self.aws.slow_region_may_finish.set()
        return {"created": [b["aws_instance_id"] for b in bodies], "updated": [], "unchanged": []}

    async def workers(self, **_: Any) -> list[WorkerView]:
        self.list_reads += 1
        return list(self.known)

    async def report_status(self, worker_id: str, body: dict[str, Any]) -> WorkerView:
        self.status_reports.append(worker_id)
        gone = next(w for w in self.known if w.id == worker_id)
        return gone.model_copy(update={"status": "terminated"})


def view(worker_id: str, region: str, instance: str | None) -> WorkerView:
    return WorkerView(id=worker_id, aws_region=region, aws_instance_id=instance, status="running")


async def test_a_region_is_imported_before_a_slower_region_has_finished_scanning() -> None:
    log: list[str] = []
    aws = FakeAws({"us-east-1": ["i-00000000000000001"], "us-west-2": ["i-00000000000000002"]}, log)
    known = [view("w1", "us-east-1", "i-00000000000000001"), view("w2", "us-west-2", "i-00000000000000002"),
             view("w3", "us-west-2", "i-00000000000000003"), view("w4", "us-east-1", None)]
    gateway = FakeGateway(aws, known, log)

    outcome = await asyncio.wait_for(Discovery(aws, gateway, Settings()).run_once(), 30)  # type: ignore[arg-type]

    assert log.index("imported us-east-1") < log.index("scanned us-west-2")
    assert outcome.found == {"us-east-1": 1, "us-west-2": 1}
    assert outcome.created == 2
    assert gateway.list_reads == 1
    assert outcome.orphans == ["w3"]  # known in a scanned region, not found, gone from EC2
    assert outcome.workers is not None
    assert [w.id for w in outcome.workers] == ["w1", "w2", "w4"]  # orphans are not handed to metrics


async def test_a_failed_region_is_reported_and_its_workers_are_not_orphaned() -> None:
    log: list[str] = []
    aws = FakeAws({"us-east-1": ["i-00000000000000001"], "us-west-2": []}, log)
    aws.failing.add("us-west-2")
    known = [view("w1", "us-east-1", "i-00000000000000001"), view("w3", "us-west-2", "i-00000000000000003")]
    gateway = FakeGateway(aws, known, log)

    outcome = await Discovery(aws, gateway, Settings()).run_once()  # type: ignore[arg-type]

    assert "us-west-2" in outcome.failed_regions
    assert outcome.found == {"us-east-1": 1}
    assert outcome.orphans == []
    assert gateway.status_reports == []
    assert outcome.workers is not None
    assert {w.id for w in outcome.workers} == {"w1", "w3"}
