"""Key-by-key parsers of the CML telemetry answers (docs/worker-controller.md, 'CML telemetry').

Why not plain pydantic validation: one wrong key would reject the whole answer, and the worker would report
nothing of it. Here every key is read on its own: a missing, null or mistyped key
yields None and one warning that names the key's path (`all.cpu.count`), and a body of the wrong top-level
type yields an empty model with one warning. Nothing in this module raises on bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from lcm_core.cml.models import SystemInformation, TelemetryEvent
from lcm_core.cml.reading import (
    BadValue,
    Reader,
    as_bool,
    as_bytes,
    as_count,
    as_number,
    as_numbers,
    as_str,
    as_timestamp,
    parse_cml_timestamp,
    shown,
)
from lcm_core.cml.telemetry import (
    COMPUTE_HEALTH_FLAGS,
    CmlComputeNode,
    CmlLicenseFeature,
    CmlLicenseInfo,
    CmlSystemHealth,
    CmlSystemStats,
)
from lcm_core.domain.cml_snapshot import MAX_COMPUTES, MAX_FEATURES

__all__ = [
    "ACTIVITY_CATEGORIES", "BASE_NODES_BY_PRODUCT", "is_node_count_feature", "last_activity_at",
    "parse_cml_timestamp", "parse_lab_ids", "parse_licensing", "parse_system_health",
    "parse_system_information", "parse_system_stats", "parse_telemetry_events",
]

#: Nodes included with each product license before any "Expansion Node License" count (cloud-cml's flavors:
#: Personal 20, Personal Plus 40; Enterprise and Education base licenses include 20). Unknown products give
#: `node_limit = None` rather than a guess.
BASE_NODES_BY_PRODUCT: Mapping[str, int] = {
    "CML_Personal": 20,
    "CML_Personal40": 40,
    "CML_Enterprise": 20,
    "CML_Education": 20,
}

#: Telemetry event categories that mean "a person did something" (idle detection). Periodic system
#: categories (system_stats, running_nodes, cpuinfo, license_info, ...) are deliberately not activity.
ACTIVITY_CATEGORIES: frozenset[str] = frozenset({
    "start_lab", "stop_lab", "queue_node", "stop_node", "start_node", "boot_node", "wipe_node",
    "packet_capture", "user_activity", "import_lab", "export_lab",
})


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def _sum(values: Iterable[int | None]) -> int | None:
    """Cluster total of a per-compute number: None if there is no compute or any compute lacks it."""
    items = list(values)
    if not items or any(item is None for item in items):
        return None
    return sum(item for item in items if item is not None)


def parse_system_information(body: Any, *, host: str | None = None,
                             warnings: list[str] | None = None) -> SystemInformation:
    """`GET /system_information` → version and readiness (no auth needed)."""
    r = Reader("system_information", host, warnings)
    if not r.top(body, dict):
        return SystemInformation()
    return SystemInformation(
        version=r.get(body, "", "version", as_str),
        ready=r.get(body, "", "ready", as_bool),
        allow_ssh_pubkey_auth=r.get(body, "", "allow_ssh_pubkey_auth", as_bool, optional=True),
        oui=r.get(body, "", "oui", as_str, nullable=True, optional=True),
    )


def _disk_or_memory(r: Reader, parent: dict[str, Any] | None, path: str, key: str) -> dict[str, int | None]:
    section = r.obj(parent, path, key)
    where = _join(path, key)
    return {name: r.get(section, where, name, as_bytes) for name in ("total", "free", "used")}


def _compute_stats(r: Reader, cid: str, entry: dict[str, Any]) -> CmlComputeNode:
    base = f"computes.{cid}"
    stats = r.obj(entry, base, "stats")
    spath = f"{base}.stats"
    cpu = r.obj(stats, spath, "cpu")
    cpath = f"{spath}.cpu"
    memory = _disk_or_memory(r, stats, spath, "memory")
    disk = _disk_or_memory(r, stats, spath, "disk")
    dominfo = r.obj(stats, spath, "dominfo")
    dpath = f"{spath}.dominfo"
    return CmlComputeNode(
        id=cid,
        hostname=r.get(entry, base, "hostname", as_str),
        is_controller=r.get(entry, base, "is_controller", as_bool),
        cpu_count=r.get(cpu, cpath, "count", as_count),
        cpu_percent=r.get(cpu, cpath, "percent", as_number),
        cpu_model=r.get(cpu, cpath, "model", as_str),
        cpu_predicted=r.get(cpu, cpath, "predicted", as_count),
        cpu_load=r.get(cpu, cpath, "load", as_numbers),
        memory_total=memory["total"], memory_free=memory["free"], memory_used=memory["used"],
        disk_total=disk["total"], disk_free=disk["free"], disk_used=disk["used"],
        allocated_cpus=r.get(dominfo, dpath, "allocated_cpus", as_count),
        allocated_memory=r.get(dominfo, dpath, "allocated_memory", as_count),
        total_nodes=r.get(dominfo, dpath, "total_nodes", as_count, nullable=True),
        total_orphans=r.get(dominfo, dpath, "total_orphans", as_count, nullable=True),
        running_nodes=r.get(dominfo, dpath, "running_nodes", as_count, nullable=True),
        running_orphans=r.get(dominfo, dpath, "running_orphans", as_count, nullable=True),
    )


def _compute_entries(r: Reader, body: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """`computes` as (id, entry) pairs; a non-object entry is reported and kept as None (counts as unknown)."""
    computes = r.obj(body, "", "computes")
    if computes is None:
        return []
    out: list[tuple[str, dict[str, Any] | None]] = []
    for cid, entry in computes.items():
        if len(out) == MAX_COMPUTES:
            r.warn("computes", f"has more than {MAX_COMPUTES} entries; the rest are left out")
            break
        try:
            as_str(cid)
        except BadValue as exc:
            r.warn("computes", f"has an id that {exc} (left out)")
            continue
        if isinstance(entry, dict):
            out.append((cid, entry))
        else:
            r.warn(f"computes.{cid}", f"is not an object ({type(entry).__name__})")
            out.append((cid, None))
    return out


def parse_system_stats(body: Any, *, host: str | None = None,
                       warnings: list[str] | None = None) -> CmlSystemStats:
    """`GET /system_stats`: `all.*` totals, `controller.disk.*`, per-compute stats and dominfo.

    `allocated_*`, `*_nodes` and `*_orphans` exist only per compute (`dominfo`); the cluster value is their
    sum, and None when any compute does not report it (a partial sum would understate the load).
    """
    r = Reader("system_stats", host, warnings)
    if not r.top(body, dict):
        return CmlSystemStats()
    all_ = r.obj(body, "", "all")
    cpu = r.obj(all_, "all", "cpu")
    memory = _disk_or_memory(r, all_, "all", "memory")
    disk = _disk_or_memory(r, all_, "all", "disk")
    controller_disk = _disk_or_memory(r, r.obj(body, "", "controller"), "controller", "disk")

    entries = _compute_entries(r, body)
    computes = {cid: _compute_stats(r, cid, entry) for cid, entry in entries if entry is not None}
    nodes: list[CmlComputeNode | None] = [computes.get(cid) for cid, _ in entries]

    def total(field: str) -> int | None:
        return _sum(getattr(node, field) if node is not None else None for node in nodes)

    return CmlSystemStats(
        all_cpu_count=r.get(cpu, "all.cpu", "count", as_count),
        all_cpu_percent=r.get(cpu, "all.cpu", "percent", as_number),
        all_memory_total=memory["total"], all_memory_free=memory["free"], all_memory_used=memory["used"],
        all_disk_total=disk["total"], all_disk_free=disk["free"], all_disk_used=disk["used"],
        controller_disk_total=controller_disk["total"], controller_disk_free=controller_disk["free"],
        controller_disk_used=controller_disk["used"],
        allocated_cpus=total("allocated_cpus"), allocated_memory=total("allocated_memory"),
        total_nodes=total("total_nodes"), total_orphans=total("total_orphans"),
        running_nodes=total("running_nodes"), running_orphans=total("running_orphans"),
        computes=computes,
    )


def parse_system_health(body: Any, *, host: str | None = None,
                        warnings: list[str] | None = None) -> CmlSystemHealth:
    """`GET /system_health`: overall validity, licence flags, controller and per-compute health."""
    r = Reader("system_health", host, warnings)
    if not r.top(body, dict):
        return CmlSystemHealth()
    controller = r.obj(body, "", "controller")
    computes: dict[str, CmlComputeNode] = {}
    for cid, entry in _compute_entries(r, body):
        if entry is None:
            continue
        base = f"computes.{cid}"
        flags: dict[str, Any] = {flag: r.get(entry, base, flag, as_bool, nullable=flag != "lld_connected")
                                 for flag in COMPUTE_HEALTH_FLAGS}
        computes[cid] = CmlComputeNode(
            id=cid,
            hostname=r.get(entry, base, "hostname", as_str),
            is_controller=r.get(entry, base, "is_controller", as_bool),
            admission_state=r.get(entry, base, "admission_state", as_str),
            **flags,
        )
    return CmlSystemHealth(
        health_valid=r.get(body, "", "valid", as_bool, nullable=True),
        is_licensed=r.get(body, "", "is_licensed", as_bool, nullable=True),
        is_enterprise=r.get(body, "", "is_enterprise", as_bool),
        controller_core_connected=r.get(controller, "controller", "core_connected", as_bool),
        controller_nodes_loaded=r.get(controller, "controller", "nodes_loaded", as_bool),
        controller_images_loaded=r.get(controller, "controller", "images_loaded", as_bool),
        controller_valid=r.get(controller, "controller", "valid", as_bool),
        computes=computes,
    )


def _features(r: Reader, body: dict[str, Any]) -> list[CmlLicenseFeature] | None:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise BadValue(f"is not a list ({type(value).__name__})")
        return value

    items = r.get(body, "", "features", convert)
    if items is None:
        return None
    features: list[CmlLicenseFeature] = []
    for index, item in enumerate(items):
        path = f"features[{index}]"
        if len(features) == MAX_FEATURES:
            r.warn("features", f"has more than {MAX_FEATURES} entries; the rest are left out")
            break
        if not isinstance(item, dict):
            r.warn(path, f"is not an object ({type(item).__name__})")
            continue
        features.append(CmlLicenseFeature(
            id=r.get(item, path, "id", as_str, optional=True),
            name=r.get(item, path, "name", as_str),
            status=r.get(item, path, "status", as_str, nullable=True),
            in_use=r.get(item, path, "in_use", as_count),
            min=r.get(item, path, "min", as_count, optional=True),
            max=r.get(item, path, "max", as_count),
        ))
    return features


def is_node_count_feature(feature: CmlLicenseFeature) -> bool:
    """The feature that adds nodes: id `regid…CML_NODE_COUNT…` or a name like "CML - Expansion Node License"."""
    if feature.id and "CML_NODE_COUNT" in feature.id.upper():
        return True
    return feature.name is not None and "node" in feature.name.lower()


def parse_licensing(body: Any, *, host: str | None = None, warnings: list[str] | None = None,
                    base_nodes_by_product: Mapping[str, int] = BASE_NODES_BY_PRODUCT) -> CmlLicenseInfo:
    """`GET /licensing` flattened, with `node_limit` from the node-count feature.

    `node_limit` = base nodes of the active product + the node-count feature's `max` (that is, the
    "Expansion Node License" entitlement; never the sum of every feature's `max`, which would
    count the base licence itself as a node). The feature's `in_use` (nodes currently requested from the
    smart account) is kept as `expansion_nodes` for operators who size by it. None while the host is not
    registered (the template's unlicensed limit applies) or when the product is unknown.
    """
    r = Reader("licensing", host, warnings)
    if not r.top(body, dict):
        return CmlLicenseInfo()
    registration = r.obj(body, "", "registration")
    authorization = r.obj(body, "", "authorization")
    product = r.obj(body, "", "product_license")
    udi = r.obj(body, "", "udi", optional=True)
    info = CmlLicenseInfo(
        registration_status=r.get(registration, "registration", "status", as_str),
        authorization_status=r.get(authorization, "authorization", "status", as_str),
        registration_expires=r.get(registration, "registration", "expires", as_timestamp, nullable=True),
        authorization_expires=r.get(authorization, "authorization", "expires", as_timestamp, nullable=True),
        smart_account=r.get(registration, "registration", "smart_account", as_str, nullable=True),
        virtual_account=r.get(registration, "registration", "virtual_account", as_str, nullable=True),
        product_license=r.get(product, "product_license", "active", as_str),
        is_enterprise=r.get(product, "product_license", "is_enterprise", as_bool),
        reservation_mode=r.get(body, "", "reservation_mode", as_bool, optional=True),
        udi_hostname=r.get(udi, "udi", "hostname", as_str, nullable=True, optional=True),
        features=_features(r, body),
    )
    node_features = [f for f in info.features or [] if is_node_count_feature(f)]
    if node_features:
        info.expansion_nodes = node_features[0].in_use
        info.expansion_nodes_max = node_features[0].max
    elif info.features is not None:
        info.expansion_nodes = 0
    if info.product_license is not None:
        info.base_nodes = base_nodes_by_product.get(info.product_license)
        if info.base_nodes is None:
            r.warn("product_license.active", f"is an unknown product ({shown(info.product_license)}), "
                                             "so node_limit is unknown")
    if info.registered and info.base_nodes is not None and info.features is not None:
        info.node_limit = info.base_nodes + (info.expansion_nodes_max or 0)
    return info


def parse_lab_ids(body: Any, *, host: str | None = None, warnings: list[str] | None = None) -> list[str] | None:
    """`GET /labs` → the lab UUIDs; non-string items are reported and dropped."""
    r = Reader("labs", host, warnings)
    if not r.top(body, list):
        return None
    ids = []
    for index, item in enumerate(body):
        try:
            ids.append(as_str(item))
        except BadValue as exc:
            r.warn(f"[{index}]", f"is not a lab id: it {exc}")
    return ids


def parse_telemetry_events(body: Any, *, host: str | None = None,
                           warnings: list[str] | None = None) -> list[TelemetryEvent]:
    """`GET /telemetry/events` → events; a malformed event is reported and skipped."""
    r = Reader("telemetry_events", host, warnings)
    if not r.top(body, list):
        return []
    events = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            r.warn(f"[{index}]", f"is not an object ({type(item).__name__})")
            continue
        category = r.get(item, f"[{index}]", "category", as_str)
        timestamp = r.get(item, f"[{index}]", "timestamp", as_timestamp)
        data = item.get("data")
        if category is not None and timestamp is not None:
            events.append(TelemetryEvent(category=category, timestamp=timestamp,
                                         data=data if isinstance(data, dict) else {}))
    return events


def last_activity_at(events: Iterable[TelemetryEvent],
                     categories: frozenset[str] = ACTIVITY_CATEGORIES) -> datetime | None:
    """Latest timestamp of a user-activity event (idle detection), in UTC; None when there is none."""
    stamps = [
        (e.timestamp if e.timestamp.tzinfo else e.timestamp.replace(tzinfo=UTC)).astimezone(UTC)
        for e in events if e.category in categories
    ]
    return max(stamps, default=None)
