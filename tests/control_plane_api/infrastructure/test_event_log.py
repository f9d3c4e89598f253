"""Reading the event log back: the reply shapes redis-py's types allow, handled on purpose."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from control_plane_api.infrastructure.event_log import RedisEventLog

_FIELDS = {b"type": b"worker.created", b"subject": b"w1", b"time": b"2024-01-01T00:00:00+00:00",
           b"source": b"lcm", b"data": b"{}", b"uid": b"u1", b"origin": b"cpa-1"}


class _Replies(Redis):
    """Answers XRANGE/XREAD with a fixed reply instead of asking a server (it never connects)."""

    def __init__(self, reply: Any) -> None:
        super().__init__()
        self.reply = reply

    async def xrange(self, *_args: Any, **_kwargs: Any) -> Any:
        return self.reply

    async def xread(self, *_args: Any, **_kwargs: Any) -> Any:
        return self.reply


def _log(reply: Any) -> RedisEventLog:
    return RedisEventLog(_Replies(reply))


async def test_entries_without_id_or_fields_carry_no_event_and_are_left_out() -> None:
    entries = [(b"1-0", _FIELDS), (b"2-0", None), (None, _FIELDS), ("3-0", _FIELDS)]
    assert [e.id for e in await _log(entries).read_after("0-0")] == ["1-0", "3-0"]
    assert [e.id for e in await _log([[b"lcm:events", entries]]).wait_after("0-0", 10)] == ["1-0", "3-0"]


@pytest.mark.parametrize("nothing", [None, [], {}])
async def test_a_read_that_timed_out_is_empty(nothing: Any) -> None:
    assert await _log(nothing).wait_after("0-0", 10) == []


async def test_a_reply_shape_the_log_does_not_read_is_named_not_misread() -> None:
    # redis-py with legacy replies turned off (a REDIS_URL option) answers XREAD with {stream: entries}.
    with pytest.raises(TypeError, match="REDIS_URL"):
        await _log({b"lcm:events": [(b"1-0", _FIELDS)]}).wait_after("0-0", 10)
