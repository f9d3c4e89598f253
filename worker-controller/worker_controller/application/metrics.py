"""One metrics cycle over the running fleet (docs/worker-controller.md, the `metrics` loop).

Per region, batched: EC2 status checks and CloudWatch CPU/network. Per worker, concurrent under a bound:
CML system information, stats, health, licensing and labs. As hosts answer, `metrics:batch` reports of
`REPORT_CHUNK` workers go out (control-plane writes overlap collection); the control plane judges idleness
as it stores each batch. A worker whose CML API fails is reported `unreachable`; the others are unaffected.

The workers of a cycle may arrive in batches while it runs (`run_stream`): each batch's AWS calls and CML
collections start as soon as it arrives. A discovery hands its imported pages over that way.

Tracing (docs/tracing.md): a cycle is a `metrics.cycle` span; each worker's collection a `metrics.worker` span
under it (worker id, instance id, region, CML host), from its admission to its host's answer; each report batch
a `metrics.report` span linked to the worker spans it reports, whose control-plane call carries the trace on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode

from lcm_core import tracing
from lcm_core.cml import CmlClient, CmlError
from lcm_core.domain.cml_snapshot import CmlTelemetrySnapshot
from lcm_core.domain.enums import ServiceStatus, WorkerStatus
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks, MetricsBatchOutcome, WorkerMetricsReport
from worker_controller.application.ports import InstanceHealth, MetricsReports
from worker_controller.domain.worker_view import WorkerView

logger = logging.getLogger(__name__)

REPORT_CHUNK = 250
"""Workers per `metrics:batch` sent during collection: small enough that the control plane starts writing
early and the last batch (the only one not overlapped with collection) is short, large enough that a fleet
of 2,000 is eight requests."""


@dataclass
class CycleOutcome:
    workers: int = 0
    reported: int = 0
    cml_failures: int = 0
    by_health: Counter[str] = field(default_factory=Counter)
    duration_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent collecting (AWS + CML, with reports already going out), and finishing the reports after
    the last host answered."""
    auto_paused: list[str] = field(default_factory=list)
    """Workers the control plane found idle in this cycle's reports, and asked to stop."""


def build_report(worker: WorkerView, now: datetime, checks: Ec2Checks | None, sample: CloudWatchSample | None,
                 cml: CmlTelemetrySnapshot | CmlError | None) -> WorkerMetricsReport:
    """One worker's report; a source that gave nothing is left out, not zeroed. The CML snapshot goes as
    it was collected (the control plane derives what it shows from it)."""
    unreachable = f"{type(cml).__name__}: {cml.message}"[:1000] if isinstance(cml, CmlError) else None
    return WorkerMetricsReport(worker_id=worker.id, collected_at=now, ec2=checks, cloudwatch=sample,
                               cml=cml if isinstance(cml, CmlTelemetrySnapshot) else None,
                               cml_unreachable=unreachable)


INFORMATION_REFRESH = 600.0
"""Seconds between two `system_information` reads of a host that is up (service available, version known).

The call only tells version and readiness: the control plane keeps both, so asking every cycle is a fifth of
a steady-state cycle's CML calls for nothing new. Any failure of the host asks it again on the next cycle
(a CML restart shows up as readiness), and a version upgrade is seen within this interval."""

ACTIVITY_REFRESH = 600.0
"""Seconds between two reads of a host's CML telemetry events (user activity: a lab edited, a node started or
stopped), for idle detection. Running nodes already count as activity every cycle; the events add what leaves
no node running (a user building a lab). The event list grows with the host's history, so it is read at this
pace, not every cycle."""

RegionalAnswers = tuple[dict[str, Ec2Checks], dict[str, CloudWatchSample]]


class _WorkerSpans:
    """The `metrics.worker` spans of a cycle: opened as each worker is admitted, ended as its host answers."""

    def __init__(self, cycle: Span) -> None:
        self._parent = trace.set_span_in_context(cycle)
        self.open: dict[str, Span] = {}
        self.links: dict[str, Link] = {}

    def start(self, worker: WorkerView, host: str | None) -> None:
        attributes = {tracing.WORKER_ID: worker.id, tracing.INSTANCE_ID: worker.aws_instance_id or "",
                      tracing.CLOUD_PROVIDER: "aws", tracing.CLOUD_REGION: worker.aws_region}
        if host is not None:
            attributes[tracing.CML_HOST] = host
        span = tracing.tracer().start_span("metrics.worker", context=self._parent, attributes=attributes)
        self.links[worker.id] = Link(span.get_span_context())
        self.open[worker.id] = span

    def end(self, worker: WorkerView, result: CmlTelemetrySnapshot | CmlError | None) -> None:
        span = self.open.pop(worker.id, None)
        if span is None:
            return
        if isinstance(result, CmlError):
            span.set_attributes({"lcm.worker.cml.reachable": False, "error.type": type(result).__name__})
            span.set_status(Status(StatusCode.ERROR, result.message[:200]))
        elif result is not None:
            span.set_attribute("lcm.worker.cml.reachable", True)
        span.end()

    def abandon(self) -> None:
        """The cycle ended before these hosts answered (failed or cancelled)."""
        for span in self.open.values():
            span.set_status(Status(StatusCode.ERROR, "the cycle ended before the host answered"))
            span.end()
        self.open.clear()


