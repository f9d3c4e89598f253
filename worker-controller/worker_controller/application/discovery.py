"""Discovery: per region, AMIs matching the pattern → their instances → bulk-import; workers
whose instance is gone or terminated are reported terminated (orphan detection).

Discovery never reads the whole worker list: each page of instances is imported as soon as EC2 returns it,
and the import's reply gives the workers as stored; an inventory check (`unseen`) then names the workers
the scan did not see: the orphan suspects, and the workers of regions that were not (or could not be)
scanned. Whoever runs a discovery may have every worker it touched handed over as it goes (`on_workers`),
which is how a discovery measures what it finds while EC2 still lists the rest (see `fleet_cycle`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import Status, StatusCode

from lcm_core import tracing
from lcm_core.aio import gather_or_cancel
from worker_controller.application.fleet_settings import FleetSettingsReader
from worker_controller.application.ports import AmiInstances, DiscoveryReports
from worker_controller.domain.ec2 import Ec2Instance
from worker_controller.domain.worker_view import WorkerView

logger = logging.getLogger(__name__)

SOURCE = "worker-controller-discovery"

WorkerSink = Callable[[list[WorkerView]], None]
"""Receives workers as a discovery imports (or, at its end, finds) them; must not block."""


@dataclass
class DiscoveryOutcome:
    enabled: bool = True
    found: dict[str, int] = field(default_factory=dict)
    created: int = 0
    orphans: list[str] = field(default_factory=list)
    failed_regions: dict[str, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds until the last region's scan was back (imports overlap it), until its last import was, and
    spent on the inventory check and orphans after that."""


def to_discovered(instance: Ec2Instance, ami_names: dict[str, str],
                  observed_at: datetime | None = None) -> dict[str, Any]:
    """The import item of one instance; `observed_at` is when EC2 was asked (no later than its answer)."""
    return {
        "aws_instance_id": instance.instance_id, "aws_region": instance.region, "name": instance.name,
        "instance_type": instance.instance_type, "ami_id": instance.image_id,
        "ami_name": ami_names.get(instance.image_id or ""), "state": instance.state,
        "public_ip": instance.public_ip, "private_ip": instance.private_ip,
        "launch_time": instance.launch_time.isoformat() if instance.launch_time else None,
        "tags": {k[:256]: v[:256] for k, v in list(instance.tags.items())[:50]},
        "observed_at": (observed_at or datetime.now(UTC)).isoformat(),
    }


