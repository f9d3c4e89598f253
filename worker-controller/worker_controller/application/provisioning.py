"""Launching the instance of a worker created from a template, so that one worker never gets two instances.

RunInstances can fail after EC2 has created the instance (a timeout, a throttled retry, an error on the way
back). So EC2 is asked before every launch, by the worker's id tag, whether the instance already exists; and
after a failed launch it is asked again before the error is let through (the reconcile is then retried with
backoff, which starts by asking once more). If a duplicate does exist, the oldest instance is kept and the
others are handed to the control plane's import, which shows each as a worker of its own flagged as a
duplicate, on the worker and in an event, so that it is not left billing unseen.

A launch that failed and launched nothing (no AMI matches the template, no capacity for the instance type, a
call AWS refuses) is reported to the control plane, which counts the attempts on the worker (`launch_failure`,
cleared when the instance is attached): operators see it, and the worker's pool fails while it keeps failing.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from lcm_core.domain.worker_launch import LAUNCH_ERROR_MAX_LENGTH, LaunchFailureReport
from lcm_core.errors import LcmError, UnavailableError
from lcm_core.leader.fence import Fence
from lcm_core.logging import redact
from worker_controller.application.discovery import SOURCE, to_discovered
from worker_controller.application.ports import InstanceLauncher, ProvisioningReports
from worker_controller.domain.ec2 import Ec2Instance
from worker_controller.domain.worker_view import WorkerView

logger = logging.getLogger(__name__)

WORKER_ID_TAG = "lcm:worker-id"
"""Tag on instances LCM launched, so that discovery attaches them to their worker instead of importing them."""

_EPOCH = datetime.min.replace(tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def keep_oldest(instances: list[Ec2Instance]) -> tuple[Ec2Instance, list[Ec2Instance]]:
    """The instance a worker keeps (launched first; ties by id) and the duplicates."""
    ordered = sorted(instances, key=lambda i: (i.launch_time or _EPOCH, i.instance_id))
    return ordered[0], ordered[1:]


class Provisioner:
    def __init__(self, aws: InstanceLauncher, gateway: ProvisioningReports, fence: Fence) -> None:
        self._aws = aws
        self._gateway = gateway
        self._fence = fence
        self.launched = 0
        self.duplicates = 0
        self.failed = 0

    async def provision(self, worker: WorkerView) -> WorkerView:
        """The worker with its instance attached: the one already launched for it, or a new one."""
        if worker.template_name is None:
            raise ValueError(f"worker {worker.id} has no template to launch from")
        found = await self._aws.instances_by_tag(worker.aws_region, WORKER_ID_TAG, worker.id)
        if not found:
            template = await self._gateway.template(worker.template_name)
            what = f"launch an instance for worker {worker.id}"
            self._fence.check(what)
            attempted = datetime.now(UTC)
            try:
                found = [await self._aws.run_from_template(
                    worker.aws_region, template, name=worker.name, client_token=worker.id,
                    tags={WORKER_ID_TAG: worker.id, "lcm:template": worker.template_name},
                    guard=lambda: self._fence.check(what))]
            except UnavailableError as exc:
                found = await self._aws.instances_by_tag(worker.aws_region, WORKER_ID_TAG, worker.id)
                if not found:
                    await self._report_failure(worker, exc, attempted)
                    raise
                logger.warning("worker %s: RunInstances failed (%s) but launched an instance", worker.id, exc.message)
            else:
                self.launched += 1
                logger.info("worker %s (%s): launched instance %s from template %s", worker.name, worker.id,
                            found[0].instance_id, worker.template_name)
        kept, extra = keep_oldest(found)
        attached = await self._gateway.provisioned(worker.id, to_discovered(kept, {}))
        if extra:
            self.duplicates += len(extra)
            logger.error("worker %s: %d more instance(s) were launched for it (%s); keeping %s, reporting the rest",
                         worker.id, len(extra), ", ".join(i.instance_id for i in extra), kept.instance_id)
            await self._gateway.bulk_import([to_discovered(i, {}) for i in extra], SOURCE)
        return attached

    async def _report_failure(self, worker: WorkerView, exc: UnavailableError, attempted: datetime) -> None:
        """Tell the control plane that this attempt launched nothing (secrets masked, the message cut). A report
        that does not get through is only logged: the attempt's own error is what the retry acts on."""
        self.failed += 1
        # Control characters are not stored (an AWS message is not ours to trust); an empty one still says what.
        error = _CONTROL.sub(" ", redact(exc.message)).strip()[:LAUNCH_ERROR_MAX_LENGTH] or "the launch failed"
        logger.warning("worker %s: launch failed: %s", worker.id, error)
        report = LaunchFailureReport(error=error, observed_at=attempted)
        try:
            await self._gateway.launch_failed(worker.id, report.model_dump(mode="json"))
        except LcmError as lost:
            logger.warning("worker %s: the launch failure was not reported: %s", worker.id, lost.message)
