"""The shared lablet contract: transition table, port tags, observation and request models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from lcm_core.domain.lablets import (
    HOLDING_SESSION_STATUSES,
    SESSION_TRANSITIONS,
    TERMINAL_SESSION_STATUSES,
    LabletSessionStatus,
    NodeObservation,
    ResourceObservation,
    ScheduleRequest,
    SessionWorkView,
    TransitionRequest,
    can_transition,
    observed_ports_from_nodes,
    parse_port_tag,
    port_name,
    releases_capacity,
)

S = LabletSessionStatus


def test_every_status_has_a_row_and_terminal_ones_lead_nowhere() -> None:
    assert set(SESSION_TRANSITIONS) == set(S)
    for status in TERMINAL_SESSION_STATUSES:
        assert SESSION_TRANSITIONS[status] == frozenset()
    assert {S.ARCHIVED, S.TERMINATED, S.EXPIRED} == TERMINAL_SESSION_STATUSES


@pytest.mark.parametrize(("current", "to"), [
    (S.PENDING, S.SCHEDULED), (S.PENDING, S.EXPIRED), (S.SCHEDULED, S.PENDING), (S.SCHEDULED, S.INSTANTIATING),
    (S.SCHEDULED, S.EXPIRED), (S.INSTANTIATING, S.READY), (S.INSTANTIATING, S.STOPPING), (S.READY, S.RUNNING),
    (S.RUNNING, S.COLLECTING), (S.COLLECTING, S.STOPPING), (S.STOPPING, S.STOPPED), (S.STOPPED, S.ARCHIVED),
    (S.RUNNING, S.TERMINATED), (S.STOPPING, S.TERMINATED),
])
def test_allowed_transitions(current, to) -> None:
    assert can_transition(current, to)
    assert can_transition(current.value, to.value)


@pytest.mark.parametrize(("current", "to"), [
    (S.PENDING, S.READY), (S.PENDING, S.PENDING), (S.RUNNING, S.EXPIRED), (S.RUNNING, S.PENDING),
    (S.STOPPED, S.RUNNING), (S.EXPIRED, S.SCHEDULED), (S.TERMINATED, S.STOPPED), (S.ARCHIVED, S.STOPPED),
    (S.INSTANTIATING, S.RUNNING), (S.COLLECTING, S.RUNNING), (S.STOPPED, S.TERMINATED),
])
def test_refused_transitions(current, to) -> None:
    assert not can_transition(current, to)


def test_capacity_is_released_when_leaving_the_worker_and_only_then() -> None:
    assert releases_capacity(S.STOPPING, S.STOPPED)
    assert releases_capacity(S.RUNNING, S.TERMINATED)
    assert releases_capacity(S.SCHEDULED, S.EXPIRED)
    assert releases_capacity(S.SCHEDULED, S.PENDING)
    assert not releases_capacity(S.PENDING, S.EXPIRED)  # nothing was held
    assert not releases_capacity(S.PENDING, S.TERMINATED)
    assert not releases_capacity(S.RUNNING, S.COLLECTING)
    assert not releases_capacity(S.STOPPED, S.ARCHIVED)
    assert S.PENDING not in HOLDING_SESSION_STATUSES


@pytest.mark.parametrize(("tag", "expected"), [
    ("serial:5041", ("serial", 5041)), ("vnc:5044", ("vnc", 5044)), (" ssh:22 ", ("ssh", 22)),
    ("serial:0", None), ("serial:65536", None), ("group:1", None), ("serial", None), ("serial:50x", None),
    ("Serial:5041", None), ("student", None), ("", None),
])
def test_parse_port_tag(tag, expected) -> None:
    assert parse_port_tag(tag) == expected


def test_port_name_is_label_and_kind() -> None:
    assert port_name("PC", "serial") == "PC_serial"


def _observation(**overrides):
    body = {"observed_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(), "observer": "lablet-controller",
            "total_cpu_cores": 3, "total_memory_mb": 4096, "actual_node_count": 2,
            "nodes": [{"node_id": "a", "label": "PC", "node_definition": "ubuntu", "state": "BOOTED",
                       "cpu_limit": 100, "ram_mb": 1024, "tags": ["serial:6001", "vnc:6002", "x"],
                       "compute_id": "ignored-extra",
                       "interfaces": [{"interface_id": "i", "label": "ens3", "slot": 0, "state": "STARTED",
                                       "mac_address": None, "ip4": ["10.0.0.5"], "is_connected": True}]}],
            "observed_ports": {"PC_serial": 6001}}
    body.update(overrides)
    return body


def test_observation_ignores_cml_extras_in_nodes_but_not_at_the_top() -> None:
    parsed = ResourceObservation.model_validate(_observation())
    assert parsed.nodes[0].interfaces[0].ip4 == ["10.0.0.5"]
    with pytest.raises(ValidationError, match="extra"):
        ResourceObservation.model_validate(_observation(surprise=1))
    with pytest.raises(ValidationError):
        ResourceObservation.model_validate(_observation(observer="someone"))
    with pytest.raises(ValidationError, match="contain"):
        ResourceObservation.model_validate(_observation(observed_ports={"a.b_serial": 1}))


def test_observed_ports_from_node_tags() -> None:
    node = NodeObservation(node_id="a", label="PC", node_definition="ubuntu", state="BOOTED",
                           tags=["serial:6001", "vnc:6002", "x"])
    assert observed_ports_from_nodes([node]) == {"PC_serial": 6001, "PC_vnc": 6002}


def test_request_bodies_are_strict() -> None:
    decision = {"success": False, "reason": "no worker has 4 free cores", "strategy": "best_fit"}
    assert ScheduleRequest.model_validate({"worker_id": None, "decision": decision}).worker_id is None
    with pytest.raises(ValidationError):
        ScheduleRequest.model_validate({"worker_id": "w", "decision": {**decision, "strategy": "fastest"}})
    with pytest.raises(ValidationError):
        TransitionRequest.model_validate({"to": "running", "reason": ""})
    assert TransitionRequest.model_validate({"to": "running", "reason": "lab booted"}).to is S.RUNNING


def test_work_view_tolerates_new_fields() -> None:
    view = SessionWorkView.model_validate({
        "id": "s", "status": "pending", "version": 1, "definition_id": "d", "definition_version": 2,
        "timeslot_start": "2026-01-01T10:00:00Z", "timeslot_end": "2026-01-01T12:00:00Z",
        "resource_requirements": {"cpu_cores": 2, "memory_gb": 4, "storage_gb": 10, "node_count": 2},
        "something_new": True,
    })
    assert view.allocated_ports == {}
    assert view.resource_requirements.node_count == 2
