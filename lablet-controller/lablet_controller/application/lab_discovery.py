"""Lab discovery: find session labs on the workers that no live session owns, and tear them down.

The reconciler removes a session's lab when the session ends, and again when a terminated or expired
session's etcd key changes. What it cannot see: a session that ended while no controller led, a lab imported
just before a crash whose session was then unscheduled, a session moved to another worker. This sweep,
every `LABLET_DISCOVERY_INTERVAL`, lists the labs of every running worker, keeps those titled
`lablet-<session id>` (other labs are the operators' business and are left alone), and tears down each one
whose session is not holding that worker (`scheduled` … `stopping` on it).

Order matters: labs are listed before sessions are read. A lab is only imported once its session is
`scheduled` (committed before the import), so a lab seen in the listing belongs to a session that the
following read shows as scheduled or later: a lab being built right now is never mistaken for an orphan.

Removing an orphan is a change to CML, so it is fenced like the reconciler's (see `CmlLabs`); and when the
sessions were read longer than the fence margin before a step of a teardown, that lab's session is read
again, and a session that now holds the worker keeps its lab.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lablet_controller.application.ports import LabOwners, LabSweep
from lablet_controller.domain.labs import BeforeChange
from lablet_controller.domain.sessions import LAB_TITLE_PREFIX
from lcm_core.cml import CmlError
from lcm_core.domain.enums import ServiceStatus, WorkerStatus
from lcm_core.domain.lablets import HOLDING_SESSION_STATUSES
from lcm_core.errors import NotFoundError
from lcm_core.leader.fence import Fence

logger = logging.getLogger(__name__)


class LabClaimed(Exception):
    """The lab's session holds the worker after all (read again before a teardown step)."""


@dataclass
class DiscoveryOutcome:
    workers: int = 0
    session_labs: int = 0
    orphans_removed: int = 0
    unreachable: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, object]:
        return {"workers": self.workers, "session_labs": self.session_labs,
                "orphans_removed": self.orphans_removed, "unreachable_workers": len(self.unreachable)}


class LabDiscovery:
    def __init__(self, gateway: LabOwners, labs: LabSweep, *, cml_url_template: str, fence: Fence,
                 max_workers_at_once: int = 20, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._gateway = gateway
        self._labs = labs
        self._template = cml_url_template
        self._fence = fence
        self._bound = asyncio.Semaphore(max_workers_at_once)
        self._monotonic = monotonic

    def _still_orphan(self, session_id: str, worker_id: str, read_at: float) -> BeforeChange:
        """Before each teardown step: with a sessions read older than the fence margin, read this session
        again; `LabClaimed` if it now holds the worker."""
        async def check(action: str) -> None:
            nonlocal read_at
            if self._monotonic() - read_at <= self._fence.margin_seconds:
                return
            try:
                current = await self._gateway.session(session_id)
            except NotFoundError:
                return  # no session: the lab is an orphan for good
            read_at = self._monotonic()
            if current.status in HOLDING_SESSION_STATUSES and current.worker_id == worker_id:
                raise LabClaimed(f"session {session_id} now holds worker {worker_id}; not going to {action}")
        return check

    async def _session_labs(self, host: str) -> dict[str, str]:
        """{lab id: session id} of the labs titled `lablet-<session id>` on one host."""
        titles = await self._labs.lab_titles(host)
        return {lab_id: title[len(LAB_TITLE_PREFIX):] for lab_id, title in titles.items()
                if title.startswith(LAB_TITLE_PREFIX)}

    async def run_once(self) -> DiscoveryOutcome:
        outcome = DiscoveryOutcome()
        workers = [w for w in await self._gateway.workers()
                   if w.status is WorkerStatus.RUNNING and w.service_status is ServiceStatus.AVAILABLE]
        hosts = {w.id: url for w in workers if (url := w.cml_url(self._template)) is not None}
        outcome.workers = len(hosts)

        async def list_one(worker_id: str, host: str) -> tuple[str, dict[str, str]]:
            async with self._bound:
                try:
                    return worker_id, await self._session_labs(host)
                except CmlError as exc:
                    logger.info("lab discovery: worker %s unreadable (%s)", worker_id, exc.message)
                    outcome.unreachable.append(worker_id)
                    return worker_id, {}

        listed = await asyncio.gather(*(list_one(wid, host) for wid, host in hosts.items()))
        holding = {s.id: s.worker_id for s in await self._gateway.sessions(*HOLDING_SESSION_STATUSES)}
        read_at = self._monotonic()
        for worker_id, labs in listed:
            outcome.session_labs += len(labs)
            for lab_id, session_id in labs.items():
                if holding.get(session_id) == worker_id:
                    continue
                try:
                    await self._labs.tear_down(hosts[worker_id], lab_id,
                                               self._still_orphan(session_id, worker_id, read_at))
                except LabClaimed as exc:
                    logger.info("lab discovery: lab %s kept: %s", lab_id, exc)
                    continue
                except CmlError as exc:
                    logger.warning("lab discovery: orphan lab %s on worker %s not removed yet (%s)", lab_id,
                                   worker_id, exc.message)
                    continue
                outcome.orphans_removed += 1
                logger.info("lab discovery: removed orphan lab %s of session %s on worker %s", lab_id,
                            session_id, worker_id)
        return outcome
