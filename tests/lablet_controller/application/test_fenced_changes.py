"""Changes to CML are fenced (respx): a replica whose lease has no margin left sends no import, start, stop,
wipe or delete, and the refusal reaches the reconcile loop (which backs off); a step decided from a session
read longer than the fence margin ago is re-read first, and dropped if the session changed meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx

from lablet_controller.application.lab_discovery import LabDiscovery
from lablet_controller.application.observer import LabObserver
from lablet_controller.application.reconciler import SessionReconciler
from lablet_controller.infrastructure.cml_labs import CmlLabs, WorkerHosts
from lcm_core.cml import CmlClient
from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.leader.fence import LeadershipLost, LeaseFence
from lcm_core.leader.loops import ReconcileLoop, ReconcileResult
from tests.lablet_controller.application.conftest import FakeControlPlane, GatewayAdapter

HOST = "https://cml.example/hosts/i-0a1b2c3d4e5f60718"
API = f"{HOST}/api/v0"
LAB = "6b7f3a52-1d2c-4c3e-9a1b-0f5e8d7c6b5a"
MARGIN = 2.5


class Clock:
    """A monotonic clock the test moves by hand (no sleeping, no timed assertions)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    cp: FakeControlPlane
    reconciler: SessionReconciler
    labs: CmlLabs
    mock: respx.MockRouter
    clock: Clock
    lease_left: list[float | None]
    changes: list[respx.Route]

    def sent_changes(self) -> int:
        return sum(route.call_count for route in self.changes)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    cp = FakeControlPlane()
    cp.add_definition()
    cp.workers_["w1"] = {"id": "w1", "aws_instance_id": "i-0a1b2c3d4e5f60718", "status": "running"}
    gateway: Any = GatewayAdapter(cp)
    clock = Clock()
    lease_left: list[float | None] = [10.0]
    # The real fence over a lease the test controls: None = not leading, a number = seconds left.
    fence = LeaseFence(lambda: lease_left[0], MARGIN)
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{API}/authenticate").respond(200, json="token")
        mock.get(f"{API}/labs").respond(200, json=[])
        changes = [mock.post(f"{API}/import").respond(200, json={"id": LAB, "warnings": []}),
                   mock.put(f"{API}/labs/{LAB}/start").respond(204),
                   mock.put(f"{API}/labs/{LAB}/stop").respond(204),
                   mock.put(f"{API}/labs/{LAB}/wipe").respond(204),
                   mock.delete(f"{API}/labs/{LAB}").respond(204)]
        async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport(), verify_tls=False,
                             get_retries=0) as cml:
            labs = CmlLabs(cml, WorkerHosts(gateway.worker, "https://cml.example/hosts/{instance_id}"), fence=fence)
            reconciler = SessionReconciler(gateway, labs, LabObserver(gateway, labs), boot_timeout_seconds=60,
                                           boot_poll_seconds=1, max_attempts=3, resync_interval=5, fence=fence,
                                           monotonic=clock)
            yield Rig(cp, reconciler, labs, mock, clock, lease_left, changes)


@pytest.mark.parametrize("lease", [None, MARGIN - 0.1, -3.0])
async def test_a_refusing_fence_sends_no_import_and_the_refusal_propagates(rig: Rig, lease: float | None) -> None:
    rig.cp.add_session("s1", S.SCHEDULED, worker_id="w1", allocated_ports={})
    rig.lease_left[0] = lease
    with pytest.raises(LeadershipLost, match="refused to import lab lablet-s1"):
        await rig.reconciler.reconcile("s1")
    assert rig.sent_changes() == 0
    assert rig.cp.sessions["s1"].status is S.SCHEDULED
    rig.lease_left[0] = 10.0  # leading again (or another replica that leads): the same step goes through
    assert (await rig.reconciler.reconcile("s1")).requeue_after is not None
    assert [r.call_count for r in rig.changes[:2]] == [1, 1]
    assert rig.cp.sessions["s1"].status is S.INSTANTIATING


