"""The resource observation assembled from CML answers: totals, ports by name, missing data left empty."""

from __future__ import annotations

from datetime import UTC, datetime

from lablet_controller.domain.observation import build_observation, ip4_by_mac
from lcm_core.cml.models import Interface, Node, SimulationStats

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_observation_totals_ports_and_interfaces() -> None:
    nodes = [
        Node(id="n1", label="PC", node_definition="ubuntu", state="BOOTED", cpus=2, cpu_limit=50, ram=2048,
             boot_disk_size=8, tags=["serial:5001", "vnc:5002", "group:a"]),
        Node(id="n2", label="R1", node_definition="iosv", state="BOOTED", cpus=1, ram=768, tags=["serial:5003"]),
    ]
    interfaces = {"n1": [Interface(id="i1", label="ens3", slot=0, state="STARTED", mac_address="52:54:00:AA:00:01")],
                  "n2": [Interface(id="i2", label="Loopback0", slot=None, state="STARTED")]}
    stats = SimulationStats.model_validate({"nodes": {"n1": {"cpu_usage": 12.5}}, "links": {}})
    layer3 = {"n1": {"name": "PC", "interfaces": {"52:54:00:aa:00:01": {"id": "i1", "ip4": ["10.0.0.5"]}}}}
    obs = build_observation(nodes, interfaces, stats, observed_at=AT, observer="lablet-controller", layer3=layer3)
    assert obs.total_cpu_cores == 2.0  # 2 cpus at 50 % + 1 cpu at 100 %
    assert obs.total_memory_mb == 2816
    assert obs.total_storage_mb == 8 * 1024
    assert obs.actual_node_count == 2
    assert obs.node_definitions_used == ["iosv", "ubuntu"]
    assert obs.observed_ports == {"PC_serial": 5001, "PC_vnc": 5002, "R1_serial": 5003}
    pc = obs.nodes[0]
    assert (pc.label, pc.state, pc.cpu_limit, pc.ram_mb) == ("PC", "BOOTED", 50, 2048)
    assert pc.interfaces[0].ip4 == ["10.0.0.5"]
    assert obs.nodes[1].interfaces[0].slot is None
    assert obs.simulation_stats is not None
    assert obs.simulation_stats["nodes"]["n1"]["cpu_usage"] == 12.5
    assert obs.request_id is None


def test_missing_parts_are_left_empty() -> None:
    nodes = [Node(id="n1")]
    obs = build_observation(nodes, {}, None, observed_at=AT, observer="manual", request_id="r1")
    node = obs.nodes[0]
    assert (node.label, node.node_definition, node.state, node.interfaces) == ("n1", "unknown", "UNKNOWN", [])
    assert obs.total_cpu_cores == 0
    assert obs.total_storage_mb is None
    assert obs.simulation_stats is None
    assert obs.observed_ports == {}
    assert obs.request_id == "r1"


def test_layer3_of_an_unexpected_shape_gives_nothing() -> None:
    assert ip4_by_mac(None) == {}
    assert ip4_by_mac({"n1": "nope"}) == {}
    assert ip4_by_mac({"n1": {"interfaces": {"aa": {"ip4": "x"}}}}) == {}
