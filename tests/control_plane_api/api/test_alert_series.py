"""The `/metrics` series the alert rules read (deploy/prometheus), against a real CPA: each moves when what it
stands for happens (a controller's leader, its loops failing, licences, sessions past their boot timeout)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lcm_core.leader import LoopStats
from lcm_core.testing.processes import free_port
from tests.fixtures.control_plane import discovered
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, ready_workers, schedule_body
from tests.fixtures.metrics import post_report
from tests.fixtures.polling import wait_for

WORKER_CONTROLLER = "worker-controller"
#: The identity the fixture's `leader()` writes into the election key: a report from it is the judged leader.
KEY_HOLDER = "test-leader"


def scrape(cp) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of one scrape: {(sample name, labels): value}."""
    with cp.client() as http:
        answer = http.get("/metrics", headers=cp.internal())
    assert answer.status_code == 200, answer.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def report_status(cp, identity: str, *, leading: bool, loops: list[dict[str, Any]], service: str = WORKER_CONTROLLER,
                  etcd_reachable: bool = True, interval: float = 600) -> None:
    body = {"service": service, "identity": identity, "is_leader": leading, "report_interval_seconds": interval,
            "etcd_reachable": etcd_reachable, "loops": loops}
    with cp.client() as http:
        answer = http.post("/api/internal/controllers/status", headers=cp.internal(), json=body)
    assert answer.status_code == 204, answer.text


def test_leaders_replicas_and_the_leaders_loops_as_the_controllers_report_them(control_plane) -> None:
    cp = control_plane
    cp.leader(WORKER_CONTROLLER)  # the election key is held by KEY_HOLDER
    discovery = LoopStats(name="discovery", interval_seconds=60)
    discovery.record(True, 0.0)
    report_status(cp, KEY_HOLDER, leading=True, loops=[discovery.to_dict()])
    report_status(cp, "wc-follower", leading=False, etcd_reachable=False,
                  loops=[LoopStats(name="discovery", interval_seconds=60).to_dict()])

    samples = scrape(cp)
    assert value(samples, "lcm_controller_replicas", service=WORKER_CONTROLLER) == 2
    assert value(samples, "lcm_controller_leaders", service=WORKER_CONTROLLER) == 1
    assert value(samples, "lcm_controller_etcd_reachable", service=WORKER_CONTROLLER, identity=KEY_HOLDER) == 1
    assert value(samples, "lcm_controller_etcd_reachable", service=WORKER_CONTROLLER, identity="wc-follower") == 0
    leader_loop = {"service": WORKER_CONTROLLER, "identity": KEY_HOLDER, "loop": "discovery"}
    assert value(samples, "lcm_controller_loop_runs_total", **leader_loop) == 1
    assert value(samples, "lcm_controller_loop_failures_total", **leader_loop) == 0
    assert value(samples, "lcm_controller_loop_interval_seconds", **leader_loop) == 60
    assert discovery.last_success is not None
    succeeded = discovery.last_success.timestamp()
    assert value(samples, "lcm_controller_loop_last_success_timestamp_seconds", **leader_loop) == succeeded
    assert value(samples, "lcm_controller_loop_started_timestamp_seconds", **leader_loop) is None  # not run()

    # A new leader whose first run has not finished: when it started, and no success yet.
    hanging = LoopStats(name="metrics", interval_seconds=60)
    hanging.start()
    assert hanging.started is not None
    report_status(cp, KEY_HOLDER, leading=True, loops=[discovery.to_dict(), hanging.to_dict()])
    samples = scrape(cp)
    new_loop = {**leader_loop, "loop": "metrics"}
    assert value(samples, "lcm_controller_loop_started_timestamp_seconds", **new_loop) == hanging.started.timestamp()
    assert value(samples, "lcm_controller_loop_running", **new_loop) == 1
    assert value(samples, "lcm_controller_loop_last_success_timestamp_seconds", **new_loop) is None
    # A follower runs no loop: its figures are not series (a stalled-loop alert would fire on them).
    assert not [key for key in samples if ("identity", "wc-follower") in key[1] and "_loop_" in key[0]]

    # The loop fails twice: the failure series move, the last success stays when it was.
    discovery.record(False, 0.0, "EC2 throttled")
    discovery.record(False, 0.0, "EC2 throttled")
    report_status(cp, KEY_HOLDER, leading=True, loops=[discovery.to_dict()])
    samples = scrape(cp)
    assert value(samples, "lcm_controller_loop_failures_total", **leader_loop) == 2
    assert value(samples, "lcm_controller_loop_consecutive_failures", **leader_loop) == 2
    assert value(samples, "lcm_controller_loop_runs_total", **leader_loop) == 3
    assert value(samples, "lcm_controller_loop_last_success_timestamp_seconds", **leader_loop) == succeeded

    # The election key is lost while the last report still claims to lead: no leader is shown.
    cp.depose(WORKER_CONTROLLER)
    samples = scrape(cp)
    assert value(samples, "lcm_controller_leaders", service=WORKER_CONTROLLER) == 0
    assert value(samples, "lcm_controller_replicas", service=WORKER_CONTROLLER) == 2
    assert value(samples, "lcm_controller_election_keys_readable") == 1


