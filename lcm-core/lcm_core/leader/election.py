"""Leader election through etcd: a lease, and a campaign on the election key's create_revision.

- A candidate grants a lease of `ttl` seconds and campaigns with one transaction: put the election key
  bound to its lease only if the key's create_revision is 0 (it does not exist).
- The winner's key create_revision is its **epoch**, a monotonically increasing fencing token that it
  sends with every mutating call so the control plane can refuse a deposed leader.
- The leader renews its lease every ttl/3. It keeps a local deadline: the send time of the last
  successful renewal plus ttl, minus a safety margin. It **stops acting before that deadline** even if
  etcd does not answer (a hung call is cut off by the deadline), and only then campaigns again.
- It also watches its key: if the key is deleted (lease revoked, operator action) it steps down at once.
- etcd unreachable means nobody leads: followers cannot campaign and a leader loses its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aetcd
import aetcd.exceptions

from lcm_core.aio import stop_if_cancelled

logger = logging.getLogger(__name__)

#: etcd and gRPC failures that mean "etcd is not usable right now".
ETCD_ERRORS: tuple[type[BaseException], ...] = (
    aetcd.exceptions.ClientError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


async def release_quietly(coro: Awaitable[object], timeout: float) -> None:  # noqa: ASYNC109 - bounds a clean-up
    """Await a clean-up call (close, watch cancel) for at most `timeout`, never hanging the caller.

    aetcd's watcher shutdown can swallow cancellation while a gRPC stream winds down, so
    `asyncio.wait_for` around it may block indefinitely; here the call runs as its own task and is
    abandoned (cancelled, not awaited) when it overruns.
    """
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
    elif not task.cancelled() and task.exception() is not None:
        logger.debug("etcd clean-up call failed: %r", task.exception())


@dataclass
class Leadership:
    """What the current leader knows about its own term."""

    identity: str
    epoch: int
    lease_id: int
    acquired_at: float = field(default_factory=time.time)
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> bool:
        return not self.lost.is_set()


# A coroutine function: the work runs as a task (asyncio.create_task takes a coroutine, not any awaitable).
LeaderWork = Callable[[Leadership], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ElectionConfig:
    """Parameters of one election."""

    service: str
    identity: str
    ttl_seconds: int = 15
    prefix: str = "/lcm"
    retry_interval_seconds: float = 1.0
    """How often a follower (or a candidate after an etcd failure) tries again."""
    call_timeout_seconds: float = 3.0
    """Deadline of one etcd call made by the election."""

    @property
    def key(self) -> bytes:
        return f"{self.prefix.rstrip('/')}/leaders/{self.service}".encode()

    @property
    def safety_margin_seconds(self) -> float:
        """Stop acting this long before the lease could expire on the server."""
        return max(1.0, self.ttl_seconds / 5)


class LeaderElection:
    """Campaigns for leadership and runs `work` only while this process leads.

    `run()` loops until cancelled: campaign → lead (run `work`, renew, watch) → step down → campaign.
    `work` is cancelled when leadership is lost and must not outlive it.
    """

    def __init__(
        self,
        config: ElectionConfig,
        client_factory: Callable[[], aetcd.Client],
        work: LeaderWork,
    ) -> None:
        self.config = config
        self._client_factory = client_factory
        self._work = work
        self.leadership: Leadership | None = None
        self.terms = 0
        self.last_error: str | None = None
        #: Whether the last campaign round reached etcd (readiness of a controller replica).
        self.etcd_reachable = False
        # Local time by which this leader must have stopped acting unless a renewal succeeds.
        self._deadline = 0.0
        #: Monotonic send time of the last successful grant or renewal: the lease lives at least ttl past it.
        self.renewed_at = 0.0

    @property
    def is_leader(self) -> bool:
        return self.leadership is not None and self.leadership.active

    @property
    def epoch(self) -> int | None:
        return self.leadership.epoch if self.is_leader and self.leadership else None

    def lease_remaining(self) -> float | None:
        """Seconds until this leader must stop acting by its local deadline (negative once passed), or None
        when it does not lead. Read synchronously, so a process that was frozen sees the truth on waking."""
        if not self.is_leader:
            return None
        return self._deadline - time.monotonic()

    @property
    def action_margin_seconds(self) -> float:
        """What a fenced action needs left of the lease: a sixth of the TTL (a renewal every third of it
        keeps at least half the TTL minus the safety margin in hand while etcd answers)."""
        return self.config.ttl_seconds / 6

    async def run(self) -> None:
        """Campaign and lead until cancelled."""
        while True:
            stop_if_cancelled()
            client = self._client_factory()
            try:
                leadership = await self._campaign(client)
                self.etcd_reachable = True
                if leadership is None:
                    await self._wait_for_vacancy(client)
                    continue
                await self._lead(client, leadership)
                # A deposed leader gives the followers (who watch the key) the first chance.
                await asyncio.sleep(self.config.retry_interval_seconds)
            except ETCD_ERRORS as exc:
                stop_if_cancelled()  # a cancellation that the etcd client turned into an error of its own
                self.etcd_reachable = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("etcd unavailable for election %s: %s", self.config.service, exc)
                await asyncio.sleep(self.config.retry_interval_seconds)
            finally:
                await release_quietly(client.close(), self.config.call_timeout_seconds)

    async def current_leader(self, client: aetcd.Client) -> tuple[str, int] | None:
        """(identity, epoch) of whoever holds the election key, or None."""
        async with asyncio.timeout(self.config.call_timeout_seconds):
            got = await client.get(self.config.key)
        if got is None:
            return None
        return got.value.decode(), int(got.create_revision)

    async def _campaign(self, client: aetcd.Client) -> Leadership | None:
        cfg = self.config
        timeout = cfg.call_timeout_seconds
        granted_at = time.monotonic()  # before the request: the server's lease cannot end earlier
        async with asyncio.timeout(timeout):
            lease = await client.lease(cfg.ttl_seconds)
        async with asyncio.timeout(timeout):
            won, _ = await client.transaction(
                compare=[client.transactions.create(cfg.key) == 0],
                success=[client.transactions.put(cfg.key, cfg.identity.encode(), lease=lease)],
                failure=[],
            )
        if not won:
            with contextlib.suppress(*ETCD_ERRORS):
                async with asyncio.timeout(timeout):
                    await client.revoke_lease(lease.id)
            return None
        async with asyncio.timeout(timeout):
            got = await client.get(cfg.key)
        if got is None or got.lease != lease.id:
            return None  # lost it in the instant since the transaction; try again
        self.terms += 1
        leadership = Leadership(identity=cfg.identity, epoch=int(got.create_revision), lease_id=lease.id)
        self.renewed_at = granted_at
        self._deadline = granted_at + cfg.ttl_seconds - cfg.safety_margin_seconds
        logger.info(
            "became leader of %s (identity=%s epoch=%s)", cfg.service, cfg.identity, leadership.epoch
        )
        return leadership

    async def _wait_for_vacancy(self, client: aetcd.Client) -> None:
        """Follower: return as soon as the election key is deleted (or after a ttl, to re-check)."""
        async with asyncio.timeout(self.config.call_timeout_seconds):
            watch = await client.watch(self.config.key)

        async def deleted() -> None:
            async for event in watch:
                if event.kind == aetcd.rtypes.EventKind.DELETE:
                    return

        try:
            # The key may have vanished between the failed campaign and the watch being created.
            async with asyncio.timeout(self.config.call_timeout_seconds):
                if await client.get(self.config.key) is None:
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.ttl_seconds):
                    await deleted()
        finally:
            await release_quietly(watch.cancel(), 1.0)

    async def _lead(self, client: aetcd.Client, leadership: Leadership) -> None:
        self.leadership = leadership
        work = asyncio.create_task(self._work(leadership), name=f"{self.config.service}-leader-work")
        guards = [
            asyncio.create_task(self._renew(client, leadership), name="lease-renewal"),
            asyncio.create_task(self._watch_key(client, leadership), name="leader-key-watch"),
            work,
        ]
        try:
            done, _ = await asyncio.wait(guards, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is work and not task.cancelled() and task.exception() is not None:
                    self.last_error = repr(task.exception())
                    logger.error(
                        "leader work of %s failed; stepping down", self.config.service,
                        exc_info=task.exception(),
                    )
        finally:
            # Stop acting first, then give the lease back so a successor need not wait for the TTL.
            leadership.lost.set()
            for task in guards:
                task.cancel()
            await asyncio.gather(*guards, return_exceptions=True)
            self.leadership = None
            logger.info("stepped down as leader of %s (epoch=%s)", self.config.service, leadership.epoch)
            await release_quietly(client.revoke_lease(leadership.lease_id), 1.0)

    async def _renew(self, client: aetcd.Client, leadership: Leadership) -> None:
        """Renew every ttl/3; return (→ step down) when the lease is gone or the deadline nears."""
        cfg = self.config
        pause = cfg.ttl_seconds / 3
        while True:
            await asyncio.sleep(max(0.0, min(pause, self._deadline - time.monotonic())))
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                logger.warning("could not renew the %s lease in time; stepping down", cfg.service)
                return
            sent_at = time.monotonic()
            try:
                async with asyncio.timeout(remaining):
                    reply = await client.refresh_lease(leadership.lease_id)
            except ETCD_ERRORS as exc:
                stop_if_cancelled()
                self.etcd_reachable = False
                self.last_error = f"renewal failed: {type(exc).__name__}: {exc}"
                logger.warning("lease renewal for %s failed: %s", cfg.service, exc)
                pause = cfg.retry_interval_seconds  # retry soon; the sleep is clamped by the deadline
                continue
            if reply is None or reply.TTL <= 0:
                logger.warning("the %s lease expired on the server; stepping down", cfg.service)
                return
            self.renewed_at = sent_at
            self.etcd_reachable = True
            self._deadline = sent_at + cfg.ttl_seconds - cfg.safety_margin_seconds
            pause = cfg.ttl_seconds / 3

    async def _watch_key(self, client: aetcd.Client, leadership: Leadership) -> None:
        """Return when the election key is deleted or no longer ours."""
        async with asyncio.timeout(self.config.call_timeout_seconds):
            watch = await client.watch(self.config.key)
        try:
            async for event in watch:
                if event.kind == aetcd.rtypes.EventKind.DELETE or event.kv.lease != leadership.lease_id:
                    logger.warning("the %s election key was taken away; stepping down", self.config.service)
                    return
        finally:
            await release_quietly(watch.cancel(), 1.0)
        # The watch stream ended without an event (etcd went away): keep leading on the lease deadline.
        await asyncio.Event().wait()
