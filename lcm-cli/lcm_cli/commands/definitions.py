"""`lcm definitions list|show|create|observations|apply`: `/api/lablet-definitions`."""

from __future__ import annotations

import argparse
from typing import Any

from lcm_cli import render
from lcm_cli.commands.common import (
    Context,
    Subparsers,
    UsageError,
    bounded_int,
    command,
    csv,
    group,
    paging,
    positive_float,
    read_bounded,
    seg,
)
from lcm_core.domain.lablets import LabletDefinitionStatus, ResourceRequirements

HEADERS = ["ID", "NAME", "VERSION", "STATUS", "TRACK", "CPU", "MEM_GB", "STORAGE_GB", "MAX_MIN", "REVIEW"]
#: The API bounds a topology at this many characters (`LongText`); a larger file is refused before sending.
MAX_TOPOLOGY_BYTES = 1_000_000


def definitions_table(items: list[dict[str, Any]]) -> str:
    rows = []
    for d in items:
        needs = ResourceRequirements.model_validate(d.get("resource_requirements") or {})
        rows.append([d.get("id"), d.get("name"), d.get("version"), d.get("status"), d.get("lab_track"),
                     needs.cpu_cores, needs.memory_gb, needs.storage_gb, d.get("max_duration_minutes"),
                     d.get("observation_review")])
    return render.table(HEADERS, rows)


def _list(ctx: Context, args: argparse.Namespace) -> int:
    page = ctx.api.get("/api/lablet-definitions", status=csv(args.status), lab_track=args.track,
                       limit=args.limit, offset=args.offset)
    ctx.emit_page(page, "definitions", definitions_table)
    return 0


DETAIL = ["id", "name", "version", "status", "lab_track", "topology_title", "max_duration_minutes",
          "license_affinity", "description", "observation_review", "review_reason", "created_by", "created_at",
          "updated_at"]


def detail(definition: dict[str, Any]) -> str:
    pairs: list[tuple[str, Any]] = [(key, definition.get(key)) for key in DETAIL]
    for key in ("resource_requirements", "estimated_requirements"):
        needs = definition.get(key) or {}
        pairs.append((key, ", ".join(f"{k}={v}" for k, v in needs.items() if v is not None)))
    pairs.append(("ports", ", ".join(str(p.get("name")) for p in definition.get("port_template") or [])))
    return render.fields(pairs)


def _show(ctx: Context, args: argparse.Namespace) -> int:
    definition = ctx.api.get(f"/api/lablet-definitions/{seg(args.definition_id)}", version=args.version)
    ctx.emit(definition, lambda: detail(definition))
    return 0


def read_topology(source: str) -> str:
    """The topology file (`-`: stdin) as UTF-8 text, read up to its bound."""
    raw = read_bounded(source, MAX_TOPOLOGY_BYTES, "the topology")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"the topology {source} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _create(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "lab_topology_yaml": read_topology(args.topology),
                            "max_duration_minutes": args.max_duration, "activate": args.activate}
    if args.track:
        body["lab_track"] = args.track
    if args.license_affinity:
        body["license_affinity"] = (csv(args.license_affinity) or "").split(",")
    if args.description:
        body["description"] = args.description
    declared = {k: v for k, v in (("cpu_cores", args.cpu), ("memory_gb", args.memory),
                                  ("storage_gb", args.storage)) if v is not None}
    if declared:
        body["resource_requirements"] = declared
    definition = ctx.api.post("/api/lablet-definitions", body)
    ctx.emit(definition, lambda: f"definition {definition['id']} created: {definition['name']} "
                                 f"version {definition['version']}, {definition['status']}")
    return 0


OBSERVED = ["cpu_cores", "memory_gb", "storage_gb", "node_count"]


