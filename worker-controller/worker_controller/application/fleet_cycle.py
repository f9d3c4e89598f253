"""Discovery and metrics, the worker-controller's two fleet loops, as one pipeline.

A discovery measures what it finds: each page of instances it imports goes straight into a metrics cycle,
whose AWS calls and CML collections run while EC2 lists the next page, and the workers the scan did not
see (other regions) join at the end. That measurement is the metrics loop's run too: the metrics loop waits
a full interval after it instead of measuring the same fleet again moments later. The two never run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lcm_core import tracing
from lcm_core.domain.enums import WorkerStatus
from worker_controller.application.discovery import Discovery, DiscoveryOutcome
from worker_controller.application.metrics import CycleOutcome, MetricsCollector
from worker_controller.domain.worker_view import WorkerView

logger = logging.getLogger(__name__)


class WorkerStream:
    """Batches of workers put by a producer that must not block, read by a metrics cycle as they come."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[list[WorkerView] | None] = asyncio.Queue()

    def put(self, workers: list[WorkerView]) -> None:
        if workers:
            self._queue.put_nowait(workers)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[list[WorkerView]]:
        while (batch := await self._queue.get()) is not None:
            yield batch


@dataclass
class DiscoveryRun:
    discovery: DiscoveryOutcome
    metrics: CycleOutcome | None
    """The measurement of the running workers it found; None when discovery is disabled."""


class FleetCycle:
    def __init__(self, discovery: Discovery, collector: MetricsCollector) -> None:
        self._discovery = discovery
        self._collector = collector
        self._one_at_a_time = asyncio.Lock()
        self._measured_at = float("-inf")
        """When the last discovery's measurement of the fleet ended (monotonic)."""

    async def discover(self) -> DiscoveryRun:
        """A discovery whose running workers are measured as their pages are imported."""
        async with self._one_at_a_time:
            # One trace: the scan and the measurement of what it found are children of this span.
            with tracing.tracer().start_as_current_span("discovery"):
                stream = WorkerStream()
                measuring = asyncio.ensure_future(self._collector.run_stream(stream))
                try:
                    found = await self._discovery.run_once(
                        on_workers=lambda ws: stream.put([w for w in ws if w.status is WorkerStatus.RUNNING]))
                except Exception:
                    stream.close()  # what was imported before the failure is still measured and reported
                    try:
                        await measuring
                    except Exception as exc:
                        logger.warning("measuring the workers of a failed discovery failed too: %s", exc)
                    raise
                except BaseException:
                    measuring.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await measuring
                    raise
                stream.close()
                measured = await measuring
                if not found.enabled:
                    return DiscoveryRun(found, None)
                self._measured_at = time.monotonic()
                return DiscoveryRun(found, measured)

    async def measure(self) -> CycleOutcome | None:
        """A metrics cycle over every running worker; None when a discovery's measurement that ended after
        this call was made has already done it (the call waited for that discovery)."""
        asked_at = time.monotonic()
        async with self._one_at_a_time:
            if self._measured_at > asked_at:
                return None
            return await self._collector.run_once()
