"""Discovery (seed 000): per region, AMIs matching the pattern → their instances → bulk-import; workers
whose instance is gone or terminated are reported terminated (orphan detection, ADR-014)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from worker_controller.application.fleet_settings import FleetSettingsReader
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
    """Seconds spent scanning EC2, importing into the control plane and checking orphans."""


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

    async def run_once(self) -> DiscoveryOutcome:
        fleet = await self._settings.refresh()
        outcome = DiscoveryOutcome()
        if not fleet.discovery_enabled:
            logger.info("discovery disabled")
            self.last = outcome
            return outcome
        started = time.monotonic()
        scans = await asyncio.gather(*(self._scan(r, fleet.ami_name_pattern) for r in fleet.regions),
                                     return_exceptions=True)
        seen: dict[str, set[str]] = {}
        bodies: list[dict[str, Any]] = []
        for region, scan in zip(fleet.regions, scans, strict=True):
            if isinstance(scan, BaseException):
                outcome.failed_regions[region] = str(scan)
                logger.warning("discovery in %s failed: %s", region, scan)
                continue
            instances, amis = scan
            seen[region] = {i.instance_id for i in instances}
            outcome.found[region] = len(instances)
            bodies += [to_discovered(i, amis) for i in instances]
        outcome.phases["scan"] = round(time.monotonic() - started, 3)
        mark = time.monotonic()
        if bodies:
            outcome.created = len((await self._gateway.bulk_import(bodies, SOURCE))["created"])
        outcome.phases["import"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        outcome.orphans = await self._mark_orphans(seen)
        outcome.phases["orphans"] = round(time.monotonic() - mark, 3)
        logger.info("discovery: %s; %d new, %d orphaned%s",
                    ", ".join(f"{r} {n}" for r, n in outcome.found.items()) or "no region scanned",
                    outcome.created, len(outcome.orphans),
                    f"; failed: {', '.join(outcome.failed_regions)}" if outcome.failed_regions else "")
        self.last = outcome
        if outcome.failed_regions and not outcome.found:
            raise RuntimeError(f"discovery failed in every region: {outcome.failed_regions}")
        return outcome

    async def _mark_orphans(self, seen: dict[str, set[str]]) -> list[str]:
        """Known workers of a scanned region that the scan did not return: terminated if EC2 agrees."""
        suspects: dict[str, list[Any]] = {}
        for worker in await self._gateway.workers():
            if worker.aws_instance_id is None:
                continue  # created from a template and not launched yet: the reconciler owns it
            if worker.aws_region in seen and worker.aws_instance_id not in seen[worker.aws_region]:
                suspects.setdefault(worker.aws_region, []).append(worker)
        orphans = []
        for region, workers in suspects.items():
            # Not matched by the AMI filter is not "gone" (the pattern may have changed): ask EC2 by id.
            alive = await self._aws.instances_by_id(region, [w.aws_instance_id for w in workers])
            for worker in workers:
                instance = alive.get(worker.aws_instance_id)
                if instance is None or instance.state == "terminated":
                    await self._gateway.report_status(worker.id, {
                        "ec2_state": "terminated",
                        "reason": "instance no longer exists in EC2 (orphan)" if instance is None
                        else "instance terminated in EC2"})
                    orphans.append(worker.id)
        return orphans
