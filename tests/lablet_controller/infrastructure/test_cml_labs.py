"""CML lab operations (respx): teardown is idempotent step by step, labs are found by title, observation
reads tolerate a broken endpoint, a host's lab titles skip a lab deleted meanwhile, worker URLs come from the
template."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from lablet_controller.infrastructure.cml_labs import CmlLabs, WorkerHosts
from lcm_core.cml import CmlClient, CmlRejectedError
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import NotFoundError
from lcm_core.leader.fence import AlwaysLeading

HOST = "https://cml-a.example"
API = f"{HOST}/api/v0"
LAB = "6b7f3a52-1d2c-4c3e-9a1b-0f5e8d7c6b5a"


@pytest.fixture
async def labs() -> AsyncIterator[CmlLabs]:
    async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport(), verify_tls=False,
                         get_retries=0) as cml:
        async def resolve(_worker_id: str) -> str:
            return HOST
        yield CmlLabs(cml, resolve, fence=AlwaysLeading())


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{API}/authenticate").respond(200, json="token")
        yield router


async def test_teardown_runs_stop_wipe_delete(labs: CmlLabs, mock: respx.MockRouter) -> None:
    calls = [mock.put(f"{API}/labs/{LAB}/stop").respond(204), mock.put(f"{API}/labs/{LAB}/wipe").respond(204),
             mock.delete(f"{API}/labs/{LAB}").respond(204)]
    await labs.tear_down(HOST, LAB)
    assert [c.call_count for c in calls] == [1, 1, 1]


async def test_teardown_of_a_missing_lab_is_done(labs: CmlLabs, mock: respx.MockRouter) -> None:
    stop = mock.put(f"{API}/labs/{LAB}/stop").respond(404, json={"code": 404, "description": f"Lab not found: {LAB}"})
    delete = mock.delete(f"{API}/labs/{LAB}").respond(204)
    await labs.tear_down(HOST, LAB)
    assert stop.call_count == 1
    assert delete.call_count == 0


async def test_teardown_goes_on_when_wipe_is_refused_but_not_when_delete_is(labs: CmlLabs,
                                                                            mock: respx.MockRouter) -> None:
    mock.put(f"{API}/labs/{LAB}/stop").respond(204)
    mock.put(f"{API}/labs/{LAB}/wipe").respond(400, json={"code": 400, "description": "nothing to wipe"})
    delete = mock.delete(f"{API}/labs/{LAB}").respond(204)
    await labs.tear_down(HOST, LAB)
    assert delete.call_count == 1
    mock.delete(f"{API}/labs/{LAB}").respond(400, json={"code": 400, "description": "lab is running"})
    with pytest.raises(CmlRejectedError):
        await labs.tear_down(HOST, LAB)


async def test_find_lab_by_title(labs: CmlLabs, mock: respx.MockRouter) -> None:
    other = "1b7f3a52-1d2c-4c3e-9a1b-0f5e8d7c6b5a"
    mock.get(f"{API}/labs").respond(200, json=[other, LAB])
    mock.get(f"{API}/labs/{other}").respond(200, json={"id": other, "lab_title": "someone else's"})
    mock.get(f"{API}/labs/{LAB}").respond(200, json={"id": LAB, "lab_title": "lablet-s1"})
    assert await labs.find_lab(HOST, "lablet-s1") == LAB
    assert await labs.find_lab(HOST, "lablet-s2") is None


async def test_lab_titles_leave_out_a_lab_deleted_while_listed(labs: CmlLabs, mock: respx.MockRouter) -> None:
    untitled, gone = "1b7f3a52-1d2c-4c3e-9a1b-0f5e8d7c6b5a", "2b7f3a52-1d2c-4c3e-9a1b-0f5e8d7c6b5a"
    mock.get(f"{API}/labs").respond(200, json=[untitled, gone, LAB])
    mock.get(f"{API}/labs/{untitled}").respond(200, json={"id": untitled})
    mock.get(f"{API}/labs/{gone}").respond(404, json={"code": 404, "description": f"Lab not found: {gone}"})
    mock.get(f"{API}/labs/{LAB}").respond(200, json={"id": LAB, "lab_title": "lablet-s1"})
    assert await labs.lab_titles(HOST) == {untitled: "", LAB: "lablet-s1"}


async def test_boot_state(labs: CmlLabs, mock: respx.MockRouter) -> None:
    nodes = mock.get(f"{API}/labs/{LAB}/nodes").respond(200, json=[{"id": "n1", "state": "BOOTED"},
                                                                   {"id": "n2", "state": "STARTED"}])
    converged = mock.get(f"{API}/labs/{LAB}/check_if_converged").respond(200, json=True)
    state = await labs.boot_state(HOST, LAB)
    assert (state.total, state.booted, state.done) == (2, 1, False)
    assert converged.call_count == 0  # not asked while a node is still booting
    nodes.respond(200, json=[{"id": "n1", "state": "BOOTED"}, {"id": "n2", "state": "BOOTED"}])
    assert (await labs.boot_state(HOST, LAB)).done


async def test_observation_reads_tolerate_broken_optional_endpoints(labs: CmlLabs, mock: respx.MockRouter) -> None:
    mock.get(f"{API}/labs/{LAB}/nodes").respond(200, json=[{"id": "n1", "label": "PC", "tags": ["serial:5001"]}])
    mock.get(f"{API}/labs/{LAB}/nodes/n1/interfaces").respond(200, json={"not": "a list"})
    mock.get(f"{API}/labs/{LAB}/simulation_stats").respond(200, content=b"<html>oops</html>")
    mock.get(f"{API}/labs/{LAB}/layer3_addresses").respond(404, json={"code": 404, "description": "no"})
    readings = await labs.read_for_observation(HOST, LAB)
    assert [n.label for n in readings.nodes] == ["PC"]
    assert readings.interfaces == {"n1": []}
    assert readings.stats is None
    assert readings.layer3 is None


def test_worker_url_from_the_template() -> None:
    worker = WorkerSummary(id="w1", aws_instance_id="i-1", private_ip="10.0.0.5")
    assert worker.cml_url("https://{ip_address}") == "https://10.0.0.5"
    assert worker.cml_url("http://sim/hosts/{instance_id}/") == "http://sim/hosts/i-1"
    assert WorkerSummary(id="w1", aws_instance_id="i-1").cml_url("https://{ip_address}") is None


async def test_worker_hosts_cache_and_terminated_workers() -> None:
    reads: list[str] = []

    async def fetch(worker_id: str) -> WorkerSummary:
        reads.append(worker_id)
        status = WorkerStatus.TERMINATED if worker_id == "gone" else WorkerStatus.RUNNING
        return WorkerSummary(id=worker_id, aws_instance_id="i-1", private_ip="10.0.0.5", status=status)

    hosts = WorkerHosts(fetch, "https://{ip_address}")
    assert await hosts("w1") == "https://10.0.0.5"
    assert await hosts("w1") == "https://10.0.0.5"
    assert reads == ["w1"]
    with pytest.raises(NotFoundError):
        await hosts("gone")
