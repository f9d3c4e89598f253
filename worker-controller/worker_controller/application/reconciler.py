"""WorkerReconciler: level-triggered, one worker at a time (never two reconciles of one worker at once).

Given the worker as the control plane has it (desired) and the instance as EC2 reports it (observed):
report the observed state, drive EC2 toward `desired_status`, follow CML readiness, carry out licence
requests and refreshes. Triggers: the etcd keys the control plane writes, a periodic resync (which also
prefetches every instance per region in one batched call), and requeues while a transition is under way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from lcm_core.cml import CmlClient, CmlError
from lcm_core.domain.enums import DesiredStatus, ServiceStatus, WorkerStatus, status_from_ec2
from lcm_core.errors import NotFoundError
from lcm_core.leader.loops import ReconcileResult
from worker_controller.application.discovery import to_discovered
from worker_controller.domain.worker_view import Ec2Action, WorkerView, action_toward
from worker_controller.infrastructure.aws import AwsFleet, Ec2Instance
from worker_controller.infrastructure.control_plane import ControlPlaneGateway

logger = logging.getLogger(__name__)

TRANSITIONAL = frozenset({"pending", "stopping", "shutting-down"})
WORKER_ID_TAG = "lcm:worker-id"
"""Tag on instances LCM launched, so that discovery attaches them to their worker instead of importing them."""


class WorkerReconciler:
    def __init__(self, aws: AwsFleet, cml: CmlClient, gateway: ControlPlaneGateway, *, cml_url_template: str,
                 resync_interval: float, ec2_timeout_seconds: float, cml_boot_timeout_seconds: float,
                 license_token: str | None, refresh: Callable[[WorkerView], Awaitable[object]]) -> None:
        self._aws = aws
        self._cml = cml
        self._gateway = gateway
        self._template = cml_url_template
        self._resync_interval = resync_interval
        self._ec2_timeout = ec2_timeout_seconds
        self._boot_timeout = cml_boot_timeout_seconds
        self._license_token = license_token
        self._refresh = refresh
        self._observed: dict[str, tuple[float, Ec2Instance | None]] = {}
        self._acted_at: dict[str, float] = {}
        self._running_since: dict[str, float] = {}
        self._refreshed: dict[str, datetime] = {}
        self._license_requested: dict[str, str] = {}
        self.actions: dict[str, int] = {}

    # ------------------------------------------------------------------ resync

    async def list_keys(self) -> list[str]:
        """Every live worker, with its instance prefetched per region (one batched call per region)."""
        workers = await self._gateway.workers()
        by_region: dict[str, list[str]] = {}
        for worker in workers:
            if worker.aws_instance_id is not None:
                by_region.setdefault(worker.aws_region, []).append(worker.aws_instance_id)
        now = time.monotonic()
        for region, ids in by_region.items():
            found = await self._aws.instances_by_id(region, ids)
            for iid in ids:
                self._observed[iid] = (now, found.get(iid))
        return [w.id for w in workers]

    async def _instance(self, worker: WorkerView) -> Ec2Instance | None:
        fetched_at, instance = self._observed.get(worker.aws_instance_id, (float("-inf"), None))
        acted = self._acted_at.get(worker.id, float("-inf"))
        if time.monotonic() - fetched_at < self._resync_interval / 2 and fetched_at > acted:
            return instance
        found = await self._aws.instances_by_id(worker.aws_region, [worker.aws_instance_id])
        instance = found.get(worker.aws_instance_id)
        self._observed[worker.aws_instance_id] = (time.monotonic(), instance)
        return instance

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, worker_id: str) -> ReconcileResult:
        try:
            worker = await self._gateway.worker(worker_id)
        except NotFoundError:
            return ReconcileResult.done()
        if worker.status is WorkerStatus.TERMINATED:
            return ReconcileResult.done()
        if worker.aws_instance_id is None:
            return await self._provision(worker)
        instance = await self._instance(worker)
        state = (instance.state or "unknown") if instance else "terminated"
        worker = await self._sync_status(worker, instance, state)
        action = action_toward(worker.desired_status, state)
        if action is not None:
            await self._act(worker, action)
            return ReconcileResult.requeue(3.0)
        if state in TRANSITIONAL:
            self._check_timeout(worker, state)
            return ReconcileResult.requeue(3.0)
        if worker.status is not WorkerStatus.RUNNING:
            self._running_since.pop(worker.id, None)
            return ReconcileResult.done()
        requeue = await self._follow_cml_readiness(worker)
        if worker.license.pending_action and worker.service_status is ServiceStatus.AVAILABLE:
            licensing = await self._license(worker)
            if licensing.requeue_after is not None:
                requeue = licensing
        if worker.refresh_requested_at and worker.refresh_requested_at != self._refreshed.get(worker.id):
            self._refreshed[worker.id] = worker.refresh_requested_at
            await self._refresh(worker)
        return requeue

    async def _provision(self, worker: WorkerView) -> ReconcileResult:
        """A worker created from a template: launch its instance (idempotent through the client token) and
        report it; a worker cancelled before it had an instance is simply terminated."""
        if worker.desired_status is DesiredStatus.TERMINATED:
            await self._gateway.report_status(worker.id, {"ec2_state": "terminated",
                                                          "reason": "cancelled before an instance was launched"})
            return ReconcileResult.done()
        if not worker.template_name:
            logger.error("worker %s has neither an instance nor a template", worker.id)
            return ReconcileResult.done()
        template = await self._gateway.template(worker.template_name)
        instance = await self._aws.run_from_template(
            worker.aws_region, template, name=worker.name, client_token=worker.id,
            tags={WORKER_ID_TAG: worker.id, "lcm:template": worker.template_name})
        logger.info("worker %s (%s): launched instance %s from template %s", worker.name, worker.id,
                    instance.instance_id, worker.template_name)
        self.actions["provision"] = self.actions.get("provision", 0) + 1
        await self._gateway.provisioned(worker.id, to_discovered(instance, {}))
        self._acted_at[worker.id] = time.monotonic()
        return ReconcileResult.requeue(3.0)

    async def _sync_status(self, worker: WorkerView, instance: Ec2Instance | None, state: str) -> WorkerView:
        addresses_changed = instance is not None and (
            instance.private_ip != worker.private_ip or instance.public_ip != worker.public_ip)
        if status_from_ec2(state) is worker.status and not addresses_changed:
            return worker
        body: dict[str, object] = {"ec2_state": state}
        if instance is None:
            body["reason"] = "instance no longer exists in EC2"
        else:
            body.update(public_ip=instance.public_ip, private_ip=instance.private_ip)
        return await self._gateway.report_status(worker.id, body)

    async def _act(self, worker: WorkerView, action: Ec2Action) -> None:
        call = {Ec2Action.START: self._aws.start, Ec2Action.STOP: self._aws.stop,
                Ec2Action.TERMINATE: self._aws.terminate}[action]
        logger.info("worker %s (%s): %s instance %s (desired %s)", worker.name, worker.id, action.value,
                    worker.aws_instance_id, worker.desired_status)
        await call(worker.aws_region, [worker.aws_instance_id])
        self._acted_at[worker.id] = time.monotonic()
        self.actions[action.value] = self.actions.get(action.value, 0) + 1

    def _check_timeout(self, worker: WorkerView, state: str) -> None:
        acted = self._acted_at.get(worker.id)
        if acted is not None and time.monotonic() - acted > self._ec2_timeout:
            logger.error("worker %s: EC2 has been %s for more than %.0f min", worker.id, state, self._ec2_timeout / 60)

    async def _follow_cml_readiness(self, worker: WorkerView) -> ReconcileResult:
        """running → CML `system_information.ready` → service `available` (or `error` after the boot timeout)."""
        if worker.service_status is ServiceStatus.AVAILABLE:
            return ReconcileResult.done()
        since = self._running_since.setdefault(worker.id, time.monotonic())
        host = worker.cml_url(self._template)
        ready = False
        if host is not None:
            try:
                ready = bool((await self._cml.system_information(host)).ready)
            except CmlError as exc:
                logger.info("worker %s: CML not answering yet (%s)", worker.id, exc.message)
        if ready:
            status = ServiceStatus.AVAILABLE
        elif time.monotonic() - since > self._boot_timeout:
            status = ServiceStatus.ERROR
        else:
            status = ServiceStatus.STARTING
        if status is not worker.service_status:
            await self._gateway.report_status(worker.id, {"ec2_state": "running", "service_status": status.value})
        return ReconcileResult.done() if ready else ReconcileResult.requeue(5.0)

    async def _license(self, worker: WorkerView) -> ReconcileResult:
        """Carry out a licence request: ask CML once, then poll `GET /licensing` until it completes
        (registration is asynchronous in CML), reporting progress to the control plane."""
        host = worker.cml_url(self._template)
        action = worker.license.pending_action
        if host is None or action not in ("register", "deregister"):
            return ReconcileResult.done()
        try:
            if self._license_requested.get(worker.id) != action:
                if action == "register":
                    if not self._license_token:
                        await self._gateway.license_progress(worker.id, {
                            "status": "unregistered", "finished": True,
                            "error": "no CML_LICENSE_TOKEN configured on the worker-controller"})
                        return ReconcileResult.done()
                    await self._cml.register_license(host, self._license_token)
                else:
                    await self._cml.deregister_license(host)
                self._license_requested[worker.id] = action
            info = await self._cml.licensing(host)
        except CmlError as exc:
            self._license_requested.pop(worker.id, None)
            await self._gateway.license_progress(worker.id, {
                "finished": True, "error": exc.message[:1000],
                "status": "invalid" if action == "register" else "registered"})
            return ReconcileResult.done()
        registered = (info.registration_status or "").upper() == "COMPLETED"
        finished = registered if action == "register" else not registered
        details = {"registration_status": info.registration_status,
                   "authorization_status": info.authorization_status, "product": info.product_license,
                   "is_enterprise": info.is_enterprise, "node_limit": info.node_limit}
        status = ("registered" if action == "register" else "unregistered") if finished else (
            "registering" if action == "register" else "deregistering")
        await self._gateway.license_progress(worker.id, {
            "status": status, "finished": finished, "details": {k: v for k, v in details.items() if v is not None}})
        if finished:
            self._license_requested.pop(worker.id, None)
            logger.info("worker %s: licence %s completed", worker.id, action)
            return ReconcileResult.done()
        return ReconcileResult.requeue(5.0)
