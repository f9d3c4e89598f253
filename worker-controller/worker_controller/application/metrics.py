"""One metrics cycle over the running fleet (seeds 000, 001, 004; ARCHITECTURE §9).

Per region, batched: EC2 status checks and CloudWatch CPU/network. Per worker, concurrent under a bound:
CML system information, stats, health, licensing and labs. Then one `metrics:batch` report per 500
workers, and idle detection for the workers due for it. A worker whose CML API fails is reported
`unreachable`; the others are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lcm_core.cml import CmlClient, CmlError
from lcm_core.cml.telemetry import CmlTelemetrySnapshot
from lcm_core.domain.enums import WorkerStatus
from lcm_core.errors import LcmError
from worker_controller.domain.worker_view import WorkerView
from worker_controller.infrastructure.aws import AwsFleet, CloudWatchSample, StatusChecks
from worker_controller.infrastructure.control_plane import ControlPlaneGateway

logger = logging.getLogger(__name__)


@dataclass
class CycleOutcome:
    workers: int = 0
    reported: int = 0
    cml_failures: int = 0
    idle_checked: int = 0
    by_health: Counter[str] = field(default_factory=Counter)
    duration_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent collecting (AWS + CML), reporting to the CPA and running idle detection."""


def _cml_section(result: CmlTelemetrySnapshot | CmlError | None) -> dict[str, Any] | None:
    if result is None:
        return None
    if isinstance(result, CmlError):
        return {"reachable": False, "error": f"{type(result).__name__}: {result.message}"[:1000]}
    return result.report_dict()


def build_report(worker: WorkerView, now: datetime, checks: StatusChecks | None, sample: CloudWatchSample | None,
                 cml: CmlTelemetrySnapshot | CmlError | None) -> dict[str, Any]:
    """The `metrics:batch` item of one worker; a source that gave nothing is left out, not zeroed."""
    metrics: dict[str, Any] = {"collected_at": now.isoformat()}
    if checks is not None:
        metrics["ec2"] = {"state": checks.state, "system_status": checks.system_status,
                          "instance_status": checks.instance_status}
    if sample is not None:
        metrics["cloudwatch"] = {"cpu_utilization": sample.cpu_utilization,
                                 "network_in_bytes": sample.network_in_bytes,
                                 "network_out_bytes": sample.network_out_bytes}
    section = _cml_section(cml)
    if section is not None:
        metrics["cml"] = section
    return {"worker_id": worker.id, "metrics": metrics}


class MetricsCollector:
    def __init__(self, aws: AwsFleet, cml: CmlClient, gateway: ControlPlaneGateway, *, cml_url_template: str,
                 idle_check_interval: float, cml_max_hosts: int = 200, idle_concurrency: int = 20,
                 idle_detection: bool = True) -> None:
        self._idle_detection = idle_detection
        self._aws = aws
        self._cml = cml
        self._gateway = gateway
        self._template = cml_url_template
        self._idle_interval = idle_check_interval
        self._cml_max_hosts = cml_max_hosts
        self._idle_gate = asyncio.Semaphore(idle_concurrency)
        self._last_idle_check: dict[str, float] = {}
        self.last: CycleOutcome | None = None

    async def _region(self, region: str, ids: list[str], now: datetime
                      ) -> tuple[dict[str, StatusChecks], dict[str, CloudWatchSample]]:
        checks, samples = await asyncio.gather(self._aws.status_checks(region, ids),
                                               self._aws.cloudwatch(region, ids, now=now), return_exceptions=True)
        if isinstance(checks, BaseException):
            logger.warning("EC2 status checks in %s failed: %s", region, checks)
            checks = {}
        if isinstance(samples, BaseException):
            logger.warning("CloudWatch in %s failed: %s", region, samples)
            samples = {}
        return checks, samples

    async def run_once(self, only: list[WorkerView] | None = None) -> CycleOutcome:
        started = time.monotonic()
        now = datetime.now(UTC)
        workers = only if only is not None else await self._gateway.workers(status=WorkerStatus.RUNNING.value)
        outcome = CycleOutcome(workers=len(workers), by_health=Counter(w.health_status for w in workers))
        by_region: dict[str, list[str]] = {}
        workers = [w for w in workers if w.aws_instance_id is not None]
        for worker in workers:
            by_region.setdefault(worker.aws_region, []).append(worker.aws_instance_id)
        hosts = {w.id: w.cml_url(self._template) for w in workers}
        aws_task = asyncio.gather(*(self._region(r, ids, now) for r, ids in by_region.items()))
        cml_task = self._cml.collect_fleet_telemetry([h for h in hosts.values() if h],
                                                     max_hosts=self._cml_max_hosts)
        regional, cml_results = await asyncio.gather(aws_task, cml_task)
        outcome.phases["collect"] = round(time.monotonic() - started, 3)
        checks: dict[str, StatusChecks] = {}
        samples: dict[str, CloudWatchSample] = {}
        for region_checks, region_samples in regional:
            checks.update(region_checks)
            samples.update(region_samples)
        reports = []
        for worker in workers:
            host = hosts[worker.id]
            result = cml_results.get(host) if host else None
            if isinstance(result, CmlError):
                outcome.cml_failures += 1
            reports.append(build_report(worker, now, checks.get(worker.aws_instance_id),
                                        samples.get(worker.aws_instance_id), result))
        mark = time.monotonic()
        if reports:
            outcome.reported = len((await self._gateway.report_metrics(reports))["updated"])
        outcome.phases["report"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        if self._idle_detection:
            outcome.idle_checked = await self._detect_idle(workers)
        outcome.phases["idle"] = round(time.monotonic() - mark, 3)
        outcome.duration_seconds = round(time.monotonic() - started, 3)
        self.last = outcome
        logger.info("metrics: %d running workers, %d reported, %d CML unreachable, %d idle checks in %.2fs",
                    outcome.workers, outcome.reported, outcome.cml_failures, outcome.idle_checked,
                    outcome.duration_seconds)
        return outcome

    async def _detect_idle(self, workers: list[WorkerView]) -> int:
        due = [w for w in workers
               if time.monotonic() - self._last_idle_check.get(w.id, float("-inf")) >= self._idle_interval]

        async def one(worker: WorkerView) -> bool:
            async with self._idle_gate:
                try:
                    verdict = await self._gateway.detect_idle(worker.id)
                except LcmError as exc:
                    logger.warning("idle detection of %s failed: %s", worker.id, exc)
                    return False
            self._last_idle_check[worker.id] = time.monotonic()
            if verdict.get("desired_status") == "stopped" and verdict.get("pause_reason") == "idle_timeout":
                logger.info("worker %s (%s) is idle: auto-pause requested", worker.name, worker.id)
            return True

        return sum(await asyncio.gather(*(one(w) for w in due)))
