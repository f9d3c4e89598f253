"""The metrics cycle streams its reports: batches go to the control plane while hosts are still answering,
bounded in flight; workers that arrive in batches while it runs are measured as they come, once each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from datetime import datetime
from typing import Any

import pytest

from lcm_core.cml import CmlTelemetrySnapshot, CmlUnreachableError
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks, MetricsBatchOutcome, WorkerMetricsReport
from worker_controller.application import metrics
from worker_controller.application.metrics import MetricsCollector
from worker_controller.domain.worker_view import WorkerView

TEMPLATE = "http://cml/hosts/{instance_id}"


def worker(n: int, status: str = "running", **extra: Any) -> WorkerView:
    return WorkerView.model_validate({"id": f"w{n}", "aws_region": "us-east-1" if n % 2 else "us-west-2",
                                      "aws_instance_id": f"i-{n:017x}", "status": status, **extra})


def host(n: int) -> str:
    return f"http://cml/hosts/i-{n:017x}"


class FakeAws:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    async def status_checks(self, region: str, ids: list[str]) -> dict[str, Ec2Checks]:
        self.calls.append(("status", region, list(ids)))
        return {i: Ec2Checks(state="running", system_status="ok", instance_status="ok") for i in ids}

    async def cloudwatch(self, region: str, ids: list[str], *, now: datetime) -> dict[str, CloudWatchSample]:
        self.calls.append(("cloudwatch", region, list(ids)))
        return {i: CloudWatchSample(cpu_utilization=5.0) for i in ids}


class FakeCml:
    """Answers hosts one by one; `before_last` is awaited before the last answer is given."""

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.failing = set(failing)
        self.degraded: set[str] = set()
        self.before_last: asyncio.Event | None = None
        self.log: list[str] = []
        self.information_asked: list[set[str]] = []
        self.activity_asked: list[set[str]] = []

    async def iter_fleet_telemetry(self, hosts: Iterable[str] | AsyncIterable[str], *, max_hosts: int = 50,
                                   without_information: Iterable[str] = (), include_activity: Any = False,
                                   ) -> AsyncIterator[tuple[str, object]]:
        hosts = [h async for h in hosts] if isinstance(hosts, AsyncIterable) else list(hosts)
        skipped = set(without_information)
        self.information_asked.append({h for h in hosts if h not in skipped})
        self.activity_asked.append({h for h in hosts if h in include_activity})
        for index, h in enumerate(hosts):
            if index == len(hosts) - 1 and self.before_last is not None:
                await self.before_last.wait()
            self.log.append(f"answer {h}")
            asked = h not in skipped
            yield h, (CmlUnreachableError("down", host=h) if h in self.failing
                      else CmlTelemetrySnapshot(host=h, version="2.9.0" if asked else None,
                                                ready=True if asked else None,
                                                errors={"licensing": "timeout"} if h in self.degraded else {}))


class FakeGateway:
    def __init__(self, fleet: list[WorkerView], log: list[str]) -> None:
        self.fleet = fleet
        self.log = log
        self.batches: list[list[dict[str, Any]]] = []
        self.list_reads = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.first_batch = asyncio.Event()

    async def workers(self, *, status: str | None = None, **_: Any) -> list[WorkerView]:
        self.list_reads += 1
        return [w for w in self.fleet if status is None or w.status.value == status]

    async def report_metrics(self, sent: list[WorkerMetricsReport]) -> MetricsBatchOutcome:
        reports = [r.model_dump(mode="json", exclude_none=True) for r in sent]
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.log.append(f"report {[r['worker_id'] for r in reports]}")
        self.batches.append(list(reports))
        self.first_batch.set()
        await asyncio.sleep(0)  # let other batches start meanwhile, if the bound allows them
        self.in_flight -= 1
        return MetricsBatchOutcome(updated=[r["worker_id"] for r in reports])


def collector(gateway: FakeGateway, cml: FakeCml, **options: Any) -> MetricsCollector:
    return MetricsCollector(FakeAws(), cml, gateway, cml_url_template=TEMPLATE,  # type: ignore[arg-type]
                            **options)


async def test_reports_go_out_in_chunks_while_hosts_are_still_answering() -> None:
    cml = FakeCml(failing=[host(3)])
    gateway = FakeGateway([worker(n) for n in range(5)], cml.log)
    cml.before_last = gateway.first_batch  # the last host answers only once a batch has been persisted

    outcome = await asyncio.wait_for(collector(gateway, cml, report_chunk=2).run_once(), 30)

    assert outcome.reported == 5
    assert outcome.cml_failures == 1
    assert [len(b) for b in gateway.batches] == [2, 2, 1]
    assert cml.log.index("report ['w0', 'w1']") < cml.log.index(f"answer {host(4)}")
    sent = {r["worker_id"]: r for b in gateway.batches for r in b}
    assert "down" in sent["w3"]["cml_unreachable"]
    assert sent["w0"]["cml"]["version"] == "2.9.0"
    assert sent["w0"]["ec2"]["state"] == "running"  # every batch carries the region-wide AWS answers
    assert sent["w4"]["cloudwatch"]["cpu_utilization"] == 5.0


async def test_batches_in_flight_are_bounded() -> None:
    cml = FakeCml()
    gateway = FakeGateway([worker(n) for n in range(7)], cml.log)
    outcome = await collector(gateway, cml, report_chunk=1, report_concurrency=2).run_once()
    assert outcome.reported == 7
    assert len(gateway.batches) == 7
    assert gateway.peak_in_flight <= 2


async def test_a_worker_without_a_cml_address_is_still_reported() -> None:
    cml = FakeCml()
    gateway = FakeGateway([worker(1), worker(2)], cml.log)
    cycle = MetricsCollector(FakeAws(), cml, gateway,  # type: ignore[arg-type]
                             cml_url_template="https://{ip_address}")
    gateway.fleet[0] = worker(1, private_ip="10.0.0.1")
    outcome = await cycle.run_once()
    assert outcome.reported == 2
    sent = {r["worker_id"]: r for b in gateway.batches for r in b}
    assert "cml" not in sent["w2"]  # nothing to ask: left out, not reported unreachable
    assert sent["w1"]["cml"]["host"] is not None


async def test_an_empty_fleet_sends_nothing() -> None:
    gateway = FakeGateway([], [])
    outcome = await collector(gateway, FakeCml()).run_once()
    assert outcome.reported == 0
    assert gateway.batches == []


class StreamingCml(FakeCml):
    """Answers each host as soon as it arrives, as the real collection does."""

    async def iter_fleet_telemetry(self, hosts: Iterable[str] | AsyncIterable[str], *, max_hosts: int = 50,
                                   without_information: Iterable[str] = (), include_activity: Any = False,
                                   ) -> AsyncIterator[tuple[str, object]]:
        assert isinstance(hosts, AsyncIterable)
        async for h in hosts:
            self.log.append(f"answer {h}")
            yield h, CmlTelemetrySnapshot(host=h, version="2.9.0", ready=True)


async def test_workers_arriving_in_batches_are_measured_as_they_arrive_and_once() -> None:
    cml = StreamingCml()
    gateway = FakeGateway([], cml.log)
    aws = FakeAws()
    cycle = MetricsCollector(aws, cml, gateway, cml_url_template=TEMPLATE,  # type: ignore[arg-type]
                             report_chunk=2)
    second_batch_may_come = gateway.first_batch

    async def batches() -> AsyncIterator[list[WorkerView]]:
        yield [worker(1), worker(2)]
        await second_batch_may_come.wait()  # the first batch is reported before the second even arrives
        cml.log.append("second batch")
        yield [worker(2), worker(3), worker(4, aws_instance_id=None)]

    outcome = await asyncio.wait_for(cycle.run_stream(batches()), 30)

    assert outcome.workers == 3  # w2 came twice and counts once; w4 has no instance to measure
    assert outcome.reported == 3
    assert cml.log.index("report ['w1', 'w2']") < cml.log.index("second batch") < cml.log.index(f"answer {host(3)}")
    assert [ids for kind, _, ids in aws.calls if kind == "status"] == [[worker(1).aws_instance_id],
                                                                     [worker(2).aws_instance_id],
                                                                     [worker(3).aws_instance_id]]
    sent = {r["worker_id"]: r for b in gateway.batches for r in b}
    assert sent["w3"]["ec2"]["state"] == "running"  # its own batch's AWS answers


async def test_a_worker_sharing_a_cml_address_with_an_earlier_batch_is_reported_without_cml() -> None:
    cml = StreamingCml()
    gateway = FakeGateway([], cml.log)
    cycle = MetricsCollector(FakeAws(), cml, gateway, cml_url_template="https://{ip_address}")  # type: ignore[arg-type]

    async def batches() -> AsyncIterator[list[WorkerView]]:
        yield [worker(1, private_ip="10.0.0.1")]
        yield [worker(2, private_ip="10.0.0.1")]  # a misconfigured twin: one host, asked once

    outcome = await asyncio.wait_for(cycle.run_stream(batches()), 30)
    assert outcome.reported == 2
    sent = {r["worker_id"]: r for b in gateway.batches for r in b}
    assert sent["w1"]["cml"]["host"] is not None
    assert "cml" not in sent["w2"]
    assert cml.log.count("answer https://10.0.0.1") == 1


async def test_run_once_reads_the_running_workers_once() -> None:
    cml = FakeCml()
    gateway = FakeGateway([worker(1), worker(2, status="stopped")], cml.log)
    outcome = await collector(gateway, cml).run_once()
    assert gateway.list_reads == 1
    assert outcome.workers == 1


async def test_a_failing_report_fails_the_cycle() -> None:
    class Failing(FakeGateway):
        async def report_metrics(self, sent: list[WorkerMetricsReport]) -> MetricsBatchOutcome:
            raise RuntimeError("control plane down")

    gateway = Failing([worker(n) for n in range(4)], [])
    with pytest.raises(RuntimeError, match="control plane down"):
        await collector(gateway, FakeCml(), report_chunk=2).run_once()


def up(n: int, **extra: Any) -> WorkerView:
    return worker(n, service_status="available", cml_version="2.9.0", **extra)


async def test_system_information_is_asked_until_known_then_only_after_trouble_or_the_refresh_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cml = FakeCml()
    gateway = FakeGateway([up(1), up(2), worker(3, service_status="starting")], cml.log)
    cycle = collector(gateway, cml)

    await cycle.run_once()  # a host this controller has not asked yet is asked, whatever the list says
    assert cml.information_asked[-1] == {host(1), host(2), host(3)}
    await cycle.run_once()  # up with a known version: skipped; still starting: asked again
    assert cml.information_asked[-1] == {host(3)}
    sent = {r["worker_id"]: r for r in gateway.batches[-1]}
    assert "version" not in sent["w1"]["cml"]  # not asked: the control plane keeps what it has
    assert "ready" not in sent["w1"]["cml"]

    cml.degraded.add(host(2))
    await cycle.run_once()
    assert cml.information_asked[-1] == {host(3)}
    await cycle.run_once()  # the host had a failing endpoint last cycle: everything is asked again
    assert cml.information_asked[-1] == {host(2), host(3)}

    monkeypatch.setattr(metrics, "INFORMATION_REFRESH", -1.0)
    await cycle.run_once()
    assert cml.information_asked[-1] == {host(1), host(2), host(3)}


async def test_an_unreachable_host_is_asked_everything_next_time() -> None:
    cml = FakeCml()
    gateway = FakeGateway([up(1)], cml.log)
    cycle = collector(gateway, cml)
    await cycle.run_once()
    cml.failing.add(host(1))
    await cycle.run_once()
    assert cml.information_asked[-1] == set()
    cml.failing.clear()
    await cycle.run_once()
    assert cml.information_asked[-1] == {host(1)}


async def test_user_activity_is_read_once_per_refresh_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    cml = FakeCml()
    gateway = FakeGateway([up(1), up(2)], cml.log)
    cycle = collector(gateway, cml)
    await cycle.run_once()
    assert cml.activity_asked[-1] == set()  # first seen now: read after one interval
    monkeypatch.setattr(metrics, "ACTIVITY_REFRESH", -1.0)
    await cycle.run_once()
    assert cml.activity_asked[-1] == {host(1), host(2)}
    monkeypatch.setattr(metrics, "ACTIVITY_REFRESH", 600.0)
    await cycle.run_once()
    assert cml.activity_asked[-1] == set()  # read a moment ago