async def test_a_refusing_fence_sends_no_teardown_step(rig: Rig) -> None:
    rig.cp.add_session("s1", S.STOPPING, worker_id="w1", cml_lab_id=LAB)
    rig.mock.get(f"{API}/labs/{LAB}").respond(200, json={"id": LAB, "lab_title": "lablet-s1", "state": "STARTED"})
    rig.lease_left[0] = None
    with pytest.raises(LeadershipLost, match=f"refused to stop lab {LAB}"):
        await rig.reconciler.reconcile("s1")
    assert rig.sent_changes() == 0
    assert rig.cp.sessions["s1"].status is S.STOPPING
    assert rig.reconciler.actions["teardown"] == 0


async def test_a_refusing_fence_sends_no_orphan_teardown(rig: Rig) -> None:
    rig.mock.get(f"{API}/labs").respond(200, json=[LAB])
    rig.mock.get(f"{API}/labs/{LAB}").respond(200, json={"id": LAB, "lab_title": "lablet-gone"})
    rig.cp.workers_["w1"].update(service_status="available")
    rig.lease_left[0] = 0.5
    discovery = LabDiscovery(GatewayAdapter(rig.cp), rig.labs,
                             cml_url_template="https://cml.example/hosts/{instance_id}", fence=LeaseFence(
                                 lambda: rig.lease_left[0], MARGIN))
    with pytest.raises(LeadershipLost):
        await discovery.run_once()
    assert rig.sent_changes() == 0


async def test_the_loop_backs_off_a_session_whose_change_was_fenced(rig: Rig) -> None:
    rig.cp.add_session("s1", S.SCHEDULED, worker_id="w1", allocated_ports={})
    rig.lease_left[0] = None
    loop = ReconcileLoop("sessions", rig.reconciler.reconcile, rig.reconciler.list_keys, resync_interval=60)
    await loop._run_one("s1")  # one pass of the loop's worker for this key
    assert loop.stats.failures == 1
    assert "LeadershipLost" in (loop.stats.last_error or "")
    assert "s1" in loop._failures
    assert rig.sent_changes() == 0


async def test_a_session_read_too_long_ago_is_read_again_and_a_changed_one_is_not_acted_on(rig: Rig) -> None:
    rig.cp.add_session("s1", S.SCHEDULED, worker_id="w1", allocated_ports={})

    def slow_listing(_request: httpx.Request) -> httpx.Response:
        # CML took longer than the fence margin to list the labs, and meanwhile an operator terminated
        # the session: the import decided from the first read must not be sent.
        rig.clock.now += MARGIN + 1
        rig.cp._update("s1", status=S.STOPPING, terminate_requested=True)
        return httpx.Response(200, json=[])

    rig.mock.get(f"{API}/labs").mock(side_effect=slow_listing)
    result = await rig.reconciler.reconcile("s1")
    assert result == ReconcileResult.requeue(0)  # decide again, from the fresh view
    assert rig.sent_changes() == 0


async def test_a_session_read_too_long_ago_that_did_not_change_is_acted_on_after_one_more_read(rig: Rig) -> None:
    rig.cp.add_session("s1", S.SCHEDULED, worker_id="w1", allocated_ports={})
    reads = 0
    session = rig.cp.session

    async def counted(sid: str) -> Any:
        nonlocal reads
        reads += 1
        return await session(sid)

    rig.cp.session = counted  # type: ignore[method-assign]

    def slow_listing(_request: httpx.Request) -> httpx.Response:
        rig.clock.now += MARGIN + 1
        return httpx.Response(200, json=[])

    rig.mock.get(f"{API}/labs").mock(side_effect=slow_listing)
    await rig.reconciler.reconcile("s1")
    assert [r.call_count for r in rig.changes[:2]] == [1, 1]
    assert reads == 2  # the reconcile's read, then once more before the import (the start followed at once)
    assert rig.cp.sessions["s1"].status is S.INSTANTIATING
