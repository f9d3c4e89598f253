"""Resource and port observation of a session's live lab: read CML, build, POST to the CPA.

Two callers: the end of the timeslot (RUNNING → COLLECTING, observer `lablet-controller`) and the manual
trigger (the CPA's etcd key, observer `manual`). `observe_quietly` is the best-effort form used on the way
to teardown: any failure is logged and counted, never raised, so observation never blocks teardown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from lablet_controller.application.ports import LabReader, ObservationReports
from lablet_controller.domain.observation import build_observation
from lcm_core.domain.lablets import ResourceObservation, SessionWorkView
from lcm_core.errors import LcmError

logger = logging.getLogger(__name__)

Observer = Literal["lablet-controller", "manual"]


class LabObserver:
    def __init__(self, gateway: ObservationReports, labs: LabReader,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._gateway = gateway
        self._labs = labs
        self._clock = clock
        self.observed = 0
        self.failed = 0

    async def observe(self, session: SessionWorkView, lab_id: str, observer: Observer) -> ResourceObservation:
        """Read the lab on its worker and build the observation (raises if the nodes cannot be read)."""
        if session.worker_id is None:
            raise LcmError(f"session {session.id} has no worker")
        host = await self._labs.host(session.worker_id)
        readings = await self._labs.read_for_observation(host, lab_id)
        return build_observation(readings.nodes, readings.interfaces, readings.stats, observed_at=self._clock(),
                                 observer=observer, layer3=readings.layer3,
                                 request_id=session.observe_request_id if observer == "manual" else None)

    async def observe_and_report(self, session: SessionWorkView, lab_id: str, observer: Observer) -> SessionWorkView:
        observation = await self.observe(session, lab_id, observer)
        updated = await self._gateway.report_observation(session.id, observation)
        self.observed += 1
        logger.info("session %s observed (%s): %d nodes, %.2f cores, %d MB, ports %s", session.id, observer,
                    observation.actual_node_count, observation.total_cpu_cores, observation.total_memory_mb,
                    observation.observed_ports)
        return updated

    async def observe_quietly(self, session: SessionWorkView, lab_id: str | None) -> ResourceObservation | None:
        """The observation, or None (logged) if anything fails: teardown goes on regardless."""
        if lab_id is None:
            return None
        try:
            return await self.observe(session, lab_id, "lablet-controller")
        except (LcmError, ValueError) as exc:
            self.failed += 1
            logger.warning("session %s: observation before teardown failed (%s); tearing down anyway",
                           session.id, exc)
            return None

    async def report_quietly(self, session_id: str, observation: ResourceObservation | None) -> None:
        if observation is None:
            return
        try:
            await self._gateway.report_observation(session_id, observation)
            self.observed += 1
        except LcmError as exc:
            self.failed += 1
            logger.warning("session %s: the observation could not be recorded (%s); tearing down anyway",
                           session_id, exc.message)
