"""A worker's Smart Licence on CML: operators' register/deregister requests, and the release of the licence
before LCM stops or terminates a registered worker (shown as UNLICENSING).

Registration is asynchronous in CML, so a request is sent once and then followed by polling `GET /licensing`,
at most once every `poll_seconds` per worker whatever triggers the reconcile (etcd watches fire on every
licence write). Progress is reported to the control plane only when it differs from what was last reported.
Every call that changes CML passes the fence first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lcm_core.cml import CmlClient, CmlError
from lcm_core.domain.cml_snapshot import CmlLicenseInfo
from lcm_core.leader.fence import Fence
from lcm_core.leader.loops import ReconcileResult
from worker_controller.application.ports import LicenceReports
from worker_controller.domain.worker_view import WorkerView

logger = logging.getLogger(__name__)

LICENSE_POLL_SECONDS = 5.0
"""Minimum seconds between two `GET /licensing` of one worker while a licence change is under way."""
RUNNING_LAB_STATES = frozenset({"STARTED", "QUEUED", "BOOTED"})
"""Lab states with nodes that may run: CML refuses to deregister while nodes run."""
RELEASE = "release"
"""The request key of a deregistration made because the worker is going down."""


class Licensing:
    def __init__(self, cml: CmlClient, gateway: LicenceReports, fence: Fence, *, license_token: str | None,
                 poll_seconds: float = LICENSE_POLL_SECONDS, clock: Any = time.monotonic) -> None:
        self._cml = cml
        self._gateway = gateway
        self._fence = fence
        self._token = license_token
        self._poll = poll_seconds
        self._clock = clock
        self._requested: dict[str, str] = {}
        """Worker → the licence action sent to CML and not finished yet."""
        self._polled_at: dict[str, float] = {}
        self._reported: dict[str, dict[str, Any]] = {}

    def forget(self, worker_id: str) -> None:
        self._requested.pop(worker_id, None)
        self._polled_at.pop(worker_id, None)
        self._reported.pop(worker_id, None)

    async def _report(self, worker: WorkerView, body: dict[str, Any]) -> None:
        """Progress to the control plane, unless it is what was last reported for this worker's request.
        A report that ends a request is always sent, and the next request starts afresh."""
        if self._reported.get(worker.id) == body:
            return
        await self._gateway.license_progress(worker.id, body)
        if body.get("finished"):
            self._reported.pop(worker.id, None)
        else:
            self._reported[worker.id] = body

    def _not_yet(self, worker_id: str) -> ReconcileResult | None:
        """A requeue while this worker's licensing was polled less than `poll_seconds` ago."""
        wait = self._polled_at.get(worker_id, float("-inf")) + self._poll - self._clock()
        return ReconcileResult.requeue(wait) if wait > 0 else None

    # ------------------------------------------------------------------ operators' requests

    async def carry_out(self, worker: WorkerView, host: str) -> ReconcileResult:
        """An operator's `register` or `deregister`: ask CML once, then follow it to completion."""
        action = worker.license.pending_action
        if action not in ("register", "deregister"):
            return ReconcileResult.done()
        if (later := self._not_yet(worker.id)) is not None:
            return later
        try:
            if self._requested.get(worker.id) != action:
                if action == "register":
                    if not self._token:
                        await self._report(worker, {
                            "status": "unregistered", "finished": True,
                            "error": "no CML_LICENSE_TOKEN configured on the worker-controller"})
                        return ReconcileResult.done()
                    self._fence.check(f"register the licence of worker {worker.id}")
                    try:
                        await self._cml.register_license(host, self._token)
                    except CmlError as exc:
                        if exc.status_code != 409:
                            raise
                        # CML refuses to register a host that is registered already (an AMI built from a
                        # registered host, a registration made by hand) or being registered: whether the
                        # request is met is read below, as for any registration under way.
                        logger.info("worker %s: CML answered %s; reading its licensing", worker.id, exc.message)
                    self._reported.pop(worker.id, None)
                else:
                    self._fence.check(f"deregister the licence of worker {worker.id}")
                    await self._cml.deregister_license(host)
                    self._reported.pop(worker.id, None)
                self._requested[worker.id] = action
            self._polled_at[worker.id] = self._clock()
            info = await self._cml.licensing(host)
        except CmlError as exc:
            self._requested.pop(worker.id, None)
            await self._report(worker, {"finished": True, "error": exc.message[:1000],
                                        "status": "invalid" if action == "register" else "registered"})
            return ReconcileResult.done()
        registered = (info.registration_status or "").upper() == "COMPLETED"
        finished = registered if action == "register" else not registered
        status = ("registered" if action == "register" else "unregistered") if finished else (
            "registering" if action == "register" else "deregistering")
        await self._report(worker, {"status": status, "finished": finished, "details": _details(info)})
        if finished:
            self._requested.pop(worker.id, None)
            logger.info("worker %s: licence %s completed", worker.id, action)
            return ReconcileResult.done()
        return ReconcileResult.requeue(self._poll)

    # ------------------------------------------------------------------ release before a stop

    async def release(self, worker: WorkerView, host: str, *, restore_on_start: bool) -> ReconcileResult:
        """Deregister a worker that is about to go down: its remaining labs are stopped first (no session
        holds it any more, and CML refuses while nodes run), then the licence is released. Returns a requeue
        until CML reports it unregistered; the caller then stops or terminates the instance."""
        if (later := self._not_yet(worker.id)) is not None:
            return later
        self._polled_at[worker.id] = self._clock()
        try:
            if self._requested.get(worker.id) != RELEASE:
                await self._report(worker, {"status": "deregistering", "restore_on_start": restore_on_start})
                await self._stop_labs(worker, host)
                self._fence.check(f"deregister the licence of worker {worker.id} before it goes down")
                await self._cml.deregister_license(host)
                self._requested[worker.id] = RELEASE
            info = await self._cml.licensing(host)
        except CmlError as exc:
            self._requested.pop(worker.id, None)
            logger.warning("worker %s: releasing its licence before it goes down failed: %s", worker.id, exc.message)
            await self._report(worker, {"status": "deregistering", "error": f"release failed: {exc.message}"[:1000]})
            return ReconcileResult.requeue(max(self._poll, 10.0))
        if (info.registration_status or "").upper() == "COMPLETED":
            return ReconcileResult.requeue(self._poll)
        self._requested.pop(worker.id, None)
        await self._report(worker, {"status": "unregistered", "finished": True, "details": _details(info)})
        logger.info("worker %s: licence released before it goes down", worker.id)
        return ReconcileResult.requeue(0.1)

    async def _stop_labs(self, worker: WorkerView, host: str) -> None:
        for lab_id in await self._cml.lab_ids(host):
            if (await self._cml.lab_state(host, lab_id)).upper() in RUNNING_LAB_STATES:
                self._fence.check(f"stop lab {lab_id} on worker {worker.id}")
                logger.info("worker %s: stopping lab %s (no session holds it) to release the licence", worker.id,
                            lab_id)
                await self._cml.stop_lab(host, lab_id)

    async def report_stranded(self, worker: WorkerView, reason: str) -> None:
        """The instance goes down still licensed: say so on the worker (its licence needs releasing by hand)."""
        await self._report(worker, {"error": f"licence not released: {reason}"[:1000]})


def _details(info: CmlLicenseInfo) -> dict[str, Any]:
    """CML's licensing as the control plane reads it (the contract's `CmlLicenseInfo`)."""
    return info.model_dump(mode="json", exclude_none=True)
