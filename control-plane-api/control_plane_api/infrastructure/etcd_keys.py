"""The CPA's side of etcd: the reactive keys controllers watch, and the leader-epoch fence.

Keys are written *after* the MongoDB commit. A failed write is logged and counted, not raised: the
controllers also resync periodically (level-triggered), so a missed key only delays the reaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aetcd

from control_plane_api.domain.controller_status import KeyHolder
from control_plane_api.domain.fencing import LeaderCaller
from lcm_core.errors import ConflictError, FencedError, UnavailableError
from lcm_core.leader.election import ETCD_ERRORS

logger = logging.getLogger(__name__)

TXN_OPS = 128
"""Operations per etcd transaction: etcd's default `--max-txn-ops`."""


def _payload(value: dict[str, Any]) -> bytes:
    return json.dumps(value, default=str, separators=(",", ":")).encode()


class EtcdKeys:
    def __init__(self, client: aetcd.Client, prefix: str = "/lcm", timeout: float = 2.0) -> None:
        self._client = client
        self._prefix = prefix.rstrip("/")
        self._timeout = timeout
        self.failed_writes = 0

    def worker_key(self, worker_id: str, name: str) -> str:
        return f"{self._prefix}/workers/{worker_id}/{name}"

    def session_key(self, session_id: str, name: str) -> str:
        return f"{self._prefix}/sessions/{session_id}/{name}"

    def pool_key(self, pool_id: str, name: str) -> str:
        return f"{self._prefix}/pools/{pool_id}/{name}"

    async def put_json(self, key: str, value: dict[str, Any]) -> bool:
        try:
            await asyncio.wait_for(self._client.put(key.encode(), _payload(value)), self._timeout)
            return True
        except ETCD_ERRORS as exc:
            self.failed_writes += 1
            logger.warning("etcd write of %s failed (%s); controllers will catch up on resync", key, exc)
            return False

    async def put_many_json(self, items: list[tuple[str, dict[str, Any]]]) -> int:
        """Several keys in transactions of up to `TXN_OPS` puts (one round trip each instead of one per key);
        returns how many were written. A failed transaction is logged and counted like a failed put."""
        written = 0
        for start in range(0, len(items), TXN_OPS):
            chunk = items[start:start + TXN_OPS]
            try:
                puts = [self._client.transactions.put(key.encode(), _payload(value)) for key, value in chunk]
                async with asyncio.timeout(self._timeout):
                    await self._client.transaction(compare=[], success=puts, failure=[])
                written += len(chunk)
            except ETCD_ERRORS as exc:
                self.failed_writes += len(chunk)
                logger.warning("etcd write of %d keys (%s, ...) failed (%s); controllers will catch up on resync",
                               len(chunk), chunk[0][0], exc)
        return written

    async def delete(self, key: str) -> None:
        try:
            await asyncio.wait_for(self._client.delete(key.encode()), self._timeout)
        except ETCD_ERRORS as exc:
            logger.warning("etcd delete of %s failed: %s", key, exc)

    async def delete_prefix(self, prefix: str) -> None:
        try:
            await asyncio.wait_for(self._client.delete_prefix(prefix.encode()), self._timeout)
        except ETCD_ERRORS as exc:
            logger.warning("etcd delete of %s* failed: %s", prefix, exc)

    async def get_json(self, key: str) -> dict[str, Any] | None:
        got = await asyncio.wait_for(self._client.get(key.encode()), self._timeout)
        return None if got is None else json.loads(got.value)

    async def _leader_keys(self, purpose: str) -> tuple[bytes, list[Any]]:
        prefix = f"{self._prefix}/leaders/".encode()
        try:
            return prefix, list(await asyncio.wait_for(self._client.get_prefix(prefix), self._timeout))
        except ETCD_ERRORS as exc:
            # A timeout's own text is empty: say what happened.
            why = f"no answer within {self._timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
            raise UnavailableError(f"etcd unreachable, cannot {purpose}: {why}") from exc

    async def leader_epochs(self) -> dict[int, str]:
        """{epoch (create_revision of the election key): service} of every current leader."""
        prefix, found = await self._leader_keys("verify the leader epoch")
        return {int(kv.create_revision): kv.key.decode()[len(prefix):] for kv in found}

    async def leader_holders(self) -> dict[str, KeyHolder]:
        """{service: who holds its election key (identity = the key's value, epoch = its create_revision)}."""
        prefix, found = await self._leader_keys("tell who leads")
        return {kv.key.decode()[len(prefix):]: KeyHolder(kv.value.decode(errors="replace"), int(kv.create_revision))
                for kv in found}

    async def verify_epoch(self, epoch: str | None, service: str) -> LeaderCaller:
        """The leader fence: accept only the epoch of `service`'s current leader (never a deposed one). The
        storage checks the same epoch again when it writes (`mongo_versions`), which no race with an election
        gets past."""
        if epoch is None:
            raise ConflictError("missing X-LCM-Leader-Epoch: only a leading controller may mutate")
        try:
            value = int(epoch)
        except ValueError as exc:
            raise ConflictError(f"malformed X-LCM-Leader-Epoch {epoch[:40]!r}") from exc
        leaders = await self.leader_epochs()
        if value not in leaders:
            raise FencedError(f"stale leader epoch {value}: this controller no longer leads")
        if leaders[value] != service:
            raise FencedError(f"epoch {value} is the {leaders[value]} leader's; this is changed by the {service} "
                              "leader only")
        return LeaderCaller(service, value)
