"""Discovery imports each page of instances as soon as EC2 returns it and hands the imported workers on while
the scan goes on; it never reads the worker list: an inventory check names the workers it did not see,
which are orphans if their region was scanned and EC2 agrees, and handed on otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from lcm_core.domain.enums import WorkerStatus
from worker_controller.application.discovery import Discovery
from worker_controller.application.fleet_settings import FleetSettings
from worker_controller.domain.ec2 import Ec2Instance
from worker_controller.domain.worker_view import ImportReply, WorkerView

REGIONS = ("us-east-1", "us-west-2")


class Settings:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    async def refresh(self) -> FleetSettings:
        return FleetSettings(self.enabled, REGIONS, "CML-*", 60.0, 60.0, "environment")


def iid(n: int) -> str:
    return f"i-{n:017x}"


class FakeAws:
    """Each region's instances in pages; a region's second page waits until its first page is imported."""

    def __init__(self, pages: dict[str, list[list[int]]], log: list[str]) -> None:
        self.pages = pages
        self.log = log
        self.imported: dict[str, asyncio.Event] = {r: asyncio.Event() for r in REGIONS}
        self.failing: set[str] = set()

    async def find_amis(self, region: str, pattern: str) -> dict[str, str]:
        if region in self.failing:
            raise RuntimeError(f"{region} unavailable")
        return {"ami-1": "CML-2.9"}

    async def instances_from_amis(self, region: str, amis: list[str]) -> AsyncIterator[list[Ec2Instance]]:
        for index, page in enumerate(self.pages[region]):
            if index:
                await self.imported[region].wait()
            self.log.append(f"listed {region} page {index + 1}")
            yield [Ec2Instance(iid(n), region, "running", image_id="ami-1") for n in page]

    async def instances_by_id(self, region: str, ids: list[str]) -> dict[str, Ec2Instance]:
        return {}  # gone from EC2


def view(n: int, region: str, instance: str | None = "") -> WorkerView:
    return WorkerView(id=f"w{n}", aws_region=region, aws_instance_id=iid(n) if instance == "" else instance,
                      status=WorkerStatus.RUNNING)


class FakeGateway:
    """The control plane's side: imports create or find workers; `unseen` answers like the CPA's query."""

    def __init__(self, aws: FakeAws, known: list[WorkerView], log: list[str]) -> None:
        self.aws = aws
        self.known = {w.aws_instance_id or w.id: w for w in known}
        self.log = log
        self.status_reports: list[str] = []

    async def bulk_import(self, bodies: list[dict[str, Any]], source: str) -> ImportReply:
        region = bodies[0]["aws_region"]
        self.log.append(f"imported {region} {len(bodies)}")
        reply = ImportReply()
        for body in bodies:
            instance = body["aws_instance_id"]
            if instance not in self.known:
                self.known[instance] = WorkerView(id=f"new-{instance}", aws_region=region, aws_instance_id=instance,
                                                  status=WorkerStatus.RUNNING)
                reply.created.append(self.known[instance].id)
            reply.workers.append(self.known[instance])
        self.aws.imported[region].set()
        return reply

    async def unseen(self, instance_ids: Iterable[str]) -> list[WorkerView]:
        seen = set(instance_ids)
        return [w for w in self.known.values()
                if w.aws_instance_id is not None and w.aws_instance_id not in seen and w.status != "terminated"]

    async def report_status(self, worker_id: str, body: dict[str, Any]) -> WorkerView:
        self.status_reports.append(worker_id)
        gone = next(w for w in self.known.values() if w.id == worker_id)
        return gone.model_copy(update={"status": "terminated"})


async def test_each_page_is_imported_and_handed_on_while_the_region_is_still_listed() -> None:
    log: list[str] = []
    aws = FakeAws({"us-east-1": [[1, 2], [3]], "us-west-2": [[4]]}, log)
    known = [view(1, "us-east-1"), view(4, "us-west-2"), view(5, "us-west-2"), view(6, "us-east-1", None),
             view(7, "eu-west-1")]
    gateway = FakeGateway(aws, known, log)
    handed: list[list[str]] = []

    def on_workers(workers: list[WorkerView]) -> None:
        log.append(f"handed {[w.id for w in workers]}")
        handed.append([w.id for w in workers])

    outcome = await asyncio.wait_for(
        Discovery(aws, gateway, Settings()).run_once(on_workers), 30)  # type: ignore[arg-type]

    assert log.index("imported us-east-1 2") < log.index("handed ['w1', 'new-i-00000000000000002']") \
        < log.index("listed us-east-1 page 2")
    assert outcome.found == {"us-east-1": 3, "us-west-2": 1}
    assert outcome.created == 2
    assert outcome.orphans == ["w5"]  # known in a scanned region, not listed, gone from EC2
    assert gateway.status_reports == ["w5"]
    # every worker once: the imported ones as they come, then the unseen ones that are not orphans
    # (w7's region is not scanned; w6 has no instance yet and belongs to the reconciler)
    assert sorted(w for batch in handed for w in batch) == sorted(
        ["w1", "new-i-00000000000000002", "new-i-00000000000000003", "w4", "w7"])
    assert handed[-1] == ["w7"]


async def test_a_failed_region_is_reported_and_its_workers_are_handed_on_not_orphaned() -> None:
    log: list[str] = []
    aws = FakeAws({"us-east-1": [[1]], "us-west-2": []}, log)
    aws.failing.add("us-west-2")
    gateway = FakeGateway(aws, [view(1, "us-east-1"), view(3, "us-west-2")], log)
    handed: list[str] = []

    outcome = await Discovery(aws, gateway, Settings()).run_once(  # type: ignore[arg-type]
        lambda workers: handed.extend(w.id for w in workers))

    assert "us-west-2" in outcome.failed_regions
    assert outcome.found == {"us-east-1": 1}
    assert outcome.orphans == []
    assert gateway.status_reports == []
    assert sorted(handed) == ["w1", "w3"]


async def test_disabled_discovery_touches_nothing() -> None:
    log: list[str] = []
    aws = FakeAws({"us-east-1": [[1]], "us-west-2": []}, log)
    outcome = await Discovery(aws, FakeGateway(aws, [], log), Settings(enabled=False)).run_once(  # type: ignore[arg-type]
        lambda workers: log.append("handed"))
    assert outcome.enabled is False
    assert log == []
