"""The `/metrics` series the alert rules read (deploy/prometheus, docs/alerts.md), built at each scrape from
`application.scrape_readings`: controller leadership and loops, worker licences, sessions past their boot
timeout, SSE clients cut off for reading too slowly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from control_plane_api.application.scrape_readings import ControllerReadings, LicenceReadings

_LOOP_LABELS = ["service", "identity", "loop"]


@dataclass(frozen=True)
class AlertReadings:
    controllers: ControllerReadings
    licences: LicenceReadings
    sessions_past_boot_timeout: int
    sse_overflow_disconnects: int


class AlertSeries(Collector):
    """Yields the series of the last readings set (none before the first scrape)."""

    def __init__(self) -> None:
        self.readings: AlertReadings | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        readings = self.readings
        if readings is None:
            return
        yield from _controller_series(readings.controllers)
        yield from _loop_series(readings.controllers)
        yield from _licence_series(readings.licences)
        yield GaugeMetricFamily("lcm_lablet_sessions_past_boot_timeout", "Lablet sessions still instantiating "
                                "longer than the lablet-controller's boot timeout (it stops them at that deadline)",
                                value=readings.sessions_past_boot_timeout)
        yield GaugeMetricFamily("lcm_lablet_boot_timeout_seconds", "The boot timeout the lablet-controller "
                                "reported (its default while none did)",
                                value=readings.controllers.boot_timeout_seconds)
        yield CounterMetricFamily("lcm_sse_overflow_disconnects", "Event streams ended since start because their "
                                  "client read too slowly for its queue (it reconnects and replays)",
                                  value=readings.sse_overflow_disconnects)


def _controller_series(c: ControllerReadings) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    replicas = GaugeMetricFamily("lcm_controller_replicas", "Controller replicas whose latest status report is "
                                 "fresh (younger than two of their report intervals)", labels=["service"])
    leaders = GaugeMetricFamily("lcm_controller_leaders", "Fresh controller replicas shown leading: the holder "
                                "of the service's etcd election key", labels=["service"])
    for service in sorted(c.replicas):
        replicas.add_metric([service], c.replicas[service])
        leaders.add_metric([service], c.leaders.get(service, 0))
    etcd = GaugeMetricFamily("lcm_controller_etcd_reachable", "1 when a fresh replica reported that its election "
                             "reaches etcd", labels=["service", "identity"])
    fenced = CounterMetricFamily("lcm_controller_fenced_actions", "Fleet changes a replica refused because its "
                                 "leader lease was too close to its end", labels=["service", "identity"])
    for replica in c.live:
        etcd.add_metric([replica.service, replica.identity], 1 if replica.etcd_reachable else 0)
        fenced.add_metric([replica.service, replica.identity], replica.fenced_actions)
    yield replicas
    yield leaders
    yield etcd
    yield fenced
    yield GaugeMetricFamily("lcm_controller_election_keys_readable", "1 when the control plane could read the "
                            "controllers' election keys in etcd", value=1 if c.election_keys_readable else 0)


def _loop_series(c: ControllerReadings) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    running = GaugeMetricFamily("lcm_controller_loop_running", "1 while the leader's loop runs", labels=_LOOP_LABELS)
    interval = GaugeMetricFamily("lcm_controller_loop_interval_seconds", "A leader loop's interval (its resync "
                                 "interval for a reconcile loop)", labels=_LOOP_LABELS)
    runs = CounterMetricFamily("lcm_controller_loop_runs", "Runs of a leader's loop since its process started "
                               "(one per key for a reconcile loop)", labels=_LOOP_LABELS)
    failures = CounterMetricFamily("lcm_controller_loop_failures", "Failed runs of a leader's loop since its "
                                   "process started", labels=_LOOP_LABELS)
    in_a_row = GaugeMetricFamily("lcm_controller_loop_consecutive_failures", "Runs of a leader's loop that failed "
                                 "since its last success", labels=_LOOP_LABELS)
    last_run = GaugeMetricFamily("lcm_controller_loop_last_run_timestamp_seconds", "When a leader's loop last "
                                 "finished a run", labels=_LOOP_LABELS)
    last_success = GaugeMetricFamily("lcm_controller_loop_last_success_timestamp_seconds", "When a leader's loop "
                                     "last finished a run that succeeded", labels=_LOOP_LABELS)
    started = GaugeMetricFamily("lcm_controller_loop_started_timestamp_seconds", "When a leader's loop began "
                                "running (its replica became leader)", labels=_LOOP_LABELS)
    for loop in c.loops:
        labels = [loop.service, loop.identity, loop.loop]
        running.add_metric(labels, 1 if loop.running else 0)
        if loop.interval_seconds is not None:
            interval.add_metric(labels, loop.interval_seconds)
        runs.add_metric(labels, loop.runs)
        failures.add_metric(labels, loop.failures)
        in_a_row.add_metric(labels, loop.consecutive_failures)
        if loop.last_run is not None:
            last_run.add_metric(labels, loop.last_run.timestamp())
        if loop.last_success is not None:
            last_success.add_metric(labels, loop.last_success.timestamp())
        if loop.started is not None:
            started.add_metric(labels, loop.started.timestamp())
    yield from (running, interval, runs, failures, in_a_row, last_run, last_success, started)


def _licence_series(licences: LicenceReadings) -> Iterator[GaugeMetricFamily]:
    by_licence = GaugeMetricFamily("lcm_workers_by_license", "Workers by status and licence status",
                                   labels=["status", "license"])
    for (status, licence), count in sorted(licences.by_status_and_license.items()):
        by_licence.add_metric([status, licence], count)
    yield by_licence
    authorization = GaugeMetricFamily("lcm_serving_workers_by_authorization", "Running or draining workers by "
                                      "their licence's authorization as CML reported it", labels=["authorization"])
    for label, count in sorted(licences.serving_by_authorization.items()):
        authorization.add_metric([label], count)
    yield authorization
    if licences.soonest_expiry is not None:
        yield GaugeMetricFamily("lcm_worker_license_soonest_expiry_timestamp_seconds", "The earliest licence "
                                "expiry among running or draining workers", value=licences.soonest_expiry.timestamp())
