"""A discovery measures the running workers it finds as it goes, and that measurement stands in for the
metrics run asked for meanwhile; the two never run at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable

import pytest

from lcm_core.domain.enums import WorkerStatus
from worker_controller.application.discovery import DiscoveryOutcome
from worker_controller.application.fleet_cycle import FleetCycle
from worker_controller.application.metrics import CycleOutcome
from worker_controller.domain.worker_view import WorkerView


def worker(n: int, status: WorkerStatus = WorkerStatus.RUNNING) -> WorkerView:
    return WorkerView(id=f"w{n}", aws_region="us-east-1", aws_instance_id=f"i-{n:017x}", status=status)


class FakeDiscovery:
    def __init__(self, batches: list[list[WorkerView]], enabled: bool = True,
                 fail: Exception | None = None) -> None:
        self.batches = batches
        self.enabled = enabled
        self.fail = fail
        self.may_finish = asyncio.Event()
        self.may_finish.set()

    async def run_once(self, on_workers: Callable[[list[WorkerView]], None]) -> DiscoveryOutcome:
        if not self.enabled:
            return DiscoveryOutcome(enabled=False)
        for batch in self.batches:
            on_workers(batch)
            await asyncio.sleep(0)
        await self.may_finish.wait()
        if self.fail is not None:
            raise self.fail
        return DiscoveryOutcome(found={"us-east-1": sum(map(len, self.batches))})


class FakeCollector:
    def __init__(self) -> None:
        self.streamed: list[list[str]] = []
        self.full_runs = 0
        self.running = 0

    async def run_stream(self, batches: AsyncIterable[list[WorkerView]]) -> CycleOutcome:
        self.running += 1
        assert self.running == 1
        async for batch in batches:
            self.streamed.append([w.id for w in batch])
        self.running -= 1
        return CycleOutcome(workers=sum(map(len, self.streamed)), reported=sum(map(len, self.streamed)))

    async def run_once(self) -> CycleOutcome:
        self.running += 1
        assert self.running == 1
        self.full_runs += 1
        await asyncio.sleep(0)
        self.running -= 1
        return CycleOutcome(workers=5)


def fleet_cycle(discovery: FakeDiscovery, collector: FakeCollector) -> FleetCycle:
    # FleetCycle's constructor names the concrete Discovery and MetricsCollector; these scripted stand-ins
    # provide the three methods it calls (the discovery's run_once, the collector's run_stream and run_once).
    return FleetCycle(discovery, collector)  # type: ignore[arg-type]


async def test_a_discovery_measures_its_running_workers_as_they_come() -> None:
    collector = FakeCollector()
    discovery = FakeDiscovery([[worker(1), worker(2, WorkerStatus.STOPPED)], [worker(3)]])
    run = await fleet_cycle(discovery, collector).discover()
    assert collector.streamed == [["w1"], ["w3"]]
    assert run.metrics is not None
    assert run.metrics.reported == 2
    assert run.discovery.found == {"us-east-1": 3}


async def test_a_metrics_run_asked_for_during_a_discovery_is_done_by_it() -> None:
    collector = FakeCollector()
    discovery = FakeDiscovery([[worker(1)]])
    discovery.may_finish.clear()
    cycle = fleet_cycle(discovery, collector)
    discovering = asyncio.create_task(cycle.discover())
    await asyncio.sleep(0.01)
    measuring = asyncio.create_task(cycle.measure())
    await asyncio.sleep(0.01)
    discovery.may_finish.set()
    await discovering
    assert await measuring is None
    assert collector.full_runs == 0
    assert await cycle.measure() is not None  # asked after that discovery: a run of its own
    assert collector.full_runs == 1


async def test_disabled_discovery_measures_nothing() -> None:
    collector = FakeCollector()
    run = await fleet_cycle(FakeDiscovery([], enabled=False), collector).discover()
    assert run.metrics is None
    assert await fleet_cycle(FakeDiscovery([]), collector).measure() is not None


async def test_a_failing_discovery_still_measures_what_it_found_then_fails() -> None:
    collector = FakeCollector()
    discovery = FakeDiscovery([[worker(1)]], fail=RuntimeError("control plane down"))
    with pytest.raises(RuntimeError, match="control plane down"):
        await fleet_cycle(discovery, collector).discover()
    assert collector.streamed == [["w1"]]
