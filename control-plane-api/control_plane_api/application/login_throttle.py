"""Login throttling that slows an attacker down without letting them lock a real user out.

Four rules, checked before any password is hashed:

- per account and client address: a few failures are free, then each further failure doubles the wait
  before that pair may try again (a success clears it). Guessing from one address becomes slow, and only
  the guessing address is slowed;
- per account, across addresses: after many failures in a window, an address that has *itself* failed for
  the account is refused until the window passes. Spreading guesses over many addresses then buys one guess
  per address, while an address that never failed (the real user) is never refused by this rule;
- per client address: a token bucket over every login attempt, password or bearer token alike;
- overall: a token bucket over every login attempt of this replica, which bounds the CPU spent hashing.

The state lives in memory, per CPA replica: behind a load balancer with N replicas an attacker gets at most N
times the allowance. Each table is bounded; its least recently used entries are dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from lcm_core.errors import TooManyRequestsError

ACCOUNT_WINDOW_SECONDS = 15 * 60.0
#: Upper bound on each table's entries (a few hundred bytes each), so a flood of new names cannot exhaust memory.
MAX_ENTRIES = 100_000
TOKEN_LOGIN = "\x00token"  # noqa: S105 - a table key, not a secret
"""The account key of bearer-token logins: they are throttled per address, never per claimed identity."""

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class LoginLimits:
    per_address_per_minute: int = 20
    per_minute: int = 600
    free_failures: int = 3
    max_backoff_seconds: float = 900.0
    account_failures: int = 50


class _Table(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond `MAX_ENTRIES`."""

    def __init__(self, factory: Callable[[], V], max_entries: int = MAX_ENTRIES) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._factory = factory
        self._max = max_entries

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def setdefault(self, key: K) -> V:
        value = self.get(key)
        if value is None:
            value = self._items[key] = self._factory()
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return value

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _Bucket:
    tokens: float
    at: float

    def take(self, now: float, capacity: int, per_second: float) -> float:
        """Take one token; 0 when given, else the seconds until one is available."""
        self.tokens = min(capacity, self.tokens + (now - self.at) * per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / per_second


@dataclass
class _Failures:
    count: int = 0
    retry_at: float = 0.0
    last: float = 0.0


@dataclass
class _AccountFailures:
    times: deque[float] = field(default_factory=deque)


class LoginThrottle:
    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._pairs: _Table[tuple[str, str], _Failures] = _Table(_Failures)
        self._accounts: _Table[str, _AccountFailures] = _Table(_AccountFailures)
        self._addresses: _Table[str, _Bucket] = _Table(lambda: _Bucket(limits.per_address_per_minute, clock()))
        self._overall = _Bucket(limits.per_minute, clock())

    def admit(self, address: str, account: str | None) -> None:
        """Let one login attempt through, or raise `TooManyRequestsError` (with the seconds to wait)."""
        now = self._clock()
        key = account if account is not None else TOKEN_LOGIN
        pair = self._pairs.get((key, address))
        if pair is not None and now < pair.retry_at:
            raise TooManyRequestsError("too many failed logins from this address; wait before retrying",
                                       retry_after_seconds=pair.retry_at - now)
        if account is not None and pair is not None and pair.count > 0:
            recent = self._recent_account_failures(account, now)
            if recent is not None and len(recent) >= self.limits.account_failures:
                raise TooManyRequestsError("this account is under attack; logins from addresses that failed "
                                           "for it are refused for a while",
                                           retry_after_seconds=recent[0] + ACCOUNT_WINDOW_SECONDS - now)
        per_address = self.limits.per_address_per_minute
        wait = self._addresses.setdefault(address).take(now, per_address, per_address / 60.0)
        if wait:
            raise TooManyRequestsError("too many logins from this address; wait before retrying",
                                       retry_after_seconds=wait)
        wait = self._overall.take(now, self.limits.per_minute, self.limits.per_minute / 60.0)
        if wait:
            raise TooManyRequestsError("too many logins right now; retry shortly", retry_after_seconds=wait)

    def failed(self, address: str, account: str | None) -> None:
        now = self._clock()
        key = account if account is not None else TOKEN_LOGIN
        pair = self._pairs.setdefault((key, address))
        if pair.count and now - pair.last > self.limits.max_backoff_seconds + ACCOUNT_WINDOW_SECONDS:
            pair.count = 0  # old typos are forgiven: the backoff starts again from the free failures
        pair.count += 1
        pair.last = now
        beyond = pair.count - self.limits.free_failures
        if beyond > 0:
            pair.retry_at = now + min(self.limits.max_backoff_seconds, 2.0 ** (beyond - 1))
        if account is not None:
            times = self._accounts.setdefault(account).times
            times.append(now)
            while len(times) > self.limits.account_failures:
                times.popleft()

    def succeeded(self, address: str, account: str | None) -> None:
        self._pairs.pop((account if account is not None else TOKEN_LOGIN, address))

    def _recent_account_failures(self, account: str, now: float) -> deque[float] | None:
        entry = self._accounts.get(account)
        if entry is None:
            return None
        while entry.times and now - entry.times[0] > ACCOUNT_WINDOW_SECONDS:
            entry.times.popleft()
        return entry.times
