"""One telemetry snapshot per host, and many hosts at once (bounded, concurrent, cached).

A host's endpoints are asked concurrently: `system_information` (no auth) alongside one authentication
followed by `system_stats`, `system_health`, `licensing` and `labs` (and, on request, telemetry events).
One failing endpoint (or one whose answer holds nothing readable) leaves its fields None, logs a warning
and is named in `snapshot.errors`; only when
every endpoint failed because the host could not be reached does the collection raise
`CmlUnreachableError` — the worker's health is then "unreachable"; a partial failure makes it "degraded".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lcm_core.cml.errors import CmlError, CmlUnreachableError
from lcm_core.cml.models import SystemInformation
from lcm_core.cml.parsers import (
    last_activity_at,
    parse_lab_ids,
    parse_licensing,
    parse_system_health,
    parse_system_information,
    parse_system_stats,
    parse_telemetry_events,
)
from lcm_core.cml.pool import host_label
from lcm_core.cml.telemetry import CmlSystemHealth, CmlSystemStats
from lcm_core.domain.cml_snapshot import (
    MAX_COMPUTES,
    MAX_LAB_IDS,
    MAX_WARNINGS,
    CmlComputeNode,
    CmlLicenseInfo,
    CmlTelemetrySnapshot,
)

if TYPE_CHECKING:
    from lcm_core.cml.client import CmlClient

logger = logging.getLogger(__name__)

#: Authenticated endpoints of a snapshot: name → (path, query).
_AUTHED: dict[str, tuple[str, dict[str, str] | None]] = {
    "system_stats": ("/system_stats", None),
    "system_health": ("/system_health", None),
    "licensing": ("/licensing", None),
    "labs": ("/labs", {"show_all": "true"}),
}
_EVENTS = ("telemetry_events", ("/telemetry/events", None))

def _stats_usable(stats: CmlSystemStats) -> bool:
    return any(value is not None for value in stats.model_dump(exclude={"computes"}).values())


def _health_usable(health: CmlSystemHealth) -> bool:
    return (health.health_valid is not None or health.controller_valid is not None
            or any(node.healthy is not None for node in health.computes.values()))


def _licensing_usable(licensing: CmlLicenseInfo) -> bool:
    return licensing.registration_status is not None or licensing.authorization_status is not None


def _information_usable(information: SystemInformation) -> bool:
    return information.version is not None or information.ready is not None


#: An answer that parsed but from which none of what it is asked for could be read (a body of another shape,
#: every value null or mistyped) is a failure of that endpoint, not a report of empty values: reported as
#: such, the control plane keeps the last values, marks them stale and degrades the health, instead of
#: replacing them with nothing and calling the host healthy. Unreadable keys among readable ones are not
#: (each costs its own field, with a warning).
_USABLE: dict[str, Any] = {
    "system_stats": _stats_usable,
    "system_health": _health_usable,
    "licensing": _licensing_usable,
    "system_information": _information_usable,
    "labs": lambda lab_ids: lab_ids is not None,
}


def _merge_computes(stats: CmlSystemStats | None, health: CmlSystemHealth | None) -> dict[str, CmlComputeNode]:
    """Union of both endpoints' computes: numbers from `system_stats`, flags from `system_health`."""
    by_stats = stats.computes if stats else {}
    by_health = health.computes if health else {}
    merged: dict[str, CmlComputeNode] = {}
    for cid in [*by_stats, *(c for c in by_health if c not in by_stats)][:MAX_COMPUTES]:
        data: dict[str, Any] = by_stats[cid].model_dump() if cid in by_stats else {"id": cid}
        if cid in by_health:
            for key, value in by_health[cid].model_dump(exclude_none=True).items():
                if data.get(key) is None:
                    data[key] = value
        merged[cid] = CmlComputeNode.model_validate(data)
    return merged


