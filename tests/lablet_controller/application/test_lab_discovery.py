"""Lab discovery against the CML simulator: a session lab nobody holds is torn down; the lab of a live
session and labs that are not session labs are left alone."""

from __future__ import annotations

from typing import Any

from lablet_controller.application.lab_discovery import LabDiscovery
from lablet_controller.domain.sessions import lab_title
from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.leader.fence import AlwaysLeading
from tests.lablet_controller.application.conftest import GatewayAdapter

DEMO = """lab: {title: demo, version: 0.3.0}
nodes:
  - {id: n0, label: r1, node_definition: iosv, x: 0, y: 0}
links: []
"""


async def test_orphan_session_labs_are_removed_and_nothing_else(harness, cml_simulator) -> None:
    h = harness
    h.cp.add_session("live", S.SCHEDULED, worker_id="w1")
    await h.drive("live", S.READY)
    cml = h.labs.cml
    orphan = (await cml.import_lab(h.host_url, DEMO, title=lab_title("gone-session"))).id
    moved = (await cml.import_lab(h.host_url, DEMO, title=lab_title("moved"))).id
    h.cp.add_session("moved", S.RUNNING, worker_id="w-other")
    operators = (await cml.import_lab(h.host_url, DEMO, title="an operator's lab")).id
    gateway: Any = GatewayAdapter(h.cp)
    discovery = LabDiscovery(gateway, h.labs, cml_url_template=f"{cml_simulator.url}/hosts/{{instance_id}}",
                             fence=AlwaysLeading())
    outcome = await discovery.run_once()
    remaining = set(await cml.lab_ids(h.host_url))
    assert orphan not in remaining
    assert moved not in remaining  # its session holds another worker
    assert operators in remaining
    assert h.cp.sessions["live"].cml_lab_id in remaining
    assert outcome.orphans_removed == 2
    assert outcome.session_labs == 3
    assert outcome.workers == 1
    assert (await discovery.run_once()).orphans_removed == 0
