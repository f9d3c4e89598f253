"""Watch an etcd prefix and turn every change into a trigger (level-triggered: the key says *what* to look
at; the reconciler reads the current state itself).

A watch that fails (etcd restarting, compacted revision) is re-established after a pause and `on_gap` is
called, because changes may have been missed meanwhile: the caller re-lists (resyncs) everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import aetcd

from lcm_core.aio import stop_if_cancelled
from lcm_core.leader.election import ETCD_ERRORS, release_quietly
from lcm_core.leader.loops import LoopStats
from lcm_core.settings import EtcdSettings

logger = logging.getLogger(__name__)


async def watch_prefix(
    client_factory: Callable[[], aetcd.Client],
    prefix: str,
    on_key: Callable[[str], None],
    on_gap: Callable[[], None],
    retry_seconds: float = 2.0,
) -> None:
    """Run until cancelled: `on_key(key)` for every PUT/DELETE under `prefix`, `on_gap()` after a break."""
    first = True
    while True:
        client = client_factory()
        try:
            watch = await client.watch_prefix(prefix.encode())
            if not first:
                on_gap()
            first = False
            async for event in watch:
                on_key(event.kv.key.decode(errors="replace"))
        except asyncio.CancelledError:
            raise
        except ETCD_ERRORS as exc:
            stop_if_cancelled()
            logger.warning("watch on %s broke (%s); re-watching in %.0fs", prefix, exc, retry_seconds)
        finally:
            await release_quietly(client.close(), 2.0)
        first = False
        await asyncio.sleep(retry_seconds)


class Enqueue(Protocol):
    def enqueue(self, key: str) -> None: ...


@dataclass
class KeyWatchLoop:
    """A leader loop over the watch of `{etcd_prefix}/{collection}/`: a change of one of `keys` (all keys when
    None) of object `{id}` reconciles that object now; after a broken watch every object is re-listed."""

    etcd: EtcdSettings
    collection: str
    """`workers`, `sessions`: the segment after the prefix."""
    reconcile: Enqueue
    list_keys: Callable[[], Awaitable[Iterable[str]]]
    keys: frozenset[str] | None = None
    name: str = "etcd-watch"
    stats: LoopStats = field(default_factory=lambda: LoopStats(name="etcd-watch", interval_seconds=0))
    _relists: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def _on_key(self, key: str) -> None:
        # {prefix}/{collection}/{id}/{key}: reconcile {id} (the reconciler reads its state itself).
        parts = key.rsplit("/", 3)
        if len(parts) == 4 and parts[1] == self.collection and (self.keys is None or parts[3] in self.keys):
            self.stats.runs += 1
            self.stats.successes += 1
            self.reconcile.enqueue(parts[2])

    def _on_gap(self) -> None:
        """Changes may have been missed while the watch was down: re-list every object."""
        async def relist() -> None:
            for object_id in await self.list_keys():
                self.reconcile.enqueue(object_id)

        task = asyncio.get_running_loop().create_task(relist())
        self._relists.add(task)
        task.add_done_callback(self._relists.discard)

    async def run(self) -> None:
        e = self.etcd
        self.stats.start()
        try:
            await watch_prefix(
                lambda: aetcd.Client(host=e.etcd_host, port=e.etcd_port, timeout=int(e.etcd_timeout_seconds)),
                f"{e.etcd_prefix.rstrip('/')}/{self.collection}/", self._on_key, self._on_gap)
        finally:
            self.stats.running = False
            for task in self._relists:
                task.cancel()
