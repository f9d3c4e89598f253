"""CML lab operations of the lablet-controller over `lcm_core.cml.CmlClient`.

Every operation is idempotent, because a reconcile may repeat it after a crash or a lost answer:
- a session's lab is found by its title (`lablet-<session id>`) when its id is not known yet, so a repeated
  instantiation never imports a second lab;
- teardown treats "not found" as done at every step (stop, wipe, delete), and CML's "already stopped /
  nothing to wipe" refusals as done too;
- reads used for observation tolerate a malformed answer (None or empty plus a warning), so one bad
  endpoint never blocks the rest.

Every call that changes CML (import, start, stop, wipe, delete) is fenced: first the caller's `before`
hook runs (the reconciler re-reads a session it read too long ago and stops if it changed), then the leader
fence is checked, and nothing is awaited between that check and the request. A replica that lost its lease,
or was frozen past it, raises `LeadershipLost` there and sends nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lablet_controller.domain.labs import BeforeChange, BootState, LabReadings
from lcm_core.cml import CmlClient, CmlError, CmlNotFoundError, CmlRejectedError, CmlResponseError
from lcm_core.cml.models import Interface, Node
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import NotFoundError
from lcm_core.leader.fence import Fence

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CmlLabs:
    def __init__(self, cml: CmlClient, resolve_host: Callable[[str], Any], *, fence: Fence) -> None:
        """`resolve_host(worker_id)` is an awaitable giving the worker's CML base URL; `fence` is checked
        immediately before every change."""
        self.cml = cml
        self._resolve = resolve_host
        self._fence = fence

    async def _change(self, action: str, before: BeforeChange | None, call: Callable[[], Awaitable[T]]) -> T:
        if before is not None:
            await before(action)
        self._fence.check(action)  # raises LeadershipLost; nothing is awaited between this and the request
        return await call()

    async def host(self, worker_id: str) -> str:
        host: str | None = await self._resolve(worker_id)
        if host is None:
            raise CmlError(f"worker {worker_id} has no CML address yet")
        return host

    async def find_lab(self, host: str, title: str) -> str | None:
        """The id of the lab titled `title` on the host, or None."""
        for lab_id in await self.cml.lab_ids(host):
            try:
                lab = await self.cml.lab(host, lab_id)
            except CmlNotFoundError:
                continue
            if lab.lab_title == title:
                return lab_id
        return None

    async def lab_titles(self, host: str) -> dict[str, str]:
        """{lab id: title} of every lab on the host ("" for a lab without one); a lab deleted while it is listed
        is left out."""
        titles: dict[str, str] = {}
        for lab_id in await self.cml.lab_ids(host):
            try:
                titles[lab_id] = (await self.cml.lab(host, lab_id)).lab_title or ""
            except CmlNotFoundError:
                continue
        return titles

    async def lab_exists(self, host: str, lab_id: str) -> bool:
        try:
            await self.cml.lab(host, lab_id)
        except CmlNotFoundError:
            return False
        return True

    async def import_and_start(self, host: str, topology_yaml: str, title: str,
                               before: BeforeChange | None = None) -> str:
        result = await self._change(f"import lab {title} on {host}", before,
                                    lambda: self.cml.import_lab(host, topology_yaml, title=title))
        for warning in result.warnings:
            logger.info("CML import of %s: %s", title, warning)
        await self._change(f"start lab {result.id} on {host}", before, lambda: self.cml.start_lab(host, result.id))
        return result.id

    async def ensure_started(self, host: str, lab_id: str, before: BeforeChange | None = None) -> None:
        """Start a lab that is not running (e.g. imported just before a crash). Starting is idempotent."""
        if (await self.cml.lab(host, lab_id)).state != "STARTED":
            await self._change(f"start lab {lab_id} on {host}", before, lambda: self.cml.start_lab(host, lab_id))

    async def boot_state(self, host: str, lab_id: str) -> BootState:
        nodes = await self.cml.nodes(host, lab_id)
        booted = sum(1 for node in nodes if node.is_booted)
        converged = booted == len(nodes) and await self.cml.check_if_converged(host, lab_id)
        return BootState(total=len(nodes), booted=booted, converged=converged)

    async def tear_down(self, host: str, lab_id: str, before: BeforeChange | None = None) -> None:
        """Stop, wipe and delete; a lab that is already gone (or already stopped/wiped) is fine."""
        for step, call in (("stop", self.cml.stop_lab), ("wipe", self.cml.wipe_lab), ("delete", self.cml.delete_lab)):
            try:
                await self._change(f"{step} lab {lab_id} on {host}", before,
                                   functools.partial(call, host, lab_id))
            except CmlNotFoundError:
                logger.info("lab %s already gone at %s", lab_id, step)
                return
            except CmlRejectedError as exc:
                if step == "delete":
                    raise
                logger.info("CML refused %s of lab %s (%s); continuing", step, lab_id, exc.message)

    async def read_for_observation(self, host: str, lab_id: str) -> LabReadings:
        """Nodes (required), then interfaces per node, simulation_stats and layer-3 addresses (each optional)."""
        nodes = await self.cml.nodes(host, lab_id)

        async def interfaces(node: Node) -> list[Interface]:
            try:
                return await self.cml.interfaces(host, lab_id, node.id)
            except (CmlNotFoundError, CmlResponseError) as exc:
                logger.warning("interfaces of node %s of lab %s unreadable: %s", node.id, lab_id, exc.message)
                return []

        per_node = await asyncio.gather(*(interfaces(node) for node in nodes))
        stats = layer3 = None
        try:
            stats = await self.cml.simulation_stats(host, lab_id)
        except (CmlNotFoundError, CmlResponseError, CmlRejectedError) as exc:
            logger.warning("simulation_stats of lab %s unreadable: %s", lab_id, exc.message)
        try:
            layer3 = await self.cml.get_json(host, f"/labs/{lab_id}/layer3_addresses")
        except (CmlNotFoundError, CmlResponseError, CmlRejectedError) as exc:
            logger.warning("layer3_addresses of lab %s unreadable: %s", lab_id, exc.message)
        return LabReadings(nodes=nodes, interfaces={n.id: i for n, i in zip(nodes, per_node, strict=True)},
                           stats=stats, layer3=layer3)


class WorkerHosts:
    """Worker id → CML base URL, read from the CPA and cached for `ttl` seconds (addresses rarely change).

    A worker that does not exist or is terminated raises `NotFoundError`: its labs are gone with it.
    """

    def __init__(self, fetch: Callable[[str], Awaitable[WorkerSummary]], template: str, ttl: float = 60.0) -> None:
        self._fetch = fetch
        self._template = template
        self._ttl = ttl
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def __call__(self, worker_id: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(worker_id)
        if cached is not None and now - cached[0] < self._ttl and cached[1] is not None:
            return cached[1]
        worker = await self._fetch(worker_id)
        if worker.status is WorkerStatus.TERMINATED:
            raise NotFoundError(f"worker {worker_id} is terminated")
        url = worker.cml_url(self._template)
        self._cache[worker_id] = (now, url)
        return url
