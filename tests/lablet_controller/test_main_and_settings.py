"""Wiring of the lablet-controller: settings (both strategy names, port range), the etcd watch's key parsing and
the loops a leader runs."""

from __future__ import annotations

import pytest

from lablet_controller.main import WATCHED_KEYS, build_host
from lablet_controller.settings import LabletControllerSettings
from lcm_core.domain.lablets import SchedulingStrategy
from lcm_core.leader.watch import KeyWatchLoop
from tests.fixtures.settings import from_environment


def settings(**env: object) -> LabletControllerSettings:
    return from_environment(LabletControllerSettings, LCM_ENVIRONMENT="test", **env)


def test_defaults_and_both_strategy_variable_names() -> None:
    default = settings()
    assert default.scheduling_strategy is SchedulingStrategy.BEST_FIT
    assert default.require_licensed_for_cml is True
    assert default.ports_per_worker == 3000  # 5000..7999, the CPA's default range
    assert settings(SCHEDULER_STRATEGY="least_labs").scheduling_strategy is SchedulingStrategy.LEAST_LABS
    assert settings(LABLET_SCHEDULING_STRATEGY="random").scheduling_strategy is SchedulingStrategy.RANDOM


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="LABLET_SCHEDULING_STRATEGY"):
        settings(LABLET_SCHEDULING_STRATEGY="first_fit")
    with pytest.raises(ValueError, match="PORT_RANGE_END"):
        settings(LABLET_PORT_RANGE_START=6000, LABLET_PORT_RANGE_END=5000)


def test_the_leader_runs_scheduling_sessions_the_watch_and_lab_discovery() -> None:
    host = build_host(settings(LABLET_SCHEDULING_STRATEGY="least_utilized"))
    assert [loop.name for loop in host.loops] == ["scheduling", "sessions", "etcd-watch", "lab-discovery"]


def test_watch_enqueues_the_session_of_a_state_or_observe_key() -> None:
    enqueued: list[str] = []

    class Queue:
        def enqueue(self, key: str) -> None:
            enqueued.append(key)

    async def no_keys() -> list[str]:
        return []

    watch = KeyWatchLoop(settings(), "sessions", Queue(), no_keys, WATCHED_KEYS)
    watch._on_key("/lcm/sessions/s1/state")
    watch._on_key("/lcm/sessions/s2/observe_resources")
    watch._on_key("/lcm/sessions/s3/something_else")
    watch._on_key("/lcm/sessions")
    watch._on_key("/lcm/workers/w1/state")
    assert enqueued == ["s1", "s2"]
    assert watch.stats.runs == 2
