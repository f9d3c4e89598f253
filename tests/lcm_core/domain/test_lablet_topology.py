"""Lab topologies: validation with clear messages, port template, resource estimate, port rewriting."""

from __future__ import annotations

import pytest
import yaml

from lcm_core.domain.lablet_topology import (
    TopologyError,
    derive_port_template,
    estimate_resources,
    parse_topology,
    with_allocated_ports,
)
from lcm_core.testing import sample_topologies

SAMPLE = sample_topologies.load("ccna-basic")


def test_sample_topology_gives_a_port_template_by_name() -> None:
    template = derive_port_template(parse_topology(SAMPLE))
    assert [(p.name, p.node_label, p.kind, p.template_port) for p in template] == [
        ("R1_serial", "R1", "serial", 5041), ("R2_serial", "R2", "serial", 5042),
        ("PC_serial", "PC", "serial", 5043), ("PC_vnc", "PC", "vnc", 5044),
    ]


def test_resource_estimate_uses_node_values_then_definition_defaults() -> None:
    estimate = estimate_resources(parse_topology(SAMPLE))
    # 2 x iosv (1 CPU, 768 MB, 1 GB) + unmanaged switch (nothing, not counted) + ubuntu with ram 1024 (8 GB disk)
    assert estimate.cpu_cores == 3
    assert estimate.memory_gb == 2.5  # 2560 MB, rounded up to a quarter GB
    assert estimate.storage_gb == 10
    assert estimate.node_count == 3


def test_the_fixture_lab_of_the_cml_client_tests_parses() -> None:
    with open("tests/fixtures/cml/lab.yaml") as handle:
        topology = parse_topology(handle.read())
    assert [p.name for p in derive_port_template(topology)] == ["r1_serial"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("lab: [unclosed", "not parseable as YAML at line"),
    ("lab: " + "[" * 40 + "]" * 40 + "\nnodes: []\nlinks: []\n", "nested deeper than 32 levels"),
    ("lab: " + "[" * 5000, "not parseable as YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("lab: {}\nnodes: []\nlinks: []\n", "'nodes' must be a non-empty list"),
    ("lab: {}\nlinks: []\n", "'nodes' is missing"),
    ("lab: {}\nnodes: [{id: n0, label: r1, x: 0, y: 0}]\nlinks: []\n", "node 'r1': node_definition"),
    ("lab: {}\nnodes: [{id: n0, label: r1, node_definition: iosv, y: 0}]\nlinks: []\n", "node 'r1': x is required"),
    ("lab: {}\nnodes: [{id: n0, label: r1, node_definition: iosv, x: 0, y: 0, cpus: lots}]\nlinks: []\n",
     "cpus must be an integer"),
    ("lab: {}\nnodes: [{id: n0, label: r1, node_definition: iosv, x: 0, y: 0}]\n"
     "links: [{id: l0, n1: n0, i1: i0, n2: n9, i2: i0}]\n", "is not an interface of node 'n0'"),
    ("lab: {version: 0.3.0}\nnodes: [{id: n0, label: r1, node_definition: iosv, x: 0, y: 0,"
     " tags: [serial:1, serial:2]}]\nlinks: []\n", "two serial port tags"),
    ("lab: {}\nnodes: [{id: n0, label: r.1, node_definition: iosv, x: 0, y: 0, tags: [serial:1]}]\nlinks: []\n",
     "may not have '.'"),
    ("lab: {}\nnodes: [{id: n0, label: r1, node_definition: iosv, x: 0, y: 0},"
     " {id: n1, label: r1, node_definition: iosv, x: 0, y: 0}]\nlinks: []\n", "label 'r1' appears twice"),
])
def test_malformed_topologies_are_refused_naming_the_problem(text, message) -> None:
    with pytest.raises(TopologyError, match="invalid lab topology") as caught:
        derive_port_template(parse_topology(text))
    assert message in str(caught.value)


def test_allocated_ports_replace_the_template_ports_in_the_tags() -> None:
    rewritten = with_allocated_ports(SAMPLE, {"PC_serial": 6100, "PC_vnc": 6101, "R1_serial": 6102},
                                     title="lablet-s1")
    data = yaml.safe_load(rewritten)
    tags = {n["label"]: n.get("tags") for n in data["nodes"]}
    assert tags["PC"] == ["serial:6100", "vnc:6101", "student"]
    assert tags["R1"] == ["serial:6102"]
    assert tags["R2"] == ["serial:5042"]  # no allocation: left as it is
    assert data["lab"]["title"] == "lablet-s1"
    assert len(data["links"]) == 3


def test_reading_without_the_cml_rules_accepts_a_topology_stored_before_them() -> None:
    old = "lab: {title: x}\nnodes: [{id: n0, label: r1, node_definition: iosv, x: 0, y: 0, configuration: 5}]\n" \
          "links: []\n"
    with pytest.raises(TopologyError, match="configuration must be text"):
        parse_topology(old)
    assert parse_topology(old, cml_rules=False)["nodes"][0]["label"] == "r1"