def test_a_controller_that_stops_reporting_has_no_replica_left(control_plane) -> None:
    """What LcmControllerNotReporting reads: a replica stops counting two report intervals after its last one
    (here three seconds, so six), and the service stays, with none."""
    cp = control_plane
    report_status(cp, "lc-1", leading=False, loops=[], service=LABLET, interval=3)
    assert value(scrape(cp), "lcm_controller_replicas", service=LABLET) == 1
    deadline = time.monotonic() + 60
    while value(samples := scrape(cp), "lcm_controller_replicas", service=LABLET) != 0:
        assert time.monotonic() < deadline, "the replica never went stale"
        time.sleep(0.5)
    assert value(samples, "lcm_controller_leaders", service=LABLET) == 0


def test_reports_of_pods_long_gone_are_forgotten_and_the_service_stays_at_zero(control_plane_factory) -> None:
    """A controller's identity is its pod name, new at every rollout: the CPA forgets the reports of replicas
    silent for longer than CONTROLLER_STATUS_RETENTION_SECONDS (one second here), so a scrape and
    GET /api/system/controllers do not walk every pod ever seen; the service's newest report stays, so
    `lcm_controller_replicas{service}` is still there, at 0, for LcmControllerNotReporting."""
    cp = control_plane_factory(CONTROLLER_STATUS_RETENTION_SECONDS=1)
    gone_pods = 300
    for n in range(gone_pods):
        report_status(cp, f"worker-controller-7c9d8-{n:05d}", leading=False, loops=[], interval=0.05)
    newest = f"worker-controller-7c9d8-{gone_pods - 1:05d}"

    def replicas_kept() -> list[dict]:
        with cp.client() as http:
            answer = http.get("/api/system/controllers", headers=cp.viewer())
        assert answer.status_code == 200, answer.text
        replicas = answer.json()["controllers"][WORKER_CONTROLLER]["replicas"]
        # The newest report turns stale only MIN_STALE_AFTER_SECONDS after it came: on a fast machine the
        # others are forgotten before that.
        return replicas if len(replicas) == 1 and replicas[0]["stale"] else []

    (kept,) = wait_for(f"the reports of {gone_pods - 1} gone pods forgotten, the newest one stale", replicas_kept)
    assert kept["identity"] == newest
    assert value(scrape(cp), "lcm_controller_replicas", service=WORKER_CONTROLLER) == 0


