"""The login throttle on a hand-driven clock: attackers slow themselves down, never the real user."""

from __future__ import annotations

import asyncio
import threading

import pytest

from control_plane_api.application.login_throttle import ACCOUNT_WINDOW_SECONDS, LoginLimits, LoginThrottle
from control_plane_api.infrastructure import identity
from control_plane_api.infrastructure.identity import LocalUsers
from lcm_core.errors import TooManyRequestsError

ATTACKER, USER = "198.51.100.7", "203.0.113.9"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(*, per_address_per_minute: int = 1000, per_minute: int = 100_000, max_backoff_seconds: float = 900.0,
              account_failures: int = 50) -> tuple[LoginThrottle, Clock]:
    clock = Clock()
    limits = LoginLimits(per_address_per_minute=per_address_per_minute, per_minute=per_minute, free_failures=3,
                         max_backoff_seconds=max_backoff_seconds, account_failures=account_failures)
    return LoginThrottle(limits, clock=clock), clock


def _attempt(throttle: LoginThrottle, address: str, account: str | None, ok: bool = False) -> bool:
    """One login: False when the throttle refused it before any password check."""
    try:
        throttle.admit(address, account)
    except TooManyRequestsError:
        return False
    if ok:
        throttle.succeeded(address, account)
    else:
        throttle.failed(address, account)
    return True


def test_failures_for_an_account_back_off_only_the_failing_address() -> None:
    throttle, clock = _throttle()
    assert all(_attempt(throttle, ATTACKER, "admin") for _ in range(4))  # 3 free, the 4th fails and sets 1 s
    assert not _attempt(throttle, ATTACKER, "admin")
    assert not _attempt(throttle, ATTACKER, "admin", ok=True)  # even the right password waits out the backoff
    assert _attempt(throttle, USER, "admin", ok=True)  # another address is not affected
    clock.now += 1.0
    assert _attempt(throttle, ATTACKER, "admin")  # 5th failure: now 2 s
    clock.now += 1.5
    with pytest.raises(TooManyRequestsError) as refused:
        throttle.admit(ATTACKER, "admin")
    assert refused.value.retry_after_seconds == pytest.approx(0.5)
    clock.now += 0.5
    assert _attempt(throttle, ATTACKER, "admin", ok=True)  # a success clears the backoff
    assert all(_attempt(throttle, ATTACKER, "admin") for _ in range(4))


def test_backoff_is_capped() -> None:
    throttle, clock = _throttle(max_backoff_seconds=10.0)
    for _ in range(30):
        clock.now += 20.0
        assert _attempt(throttle, ATTACKER, "admin")
    with pytest.raises(TooManyRequestsError) as refused:
        throttle.admit(ATTACKER, "admin")
    assert refused.value.retry_after_seconds == pytest.approx(10.0)


def test_an_account_under_distributed_attack_refuses_failing_addresses_but_not_a_clean_one() -> None:
    throttle, clock = _throttle(account_failures=10)
    for n in range(10):
        assert _attempt(throttle, f"10.0.0.{n}", "admin")
    assert not _attempt(throttle, "10.0.0.1", "admin")  # failed before: refused while the account is attacked
    assert _attempt(throttle, "10.0.0.99", "admin")  # a new address still gets its guess...
    assert _attempt(throttle, USER, "admin", ok=True)  # ...and the real user logs in
    clock.now += ACCOUNT_WINDOW_SECONDS + 1
    assert _attempt(throttle, "10.0.0.1", "admin")


def test_attempts_per_address_and_overall_are_bounded() -> None:
    throttle, clock = _throttle(per_address_per_minute=5, per_minute=8)
    assert all(_attempt(throttle, ATTACKER, f"user-{n}") for n in range(5))  # a new name each time
    assert not _attempt(throttle, ATTACKER, "user-new")
    assert _attempt(throttle, USER, "admin", ok=True)
    assert all(_attempt(throttle, f"10.1.0.{n}", None) for n in range(2))
    with pytest.raises(TooManyRequestsError, match="right now"):
        throttle.admit("10.2.0.1", "admin")  # the replica's overall budget is spent
    clock.now += 12.0  # refills at per_address/60 and per_minute/60 per second
    assert _attempt(throttle, ATTACKER, "user-later")


def test_token_logins_are_limited_per_address() -> None:
    throttle, _ = _throttle()
    assert all(_attempt(throttle, ATTACKER, None) for _ in range(4))
    assert not _attempt(throttle, ATTACKER, None)
    assert _attempt(throttle, USER, None, ok=True)


async def test_password_checks_run_off_the_event_loop_and_at_most_n_at_once(monkeypatch, tmp_path) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"users": [{"username": "admin", "password_hash": "x", "roles": ["admin"]}]}')
    release = threading.Event()
    loop_ran_meanwhile: list[bool] = []

    def slow_check(_password: str, _encoded: str) -> bool:
        release.wait(timeout=10)  # on the loop this would hold everything until the timeout
        return False

    monkeypatch.setattr(identity, "check_password", slow_check)
    local = LocalUsers(str(users), concurrency=1, wait_seconds=0.05)
    try:
        first = asyncio.create_task(local.authenticate("admin", "guess"))
        await asyncio.sleep(0)
        with pytest.raises(TooManyRequestsError):  # the one slot is taken: refused, not queued forever
            await local.authenticate("admin", "guess-2")
        loop_ran_meanwhile.append(not first.done())
        waiting = asyncio.create_task(local.authenticate("admin", "guess-3"))
        await asyncio.sleep(0)
        waiting.cancel()  # a caller that goes away while waiting for a slot must not keep one
        release.set()
        assert await first is None
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for n in range(3):  # the one slot is free again each time: none was lost on the way
            assert await local.authenticate("admin", f"later-{n}") is None
    finally:
        local.close()
    assert loop_ran_meanwhile == [True]
