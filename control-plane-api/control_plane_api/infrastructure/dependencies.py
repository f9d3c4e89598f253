"""Connections to MongoDB, Redis and etcd, owned by the app's lifespan, plus their health probes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aetcd
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from control_plane_api.settings import ControlPlaneSettings
from lcm_core.leader.election import release_quietly

logger = logging.getLogger(__name__)


@dataclass
class Infrastructure:
    """The long-lived clients of one CPA process."""

    mongo: AsyncMongoClient
    redis: Redis
    redis_tail: Redis
    """A second Redis client for the event-log tailer's blocking reads (its socket timeout outlasts them)."""
    etcd: aetcd.Client
    timeout: float

    @classmethod
    def connect(cls, settings: ControlPlaneSettings) -> Infrastructure:
        """Create the clients (they connect lazily, so a dependency that is down does not stop start-up)."""
        timeout_ms = int(settings.dependency_timeout_seconds * 1000)
        mongo: AsyncMongoClient = AsyncMongoClient(
            settings.mongodb_url.get_secret_value(),
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            tz_aware=True,
        )
        redis = Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=settings.dependency_timeout_seconds,
            socket_connect_timeout=settings.dependency_timeout_seconds,
        )
        redis_tail = Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=settings.dependency_timeout_seconds + 2.0,
            socket_connect_timeout=settings.dependency_timeout_seconds,
        )
        etcd = aetcd.Client(
            host=settings.etcd_host, port=settings.etcd_port, timeout=settings.etcd_timeout_seconds
        )
        return cls(mongo=mongo, redis=redis, redis_tail=redis_tail, etcd=etcd,
                   timeout=settings.dependency_timeout_seconds)

    async def close(self) -> None:
        await self.mongo.close()
        await self.redis.aclose()
        await self.redis_tail.aclose()
        await release_quietly(self.etcd.close(), self.timeout)

    async def check(self) -> dict[str, str]:
        """Probe every dependency concurrently: {name: "ok" | "error: ..."}."""
        probes = {
            "mongodb": self.mongo.admin.command("ping"),
            "redis": self.redis.ping(),
            "etcd": self.etcd.status(),
        }
        results = await asyncio.gather(
            *(asyncio.wait_for(probe, self.timeout) for probe in probes.values()), return_exceptions=True
        )
        report: dict[str, str] = {}
        for name, result in zip(probes, results, strict=True):
            if isinstance(result, BaseException):
                report[name] = f"error: {type(result).__name__}: {result}"[:300]
            else:
                report[name] = "ok"
        return report