def build_snapshot(
    *,
    host: str | None = None,
    collected_at: datetime | None = None,
    information: SystemInformation | None = None,
    stats: CmlSystemStats | None = None,
    health: CmlSystemHealth | None = None,
    licensing: CmlLicenseInfo | None = None,
    lab_ids: list[str] | None = None,
    last_activity: datetime | None = None,
    errors: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> CmlTelemetrySnapshot:
    """Flatten parsed answers into one snapshot. A part that is None (not asked, or failed) leaves its fields
    None. Warnings beyond `MAX_WARNINGS` and reasons beyond 300 characters are cut: the snapshot travels."""
    warnings = warnings if warnings is not None else []
    if len(warnings) > MAX_WARNINGS:
        warnings = [*warnings[:MAX_WARNINGS - 1], f"... and {len(warnings) - MAX_WARNINGS + 1} more warnings"]
    stats_fields: dict[str, Any] = stats.model_dump(exclude={"computes"}) if stats else {}
    health_fields: dict[str, Any] = health.model_dump(exclude={"computes"}) if health else {}
    snapshot = CmlTelemetrySnapshot(
        host=host,
        collected_at=collected_at,
        version=information.version if information else None,
        ready=information.ready if information else None,
        **stats_fields,
        computes=_merge_computes(stats, health),
        **health_fields,
        license=licensing,
        labs_count=len(lab_ids) if lab_ids is not None else None,
        lab_ids=lab_ids[:MAX_LAB_IDS] if lab_ids is not None else None,
        last_activity_at=last_activity,
        errors={name: why[:300] for name, why in sorted((errors or {}).items())[:16]},
        warnings=[line[:300] for line in warnings],
    )
    return snapshot


async def collect_cml_telemetry(client: CmlClient, host: str, *, include_activity: bool = False,
                                include_information: bool = True, now: datetime | None = None,
                                ) -> CmlTelemetrySnapshot:
    """Ask one host's telemetry endpoints concurrently and return the snapshot (see the module doc).

    `include_activity=True` also reads `/telemetry/events` for `last_activity_at` (idle detection); it is
    off by default because the event list grows with the host's history. `include_information=False` skips
    `system_information` (version and readiness), for a caller that already knows the host is up: `version`
    and `ready` are then None ("not asked"), and the host is unreachable when every endpoint asked was.
    """
    label = host_label(host)
    authed = dict(_AUTHED)
    if include_activity:
        authed[_EVENTS[0]] = _EVENTS[1]
    bodies: dict[str, Any] = {}
    failures: dict[str, CmlError] = {}

    async def fetch(name: str, path: str, *, auth: bool = True, params: dict[str, str] | None = None) -> None:
        try:
            bodies[name] = await client.get_json(host, path, auth=auth, params=params)
        except CmlError as exc:
            failures[name] = exc

    async def authenticated() -> None:
        try:
            await client.ensure_token(host)
        except CmlError as exc:  # one authentication failure, not one per endpoint
            failures.update(dict.fromkeys(authed, exc))
            return
        async with asyncio.TaskGroup() as group:
            for name, (path, params) in authed.items():
                group.create_task(fetch(name, path, params=params))

    async with asyncio.TaskGroup() as group:
        if include_information:
            group.create_task(fetch("system_information", "/system_information", auth=False))
        group.create_task(authenticated())

    asked = len(authed) + (1 if include_information else 0)
    if len(failures) == asked and all(isinstance(e, CmlUnreachableError) for e in failures.values()):
        raise failures.get("system_information") or next(iter(failures.values()))
    for exc in {id(e): e for e in failures.values()}.values():
        names = ", ".join(name for name, e in failures.items() if e is exc)
        logger.warning("CML %s: %s failed (%s: %s); those fields are left empty",
                       label, names, type(exc).__name__, exc.message)

    warnings: list[str] = []
    errors = {name: f"{type(exc).__name__}: {exc.message}"[:300] for name, exc in failures.items()}

    def parsed(name: str, parse: Any, **kwargs: Any) -> Any:
        if name not in bodies:
            return None
        value = parse(bodies[name], host=label, warnings=warnings, **kwargs)
        usable = _USABLE.get(name)
        if usable is not None and not usable(value):
            errors[name] = "malformed answer: none of its values could be read"
            logger.warning("CML %s: %s answered, but none of its values could be read; those fields are left "
                           "empty", label, name)
            return None
        return value

    events = parsed("telemetry_events", parse_telemetry_events)
    return build_snapshot(
        host=label,
        collected_at=now or datetime.now(UTC),
        information=parsed("system_information", parse_system_information),
        stats=parsed("system_stats", parse_system_stats),
        health=parsed("system_health", parse_system_health),
        licensing=parsed("licensing", parse_licensing, base_nodes_by_product=client.base_nodes_by_product),
        lab_ids=parsed("labs", parse_lab_ids),
        last_activity=last_activity_at(events) if events is not None else None,
        errors=errors,
        warnings=warnings,
    )


async def _as_async(hosts: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(hosts, AsyncIterable):
        async for host in hosts:
            yield host
    else:
        for host in hosts:
            yield host


async def iter_fleet_telemetry(client: CmlClient, hosts: Iterable[str] | AsyncIterable[str], *,
                               include_activity: bool | Collection[str] = False, max_hosts: int = 50,
                               without_information: Collection[str] = (),
                               ) -> AsyncIterator[tuple[str, CmlTelemetrySnapshot | CmlError]]:
    """Yield `(host, snapshot or error)` for every host, in completion order.

    `hosts` may be an async iterable: hosts are collected as they arrive (e.g. while discovery is still
    listing instances) and the iteration ends once it is exhausted and every host has answered. A host
    given twice is collected once. `include_activity`: True for every host, or the hosts whose activity is
    asked (membership checked when a host's collection starts, like `without_information`). Hosts in
    `without_information` are collected without
    `system_information` (see `collect_cml_telemetry`); membership is checked when a host's collection
    starts, so the collection may still be added to as hosts arrive.

    At most `max_hosts` hosts are collected at once, so results stream out in waves instead of all 2,000
    hosts progressing together and finishing together (the client's own limits still bound requests).
    Leaving the loop early, or a failing `hosts` iterable, cancels the collections still running.
    """
    gate = asyncio.Semaphore(max_hosts)

    def asks_activity(host: str) -> bool:
        return include_activity if isinstance(include_activity, bool) else host in include_activity

    results: asyncio.Queue[tuple[str, CmlTelemetrySnapshot | CmlError] | BaseException | None] = asyncio.Queue()
    tasks: list[asyncio.Task[None]] = []

    async def one(host: str) -> None:
        async with gate:
            try:
                results.put_nowait((host, await collect_cml_telemetry(
                    client, host, include_activity=asks_activity(host),
                    include_information=host not in without_information)))
            except CmlError as exc:
                results.put_nowait((host, exc))

    async def feed() -> None:
        try:
            seen: set[str] = set()
            async for host in _as_async(hosts):
                if host not in seen:
                    seen.add(host)
                    tasks.append(asyncio.create_task(one(host)))
        except Exception as exc:  # handed to the consumer, which raises it
            results.put_nowait(exc)
        else:
            results.put_nowait(None)  # every host is known: the iteration ends with the last answer

    feeder = asyncio.create_task(feed())
    answered, fed = 0, False
    try:
        while not fed or answered < len(tasks):
            item = await results.get()
            if item is None:
                fed = True
            elif isinstance(item, BaseException):
                raise item
            else:
                answered += 1
                yield item
    finally:
        feeder.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(feeder, *tasks, return_exceptions=True)


async def collect_fleet_telemetry(client: CmlClient, hosts: Iterable[str], *, include_activity: bool = False,
                                  max_hosts: int = 50) -> dict[str, CmlTelemetrySnapshot | CmlError]:
    """Every host's snapshot (or the error that prevented it), keyed by the host as given."""
    return {host: result async for host, result in
            iter_fleet_telemetry(client, hosts, include_activity=include_activity, max_hosts=max_hosts)}
