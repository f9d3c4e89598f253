"""What the alert rules (deploy/prometheus) read of the controllers' reports and of worker licences, as plain
values. No I/O: `application.scrape_readings` fetches, `api.metrics_series` turns these into Prometheus series.

A report's loop figures come from the controllers over the internal API (typed there), but are stored and
read back as JSON: they are re-read defensively here, so that one odd stored report never fails a scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: The lablet-controller's default `LABLET_BOOT_TIMEOUT`: assumed while no replica has reported its own.
DEFAULT_BOOT_TIMEOUT_SECONDS = 900.0

#: CML's licence authorization statuses, folded into a bounded label set (anything else is `other`).
_AUTHORIZATION_CLASSES = {
    "AUTHORIZED": "in_compliance",
    "IN_COMPLIANCE": "in_compliance",
    "OUT_OF_COMPLIANCE": "out_of_compliance",
    "AUTHORIZATION_EXPIRED": "expired",
    "AUTH_EXPIRED": "expired",
    "EVAL_MODE": "evaluation",
    "EVAL_EXPIRED": "expired",
}


def authorization_class(reported: object) -> str:
    """The label of a licence's authorization status as CML reported it: `unknown` when it never said."""
    if not isinstance(reported, str) or not reported:
        return "unknown"
    return _AUTHORIZATION_CLASSES.get(reported.strip().upper(), "other")


@dataclass(frozen=True)
class LoopReading:
    """One loop of one replica, as its latest report gave it."""

    service: str
    identity: str
    loop: str
    running: bool
    interval_seconds: float | None
    runs: int
    failures: int
    consecutive_failures: int
    last_run: datetime | None
    last_success: datetime | None
    started: datetime | None = None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _instant(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def loop_readings(service: str, identity: str, loops: object) -> list[LoopReading]:
    """The loops of one report (its `loops` list); entries without a name are skipped."""
    if not isinstance(loops, list):
        return []
    readings = []
    for raw in loops:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
            continue
        readings.append(LoopReading(
            service=service, identity=identity, loop=raw["name"], running=raw.get("running") is True,
            interval_seconds=_seconds(raw.get("interval_seconds")), runs=_count(raw.get("runs")),
            failures=_count(raw.get("failures")), consecutive_failures=_count(raw.get("consecutive_failures")),
            last_run=_instant(raw.get("last_run")), last_success=_instant(raw.get("last_success")),
            started=_instant(raw.get("started"))))
    return readings


def reported_boot_timeout(reports: Iterable[Mapping[str, Any]]) -> float | None:
    """The boot timeout a lablet-controller reported (a `boot_timeout_seconds` figure of one of its loops), from
    the first report that gives one; None when none does."""
    for report in reports:
        loops = report.get("loops")
        for loop in loops if isinstance(loops, list) else []:
            timeout = _seconds(loop.get("boot_timeout_seconds")) if isinstance(loop, Mapping) else None
            if timeout:
                return timeout
    return None