def observations(found: dict[str, Any]) -> str:
    declared, estimated = found.get("declared") or {}, found.get("estimated") or {}
    head = render.fields([("definition", found.get("definition_id")), ("version", found.get("version")),
                          ("sessions_observed", found.get("sessions_observed")),
                          ("port_drift_sessions", found.get("port_drift_sessions")),
                          ("latest_observed_at", found.get("latest_observed_at")),
                          ("observation_review", found.get("observation_review")),
                          ("review_reason", found.get("review_reason"))])
    rows = []
    for name in OBSERVED:
        stats = found.get(name) or {}
        rows.append([name, declared.get(name), estimated.get(name), stats.get("max"), stats.get("avg"),
                     stats.get("latest")])
    return head + "\n\n" + render.table(["RESOURCE", "DECLARED", "ESTIMATED", "MAX", "AVG", "LATEST"], rows)


def _observations(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.get(f"/api/lablet-definitions/{seg(args.definition_id)}/resource-observations")
    ctx.emit(found, lambda: observations(found))
    return 0


def _apply(ctx: Context, args: argparse.Namespace) -> int:
    if args.cpu is None and args.memory is None and args.storage is None:
        raise UsageError("give at least one of --cpu, --memory, --storage")
    path = f"/api/lablet-definitions/{seg(args.definition_id)}"
    # The change is guarded by the version read: without --version, the current one (a concurrent change
    # between this read and the apply is still refused with 409).
    version = args.version or ctx.api.get(path)["version"]
    body: dict[str, Any] = {"version": version}
    for key, value in (("cpu_cores", args.cpu), ("memory_gb", args.memory), ("storage_gb", args.storage)):
        if value is not None:
            body[key] = value
    definition = ctx.api.post(f"{path}/apply-observations", body)
    ctx.emit(definition, lambda: f"definition {definition['id']} is now version {definition['version']}: "
                                 + ", ".join(f"{k}={v}" for k, v in
                                             (definition.get("resource_requirements") or {}).items()
                                             if v is not None))
    return 0


def register(root: Subparsers) -> None:
    sub = group(root, "definitions", "lablet definitions: list, inspect, create, observed resources, apply them")

    listing = command(sub, "list", "list lablet definitions", _list)
    listing.add_argument("--status", action="append", metavar="STATUS",
                         help=f"only these statuses: {', '.join(LabletDefinitionStatus)}")
    listing.add_argument("--track", metavar="TRACK", help="only this lab track")
    paging(listing)

    show = command(sub, "show", "a definition's detail", _show)
    show.add_argument("definition_id")
    show.add_argument("--version", type=bounded_int(1, 1_000_000), help="an older version")

    create = command(sub, "create", "create a definition from a CML lab topology (YAML)", _create)
    create.add_argument("--name", required=True)
    create.add_argument("--topology", required=True, metavar="FILE", help="the lab's YAML ('-' reads stdin)")
    create.add_argument("--track", metavar="TRACK", help="the lab track it belongs to")
    create.add_argument("--license-affinity", action="append", metavar="LICENCE", help="preferred licences")
    create.add_argument("--max-duration", type=bounded_int(5, 7 * 24 * 60), default=120, metavar="MINUTES",
                        help="longest session (default 120)")
    create.add_argument("--description")
    create.add_argument("--cpu", type=positive_float, metavar="CORES", help="declared CPU (default: estimated)")
    create.add_argument("--memory", type=positive_float, metavar="GB", help="declared memory")
    create.add_argument("--storage", type=positive_float, metavar="GB", help="declared storage")
    create.add_argument("--activate", action="store_true", help="accept sessions at once")

    observed = command(sub, "observations", "what completed sessions were observed to use", _observations)
    observed.add_argument("definition_id")

    apply = command(sub, "apply", "apply revised requirements (a new version)", _apply)
    apply.add_argument("definition_id")
    apply.add_argument("--version", type=bounded_int(1, 1_000_000),
                       help="the version read (default: the current one)")
    apply.add_argument("--cpu", type=positive_float, metavar="CORES")
    apply.add_argument("--memory", type=positive_float, metavar="GB")
    apply.add_argument("--storage", type=positive_float, metavar="GB")
