"""What became of the launch of a worker's instance (a mixin of `Worker`, like `PoolMembership`). No I/O.

A worker created from a template waits for the worker-controller to launch its instance. A launch that fails
(no AMI matches the template, no capacity for the instance type, a call AWS refuses) is retried with backoff
for as long as the worker is wanted; each failed attempt is reported and kept on the worker
(`launch_failure`), so that operators see it and its pool can turn `failed` (docs/pools.md). Attaching the
instance clears it. An instance launched twice for one worker is flagged on it (`instance_conflict`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.worker_launch import LaunchFailure, LaunchFailureReport
from lcm_core.errors import InvalidError

#: How far ahead of the control plane's clock a reported attempt may be (the controllers' clocks differ a
#: little). Further ahead is refused: counted, it would make every later attempt look older and go uncounted.
LAUNCH_CLOCK_TOLERANCE = timedelta(minutes=5)


class InstanceLaunch:
    """Behaviour only: `Worker` supplies the fields and helpers named below."""

    if TYPE_CHECKING:
        id: str
        status: WorkerStatus
        aws_instance_id: str | None
        instance_conflict: str | None
        launch_failure: LaunchFailure | None

        def _event(self, type_: str, **data: Any) -> DomainEvent: ...
        def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None,
                    by: str | None) -> None: ...

    def record_launch_failure(self, report: LaunchFailureReport, now: datetime, by: str) -> list[DomainEvent]:
        """One more failed attempt to launch the instance. Ignored for a worker that has its instance or is
        terminated (a late report), and for an attempt not newer than the last one counted (a report sent
        twice): the attempts are counted here, once each. One dated ahead of `now` (beyond the clocks' tolerance) is
        refused."""
        if self.aws_instance_id is not None or self.status is WorkerStatus.TERMINATED:
            return []
        if report.observed_at > now + LAUNCH_CLOCK_TOLERANCE:
            raise InvalidError(f"the attempt is dated {report.observed_at.isoformat()}, ahead of the control "
                               f"plane's clock ({now.isoformat()})", worker_id=self.id)
        failure = self.launch_failure
        # MongoDB keeps milliseconds: the same report sent again must compare equal to what was stored.
        attempted = report.observed_at.replace(microsecond=report.observed_at.microsecond // 1000 * 1000)
        if failure is not None and attempted <= failure.last_at:
            return []
        if failure is None:
            failure = self.launch_failure = LaunchFailure(since=attempted, last_at=attempted, attempts=1,
                                                          error=report.error)
            self._record("launch_failure", None, "failing", now, report.error, by)
        else:
            failure.last_at, failure.error = attempted, report.error
            failure.attempts += 1
        return [self._event(ev.WORKER_LAUNCH_FAILED, attempts=failure.attempts, since=failure.since.isoformat(),
                            error=failure.error, by=by)]

    def clear_launch_failure(self, now: datetime, by: str) -> None:
        """The instance is launched: the failures before it are over (the history keeps how many there were)."""
        failure = self.launch_failure
        if failure is None:
            return
        self.launch_failure = None
        self._record("launch_failure", "failing", "", now, f"launched after {failure.attempts} failed attempt(s)",
                     by)

    def flag_duplicate(self, instance_id: str, duplicate_worker_id: str) -> list[DomainEvent]:
        """Another instance was launched for this worker (it is imported as a worker of its own, so that it
        shows in the fleet and can be terminated): the operator must hear of it, it is billed."""
        note = (f"instance {instance_id} was also launched for this worker (imported as worker "
                f"{duplicate_worker_id}): terminate it unless it is needed")
        if self.instance_conflict == note:
            return []
        self.instance_conflict = note
        return [self._event(ev.WORKER_INSTANCE_CONFLICT, aws_instance_id=instance_id,
                            duplicate_worker_id=duplicate_worker_id, message=note)]
