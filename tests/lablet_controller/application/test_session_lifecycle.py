"""The SessionReconciler against the real CML simulator (the control plane is the in-memory one of
conftest.py): instantiate with the allocated ports in the node tags, boot, run, observe, drift, tear down;
failures retried then recorded, teardown never left half-done, observation never blocking teardown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lablet_controller.domain.sessions import lab_title
from lcm_core.cml import CmlRejectedError
from lcm_core.domain.lablets import LabletSessionStatus as S
from tests.fixtures.cml_simulator import CmlSimulator


async def test_full_lifecycle_with_observation_drift_and_teardown(harness, cml_simulator: CmlSimulator) -> None:
    h = harness
    h.cp.add_session("s1", S.SCHEDULED, worker_id="w1",
                     allocated_ports={"R1_serial": 6000, "R2_serial": 6001, "PC_serial": 6002, "PC_vnc": 6003})
    ready = await h.drive("s1", S.READY)
    assert h.cp.statuses("s1") == ["instantiating", "ready"]
    lab_id = ready.cml_lab_id
    assert lab_id is not None
    assert (await h.lab_titles())[lab_title("s1")] == lab_id
    nodes = {n.label: n for n in await h.labs.cml.nodes(h.host_url, lab_id)}
    assert all(n.state == "BOOTED" for n in nodes.values())
    assert nodes["R1"].tags == ["serial:6000"]
    assert nodes["PC"].tags == ["serial:6002", "vnc:6003", "student"]  # other tags kept

    await h.drive("s1", S.RUNNING)  # the timeslot has started

    # Manual observation: resources and ports as allocated.
    h.cp.sessions["s1"] = h.cp.sessions["s1"].model_copy(update={"observe_requested": True,
                                                                  "observe_request_id": "req-1"})
    await h.reconciler.reconcile("s1")
    first = h.cp.observations[-1]
    assert first.observer == "manual"
    assert first.request_id == "req-1"
    assert first.observed_ports == {"R1_serial": 6000, "R2_serial": 6001, "PC_serial": 6002, "PC_vnc": 6003}
    assert first.actual_node_count == 4
    assert first.total_memory_mb > 0
    assert {n.state for n in first.nodes} == {"BOOTED"}
    assert any(n.interfaces for n in first.nodes)
    assert first.simulation_stats is not None

    # Someone edits a tag on CML: the next observation reports what the lab really carries.
    with cml_simulator.api(h.instance_id) as api:
        assert api.patch(f"/labs/{lab_id}/nodes/{nodes['PC'].id}",
                         json={"tags": ["serial:6999", "vnc:6003"]}).status_code == 200
    h.cp.sessions["s1"] = h.cp.sessions["s1"].model_copy(update={"observe_requested": True,
                                                                  "observe_request_id": "req-2"})
    await h.reconciler.reconcile("s1")
    assert h.cp.observations[-1].observed_ports["PC_serial"] == 6999

    # End of the timeslot: observe (lablet-controller), collecting, stopping, lab gone, stopped.
    h.now[0] = h.cp.sessions["s1"].timeslot_end + timedelta(seconds=1)
    await h.drive("s1", S.STOPPED)
    assert h.cp.statuses("s1")[-3:] == ["collecting", "stopping", "stopped"]
    assert h.cp.observations[-1].observer == "lablet-controller"
    assert lab_title("s1") not in await h.lab_titles()
    assert h.reconciler.actions["teardown"] == 1


async def test_a_repeated_instantiation_never_imports_a_second_lab(harness) -> None:
    h = harness
    h.cp.add_session("s2", S.SCHEDULED, worker_id="w1")
    await h.reconciler.reconcile("s2")  # imported and started → instantiating
    # The controller restarts (local memory lost) and the CPA still says scheduled (transition lost).
    h.cp.sessions["s2"] = h.cp.sessions["s2"].model_copy(update={"status": S.SCHEDULED})
    h.reconciler._lab_ids.clear()
    await h.reconciler.reconcile("s2")
    titles = [t for t in await h.lab_titles() if t == lab_title("s2")]
    assert titles == [lab_title("s2")]
    assert h.reconciler.actions["import"] == 1
    await h.drive("s2", S.READY)


async def test_boot_timeout_tears_the_lab_down_and_records_the_error(harness, cml_simulator: CmlSimulator) -> None:
    h = harness
    cml_simulator.configure_host(h.instance_id, boot_seconds=120)
    h.reconciler._boot_timeout = 30
    h.cp.add_session("s3", S.SCHEDULED, worker_id="w1")
    await h.drive("s3", S.INSTANTIATING)
    await h.reconciler.reconcile("s3")
    assert h.cp.sessions["s3"].status is S.INSTANTIATING  # still booting, within the timeout
    h.now[0] += timedelta(seconds=31)
    await h.drive("s3", S.STOPPED)
    errors = [error for sid, to, error in h.cp.history if sid == "s3" and to == "stopping"]
    assert errors
    assert "did not boot within" in errors[0]
    assert lab_title("s3") not in await h.lab_titles()


async def test_a_new_leader_keeps_the_boot_deadline_of_the_old_one(harness, cml_simulator: CmlSimulator) -> None:
    """The deadline runs from when the control plane recorded `instantiating`, not from when this replica
    (a leader that just took over) first looked: a lab that never boots is not given a fresh timeout."""
    h = harness
    cml_simulator.configure_host(h.instance_id, boot_seconds=120)
    h.reconciler._boot_timeout = 30
    h.cp.add_session("s11", S.SCHEDULED, worker_id="w1")
    await h.drive("s11", S.INSTANTIATING)
    h.reconciler._boot_started.clear()  # what a new leader knows: nothing of its own
    h.now[0] += timedelta(seconds=31)
    await h.reconciler.reconcile("s11")
    assert h.cp.sessions["s11"].status is S.STOPPING
    assert "did not boot within" in (h.cp.history[-1][2] or "")


async def test_instantiation_failures_are_retried_then_recorded(harness, cml_simulator: CmlSimulator) -> None:
    h = harness
    h.cp.add_session("s4", S.SCHEDULED, worker_id="w1")
    with cml_simulator.fault(h.instance_id, error_rate=1.0, error_status=400, endpoints=["import"]):
        for _ in range(2):  # the first attempts raise: the loop backs off on them
            with pytest.raises(CmlRejectedError, match="400"):
                await h.reconciler.reconcile("s4")
            assert h.cp.sessions["s4"].status is S.SCHEDULED
        await h.reconciler.reconcile("s4")  # third attempt: given up
    assert h.cp.sessions["s4"].status is S.TERMINATED
    error = h.cp.history[-1][2]
    assert error is not None
    assert "failed after 3 attempts" in error


async def test_observation_failure_never_blocks_teardown(harness, cml_simulator: CmlSimulator) -> None:
    h = harness
    h.cp.add_session("s5", S.SCHEDULED, worker_id="w1")
    await h.drive("s5", S.RUNNING)
    h.now[0] = h.cp.sessions["s5"].timeslot_end + timedelta(seconds=1)
    with cml_simulator.fault(h.instance_id, error_rate=1.0, error_status=500, endpoints=["labs/*/nodes"],
                             methods=["GET"]):
        await h.reconciler.reconcile("s5")
    assert h.cp.statuses("s5")[-2:] == ["collecting", "stopping"]
    assert h.observer.failed == 1
    assert h.cp.observations == []
    await h.drive("s5", S.STOPPED)
    assert lab_title("s5") not in await h.lab_titles()


async def test_teardown_of_a_lab_deleted_behind_our_back_still_ends_stopped(harness) -> None:
    h = harness
    h.cp.add_session("s6", S.SCHEDULED, worker_id="w1")
    ready = await h.drive("s6", S.READY)
    await h.labs.tear_down(h.host_url, ready.cml_lab_id)
    h.now[0] = ready.timeslot_end + timedelta(seconds=1)
    await h.drive("s6", S.STOPPED)
    assert h.cp.statuses("s6")[-1] == "stopped"


async def test_terminate_request_tears_down_and_ends_terminated(harness) -> None:
    h = harness
    h.cp.add_session("s7", S.SCHEDULED, worker_id="w1")
    await h.drive("s7", S.RUNNING)
    h.cp.sessions["s7"] = h.cp.sessions["s7"].model_copy(update={"status": S.STOPPING,
                                                                  "terminate_requested": True})
    await h.drive("s7", S.TERMINATED)
    assert lab_title("s7") not in await h.lab_titles()


async def test_a_worker_that_disappears_fails_the_session_at_once(harness) -> None:
    h = harness
    h.cp.add_session("s8", S.SCHEDULED, worker_id="gone")
    await h.reconciler.reconcile("s8")
    assert h.cp.sessions["s8"].status is S.TERMINATED
    assert "gone" in (h.cp.history[-1][2] or "")


async def test_a_scheduled_session_whose_slot_ended_expires_without_a_lab(harness) -> None:
    h = harness
    h.cp.add_session("s9", S.SCHEDULED, worker_id="w1")
    await h.reconciler.reconcile("s9")  # imported → instantiating
    h.cp.sessions["s9"] = h.cp.sessions["s9"].model_copy(update={"status": S.SCHEDULED})  # the move was lost
    h.now[0] = h.cp.sessions["s9"].timeslot_end + timedelta(seconds=1)
    await h.reconciler.reconcile("s9")
    assert h.cp.sessions["s9"].status is S.EXPIRED
    assert lab_title("s9") not in await h.lab_titles()
