"""Entry point of the worker-controller: wire the adapters and loops, elect a leader through etcd, serve
health and status. Only the leader runs the loops (discovery, metrics, reconcile, etcd watch)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aetcd
import boto3

from lcm_core.controller_host import ControllerHost, run_controller
from lcm_core.leader import LoopStats, PeriodicLoop, ReconcileLoop
from lcm_core.leader.watch import watch_prefix
from lcm_core.settings import load_settings
from worker_controller.application.discovery import Discovery
from worker_controller.application.fleet_settings import FleetSettingsReader
from worker_controller.application.metrics import MetricsCollector
from worker_controller.application.reconciler import WorkerReconciler
from worker_controller.infrastructure.aws import AwsFleet
from worker_controller.infrastructure.control_plane import ControlPlaneGateway
from worker_controller.settings import WorkerControllerSettings

SERVICE = "worker-controller"


@dataclass
class WatchLoop:
    """The etcd watch on the control plane's worker keys, as a leader loop (it stops with leadership)."""

    settings: WorkerControllerSettings
    reconcile: ReconcileLoop
    resync: WorkerReconciler
    name: str = "etcd-watch"
    stats: LoopStats = field(default_factory=lambda: LoopStats(name="etcd-watch", interval_seconds=0))

    def _on_key(self, key: str) -> None:
        # /lcm/workers/{id}/desired_state or /license → reconcile that worker now.
        parts = key.rsplit("/", 2)
        if len(parts) == 3:
            self.stats.runs += 1
            self.stats.successes += 1
            self.reconcile.enqueue(parts[1])

    def _on_gap(self) -> None:
        async def relist() -> None:
            for worker_id in await self.resync.list_keys():
                self.reconcile.enqueue(worker_id)

        self._relist = asyncio.get_running_loop().create_task(relist())

    async def run(self) -> None:
        s = self.settings
        self.stats.running = True
        try:
            await watch_prefix(
                lambda: aetcd.Client(host=s.etcd_host, port=s.etcd_port, timeout=int(s.etcd_timeout_seconds)),
                f"{s.etcd_prefix.rstrip('/')}/workers/", self._on_key, self._on_gap)
        finally:
            self.stats.running = False


def build_host(settings: WorkerControllerSettings) -> ControllerHost:
    host = ControllerHost(SERVICE, settings, lease_ttl_seconds=settings.leader_lease_ttl)
    gateway = ControlPlaneGateway(host.control_plane)
    aws = AwsFleet(endpoint_url=settings.aws_endpoint_url, max_concurrency=settings.aws_max_concurrency,
                   session_factory=lambda: boto3.session.Session(
                       aws_access_key_id=settings.aws_access_key_id,
                       aws_secret_access_key=settings.aws_secret_access_key.get_secret_value()
                       if settings.aws_secret_access_key else None,
                       aws_session_token=settings.aws_session_token.get_secret_value()
                       if settings.aws_session_token else None))
    cml = settings.cml_client()
    fleet = FleetSettingsReader(gateway, settings)
    discovery = Discovery(aws, gateway, fleet)
    collector = MetricsCollector(aws, cml, gateway, cml_url_template=settings.cml_url_template,
                                 idle_check_interval=settings.idle_check_interval_seconds)
    reconciler = WorkerReconciler(
        aws, cml, gateway, cml_url_template=settings.cml_url_template,
        resync_interval=settings.reconcile_interval_seconds,
        ec2_timeout_seconds=settings.ec2_timeout_minutes * 60,
        cml_boot_timeout_seconds=settings.cml_boot_timeout_minutes * 60,
        license_token=settings.cml_license_token.get_secret_value() if settings.cml_license_token else None,
        refresh=lambda worker: collector.run_once(only=[worker]),
    )

    discovery_loop = PeriodicLoop("discovery", lambda: _discover(discovery, discovery_loop.stats, collector),
                                  interval=lambda: fleet.current.discovery_interval)
    metrics_loop = PeriodicLoop("metrics", lambda: _collect(collector, metrics_loop.stats),
                                interval=lambda: fleet.current.metrics_interval)
    reconcile_loop = ReconcileLoop("reconcile", reconciler.reconcile, reconciler.list_keys,
                                   resync_interval=settings.reconcile_interval_seconds,
                                   concurrency=settings.reconcile_concurrency)
    host.loops = [discovery_loop, metrics_loop, reconcile_loop, WatchLoop(settings, reconcile_loop, reconciler)]
    return host


async def _discover(discovery: Discovery, stats: LoopStats, collector: MetricsCollector) -> None:
    outcome = await discovery.run_once()
    stats.extra = {"instances_found": outcome.found, "created": outcome.created, "orphans": len(outcome.orphans),
                   "failed_regions": sorted(outcome.failed_regions)}
    if outcome.workers is not None:
        # The next metrics run starts from the list discovery has just read instead of reading it again. It is
        # not woken early: a metrics report carries the EC2 state seen at its start, and more runs would mean
        # more reports racing the reconciler's status reports.
        collector.hand_over(outcome.workers)


async def _collect(collector: MetricsCollector, stats: LoopStats) -> None:
    outcome = await collector.run_once()
    stats.extra = {"workers": outcome.workers, "reported": outcome.reported, "cml_failures": outcome.cml_failures,
                   "workers_by_health": dict(outcome.by_health), "idle_checked": outcome.idle_checked}


def run() -> None:
    """Console entry point: `lcm-worker-controller`."""
    settings = load_settings(WorkerControllerSettings)
    run_controller(SERVICE, settings, build_host(settings), settings.port)


if __name__ == "__main__":
    run()