class _Reporter:
    """Sends `metrics:batch` reports while collection goes on: at most `concurrency` batches in flight.

    A report needs the AWS answers (status checks, CloudWatch) of its worker's batch, asked per region when
    the batch arrived; they take one or two calls per region and are normally back long before its CML
    answers are.
    """

    def __init__(self, gateway: MetricsReports, now: datetime, concurrency: int,
                 spans: _WorkerSpans) -> None:
        self._gateway = gateway
        self._spans = spans
        self._now = now
        self._gate = asyncio.Semaphore(concurrency)
        self._tasks: list[asyncio.Task[MetricsBatchOutcome]] = []
        self._aws_of: dict[str, asyncio.Future[list[RegionalAnswers]]] = {}
        self.sent = 0

    def expect(self, workers: list[WorkerView], aws: asyncio.Future[list[RegionalAnswers]]) -> None:
        for worker in workers:
            self._aws_of[worker.id] = aws

    def send(self, items: list[tuple[WorkerView, CmlTelemetrySnapshot | CmlError | None]]) -> None:
        self.sent += 1
        self._tasks.append(asyncio.ensure_future(self._post(items)))

    async def _post(self, items: list[tuple[WorkerView, CmlTelemetrySnapshot | CmlError | None]]
                    ) -> MetricsBatchOutcome:
        checks: dict[str, Ec2Checks] = {}
        samples: dict[str, CloudWatchSample] = {}
        for answers in {id(f): f for f in (self._aws_of[w.id] for w, _ in items)}.values():
            for region_checks, region_samples in await answers:
                checks.update(region_checks)
                samples.update(region_samples)
        reports = [build_report(w, self._now, checks.get(w.aws_instance_id or ""),
                                samples.get(w.aws_instance_id or ""), result) for w, result in items]
        if not reports:
            return MetricsBatchOutcome()
        links = [link for link in (self._spans.links.get(w.id) for w, _ in items) if link is not None]
        async with self._gate:
            with tracing.tracer().start_as_current_span("metrics.report", links=links) as span:
                span.set_attribute(tracing.REPORTS_COUNT, len(reports))
                return await self._gateway.report_metrics(reports)

    async def finish(self) -> MetricsBatchOutcome:
        """Wait for every batch; the first failure fails the cycle (the others are cancelled by `cancel`)."""
        total = MetricsBatchOutcome()
        for task in self._tasks:
            total.add(await task)
        return total

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _one_batch(workers: list[WorkerView]) -> AsyncIterator[list[WorkerView]]:
    yield workers


