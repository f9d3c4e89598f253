"""What `GET /api/system/controllers` shows of each controller replica: stale or live, leading or not, and
why. No I/O.

Two sources, neither enough alone: the replicas' own reports (stored by the control plane; a replica killed
with `kill -9` simply stops sending them, and its last one goes on saying "I lead") and the election key in
etcd (`<prefix>/leaders/<service>`: value = the holder's identity, create_revision = its epoch), which is the
truth about who leads but says nothing about loops. So:

- a replica whose last report is older than two of its report intervals is **stale**: it is never shown
  leading, whatever its last report claimed;
- the leader shown is the **holder of the election key**; a live replica is shown leading only if it is that
  holder, and one that claims to lead without holding the key is shown as a follower, with the reason;
- only when etcd cannot be read are the replicas' claims believed (the live claimant of the latest epoch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Report interval assumed for a replica whose report does not carry one (the controllers' default).
DEFAULT_REPORT_INTERVAL_SECONDS = 15.0
#: A report is sent on a one-second tick and travels over HTTP: below this, a slow moment on a loaded host
#: would flag a live replica as stale.
MIN_STALE_AFTER_SECONDS = 2.0


@dataclass(frozen=True)
class StoredReport:
    """The latest report of one replica, as stored, and when the control plane received it."""

    service: str
    identity: str
    report: Mapping[str, Any]
    received_at: datetime

    @property
    def claims_leadership(self) -> bool:
        return self.report.get("is_leader") is True

    @property
    def epoch(self) -> int | None:
        epoch = self.report.get("epoch")
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


@dataclass(frozen=True)
class KeyHolder:
    """Who holds a service's election key in etcd."""

    identity: str
    epoch: int


@dataclass(frozen=True)
class ShownReplica:
    identity: str
    stale: bool
    is_leader: bool
    reason: str
    stale_after_seconds: float


@dataclass(frozen=True)
class ShownService:
    leader: str | None
    leader_epoch: int | None
    replicas: list[tuple[StoredReport, ShownReplica]]


def stale_after(report: Mapping[str, Any]) -> float:
    """Seconds without a report after which a replica is stale: two of its report intervals."""
    interval = report.get("report_interval_seconds")
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval <= 0:
        interval = DEFAULT_REPORT_INTERVAL_SECONDS
    return max(2 * float(interval), MIN_STALE_AFTER_SECONDS)


def _judge(stored: StoredReport, holder: KeyHolder | None, etcd_known: bool, now: datetime) -> ShownReplica:
    limit = stale_after(stored.report)
    age = (now - stored.received_at).total_seconds()
    holds_key = holder is not None and holder.identity == stored.identity
    if age > limit:
        reason = f"no report for {age:.0f}s (stale after {limit:g}s: two report intervals)"
        if holds_key:
            reason += "; it still holds the election key, which expires with its lease"
        return ShownReplica(stored.identity, True, False, reason, limit)
    if not etcd_known:
        reason = "reports leading (etcd unreachable: unverified)" if stored.claims_leadership else "follower"
        return ShownReplica(stored.identity, False, stored.claims_leadership, reason, limit)
    if holder is not None and holds_key:
        return ShownReplica(stored.identity, False, True, f"holds the election key (epoch {holder.epoch})", limit)
    if stored.claims_leadership:
        held = f"is held by {holder.identity} (epoch {holder.epoch})" if holder else "is not held by anyone"
        return ShownReplica(stored.identity, False, False, f"reported leading, but the election key {held}",
                            limit)
    return ShownReplica(stored.identity, False, False, "follower", limit)


def judge_service(reports: Sequence[StoredReport], holder: KeyHolder | None, now: datetime, *,
                  etcd_known: bool = True) -> ShownService:
    """Each replica of one service as shown, and the service's leader: the etcd holder when etcd could be
    read (`etcd_known`), else the live replica claiming the latest epoch."""
    shown = [(stored, _judge(stored, holder, etcd_known, now)) for stored in reports]
    if etcd_known:
        return ShownService(holder.identity if holder else None, holder.epoch if holder else None, shown)
    claimants = [(stored, replica) for stored, replica in shown if replica.is_leader]
    if not claimants:
        return ShownService(None, None, shown)
    # Without etcd two live replicas may both claim (one deposed, not yet reporting it): the later term wins.
    winner, _ = max(claimants, key=lambda pair: (pair[0].epoch or -1, pair[0].identity))
    result = []
    for stored, replica in shown:
        if replica.is_leader and stored is not winner:
            replica = ShownReplica(replica.identity, False, False, f"reported leading, but {winner.identity} "
                                   f"reported a later term (epoch {winner.epoch})", replica.stale_after_seconds)
        result.append((stored, replica))
    return ShownService(winner.identity, winner.epoch, result)
