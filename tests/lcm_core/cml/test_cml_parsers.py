"""Key-by-key parsing of recorded and malformed CML 2.9 telemetry answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lcm_core.cml import (
    SimulationStats,
    parse_lab_ids,
    parse_licensing,
    parse_system_health,
    parse_system_information,
    parse_system_stats,
    parse_telemetry_events,
)
from lcm_core.cml.models import ImportResult, Interface, Lab, Link, Node
from lcm_core.cml.parsers import last_activity_at, parse_cml_timestamp

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cml"
C0 = "435a7bac-882a-4edd-a8f3-f4ea9307cb52"
C1 = "9d1f3c52-7a0e-4b8e-9c1d-2f6b0e4a7c11"
C2 = "e2b7c0d4-55f1-4a3b-8e6d-0c9a1b2d3e4f"

PARSERS: dict[str, Callable[..., Any]] = {
    "system_information": parse_system_information,
    "system_stats": parse_system_stats,
    "system_health": parse_system_health,
    "licensing": parse_licensing,
    "labs": parse_lab_ids,
    "telemetry_events": parse_telemetry_events,
}
MODELS: dict[str, Callable[[Any], Any]] = {
    "lab": Lab.model_validate,
    "nodes": lambda body: [Node.model_validate(item) for item in body],
    "interfaces": lambda body: [Interface.model_validate(item) for item in body],
    "links": lambda body: [Link.model_validate(item) for item in body],
    "simulation_stats": SimulationStats.model_validate,
    "import_result": ImportResult.model_validate,
}


def warned(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_every_fixture_parses_without_raising(path: Path) -> None:
    body = json.loads(path.read_text())
    stem = path.stem
    parser = next((fn for prefix, fn in PARSERS.items() if stem.startswith(prefix)), None)
    if parser is not None:
        parser(body, host="https://cml.test")
        return
    model = next(fn for prefix, fn in MODELS.items() if stem.startswith(prefix))
    model(body)


# ---- system_information -------------------------------------------------------------------------

def test_system_information_recorded_and_not_ready(load: Callable[[str], Any]) -> None:
    info = parse_system_information(load("system_information.json"))
    assert (info.version, info.ready) == ("2.9.0+build.3", True)
    assert parse_system_information(load("system_information_not_ready.json")).ready is False


def test_system_information_wrong_types(caplog: pytest.LogCaptureFixture) -> None:
    info = parse_system_information({"version": 2.9, "ready": "yes"}, host="https://h1")
    assert info.version is None
    assert info.ready is None
    assert "'version' is not a string" in warned(caplog)
    assert "'ready' is not a boolean" in warned(caplog)
    assert "https://h1" in warned(caplog)


# ---- system_stats ------------------------------------------------------------------------------

def test_system_stats_recorded_every_key(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    warnings: list[str] = []
    stats = parse_system_stats(load("system_stats.json"), warnings=warnings)
    assert warnings == []
    assert not warned(caplog)
    assert (stats.all_cpu_count, stats.all_cpu_percent) == (48, 0.49)
    assert (stats.all_memory_total, stats.all_memory_free, stats.all_memory_used) == (
        202422902784, 199086161920, 2033487872)
    assert (stats.all_disk_total, stats.all_disk_free, stats.all_disk_used) == (
        266206101504, 128413523968, 137792577536)
    assert (stats.controller_disk_total, stats.controller_disk_free, stats.controller_disk_used) == (
        266206101504, 128413519872, 137775804416)
    assert (stats.allocated_cpus, stats.allocated_memory) == (0, 0)
    assert (stats.total_nodes, stats.total_orphans, stats.running_nodes, stats.running_orphans) == (2, 0, 0, 0)
    node = stats.computes[C0]
    assert node.hostname == "ip-172-31-38-11"
    assert node.is_controller is True
    assert (node.cpu_count, node.cpu_percent, node.cpu_predicted) == (48, 0.49, 6)
    assert node.cpu_model == "Intel(R) Xeon(R) Platinum 8252C CPU @ 3.80GHz"
    assert node.cpu_load == [0.004, 0.016, 0.0]
    assert (node.memory_total, node.memory_free, node.memory_used) == (202422902784, 199086161920, 2033487872)
    assert (node.disk_total, node.disk_free, node.disk_used) == (266206101504, 128413523968, 137792577536)
    assert (node.allocated_cpus, node.allocated_memory, node.total_nodes, node.running_nodes) == (0, 0, 2, 0)


def test_system_stats_several_computes_sum_dominfo(load: Callable[[str], Any]) -> None:
    stats = parse_system_stats(load("system_stats_multi_compute.json"))
    assert list(stats.computes) == [C0, C1, C2]
    assert stats.all_cpu_count == 240
    assert (stats.allocated_cpus, stats.allocated_memory) == (64, 16384 + 65536 + 98304)
    assert (stats.total_nodes, stats.total_orphans, stats.running_nodes, stats.running_orphans) == (28, 1, 23, 2)
    assert [c.is_controller for c in stats.computes.values()] == [True, False, False]


def test_system_stats_not_ready_has_no_cluster_node_counts(load: Callable[[str], Any]) -> None:
    stats = parse_system_stats(load("system_stats_not_ready.json"))
    assert stats.computes == {}
    assert stats.all_cpu_count == 0
    assert stats.running_nodes is None  # no compute: unknown, not zero


def test_system_stats_missing_keys(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    stats = parse_system_stats(load("system_stats_missing_keys.json"), host="https://h1")
    text = warned(caplog)
    for key in ("'controller' is missing", "'all.memory' is missing", "'all.cpu.count' is missing",
                f"'computes.{C0}.stats.dominfo' is missing", f"'computes.{C0}.stats.cpu.count' is missing"):
        assert key in text
    assert stats.controller_disk_total is None
    assert stats.all_memory_total is None
    assert stats.all_cpu_count is None
    assert stats.all_cpu_percent == 0.49
    assert stats.all_disk_used == 137792577536
    assert stats.running_nodes is None  # the compute did not report dominfo
    assert stats.computes[C0].memory_total == 202422902784


def test_system_stats_nulls(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    warnings: list[str] = []
    stats = parse_system_stats(load("system_stats_nulls.json"), warnings=warnings)
    text = warned(caplog)
    assert "'all.cpu.count' is null" in text
    assert "'all.memory.total' is null" in text
    assert "'controller' is null" in text
    assert f"'computes.{C0}.hostname' is null" in text
    # dominfo counters are nullable in the spec: null is a value, not a defect
    assert "total_nodes" not in text
    assert stats.total_nodes is None
    assert stats.allocated_cpus == 0
    assert stats.all_disk_total == 266206101504
    assert stats.all_disk_free is None
    assert len(warnings) == len([r for r in caplog.records if r.levelno == logging.WARNING])


def test_system_stats_wrong_types(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    stats = parse_system_stats(load("system_stats_wrong_types.json"))
    text = warned(caplog)
    base = f"computes.{C0}"
    for key, problem in [
        (f"{base}.is_controller", "is not a boolean"),
        (f"{base}.stats.cpu.load", "is not a list"),
        (f"{base}.stats.cpu.count", "is not a number"),
        (f"{base}.stats.cpu.model", "is not a string"),
        (f"{base}.stats.cpu.predicted", "is not an integer"),
        (f"{base}.stats.memory", "is not an object"),
        (f"{base}.stats.disk.used", "is negative"),
        (f"{base}.stats.dominfo.allocated_cpus", "is not a number"),
        (f"computes.{C1}", "is not an object"),
        ("all.cpu.percent", "is not a number"),
        ("all.memory.total", "is not a number"),
        ("all.disk", "is not an object"),
    ]:
        assert f"'{key}' {problem}" in text
    assert stats.all_cpu_count == 48  # 48.0 is an integral number
    assert stats.all_cpu_percent is None
    assert stats.all_memory_total is None
    assert stats.all_memory_used == 2033487872
    assert stats.all_disk_total is None
    assert stats.controller_disk_total == 266206101504
    assert list(stats.computes) == [C0]
    assert stats.computes[C0].is_controller is None
    assert stats.computes[C0].disk_total == 266206101504
    assert stats.computes[C0].disk_used is None
    assert stats.total_nodes is None  # one compute is unreadable: the cluster sum is unknown


@pytest.mark.parametrize("body", [[1, 2], "<html>502</html>", None, 42], ids=["list", "str", "null", "int"])
def test_system_stats_wrong_top_level_is_empty(body: Any, caplog: pytest.LogCaptureFixture) -> None:
    stats = parse_system_stats(body)
    assert stats.model_dump(exclude_defaults=True) == {}
    assert "system_stats: body is" in warned(caplog)
    assert len(caplog.records) == 1


def test_non_finite_numbers_are_rejected(caplog: pytest.LogCaptureFixture) -> None:
    stats = parse_system_stats(json.loads('{"all": {"cpu": {"count": 4, "percent": NaN}}}'))
    assert stats.all_cpu_percent is None
    assert "'all.cpu.percent' is not finite" in warned(caplog)


# ---- system_health -----------------------------------------------------------------------------

def test_system_health_recorded(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    health = parse_system_health(load("system_health.json"))
    assert not warned(caplog)
    assert (health.health_valid, health.is_licensed, health.is_enterprise) == (True, True, True)
    assert (health.controller_core_connected, health.controller_nodes_loaded, health.controller_images_loaded,
            health.controller_valid) == (True, True, True, True)
    node = health.computes[C0]
    assert node.admission_state == "READY"
    assert node.hostname == "ip-172-31-38-11"
    assert node.healthy is True
    assert all(getattr(node, flag) is True for flag in (
        "kvm_vmx_enabled", "enough_cpus", "lld_connected", "lld_synced", "libvirt", "fabric", "device_mux",
        "refplat_images_available", "docker_shim", "valid"))


def test_system_health_degraded_compute(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    health = parse_system_health(load("system_health_multi_compute.json"))
    assert not warned(caplog)  # refplat_images_available: null is allowed by the spec
    assert health.health_valid is False
    bad = health.computes[C2]
    assert (bad.admission_state, bad.lld_synced, bad.refplat_images_available, bad.healthy) == (
        "REGISTERED", False, None, False)
    assert health.computes[C1].healthy is True


def test_system_health_not_ready(load: Callable[[str], Any]) -> None:
    health = parse_system_health(load("system_health_not_ready.json"))
    assert (health.health_valid, health.is_licensed, health.controller_nodes_loaded) == (None, False, False)
    assert health.computes[C0].admission_state == "ONLINE"
    assert health.computes[C0].healthy is False


def test_system_health_odd(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    health = parse_system_health(load("system_health_odd.json"))
    text = warned(caplog)
    assert "'valid' is not a boolean" in text
    assert "'is_licensed' is missing" in text
    assert "'controller' is not an object" in text
    assert f"'computes.{C0}.admission_state' is not a string" in text
    assert f"'computes.{C0}.enough_cpus' is missing" in text
    assert health.health_valid is None
    assert health.is_enterprise is True
    assert health.controller_valid is None
    assert health.computes[C0].kvm_vmx_enabled is True
    assert health.computes[C0].enough_cpus is None


# ---- licensing ---------------------------------------------------------------------------------

def test_licensing_recorded(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    lic = parse_licensing(load("licensing.json"))
    assert not warned(caplog)
    assert (lic.registration_status, lic.authorization_status) == ("COMPLETED", "IN_COMPLIANCE")
    assert lic.registration_expires == datetime(2027, 1, 14, 0, 56, 19, tzinfo=UTC)
    assert lic.authorization_expires == datetime(2026, 4, 14, 0, 55, 21, tzinfo=UTC)
    assert lic.expires == lic.registration_expires
    assert (lic.product_license, lic.is_enterprise) == ("CML_Enterprise", True)
    assert (lic.smart_account, lic.virtual_account, lic.udi_hostname) == ("CML Prod", "Default", "ip-172-31-38-11")
    assert [f.name for f in lic.features or []] == ["CML - Enterprise License", "CML - Expansion Node License"]
    assert lic.registered is True
    # The product's base nodes plus the node-count feature's max; never the sum 1 + 500.
    assert (lic.base_nodes, lic.expansion_nodes, lic.expansion_nodes_max) == (20, 0, 500)
    assert lic.node_limit == 520


def test_licensing_full_shape_with_expansion(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    lic = parse_licensing(load("licensing_full.json"))
    assert not warned(caplog)
    assert lic.expansion_nodes == 30
    assert lic.node_limit == 520
    assert lic.reservation_mode is False
    assert lic.features is not None
    assert lic.features[1].id == "regid.2019-10.com.cisco.CML_NODE_COUNT,1.0_2607650b-6ca8-46d5-81e5-e6688b7383c4"


def test_licensing_unregistered(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    lic = parse_licensing(load("licensing_unregistered.json"))
    assert not warned(caplog)  # nulls of an unregistered host are legitimate
    assert (lic.registration_status, lic.authorization_status) == ("NOT_REGISTERED", "EVAL_MODE")
    assert lic.registered is False
    assert lic.expires is None
    assert lic.smart_account is None
    assert lic.node_limit is None  # the template's unlicensed limit applies


def test_licensing_personal_and_iso_timestamps(load: Callable[[str], Any]) -> None:
    lic = parse_licensing(load("licensing_personal.json"))
    assert lic.expansion_nodes == 0
    assert lic.node_limit == 20
    assert lic.registration_expires == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def test_licensing_base_nodes_are_configurable(load: Callable[[str], Any]) -> None:
    lic = parse_licensing(load("licensing_full.json"), base_nodes_by_product={"CML_Enterprise": 0})
    assert lic.node_limit == 500


def test_licensing_unknown_product(caplog: pytest.LogCaptureFixture) -> None:
    body = {"registration": {"status": "COMPLETED", "expires": None}, "authorization": {"status": "IN_COMPLIANCE",
            "expires": None}, "features": [], "product_license": {"active": "CML_Future", "is_enterprise": True}}
    lic = parse_licensing(body)
    assert lic.node_limit is None
    assert "'product_license.active' is an unknown product" in warned(caplog)


def test_licensing_odd(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    lic = parse_licensing(load("licensing_odd.json"))
    text = warned(caplog)
    assert "'registration.status' is not a string" in text
    assert "'registration.expires' is not a timestamp" in text
    assert "'authorization' is missing" in text
    assert "'features' is not a list" in text
    assert "'product_license.active' is null" in text
    assert "'product_license.is_enterprise' is not a boolean" in text
    assert lic.model_dump(exclude_defaults=True) == {}


def test_licensing_wrong_top_level(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_licensing("COMPLETED").node_limit is None
    assert "licensing: body is a JSON string, expected a JSON object" in warned(caplog)


# ---- labs, events, timestamps --------------------------------------------------------------------

def test_lab_ids(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    assert parse_lab_ids(load("labs.json")) == load("labs.json")
    assert parse_lab_ids(load("labs_empty.json")) == []
    assert parse_lab_ids(["a", 3, "b"]) == ["a", "b"]
    assert "labs: '[1]' is not a lab id" in warned(caplog)
    assert parse_lab_ids({"labs": []}) is None


def test_telemetry_events_and_last_activity(load: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    events = parse_telemetry_events(load("telemetry_events.json"))
    assert [e.category for e in events] == ["system_stats", "start_lab", "boot_node", "user_activity",
                                            "running_nodes"]
    text = warned(caplog)
    assert "'[5].timestamp' is not a timestamp" in text
    assert "'[6]' is not an object" in text
    # periodic categories (system_stats, running_nodes) are not user activity
    assert last_activity_at(events) == datetime(2026, 2, 10, 9, 22, 5, tzinfo=UTC)
    assert last_activity_at([]) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2027-01-14 00:56:19", datetime(2027, 1, 14, 0, 56, 19, tzinfo=UTC)),
    ("2021-02-28T07:33:47+00:00", datetime(2021, 2, 28, 7, 33, 47, tzinfo=UTC)),
    ("2021-02-28T07:33:47Z", datetime(2021, 2, 28, 7, 33, 47, tzinfo=UTC)),
])
def test_cml_timestamps(text: str, expected: datetime) -> None:
    assert parse_cml_timestamp(text) == expected


# ---- lab models ----------------------------------------------------------------------------------

def test_lab_models(load: Callable[[str], Any]) -> None:
    lab = Lab.model_validate(load("lab.json"))
    assert (lab.lab_title, lab.state, lab.is_active, lab.node_count) == ("lablet-ccna-101", "STARTED", True, 2)
    r1, pc = (Node.model_validate(item) for item in load("nodes.json"))
    assert (r1.label, r1.node_definition, r1.cpus, r1.ram, r1.cpu_limit, r1.tags) == (
        "r1", "iosv", 1, 768, 100, ["serial:4566"])
    assert (r1.is_booted, pc.is_active, pc.is_booted) == (True, True, False)
    assert (pc.tags, pc.parameters, pc.cpus) == ([], {}, None)
    loopback, gi0 = (Interface.model_validate(item) for item in load("interfaces.json"))
    assert (loopback.type, loopback.slot, gi0.slot, gi0.mac_address) == ("loopback", None, 0, "52:54:00:1a:2b:3c")
    assert Link.model_validate(load("links.json")[0]).label == "r1-pc"
    assert ImportResult.model_validate(load("import_result.json")).warnings == []


def test_simulation_stats_both_shapes(load: Callable[[str], Any]) -> None:
    keyed = SimulationStats.model_validate(load("simulation_stats.json"))
    node_id = next(iter(keyed.nodes))
    assert keyed.nodes[node_id].cpu_usage == 3.25
    assert keyed.nodes[node_id].block0_rd_bytes == 104857600
    second = list(keyed.nodes.values())[1]
    assert (second.block0_rd_bytes, second.block0_wr_bytes) == (0, 0)  # missing counters count as 0
    spec = SimulationStats.model_validate(load("simulation_stats_spec_form.json"))
    assert spec.nodes[node_id].cpu_usage == 1.5
    assert spec.nodes[node_id].block0_wr_bytes == 0
    assert next(iter(spec.links.values())).readbytes == 1

