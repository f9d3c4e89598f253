"""Entry point of the lablet-controller: wire the adapters and loops, elect a leader through etcd, serve
health and status. Only the leader runs the loops (scheduling pass, session reconcile, etcd watch, lab
discovery)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aetcd

from lablet_controller.application.lab_discovery import LabDiscovery
from lablet_controller.application.observer import LabObserver
from lablet_controller.application.reconciler import SessionReconciler
from lablet_controller.application.scheduling import SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lablet_controller.infrastructure.cml_labs import CmlLabs, WorkerHosts
from lablet_controller.infrastructure.control_plane import LabletGateway
from lablet_controller.settings import LabletControllerSettings
from lcm_core.controller_host import ControllerHost, run_controller
from lcm_core.leader import LoopStats, PeriodicLoop, ReconcileLoop, ReconcileResult
from lcm_core.leader.watch import watch_prefix
from lcm_core.settings import load_settings

SERVICE = "lablet-controller"
WATCHED_KEYS = frozenset({"state", "observe_resources"})


@dataclass
class SessionWatch:
    """The etcd watch on `{prefix}/sessions/`: a session's `state` or `observe_resources` key changed →
    reconcile that session now (the reconciler reads the session itself: level-triggered)."""

    settings: LabletControllerSettings
    reconcile: ReconcileLoop
    reconciler: SessionReconciler
    name: str = "etcd-watch"
    stats: LoopStats = field(default_factory=lambda: LoopStats(name="etcd-watch", interval_seconds=0))

    def _on_key(self, key: str) -> None:
        parts = key.rsplit("/", 2)
        if len(parts) == 3 and parts[2] in WATCHED_KEYS:
            self.stats.runs += 1
            self.stats.successes += 1
            self.reconcile.enqueue(parts[1])

    def _on_gap(self) -> None:
        """Changes may have been missed while the watch was down: re-list every active session."""
        async def relist() -> None:
            for session_id in await self.reconciler.list_keys():
                self.reconcile.enqueue(session_id)

        self._relist = asyncio.get_running_loop().create_task(relist())

    async def run(self) -> None:
        s = self.settings
        self.stats.running = True
        try:
            await watch_prefix(
                lambda: aetcd.Client(host=s.etcd_host, port=s.etcd_port, timeout=int(s.etcd_timeout_seconds)),
                f"{s.etcd_prefix.rstrip('/')}/sessions/", self._on_key, self._on_gap)
        finally:
            self.stats.running = False


def build_host(settings: LabletControllerSettings) -> ControllerHost:
    host = ControllerHost(SERVICE, settings, lease_ttl_seconds=settings.leader_lease_ttl)
    gateway = LabletGateway(host.control_plane)
    labs = CmlLabs(settings.cml_client(), WorkerHosts(gateway.worker, settings.cml_url_template))
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
        resync_interval=settings.reconcile_interval_seconds, trigger_scheduling=scheduling_loop.trigger)

    async def reconcile(session_id: str) -> ReconcileResult:
        try:
            return await reconciler.reconcile(session_id)
        finally:
            reconcile_loop.stats.extra = {"sessions_by_status": reconciler.by_status,
                                          "actions": dict(reconciler.actions), "observations": observer.observed,
                                          "observation_failures": observer.failed, "queue_depth": reconcile_loop.depth}

    reconcile_loop = ReconcileLoop("sessions", reconcile, reconciler.list_keys,
                                   resync_interval=settings.reconcile_interval_seconds,
                                   concurrency=settings.reconcile_concurrency)
    discovery = LabDiscovery(gateway, labs, cml_url_template=settings.cml_url_template)

    async def discover() -> None:
        discovery_loop.stats.extra = (await discovery.run_once()).stats()

    discovery_loop = PeriodicLoop("lab-discovery", discover, interval=settings.discovery_interval_seconds)
    host.loops = [scheduling_loop, reconcile_loop, SessionWatch(settings, reconcile_loop, reconciler),
                  discovery_loop]
    return host


def run() -> None:
    """Console entry point: `lcm-lablet-controller`."""
    settings = load_settings(LabletControllerSettings)
    run_controller(SERVICE, settings, build_host(settings), settings.port)


if __name__ == "__main__":
    run()