class Discovery:
    def __init__(self, aws: AmiInstances, gateway: DiscoveryReports, settings: FleetSettingsReader) -> None:
        self._aws = aws
        self._gateway = gateway
        self._settings = settings
        self.last: DiscoveryOutcome | None = None

    async def _scan_and_import(self, region: str, pattern: str, outcome: DiscoveryOutcome,
                               seen: dict[str, set[str]], on_workers: WorkerSink | None) -> None:
        """One region, a page at a time: each page is imported (and handed on) while EC2 lists the next."""
        with tracing.tracer().start_as_current_span("discovery.region", record_exception=False) as span:
            span.set_attributes({tracing.CLOUD_PROVIDER: "aws", tracing.CLOUD_REGION: region})
            await self._scan_and_import_region(region, pattern, outcome, seen, on_workers)
            if region in outcome.failed_regions:
                span.set_status(Status(StatusCode.ERROR, outcome.failed_regions[region][:200]))
            else:
                span.set_attribute("lcm.instances.found", outcome.found.get(region, 0))

    async def _scan_and_import_region(self, region: str, pattern: str, outcome: DiscoveryOutcome,
                                      seen: dict[str, set[str]], on_workers: WorkerSink | None) -> None:
        started = time.monotonic()
        ids: set[str] = set()
        imports: list[asyncio.Task[None]] = []

        async def import_page(instances: list[Ec2Instance], amis: dict[str, str], asked: datetime) -> None:
            reply = await self._gateway.bulk_import([to_discovered(i, amis, asked) for i in instances], SOURCE)
            outcome.created += len(reply.created)
            if on_workers is not None:
                on_workers(reply.workers)

        try:
            amis = await self._aws.find_amis(region, pattern)
            if amis:
                asked = datetime.now(UTC)  # each page is asked for when the loop comes back for it
                async for page in self._aws.instances_from_amis(region, list(amis)):
                    ids.update(i.instance_id for i in page)
                    imports.append(asyncio.create_task(import_page(page, amis, asked)))
                    asked = datetime.now(UTC)
        except Exception as exc:  # one region failing must not stop the others (reported, not raised)
            outcome.failed_regions[region] = str(exc)
            logger.warning("discovery in %s failed: %s", region, exc)
            # Imports already sent stand; the region counts as not scanned, so nothing in it is an orphan.
            await asyncio.gather(*imports, return_exceptions=True)
            return
        outcome.phases["scan"] = max(outcome.phases.get("scan", 0.0), round(time.monotonic() - started, 3))
        await gather_or_cancel(*imports)
        seen[region] = ids
        outcome.found[region] = len(ids)
        outcome.phases["import"] = max(outcome.phases.get("import", 0.0), round(time.monotonic() - started, 3))

    async def run_once(self, on_workers: WorkerSink | None = None) -> DiscoveryOutcome:
        """One discovery (a span, with a child per region). `on_workers` gets every imported worker as its page
        is imported, then every other worker with an instance that is not terminated and not an orphan (none
        of them twice)."""
        with tracing.tracer().start_as_current_span("discovery.scan") as span:
            outcome = await self._run_once(on_workers)
            span.set_attributes({"lcm.instances.found": sum(outcome.found.values()),
                                 "lcm.workers.created": outcome.created, "lcm.workers.orphaned": len(outcome.orphans),
                                 "lcm.regions.failed": sorted(outcome.failed_regions)})
            return outcome

    async def _run_once(self, on_workers: WorkerSink | None) -> DiscoveryOutcome:
        fleet = await self._settings.refresh()
        outcome = DiscoveryOutcome()
        if not fleet.discovery_enabled:
            logger.info("discovery disabled")
            outcome.enabled = False
            self.last = outcome
            return outcome
        seen: dict[str, set[str]] = {}
        await gather_or_cancel(*(self._scan_and_import(r, fleet.ami_name_pattern, outcome, seen, on_workers)
                                 for r in fleet.regions))
        mark = time.monotonic()
        unseen = await self._gateway.unseen(i for ids in seen.values() for i in ids)
        outcome.orphans = await self._mark_orphans(unseen, seen)
        if on_workers is not None:
            on_workers([w for w in unseen if w.id not in outcome.orphans])
        outcome.phases["orphans"] = round(time.monotonic() - mark, 3)
        logger.info("discovery: %s; %d new, %d orphaned%s",
                    ", ".join(f"{r} {n}" for r, n in outcome.found.items()) or "no region scanned",
                    outcome.created, len(outcome.orphans),
                    f"; failed: {', '.join(outcome.failed_regions)}" if outcome.failed_regions else "")
        self.last = outcome
        if outcome.failed_regions and not outcome.found:
            raise RuntimeError(f"discovery failed in every region: {outcome.failed_regions}")
        return outcome

    async def _mark_orphans(self, unseen: list[WorkerView], seen: dict[str, set[str]]) -> list[str]:
        """Workers of a scanned region that the scan did not return: terminated if EC2 agrees."""
        suspects: dict[str, list[WorkerView]] = {}
        for worker in unseen:
            if worker.aws_instance_id is not None and worker.aws_region in seen \
                    and worker.aws_instance_id not in seen[worker.aws_region]:
                suspects.setdefault(worker.aws_region, []).append(worker)
        orphans: list[str] = []
        for region, candidates in suspects.items():
            # Not matched by the AMI filter is not "gone" (the pattern may have changed): ask EC2 by id.
            asked = datetime.now(UTC)
            alive = await self._aws.instances_by_id(region, [w.aws_instance_id for w in candidates
                                                             if w.aws_instance_id])
            for worker in candidates:
                instance = alive.get(worker.aws_instance_id or "")
                if instance is None or instance.state == "terminated":
                    await self._gateway.report_status(worker.id, {
                        "ec2_state": "terminated", "observed_at": asked.isoformat(),
                        "reason": "instance no longer exists in EC2 (orphan)" if instance is None
                        else "instance terminated in EC2"})
                    orphans.append(worker.id)
        return orphans
