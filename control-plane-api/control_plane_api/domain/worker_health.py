"""Pure rules of a worker's honest health: which telemetry is stale, when an alert opens or closes, and what
operators are told about it. No I/O; `WorkerTelemetry` applies them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from enum import StrEnum

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.reports import CmlReport
from control_plane_api.domain.worker_state import StaleSource, Telemetry
from lcm_core.domain.enums import HealthStatus

#: The key of `Telemetry.stale` while the whole CML API is unreachable; one endpoint is `cml.<endpoint>`.
CML_API = "cml"
#: The entry of `active_alerts` while a health alert (unreachable or critical) is open.
HEALTH_ALERT = "health"
#: Health levels an operator is alerted about.
ALERTING_HEALTH = frozenset({HealthStatus.CRITICAL, HealthStatus.UNREACHABLE})


def _is_cml(key: str) -> bool:
    return key == CML_API or key.startswith(f"{CML_API}.")


def track_stale(stale: Mapping[str, StaleSource], cml: CmlReport | None, at: datetime) -> dict[str, StaleSource]:
    """The stale sources after a metrics report that `at` collected.

    No CML section: nothing was learned about CML (e.g. a worker without an address), everything stays as it
    was. Unreachable: all of CML is stale (`cml`), and the endpoints already failing stay failing. Reachable:
    the endpoints it names as failed are stale, the others answered (or were not asked because they had
    answered) and are fresh. A source failing again keeps the time it started failing."""
    if cml is None:
        return dict(stale)
    if cml.reachable:
        failing: dict[str, str | None] = {f"{CML_API}.{name}": why for name, why in cml.failed.items()}
        kept = {key: value for key, value in stale.items() if not _is_cml(key)}
    else:
        failing = {CML_API: cml.error}
        kept = dict(stale)
    for key, why in failing.items():
        before = stale.get(key)
        kept[key] = StaleSource(since=before.since if before else at, error=why)
    return kept


def stale_metrics(telemetry: Telemetry) -> frozenset[str]:
    """The utilisation metrics whose value is the last one read, not a current one."""
    if not {CML_API, f"{CML_API}.system_stats"} & telemetry.stale.keys():
        return frozenset()
    return frozenset({"memory", "disk", *(["cpu"] if telemetry.cpu_source == "cml" else [])})


def threshold_transitions(
    active: Collection[str], violations: Mapping[str, tuple[float, float]],
    readings: Mapping[str, tuple[float | None, float]], stale: Collection[str],
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """(raised, cleared) threshold alerts, each {metric: (value, threshold)}.

    An alert is raised when a metric crosses its threshold (not on every cycle it stays above) and cleared
    when a current value is back at or below it. A stale value neither raises nor clears (it says nothing
    new), and an unknown one does not clear (unknown is not "back to normal")."""
    raised = {m: vt for m, vt in violations.items() if m not in active and m not in stale}
    cleared: dict[str, tuple[float, float]] = {}
    for metric in active:
        value, limit = readings.get(metric, (None, 0.0))
        if value is not None and metric not in stale and metric not in violations:
            cleared[metric] = (value, limit)
    return raised, cleared


class HealthAlert(StrEnum):
    RAISED = "raised"
    RECOVERED = "recovered"


def health_alert(old: HealthStatus, new: HealthStatus, *, open_: bool, serving: bool) -> HealthAlert | None:
    """Whether a health change opens an alert, closes the open one, or neither.

    Critical always alerts. Unreachable alerts when the worker was serving (its CML available) or an alert
    is already open: a worker whose CML is still booting after a start is not "becoming unreachable", and
    every start would otherwise page. Leaving the alerting levels closes an open alert (also to `unknown`
    when the worker is stopped: the operator hears how it ended)."""
    if new is old:
        return None
    if new is HealthStatus.CRITICAL or (new is HealthStatus.UNREACHABLE and (serving or open_)):
        return HealthAlert.RAISED
    if open_ and new not in ALERTING_HEALTH:
        return HealthAlert.RECOVERED
    return None


#: Notifications that report a problem (logged as warnings); the others report its end.
ALERTING_EVENTS = frozenset({ev.WORKER_ALERT_RAISED, ev.WORKER_HEALTH_ALERT})


def notification(event: DomainEvent) -> str | None:
    """The webhook text of an alert event (None for any other event)."""
    d = event.data
    name = d.get("worker_name") or d.get("worker_id")
    if event.type == ev.WORKER_ALERT_RAISED:
        return f"LCM alert: worker {name} {d['metric']} at {d['value']:.1f}% exceeds {d['threshold']:g}%"
    if event.type == ev.WORKER_ALERT_CLEARED:
        return (f"LCM: worker {name} {d['metric']} back to {d['value']:.1f}% (threshold {d['threshold']:g}%): "
                "alert cleared")
    reasons = "; ".join(d.get("reasons") or [])
    if event.type == ev.WORKER_HEALTH_ALERT:
        return f"LCM alert: worker {name} is {d['health']}" + (f": {reasons}" if reasons else "")
    if event.type == ev.WORKER_HEALTH_RECOVERED:
        return (f"LCM: worker {name} is no longer {d['previous_health']}, now {d['health']}"
                + (f" ({reasons})" if reasons else ""))
    return None
