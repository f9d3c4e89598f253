"""Cisco's official virl2-client against the simulator: the proof the simulator speaks CML 2.9.

The flow is the one an operator script runs: connect (version check, token, /authok), read system
info, import a lab from YAML, start it and wait for convergence, list nodes and interfaces, tag a node,
then stop, wipe and remove the lab.
"""

from __future__ import annotations

from pathlib import Path

from virl2_client import ClientLibrary

from tests.fixtures.cml_simulator import CmlSimulator, new_instance_id

LAB_YAML = (Path(__file__).parents[2] / "fixtures" / "cml" / "lab.yaml").read_text()


def test_virl2_client_full_lab_flow(cml_simulator: CmlSimulator) -> None:
    client = ClientLibrary(f"{cml_simulator.host_url(new_instance_id())}/", cml_simulator.username,
                           cml_simulator.password, ssl_verify=False, allow_http=True, raise_for_auth_failure=True,
                           convergence_wait_time=0.1)
    info = client.system_info()
    assert info["ready"] is True
    assert info["version"].startswith("2.9.")
    assert client.is_system_ready()
    assert set(client.get_system_stats()) == {"computes", "all", "controller"}
    assert client.get_system_health()["valid"] is True
    assert client.licensing.status()["registration"]["status"] == "COMPLETED"
    assert client.system_management.controller.is_connector

    lab = client.import_lab(LAB_YAML, title="virl2 flow")
    assert lab.title == "virl2 flow"
    assert lab.owner == cml_simulator.username
    assert client.get_lab_list() == [lab.id]
    assert lab.state() == "DEFINED_ON_CORE"

    lab.start(wait=False)
    lab.wait_until_lab_converged(max_iterations=100, wait_time=0.1)
    assert lab.state() == "STARTED"
    assert lab.is_active()
    lab.sync_states()
    nodes = {node.label: node for node in lab.nodes()}
    assert set(nodes) == {"r1", "pc"}
    assert all(node.is_booted() for node in nodes.values())
    assert [iface.label for iface in nodes["r1"].interfaces()] == ["Loopback0", "GigabitEthernet0/0"]
    assert [iface.label for iface in nodes["pc"].interfaces()] == ["ens3"]
    assert {iface.state for iface in lab.interfaces()} == {"STARTED"}
    assert len(lab.links()) == 1
    assert lab.links()[0].label == "r1-pc"
    assert nodes["r1"].get_interface_by_slot(0).connected

    nodes["r1"].add_tag("serial:5041")
    assert nodes["r1"].tags() == ["serial:4566", "serial:5041"]
    lab.sync_statistics()
    assert nodes["r1"].cpu_usage > 0

    lab.stop(wait=True)
    assert lab.state() == "STOPPED"
    lab.wipe(wait=True)
    assert lab.state() == "DEFINED_ON_CORE"
    lab.remove()
    assert client.get_lab_list() == []
    client.logout()