def test_workers_by_licence_and_the_soonest_expiry(control_plane) -> None:
    cp = control_plane
    first, second = ready_workers(cp, 2, first=31)
    soon = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    later = soon + timedelta(days=30)
    with cp.client() as http:
        post_report(cp, http, first, cml={"license": {"registration_status": "COMPLETED",
                                                      "authorization_status": "OUT_OF_COMPLIANCE",
                                                      "registration_expires": later.isoformat()}})
        post_report(cp, http, second, cml={"license": {"registration_status": "EXPIRED",
                                                       "authorization_status": "AUTHORIZED",
                                                       "registration_expires": soon.isoformat()}})
    samples = scrape(cp)  # the second worker's expiry is the sooner (not the first found)
    assert value(samples, "lcm_workers_by_license", status="running", license="registered") == 1
    assert value(samples, "lcm_workers_by_license", status="running", license="expired") == 1
    assert value(samples, "lcm_serving_workers_by_authorization", authorization="out_of_compliance") == 1
    assert value(samples, "lcm_serving_workers_by_authorization", authorization="in_compliance") == 1
    assert value(samples, "lcm_worker_license_soonest_expiry_timestamp_seconds") == soon.timestamp()


def test_sessions_instantiating_past_the_reported_boot_timeout(control_plane) -> None:
    cp = control_plane
    (worker_id,) = ready_workers(cp, 1, first=41)
    session = create_session(cp, create_definition(cp, name="boot-timeout")["id"])
    with cp.client() as http:
        for path, body in ((f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id)),
                           (f"/api/internal/lablet-sessions/{session['id']}/transition",
                            {"to": "instantiating", "reason": "lab imported"})):
            answer = http.post(path, headers=cp.leader(LABLET), json=body)
            assert answer.status_code == 200, answer.text

    # Before the lablet-controller said its boot timeout, its default (15 minutes) applies: not past it yet.
    samples = scrape(cp)
    assert value(samples, "lcm_lablet_boot_timeout_seconds") == 900
    assert value(samples, "lcm_lablet_sessions_past_boot_timeout") == 0

    # A lablet-controller whose boot timeout is a millisecond: the session has been instantiating longer.
    sessions_loop = LoopStats(name="sessions", interval_seconds=30, extra={"boot_timeout_seconds": 0.001})
    report_status(cp, "lc-1", leading=False, loops=[sessions_loop.to_dict()], service=LABLET)
    samples = scrape(cp)
    assert value(samples, "lcm_lablet_boot_timeout_seconds") == 0.001
    assert value(samples, "lcm_lablet_sessions_past_boot_timeout") == 1

    with cp.client() as http:
        answer = http.post(f"/api/internal/lablet-sessions/{session['id']}/transition", headers=cp.leader(LABLET),
                           json={"to": "stopping", "reason": "boot timeout"})
        assert answer.status_code == 200, answer.text
    assert value(scrape(cp), "lcm_lablet_sessions_past_boot_timeout") == 0


def test_series_of_a_fresh_install_say_nothing_is_wrong(control_plane) -> None:
    """No controller has reported, no licence is known: nothing that an alert reads is made up."""
    samples = scrape(control_plane)
    assert not [key for key in samples if key[0].startswith("lcm_controller_") and key[1]]
    assert value(samples, "lcm_lablet_sessions_past_boot_timeout") == 0
    assert value(samples, "lcm_sse_overflow_disconnects_total") == 0
    assert ("lcm_worker_license_soonest_expiry_timestamp_seconds", frozenset()) not in samples


def test_the_event_log_series_says_when_redis_is_unreachable(control_plane_factory) -> None:
    """What LcmEventLogUnavailable reads: a CPA whose Redis does not answer says so once it has tried."""
    cp = control_plane_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with cp.client() as http:  # a change publishes an event: the append to the log fails
        answer = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                           json={"instances": [discovered(51)]})
        assert answer.status_code == 200, answer.text
    assert value(scrape(cp), "lcm_event_log_available") == 0


def test_the_event_log_series_says_when_redis_answers(control_plane) -> None:
    assert value(scrape(control_plane), "lcm_event_log_available") == 1
