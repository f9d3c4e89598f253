"""The relay counts the event streams it cuts off for reading too slowly (`lcm_sse_overflow_disconnects_total`,
which the SSE-overflow alert reads). The log is a Redis that does not answer, so events are delivered locally
at once: what a slow client's queue receives is exactly what is published."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from control_plane_api.application.event_relay import OVERFLOW, EventFilter, EventRelay
from control_plane_api.domain.events import DomainEvent
from control_plane_api.infrastructure.event_log import RedisEventLog
from lcm_core.testing.processes import free_port


def test_each_client_cut_off_for_a_full_queue_is_counted_once() -> None:
    async def run() -> tuple[int, int, list[object]]:
        redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
        try:
            relay = EventRelay(RedisEventLog(redis), queue_size=2, append_timeout=2.0)
            slow = relay.subscribe(EventFilter())
            reading = relay.subscribe(EventFilter())
            for n in range(2):
                await relay.publish([DomainEvent(type="worker.metrics.updated", subject_id=f"w-{n}", data={})])
                reading.queue.get_nowait()
            before = relay.overflowed_clients
            for n in range(2, 6):  # the third event finds the slow client's queue full; later ones are not offered
                await relay.publish([DomainEvent(type="worker.metrics.updated", subject_id=f"w-{n}", data={})])
                reading.queue.get_nowait()
            return before, relay.overflowed_clients, [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        finally:
            await redis.aclose()

    before, after, left_for_the_slow_client = asyncio.run(run())
    assert (before, after) == (0, 1)
    assert left_for_the_slow_client == [OVERFLOW]
