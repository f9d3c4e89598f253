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

from lcm_core.errors import ConflictError, UnavailableError
from lcm_core.leader.election import ETCD_ERRORS

logger = logging.getLogger(__name__)


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

    async def put_json(self, key: str, value: dict[str, Any]) -> bool:
        try:
            payload = json.dumps(value, default=str, separators=(",", ":")).encode()
            await asyncio.wait_for(self._client.put(key.encode(), payload), self._timeout)
            return True
        except ETCD_ERRORS as exc:
            self.failed_writes += 1
            logger.warning("etcd write of %s failed (%s); controllers will catch up on resync", key, exc)
            return False

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

    async def leader_epochs(self) -> dict[int, str]:
        """{epoch (create_revision of the election key): service} of every current leader."""
        prefix = f"{self._prefix}/leaders/".encode()
        try:
            found = await asyncio.wait_for(self._client.get_prefix(prefix), self._timeout)
        except ETCD_ERRORS as exc:
            raise UnavailableError(f"etcd unreachable, cannot verify the leader epoch: {exc}") from exc
        return {int(kv.create_revision): kv.key.decode()[len(prefix):] for kv in found}

    async def verify_epoch(self, epoch: str | None) -> str:
        """The fence of ARCHITECTURE §6: accept only the epoch of a current leader; return its service."""
        if epoch is None:
            raise ConflictError("missing X-LCM-Leader-Epoch: only a leading controller may mutate")
        try:
            value = int(epoch)
        except ValueError as exc:
            raise ConflictError(f"malformed X-LCM-Leader-Epoch {epoch[:40]!r}") from exc
        leaders = await self.leader_epochs()
        if value not in leaders:
            raise ConflictError(f"stale leader epoch {value}: this controller no longer leads")
        return leaders[value]