class MetricsCollector:
    def __init__(self, aws: InstanceHealth, cml: CmlClient, gateway: MetricsReports, *, cml_url_template: str,
                 cml_max_hosts: int = 200, report_chunk: int = REPORT_CHUNK, report_concurrency: int = 2) -> None:
        self._report_chunk = max(1, report_chunk)
        self._report_concurrency = max(1, report_concurrency)
        self._aws = aws
        self._cml = cml
        self._gateway = gateway
        self._template = cml_url_template
        self._cml_max_hosts = cml_max_hosts
        self._information_at: dict[str, float] = {}
        """Host → when its `system_information` last answered (see `INFORMATION_REFRESH`)."""
        self._activity_at: dict[str, float] = {}
        """Host → when its telemetry events last answered (see `ACTIVITY_REFRESH`)."""
        self.last: CycleOutcome | None = None

    async def _region(self, region: str, ids: list[str], now: datetime
                      ) -> tuple[dict[str, Ec2Checks], dict[str, CloudWatchSample]]:
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
        """One cycle over `only`, or over every running worker (one list read)."""
        with tracing.tracer().start_as_current_span("metrics.cycle") as span:
            workers = only if only is not None else await self._gateway.workers(status=WorkerStatus.RUNNING.value)
            return await self._run_stream(_one_batch(workers), span)

    async def run_stream(self, batches: AsyncIterable[list[WorkerView]]) -> CycleOutcome:
        """One cycle over workers that arrive in batches while it runs (a worker given twice counts once).

        Each batch's AWS calls (per region) and CML collections start when it arrives. CML results stream in
        as hosts answer; every `report_chunk` of them goes to the control plane at once (at most
        `report_concurrency` batches in flight), so the control plane persists the first workers while the
        last ones are still being collected instead of after all of them.
        """
        with tracing.tracer().start_as_current_span("metrics.cycle") as span:
            return await self._run_stream(batches, span)

    async def _run_stream(self, batches: AsyncIterable[list[WorkerView]], span: Span) -> CycleOutcome:
        started = time.monotonic()
        now = datetime.now(UTC)
        outcome = CycleOutcome()
        spans = _WorkerSpans(span)
        reporter = _Reporter(self._gateway, now, self._report_concurrency, spans)
        measured: dict[str, WorkerView] = {}
        by_host: dict[str, list[WorkerView]] = {}
        skip_information: set[str] = set()
        ask_activity: set[str] = set()
        aws_tasks: list[asyncio.Future[list[RegionalAnswers]]] = []
        pending: list[tuple[WorkerView, CmlTelemetrySnapshot | CmlError | None]] = []

        async def hosts() -> AsyncIterator[str]:
            """Admit each batch (its AWS calls start at once) and hand its CML hosts to the collection."""
            async for batch in batches:
                fresh = [w for w in batch if w.aws_instance_id is not None and w.id not in measured]
                if not fresh:
                    continue
                measured.update((w.id, w) for w in fresh)
                by_region: dict[str, list[str]] = {}
                for worker in fresh:
                    by_region.setdefault(worker.aws_region, []).append(worker.aws_instance_id or "")
                aws = asyncio.ensure_future(asyncio.gather(*(self._region(r, ids, now)
                                                             for r, ids in by_region.items())))
                aws_tasks.append(aws)
                reporter.expect(fresh, aws)
                new_hosts: dict[str, list[WorkerView]] = {}
                for worker in fresh:
                    host = worker.cml_url(self._template)
                    if host is not None and host in by_host:  # its host went out with an earlier batch
                        logger.warning("worker %s has the CML address of worker %s (%s): measured once, for %s",
                                       worker.id, by_host[host][0].id, host, by_host[host][0].id)
                        host = None
                    spans.start(worker, host)
                    if host is None:
                        pending.append((worker, None))
                        spans.end(worker, None)
                    else:
                        new_hosts.setdefault(host, []).append(worker)
                by_host.update(new_hosts)
                skip_information.update(self._information_known(new_hosts))
                ask_activity.update(self._activity_due(new_hosts))
                for host in new_hosts:
                    yield host

        try:
            async for host, result in self._cml.iter_fleet_telemetry(hosts(), max_hosts=self._cml_max_hosts,
                                                                     without_information=skip_information,
                                                                     include_activity=ask_activity):
                self._note_information(host, result)
                if host in ask_activity and isinstance(result, CmlTelemetrySnapshot) \
                        and "telemetry_events" not in result.errors:
                    self._activity_at[host] = time.monotonic()
                if isinstance(result, CmlError):
                    outcome.cml_failures += len(by_host[host])
                for worker in by_host[host]:
                    spans.end(worker, result)
                pending += [(w, result) for w in by_host[host]]
                if len(pending) >= self._report_chunk:
                    reporter.send(pending)
                    pending = []
            outcome.phases["collect"] = round(time.monotonic() - started, 3)
            mark = time.monotonic()
            if pending or not reporter.sent:
                reporter.send(pending)
            stored = await reporter.finish()
            outcome.reported, outcome.auto_paused = len(stored.updated), stored.auto_paused
        finally:
            spans.abandon()
            await reporter.cancel()
            for aws in aws_tasks:
                aws.cancel()
            await asyncio.gather(*aws_tasks, return_exceptions=True)  # retrieved, so never logged as lost
        # Only what was still to persist after the last host had answered: the rest overlapped collection.
        outcome.phases["report"] = round(time.monotonic() - mark, 3)
        workers = list(measured.values())
        outcome.workers = len(workers)
        outcome.by_health = Counter(w.health_status for w in workers)
        outcome.duration_seconds = round(time.monotonic() - started, 3)
        self.last = outcome
        span.set_attributes({tracing.WORKERS_COUNT: outcome.workers, tracing.REPORTS_COUNT: outcome.reported,
                             "lcm.metrics.batches": reporter.sent, "lcm.workers.cml_unreachable": outcome.cml_failures,
                             "lcm.workers.auto_paused": len(outcome.auto_paused)})
        logger.info("metrics: %d running workers, %d reported in %d batches, %d CML unreachable, %d auto-paused "
                    "in %.2fs", outcome.workers, outcome.reported, reporter.sent, outcome.cml_failures,
                    len(outcome.auto_paused), outcome.duration_seconds)
        return outcome

    def _information_known(self, by_host: dict[str, list[WorkerView]]) -> set[str]:
        """Hosts whose `system_information` need not be asked this cycle: up, version known, asked lately."""
        now = time.monotonic()
        return {host for host, workers in by_host.items()
                if all(w.service_status is ServiceStatus.AVAILABLE and w.cml_version for w in workers)
                and now - self._information_at.get(host, float("-inf")) < INFORMATION_REFRESH}

    def _activity_due(self, hosts: Iterable[str]) -> set[str]:
        """Hosts whose user activity has not been read for `ACTIVITY_REFRESH` seconds. A host seen for the first
        time waits one interval too: idleness takes far longer to count than that, and a cold cycle over the
        whole fleet is not made heavier by one more call per host."""
        now = time.monotonic()
        for host in hosts:
            self._activity_at.setdefault(host, now)
        return {host for host in hosts if now - self._activity_at[host] >= ACTIVITY_REFRESH}

    def _note_information(self, host: str, result: CmlTelemetrySnapshot | CmlError) -> None:
        if isinstance(result, CmlError) or result.errors:
            self._information_at.pop(host, None)  # something is wrong with the host: ask everything next time
        elif result.ready is not None:
            self._information_at[host] = time.monotonic()
