"""Entry point of the worker-controller: wire the adapters and loops, elect a leader through etcd, serve
health and status. Only the leader runs the loops (discovery, metrics, reconcile, etcd watch)."""

from __future__ import annotations

import time
from typing import Any

import boto3

from lcm_core.controller_host import ControllerHost, run_controller
from lcm_core.leader import LoopStats, PeriodicLoop, ReconcileLoop
from lcm_core.leader.watch import KeyWatchLoop
from lcm_core.settings import load_settings
from worker_controller.application.autoscaler import PoolAutoscaler
from worker_controller.application.discovery import Discovery
from worker_controller.application.fleet_cycle import FleetCycle
from worker_controller.application.fleet_settings import FleetSettingsReader
from worker_controller.application.metrics import CycleOutcome, MetricsCollector
from worker_controller.application.reconciler import WorkerReconciler
from worker_controller.infrastructure.aws import AwsFleet
from worker_controller.infrastructure.control_plane import ControlPlaneGateway
from worker_controller.settings import WorkerControllerSettings

SERVICE = "worker-controller"


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
    cml.change_guard = host.fence.check  # no CML change leaves a replica that no longer leads
    fleet = FleetSettingsReader(gateway, settings)
    discovery = Discovery(aws, gateway, fleet)
    collector = MetricsCollector(aws, cml, gateway, cml_url_template=settings.cml_url_template)
    reconciler = WorkerReconciler(
        aws, cml, gateway, host.fence, cml_url_template=settings.cml_url_template,
        resync_interval=settings.reconcile_interval_seconds,
        ec2_timeout_seconds=settings.ec2_timeout_minutes * 60,
        cml_boot_timeout_seconds=settings.cml_boot_timeout_minutes * 60,
        license_token=settings.cml_license_token.get_secret_value() if settings.cml_license_token else None,
        refresh=lambda worker: collector.run_once(only=[worker]),
        deregister_timeout_seconds=settings.deregister_timeout_minutes * 60,
        relicense_on_resume=settings.relicense_on_resume,
    )

    cycle = FleetCycle(discovery, collector)
    metrics_loop = PeriodicLoop("metrics", lambda: _collect(cycle, metrics_loop.stats),
                                interval=lambda: fleet.current.metrics_interval)
    discovery_loop = PeriodicLoop("discovery", lambda: _discover(cycle, discovery_loop.stats, metrics_loop),
                                  interval=lambda: fleet.current.discovery_interval)
    reconcile_loop = ReconcileLoop("reconcile", reconciler.reconcile, reconciler.list_keys,
                                   resync_interval=settings.reconcile_interval_seconds,
                                   concurrency=settings.reconcile_concurrency)
    watch_loop = KeyWatchLoop(settings, "workers", reconcile_loop, reconciler.list_keys)
    autoscaler = PoolAutoscaler(gateway, host.fence, launch_failure_limit=settings.launch_failure_limit)
    autoscaler_loop = ReconcileLoop("autoscaler", autoscaler.reconcile, autoscaler.list_keys,
                                    resync_interval=settings.autoscaler_interval_seconds, concurrency=4)
    autoscaler_loop.stats.extra = autoscaler.decisions  # decisions recorded, by action (live)
    pool_watch = KeyWatchLoop(settings, "pools", autoscaler_loop, autoscaler.list_keys, name="pools-watch",
                              stats=LoopStats(name="pools-watch", interval_seconds=0))
    host.loops = [discovery_loop, metrics_loop, reconcile_loop, watch_loop, autoscaler_loop, pool_watch]
    return host


def _metrics_figures(outcome: CycleOutcome) -> dict[str, Any]:
    return {"workers": outcome.workers, "reported": outcome.reported, "cml_failures": outcome.cml_failures,
            "workers_by_health": dict(outcome.by_health), "auto_paused": len(outcome.auto_paused)}


async def _discover(cycle: FleetCycle, stats: LoopStats, metrics_loop: PeriodicLoop) -> None:
    started = time.monotonic()
    run = await cycle.discover()
    found = run.discovery
    stats.extra = {"instances_found": found.found, "created": found.created, "orphans": len(found.orphans),
                   "failed_regions": sorted(found.failed_regions)}
    if run.metrics is not None:
        # The running fleet has just been measured: that was the metrics loop's run (its figures go
        # there), and its next one is a full interval away rather than a second measurement moments later.
        metrics_loop.stats.extra = _metrics_figures(run.metrics)
        metrics_loop.ran_elsewhere(started)


async def _collect(cycle: FleetCycle, stats: LoopStats) -> None:
    outcome = await cycle.measure()
    if outcome is not None:
        stats.extra = _metrics_figures(outcome)


def run() -> None:
    """Console entry point: `lcm-worker-controller`."""
    settings = load_settings(WorkerControllerSettings)
    run_controller(SERVICE, settings, build_host(settings), settings.port)


if __name__ == "__main__":
    run()
