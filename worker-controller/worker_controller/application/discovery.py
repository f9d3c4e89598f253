"""Discovery (seed 000): per region, AMIs matching the pattern → their instances → bulk-import; workers
whose instance is gone or terminated are reported terminated (orphan detection, ADR-014)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from worker_controller.application.fleet_settings import FleetSettingsReader
from worker_controller.domain.worker_view import WorkerView
from worker_controller.infrastructure.aws import AwsFleet, Ec2Instance
from worker_controller.infrastructure.control_plane import ControlPlaneGateway

logger = logging.getLogger(__name__)

SOURCE = "worker-controller-discovery"


@dataclass
class DiscoveryOutcome:
    found: dict[str, int] = field(default_factory=dict)
    created: int = 0
    orphans: list[str] = field(default_factory=list)
    failed_regions: dict[str, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent scanning EC2 and importing (the slowest region's; regions run side by side) and checking
    orphans."""
    workers: list[WorkerView] | None = None
    """Every non-terminated worker after this cycle's imports and orphan reports (None: not read, e.g. when
    discovery is disabled)."""


def to_discovered(instance: Ec2Instance, ami_names: dict[str, str]) -> dict[str, Any]:
    return {
        "aws_instance_id": instance.instance_id, "aws_region": instance.region, "name": instance.name,
        "instance_type": instance.instance_type, "ami_id": instance.image_id,
        "ami_name": ami_names.get(instance.image_id or ""), "state": instance.state,
        "public_ip": instance.public_ip, "private_ip": instance.private_ip,
        "launch_time": instance.launch_time.isoformat() if instance.launch_time else None,
        "tags": {k[:256]: v[:256] for k, v in list(instance.tags.items())[:50]},
    }


class Discovery:
    def __init__(self, aws: AwsFleet, gateway: ControlPlaneGateway, settings: FleetSettingsReader) -> None:
        self._aws = aws
        self._gateway = gateway
        self._settings = settings
        self.last: DiscoveryOutcome | None = None

    async def _scan(self, region: str, pattern: str) -> tuple[list[Ec2Instance], dict[str, str]]:
        amis = await self._aws.find_amis(region, pattern)
        return (await self._aws.instances_from_amis(region, list(amis)) if amis else []), amis

    async def _scan_and_import(self, region: str, pattern: str, outcome: DiscoveryOutcome,
                               seen: dict[str, set[str]]) -> None:
        """One region end to end: its import starts as soon as its own scan is back, not after every region's."""
        started = time.monotonic()
        try:
            instances, amis = await self._scan(region, pattern)
        except Exception as exc:  # one region failing must not stop the others (reported, not raised)
            outcome.failed_regions[region] = str(exc)
            logger.warning("discovery in %s failed: %s", region, exc)
            return
        seen[region] = {i.instance_id for i in instances}
        outcome.found[region] = len(instances)
        outcome.phases["scan"] = max(outcome.phases.get("scan", 0.0), round(time.monotonic() - started, 3))
        if instances:
            mark = time.monotonic()
            reply = await self._gateway.bulk_import([to_discovered(i, amis) for i in instances], SOURCE)
            outcome.created += len(reply["created"])
            outcome.phases["import"] = max(outcome.phases.get("import", 0.0), round(time.monotonic() - mark, 3))

    async def run_once(self) -> DiscoveryOutcome:
        fleet = await self._settings.refresh()
        outcome = DiscoveryOutcome()
        if not fleet.discovery_enabled:
            logger.info("discovery disabled")
            self.last = outcome
            return outcome
        seen: dict[str, set[str]] = {}
        await asyncio.gather(*(self._scan_and_import(r, fleet.ami_name_pattern, outcome, seen)
                               for r in fleet.regions))
        mark = time.monotonic()
        outcome.orphans, outcome.workers = await self._mark_orphans(seen)
        outcome.phases["orphans"] = round(time.monotonic() - mark, 3)
        logger.info("discovery: %s; %d new, %d orphaned%s",
                    ", ".join(f"{r} {n}" for r, n in outcome.found.items()) or "no region scanned",
                    outcome.created, len(outcome.orphans),
                    f"; failed: {', '.join(outcome.failed_regions)}" if outcome.failed_regions else "")
        # Kept for status pages without the worker list: holding 2,000 views until the next cycle would only
        # raise the controller's peak memory while that cycle builds the next list.
        self.last = replace(outcome, workers=None)
        if outcome.failed_regions and not outcome.found:
            raise RuntimeError(f"discovery failed in every region: {outcome.failed_regions}")
        return outcome

    async def _mark_orphans(self, seen: dict[str, set[str]]) -> tuple[list[str], list[WorkerView]]:
        """Known workers of a scanned region that the scan did not return: terminated if EC2 agrees.

        Returns the orphans and the worker list as it stands after this cycle (one read, after the imports):
        the metrics cycle that follows a discovery starts from it instead of reading the list again.
        """
        workers = await self._gateway.workers()
        suspects: dict[str, list[WorkerView]] = {}
        for worker in workers:
            if worker.aws_instance_id is None:
                continue  # created from a template and not launched yet: the reconciler owns it
            if worker.aws_region in seen and worker.aws_instance_id not in seen[worker.aws_region]:
                suspects.setdefault(worker.aws_region, []).append(worker)
        orphans: dict[str, WorkerView] = {}
        for region, candidates in suspects.items():
            # Not matched by the AMI filter is not "gone" (the pattern may have changed): ask EC2 by id.
            alive = await self._aws.instances_by_id(region, [w.aws_instance_id for w in candidates
                                                             if w.aws_instance_id])
            for worker in candidates:
                instance = alive.get(worker.aws_instance_id or "")
                if instance is None or instance.state == "terminated":
                    orphans[worker.id] = await self._gateway.report_status(worker.id, {
                        "ec2_state": "terminated",
                        "reason": "instance no longer exists in EC2 (orphan)" if instance is None
                        else "instance terminated in EC2"})
        return list(orphans), [w for w in workers if w.id not in orphans]
