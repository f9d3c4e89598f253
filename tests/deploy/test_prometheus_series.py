"""Under the local stack (`python -m lcm_core.testing.devstack`: a real CPA with MongoDB-wire, Redis and etcd,
both controllers leading and reporting, the local AWS and the CML simulator), /metrics exposes every series
the Prometheus rules read. Skipped without promtool like the rule tests (the rules are what is checked)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from lcm_core.testing.devstack.stack import DEV_INTERVALS
from tests.deploy.prometheus_rules import promtool, series_read_from_metrics
from tests.e2e.stack import running_devstack

#: The stack's first cycles: election, discovery of the seeded instances, a metrics collection, status reports.
SETTLE_SECONDS = 240


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    promtool()
    root = tmp_path_factory.mktemp("prometheus-stack")
    with running_devstack(root) as env:
        yield env


def _scrape(env: dict[str, str]) -> list[Sample]:
    answer = httpx.get(f"{env['LCM_API_URL']}/metrics", headers={"X-API-Key": env["CONTROL_PLANE_API_KEY"]},
                       timeout=30)
    assert answer.status_code == 200, answer.text
    return [sample for family in text_string_to_metric_families(answer.text) for sample in family.samples]


@pytest.fixture(scope="module")
def settled(stack_env: dict[str, str]) -> tuple[set[str], list[Sample]]:
    """The series the rules read, and a scrape taken once all are exposed (or when the stack had its time).
    Some appear only once the stack has done something: a loop's last success after its first successful run,
    the soonest licence expiry once a worker's licensing was read."""
    read = series_read_from_metrics()
    deadline = time.monotonic() + SETTLE_SECONDS
    samples = _scrape(stack_env)
    while read - {s.name for s in samples} and time.monotonic() < deadline:
        time.sleep(2)
        samples = _scrape(stack_env)
    return read, samples


def test_metrics_expose_every_series_the_rules_read(settled: tuple[set[str], list[Sample]]) -> None:
    read, samples = settled
    assert {"lcm_controller_leaders", "lcm_controller_loop_failures_total", "lcm_workers",
            "lcm_lablet_sessions_past_boot_timeout", "lcm_worker_license_soonest_expiry_timestamp_seconds"} <= read
    # Names as Prometheus stores them: a counter's samples end in `_total`.
    assert read - {sample.name for sample in samples} == set()


def test_both_controllers_lead_and_report_their_loops(settled: tuple[set[str], list[Sample]]) -> None:
    _, samples = settled
    leaders = {s.labels["service"]: s.value for s in samples if s.name == "lcm_controller_leaders"}
    assert leaders == {"worker-controller": 1, "lablet-controller": 1}
    loops = {(s.labels["service"], s.labels["loop"]) for s in samples if s.name == "lcm_controller_loop_runs_total"}
    assert {("worker-controller", "discovery"), ("worker-controller", "metrics"),
            ("lablet-controller", "sessions"), ("lablet-controller", "lab-discovery")} <= loops
    boot_timeout = [s.value for s in samples if s.name == "lcm_lablet_boot_timeout_seconds"]
    assert boot_timeout == [float(DEV_INTERVALS["LABLET_BOOT_TIMEOUT"])]
