"""WorkerReconciler: level-triggered, one worker at a time (never two reconciles of one worker at once).

Given the worker as the control plane has it (desired) and the instance as EC2 reports it (observed):
report the observed state, drive EC2 toward `desired_status`, follow CML readiness, carry out licence
requests and refreshes. Triggers: the etcd keys the control plane writes, a periodic resync (which also
prefetches every instance per region in one batched call), and requeues while a transition is under way.

Three rules keep it safe to hand the fleet to (docs/worker-controller.md, "Safety"):
- an EC2 observation is used, for a decision or a report, only if it was made after the worker's last status
  and desired-status change, and every report says when it was observed;
- an instance goes down only when no session holds it and, if it is licensed, after its licence is released;
- every call that changes EC2 or CML passes the fence (the lease still has a margin), and a decision older
  than that margin is re-checked against the desired state before it is carried out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.trace import Span

from lcm_core import tracing
from lcm_core.cml import CmlClient, CmlError
from lcm_core.domain.enums import DesiredStatus, ServiceStatus, WorkerStatus, status_from_ec2
from lcm_core.errors import NotFoundError
from lcm_core.leader.fence import Fence
from lcm_core.leader.loops import ReconcileResult
from worker_controller.application.licensing import Licensing
from worker_controller.application.ports import InstanceControl, WorkerGateway
from worker_controller.application.provisioning import Provisioner
from worker_controller.domain.ec2 import Ec2Instance
from worker_controller.domain.worker_view import (
    Ec2Action,
    ShutdownGate,
    WorkerView,
    action_toward,
    before_shutdown,
)

logger = logging.getLogger(__name__)

TRANSITIONAL = frozenset({"pending", "stopping", "shutting-down"})


@dataclass(frozen=True, slots=True)
class Observation:
    """One read of an instance: what EC2 said and when it was asked (wall clock, compared with the control
    plane's change times; monotonic, for the cache's age)."""

    instance: Ec2Instance | None
    asked_at: datetime
    asked_mono: float

    @property
    def state(self) -> str:
        return (self.instance.state or "unknown") if self.instance else "terminated"


class WorkerReconciler:
    def __init__(self, aws: InstanceControl, cml: CmlClient, gateway: WorkerGateway, fence: Fence, *,
                 cml_url_template: str, resync_interval: float, ec2_timeout_seconds: float,
                 cml_boot_timeout_seconds: float, license_token: str | None,
                 refresh: Callable[[WorkerView], Awaitable[object]], deregister_timeout_seconds: float = 600.0,
                 relicense_on_resume: bool = True, licensing: Licensing | None = None) -> None:
        self._aws = aws
        self._cml = cml
        self._gateway = gateway
        self._fence = fence
        self._template = cml_url_template
        self._resync_interval = resync_interval
        self._ec2_timeout = ec2_timeout_seconds
        self._boot_timeout = cml_boot_timeout_seconds
        self._deregister_timeout = deregister_timeout_seconds
        self._relicense = relicense_on_resume
        self._refresh = refresh
        self.licensing = licensing or Licensing(cml, gateway, fence, license_token=license_token)
        self.provisioner = Provisioner(aws, gateway, fence)
        self._observed: dict[str, Observation] = {}
        self._acted_at: dict[str, float] = {}
        self._running_since: dict[str, float] = {}
        self._refreshed: dict[str, datetime] = {}
        self.actions: dict[str, int] = {}

    # ------------------------------------------------------------------ resync

    async def list_keys(self) -> list[str]:
        """Every live worker, with its instance prefetched per region (one batched call per region)."""
        workers = await self._gateway.workers()
        by_region: dict[str, list[str]] = {}
        for worker in workers:
            if worker.aws_instance_id is not None:
                by_region.setdefault(worker.aws_region, []).append(worker.aws_instance_id)
        for region, ids in by_region.items():
            asked_at, asked_mono = datetime.now(UTC), time.monotonic()
            found = await self._aws.instances_by_id(region, ids)
            for iid in ids:
                self._observed[iid] = Observation(found.get(iid), asked_at, asked_mono)
        return [w.id for w in workers]

    async def _observe(self, worker: WorkerView) -> Observation:
        """The instance as EC2 has it: a prefetched read if it is recent, later than this controller's last
        action on the worker and later than the worker's last status or desired change; else a fresh read."""
        assert worker.aws_instance_id is not None
        cached = self._observed.get(worker.aws_instance_id)
        changed = worker.last_change()
        if (cached is not None and time.monotonic() - cached.asked_mono < self._resync_interval / 2
                and cached.asked_mono > self._acted_at.get(worker.id, float("-inf"))
                and (changed is None or cached.asked_at > changed)):
            return cached
        asked_at, asked_mono = datetime.now(UTC), time.monotonic()
        found = await self._aws.instances_by_id(worker.aws_region, [worker.aws_instance_id])
        observation = self._observed[worker.aws_instance_id] = Observation(
            found.get(worker.aws_instance_id), asked_at, asked_mono)
        return observation

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, worker_id: str) -> ReconcileResult:
        """One reconcile of a worker, one trace (`worker.reconcile`, docs/tracing.md)."""
        with tracing.tracer().start_as_current_span("worker.reconcile") as span:
            span.set_attribute(tracing.WORKER_ID, worker_id)
            return await self._reconcile(worker_id, span)

    async def _reconcile(self, worker_id: str, span: Span) -> ReconcileResult:
        decided = time.monotonic()
        try:
            worker = await self._gateway.worker(worker_id)
        except NotFoundError:
            return ReconcileResult.done()
        span.set_attributes({tracing.CLOUD_PROVIDER: "aws", tracing.CLOUD_REGION: worker.aws_region,
                             "lcm.worker.status": worker.status.value})
        if worker.aws_instance_id is not None:
            span.set_attribute(tracing.INSTANCE_ID, worker.aws_instance_id)
        if worker.status is WorkerStatus.TERMINATED:
            self.licensing.forget(worker.id)
            return ReconcileResult.done()
        instance_id = worker.aws_instance_id
        if instance_id is None:
            return await self._provision(worker)
        seen = await self._observe(worker)
        worker = await self._sync_status(worker, seen)
        action = action_toward(worker.desired_status, seen.state)
        if action in (Ec2Action.STOP, Ec2Action.TERMINATE):
            ready = await self._ready_to_go_down(worker, seen)
            if ready is not None:
                return ready
        if action is not None:
            return await self._act(worker, instance_id, action, seen, decided)
        if seen.state in TRANSITIONAL:
            self._check_timeout(worker, seen.state)
            return ReconcileResult.requeue(3.0)
        if worker.status not in (WorkerStatus.RUNNING, WorkerStatus.DRAINING):
            self._running_since.pop(worker.id, None)
            return ReconcileResult.done()
        requeue = await self._follow_cml_readiness(worker, seen)
        host = worker.cml_url(self._template)
        if worker.license.pending_action and worker.service_status is ServiceStatus.AVAILABLE and host:
            licensing = await self.licensing.carry_out(worker, host)
            if licensing.requeue_after is not None:
                requeue = licensing
        if worker.refresh_requested_at and worker.refresh_requested_at != self._refreshed.get(worker.id):
            self._refreshed[worker.id] = worker.refresh_requested_at
            await self._refresh(worker)
        return requeue

    async def _provision(self, worker: WorkerView) -> ReconcileResult:
        """A worker created from a template: launch its instance (at most one: see `provisioning`) and report
        it; a worker cancelled before it had an instance is simply terminated."""
        if worker.desired_status is DesiredStatus.TERMINATED:
            await self._gateway.report_status(worker.id, {"ec2_state": "terminated",
                                                          "reason": "cancelled before an instance was launched"})
            return ReconcileResult.done()
        if not worker.template_name:
            logger.error("worker %s has neither an instance nor a template", worker.id)
            return ReconcileResult.done()
        await self.provisioner.provision(worker)
        self.actions["provision"] = self.actions.get("provision", 0) + 1
        self._acted_at[worker.id] = time.monotonic()
        return ReconcileResult.requeue(3.0)

    async def _sync_status(self, worker: WorkerView, seen: Observation) -> WorkerView:
        instance = seen.instance
        addresses_changed = instance is not None and (
            instance.private_ip != worker.private_ip or instance.public_ip != worker.public_ip)
        observed = status_from_ec2(seen.state)
        if worker.status is WorkerStatus.DRAINING and observed is WorkerStatus.RUNNING:
            observed = WorkerStatus.DRAINING  # the control plane's view of a running instance being drained
        if observed is worker.status and not addresses_changed:
            return worker
        body: dict[str, object] = {"ec2_state": seen.state, "observed_at": seen.asked_at.isoformat()}
        if instance is None:
            body["reason"] = "instance no longer exists in EC2"
        else:
            body.update(public_ip=instance.public_ip, private_ip=instance.private_ip)
        return await self._gateway.report_status(worker.id, body)

    async def _ready_to_go_down(self, worker: WorkerView, seen: Observation) -> ReconcileResult | None:
        """None when the instance may be stopped or terminated now; else what to do first (and when to look
        again): wait for sessions to be drained, or release the licence."""
        changed = worker.desired_changed_at or datetime.now(UTC)
        waited = (datetime.now(UTC) - changed).total_seconds()
        step = before_shutdown(worker, seen.state, waited, self._deregister_timeout)
        if step.gate is ShutdownGate.REFUSE:
            logger.error("worker %s: not going down: %s", worker.id, step.reason)
            return ReconcileResult.requeue(30.0)
        if step.gate is ShutdownGate.WAIT:
            return ReconcileResult.requeue(10.0)
        host = worker.cml_url(self._template)
        if step.gate is ShutdownGate.DEREGISTER and host is not None:
            restore = self._relicense and worker.desired_status is DesiredStatus.STOPPED
            return await self.licensing.release(worker, host, restore_on_start=restore)
        if step.licence_stranded:
            logger.error("worker %s goes down still licensed: %s", worker.id, step.reason)
            await self.licensing.report_stranded(worker, step.reason)
        return None

    async def _act(self, worker: WorkerView, instance_id: str, action: Ec2Action, seen: Observation,
                   decided: float) -> ReconcileResult:
        """Carry out an EC2 action on the instance observed. A decision older than the fence margin is checked
        again against the desired state as the control plane has it now; then the fence is passed right before
        the call."""
        if time.monotonic() - decided > self._fence.margin_seconds:
            fresh = await self._gateway.worker(worker.id)
            going_down = action in (Ec2Action.STOP, Ec2Action.TERMINATE)
            if action_toward(fresh.desired_status, seen.state) is not action or (going_down and fresh.sessions):
                logger.info("worker %s: %s no longer wanted (desired %s now); deciding again", worker.id,
                            action.value, fresh.desired_status)
                return ReconcileResult.requeue(0.1)
        call = {Ec2Action.START: self._aws.start, Ec2Action.STOP: self._aws.stop,
                Ec2Action.TERMINATE: self._aws.terminate}[action]
        what = f"{action.value} instance {instance_id} of worker {worker.id}"
        self._fence.check(what)
        logger.info("worker %s (%s): %s instance %s (desired %s)", worker.name, worker.id, action.value,
                    instance_id, worker.desired_status)
        # Checked again in the AWS thread as the request leaves: it may have waited there for a free thread.
        await call(worker.aws_region, [instance_id], guard=lambda: self._fence.check(what))
        self._acted_at[worker.id] = time.monotonic()
        self.actions[action.value] = self.actions.get(action.value, 0) + 1
        return ReconcileResult.requeue(3.0)

    def _check_timeout(self, worker: WorkerView, state: str) -> None:
        acted = self._acted_at.get(worker.id)
        if acted is not None and time.monotonic() - acted > self._ec2_timeout:
            logger.error("worker %s: EC2 has been %s for more than %.0f min", worker.id, state, self._ec2_timeout / 60)

    async def _follow_cml_readiness(self, worker: WorkerView, seen: Observation) -> ReconcileResult:
        """running → CML `system_information.ready` → service `available` (or `error` after the boot timeout)."""
        if worker.service_status is ServiceStatus.AVAILABLE:
            return ReconcileResult.done()
        since = self._running_since.setdefault(worker.id, time.monotonic())
        host = worker.cml_url(self._template)
        ready = False
        asked_at = datetime.now(UTC)
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
            # An instance whose CML answered was running when it was asked: that dates the report; otherwise
            # only the EC2 read does.
            observed = asked_at if ready else seen.asked_at
            await self._gateway.report_status(worker.id, {"ec2_state": "running", "service_status": status.value,
                                                          "observed_at": observed.isoformat()})
        return ReconcileResult.done() if ready else ReconcileResult.requeue(5.0)
