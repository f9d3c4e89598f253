"""Leader election against a real etcd server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aetcd
import pytest

from lcm_core.leader import ElectionConfig, LeaderElection, Leadership
from lcm_core.testing import servers
from lcm_core.testing.processes import ManagedProcess, free_port

TTL = 3


class Candidate:
    """A LeaderElection plus a record of when its leader work started and stopped."""

    def __init__(self, identity: str, port: int, service: str) -> None:
        self.identity = identity
        self.starts: list[float] = []
        self.stops: list[float] = []
        self.election = LeaderElection(
            ElectionConfig(service=service, identity=identity, ttl_seconds=TTL, retry_interval_seconds=0.2,
                           call_timeout_seconds=1.0),
            client_factory=lambda: aetcd.Client(host="127.0.0.1", port=port, timeout=1),
            work=self._work,
        )
        self.task: asyncio.Task[None] | None = None

    async def _work(self, leadership: Leadership) -> None:
        self.starts.append(time.monotonic())
        try:
            await asyncio.Event().wait()
        finally:
            self.stops.append(time.monotonic())

    @property
    def acting(self) -> bool:
        return len(self.starts) > len(self.stops)

    def start(self) -> None:
        self.task = asyncio.create_task(self.election.run())

    async def stop(self) -> None:
        """Cancel the election; it must end promptly (a lost cancellation kept a follower campaigning)."""
        assert self.task is not None
        self.task.cancel()
        done, _ = await asyncio.wait({self.task}, timeout=10)
        assert done, f"candidate {self.identity} did not stop within 10 s of its cancellation"


async def wait_for(predicate, timeout: float, step: float = 0.05) -> float:
    """Wait until predicate() is true; return the elapsed seconds (fail after timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
    return time.monotonic() - start


@pytest.fixture
def private_etcd(tmp_path: Path) -> Iterator[tuple[ManagedProcess, int]]:
    """An etcd of this test's own, so the test may freeze or kill it."""
    port = free_port()
    proc = servers.etcd(tmp_path / "data", port, free_port(), tmp_path / "etcd.log")
    proc.start()
    try:
        yield proc, port
    finally:
        if proc.pid:
            os.killpg(proc.pid, signal.SIGCONT)
        proc.stop()


@pytest.fixture
async def pair(etcd_server, request) -> AsyncIterator[tuple[Candidate, Candidate]]:
    service = f"svc-{request.node.name}"
    a = Candidate("a", etcd_server.port, service)
    b = Candidate("b", etcd_server.port, service)
    a.start()
    b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def test_exactly_one_of_two_candidates_leads(pair) -> None:
    a, b = pair
    await wait_for(lambda: a.acting or b.acting, timeout=5)
    deadline = time.monotonic() + 2 * TTL
    while time.monotonic() < deadline:  # leadership is stable: never two, never zero
        assert a.acting != b.acting
        assert a.election.is_leader != b.election.is_leader
        await asyncio.sleep(0.05)
    leader = a if a.acting else b
    assert leader.election.epoch is not None
    assert leader.election.epoch > 0


async def test_epoch_is_the_key_create_revision_and_grows(etcd_server, pair) -> None:
    a, b = pair
    await wait_for(lambda: a.acting or b.acting, timeout=5)
    leader, follower = (a, b) if a.acting else (b, a)
    first_epoch = leader.election.epoch
    async with aetcd.Client(host="127.0.0.1", port=etcd_server.port) as client:
        assert await leader.election.current_leader(client) == (leader.identity, first_epoch)
    await leader.stop()  # graceful stop revokes the lease: the follower takes over at once
    await wait_for(lambda: follower.acting, timeout=2)
    assert follower.election.epoch is not None
    assert follower.election.epoch > first_epoch
    leader.start()  # restarted for the fixture's teardown


async def test_revoking_the_leaders_lease_hands_over_within_ttl(etcd_server, pair) -> None:
    a, b = pair
    await wait_for(lambda: a.acting or b.acting, timeout=5)
    leader, follower = (a, b) if a.acting else (b, a)
    assert leader.election.leadership is not None
    lease_id = leader.election.leadership.lease_id
    async with aetcd.Client(host="127.0.0.1", port=etcd_server.port) as client:
        await client.revoke_lease(lease_id)
    revoked = time.monotonic()
    await wait_for(lambda: follower.acting, timeout=TTL)
    # The deposed leader noticed the deleted key and stopped acting.
    await wait_for(lambda: not leader.acting, timeout=TTL)
    assert leader.stops[-1] - revoked < TTL
    await asyncio.sleep(0.5)
    assert follower.acting
    assert not leader.acting


async def test_leader_that_cannot_renew_stops_before_its_lease_expires(private_etcd) -> None:
    proc, port = private_etcd
    a = Candidate("a", port, "frozen")
    a.start()
    try:
        await wait_for(lambda: a.acting, timeout=5)
        await asyncio.sleep(TTL / 3 + 0.2)  # at least one renewal has happened
        os.killpg(proc.pid, signal.SIGSTOP)  # etcd hangs: renewals neither succeed nor fail
        await wait_for(lambda: not a.acting, timeout=TTL)
        assert a.stops[-1] < a.election.renewed_at + TTL, "stopped acting only after the lease could expire"
        await asyncio.sleep(1.0)
        assert not a.acting
        assert not a.election.is_leader
        os.killpg(proc.pid, signal.SIGCONT)
        await wait_for(lambda: a.acting, timeout=3 * TTL)  # etcd is back: it campaigns and leads again
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
        await a.stop()


async def test_nobody_leads_while_etcd_is_down(private_etcd) -> None:
    proc, port = private_etcd
    a = Candidate("a", port, "down")
    b = Candidate("b", port, "down")
    a.start()
    b.start()
    try:
        await wait_for(lambda: a.acting or b.acting, timeout=5)
        proc.kill()
        await wait_for(lambda: not a.acting and not b.acting, timeout=TTL)
        deadline = time.monotonic() + TTL
        while time.monotonic() < deadline:
            assert not a.acting
            assert not b.acting
            assert not a.election.is_leader
            assert not b.election.is_leader
            await asyncio.sleep(0.1)
        assert a.election.last_error or b.election.last_error
    finally:
        await a.stop()
        await b.stop()
