"""Watch an etcd prefix and turn every change into a trigger (level-triggered: the key says *what* to look
at; the reconciler reads the current state itself).

A watch that fails (etcd restarting, compacted revision) is re-established after a pause and `on_gap` is
called, because changes may have been missed meanwhile: the caller re-lists (resyncs) everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aetcd

from lcm_core.aio import stop_if_cancelled
from lcm_core.leader.election import ETCD_ERRORS, release_quietly

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
