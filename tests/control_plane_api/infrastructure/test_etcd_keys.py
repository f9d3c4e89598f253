"""The CPA's etcd adapter when etcd does not answer: a listener that accepts connections and never replies
stands for an etcd too loaded to answer in time. The leader fence then fails as unavailable (a 503 to the
controller, which retries), and says why rather than with the empty text of a timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import aetcd
import pytest

from control_plane_api.infrastructure.etcd_keys import EtcdKeys
from lcm_core.errors import UnavailableError


@pytest.fixture
def silent_port() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


async def test_a_leader_epoch_check_etcd_does_not_answer_says_it_timed_out(silent_port: int) -> None:
    client = aetcd.Client(host="127.0.0.1", port=silent_port, timeout=5)
    keys = EtcdKeys(client, prefix="/lcm-test", timeout=0.3)
    try:
        with pytest.raises(UnavailableError) as raised:
            await keys.verify_epoch("7", "worker-controller")
        assert raised.value.message == "etcd unreachable, cannot verify the leader epoch: no answer within 0.3 s"
    finally:
        await client.close()
