"""Entry point of the lablet-controller: wire the adapters and loops, elect a leader through etcd, serve
health and status. Only the leader runs the loops (scheduling pass, session reconcile, etcd watch, lab
discovery)."""

from __future__ import annotations

from lablet_controller.application.lab_discovery import LabDiscovery
from lablet_controller.application.observer import LabObserver
from lablet_controller.application.reconciler import SessionReconciler
from lablet_controller.application.scheduling import SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lablet_controller.infrastructure.cml_labs import CmlLabs, WorkerHosts
from lablet_controller.infrastructure.control_plane import LabletGateway
from lablet_controller.settings import LabletControllerSettings
from lcm_core.controller_host import ControllerHost, run_controller
from lcm_core.leader import PeriodicLoop, ReconcileLoop, ReconcileResult
from lcm_core.leader.watch import KeyWatchLoop
from lcm_core.settings import load_settings

SERVICE = "lablet-controller"
#: A session's keys that the CPA writes: its state, and an operator's request to observe the lab now.
WATCHED_KEYS = frozenset({"state", "observe_resources"})


def build_host(settings: LabletControllerSettings) -> ControllerHost:
    host = ControllerHost(SERVICE, settings, lease_ttl_seconds=settings.leader_lease_ttl)
    gateway = LabletGateway(host.control_plane)
    # Every change to CML passes the leader fence right before it is sent (a deposed leader sends nothing).
    cml = settings.cml_client()
    cml.change_guard = host.fence.check  # no CML change leaves a replica that no longer leads
    labs = CmlLabs(cml, WorkerHosts(gateway.worker, settings.cml_url_template), fence=host.fence)
    observer = LabObserver(gateway, labs)
    scheduler = Scheduler(settings.scheduling_strategy.value, require_license=settings.require_licensed_for_cml)

    reconcile_loop: ReconcileLoop
    scheduling = SchedulingPass(gateway, scheduler, port_capacity=settings.ports_per_worker,
                                schedule_ahead_seconds=settings.schedule_ahead_seconds,
                                on_scheduled=lambda session_id: reconcile_loop.enqueue(session_id))

    async def schedule() -> None:
        outcome = await scheduling.run_once()
        scheduling_loop.stats.extra = {"strategy": scheduler.strategy, **outcome.stats()}

    scheduling_loop = PeriodicLoop("scheduling", schedule, interval=settings.scheduling_interval_seconds)
    reconciler = SessionReconciler(
        gateway, labs, observer, boot_timeout_seconds=settings.boot_timeout_seconds,
        boot_poll_seconds=settings.boot_poll_seconds, max_attempts=settings.max_attempts,
        resync_interval=settings.reconcile_interval_seconds, fence=host.fence,
        trigger_scheduling=scheduling_loop.trigger)

    async def reconcile(session_id: str) -> ReconcileResult:
        try:
            return await reconciler.reconcile(session_id)
        finally:
            reconcile_loop.stats.extra = {**reported_settings, "sessions_by_status": reconciler.by_status,
                                          "actions": dict(reconciler.actions), "observations": observer.observed,
                                          "observation_failures": observer.failed, "queue_depth": reconcile_loop.depth}

    reconcile_loop = ReconcileLoop("sessions", reconcile, reconciler.list_keys,
                                   resync_interval=settings.reconcile_interval_seconds,
                                   concurrency=settings.reconcile_concurrency)
    # The CPA counts sessions left instantiating past this (`lcm_lablet_sessions_past_boot_timeout`): it is
    # reported from the start, before any session was reconciled.
    reported_settings = {"boot_timeout_seconds": settings.boot_timeout_seconds}
    reconcile_loop.stats.extra = dict(reported_settings)
    discovery = LabDiscovery(gateway, labs, cml_url_template=settings.cml_url_template, fence=host.fence)

    async def discover() -> None:
        discovery_loop.stats.extra = (await discovery.run_once()).stats()

    discovery_loop = PeriodicLoop("lab-discovery", discover, interval=settings.discovery_interval_seconds)
    watch_loop = KeyWatchLoop(settings, "sessions", reconcile_loop, reconciler.list_keys, WATCHED_KEYS)
    host.loops = [scheduling_loop, reconcile_loop, watch_loop,
                  discovery_loop]
    return host


def run() -> None:
    """Console entry point: `lcm-lablet-controller`."""
    settings = load_settings(LabletControllerSettings)
    run_controller(SERVICE, settings, build_host(settings), settings.port)


if __name__ == "__main__":
    run()
