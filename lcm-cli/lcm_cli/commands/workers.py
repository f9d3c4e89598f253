"""`lcm workers list|show|start|stop|drain|undrain|terminate`: `/api/workers`. Rows are read as
`lcm_core.domain.workers.WorkerSummary`, the contract the API answers with."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from lcm_cli import render
from lcm_cli.commands.common import Context, Subparsers, command, csv, group, paging, reason_body, seg
from lcm_core.domain.enums import HealthStatus, WorkerStatus
from lcm_core.domain.worker_launch import LaunchFailure
from lcm_core.domain.workers import WorkerSummary

HEADERS = ["ID", "NAME", "REGION", "INSTANCE", "STATUS", "DESIRED", "HEALTH", "TRACK", "SESSIONS", "CPU%",
           "MEM%"]
SORTS = ["name", "status", "aws_region", "health_status", "created_at", "updated_at"]


def row(item: dict[str, Any]) -> list[Any]:
    """A worker's row. A row the contract does not read (a newer API's status this CLI does not know yet) is
    shown with its values as the API gave them, rather than failing the whole list."""
    try:
        w = WorkerSummary.model_validate(item)
    except ValidationError:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise
        return [item.get(key) for key in ("id", "name", "aws_region", "aws_instance_id", "status",
                                          "desired_status", "health_status", "lab_track", "sessions",
                                          "cpu_percent", "memory_percent")]
    return [w.id, w.name, w.aws_region, w.aws_instance_id, w.status.value,
            w.desired_status.value if w.desired_status else None, w.health_status, w.lab_track, w.sessions,
            w.cpu_percent, w.memory_percent]


def rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [row(item) for item in items]


def workers_table(items: list[dict[str, Any]]) -> str:
    return render.table(HEADERS, rows(items))


def _list(ctx: Context, args: argparse.Namespace) -> int:
    page = ctx.api.get("/api/workers", status=csv(args.status), aws_region=csv(args.region),
                       health_status=csv(args.health), q=args.search,
                       include_terminated=str(not args.exclude_terminated).lower(),
                       limit=args.limit, offset=args.offset, sort=args.sort, order=args.order)
    ctx.emit_page(page, "workers", workers_table)
    return 0


DETAIL = ["id", "name", "aws_region", "aws_instance_id", "instance_type", "template_name", "pool_id", "lab_track",
          "status", "desired_status", "desired_reason", "service_status", "health_status", "phase", "sessions",
          "cml_version", "public_ip", "private_ip", "launch_time", "created_at", "updated_at"]


def detail(worker: dict[str, Any]) -> str:
    pairs: list[tuple[str, Any]] = [(key, worker.get(key)) for key in DETAIL]
    drain = worker.get("drain")
    pairs.append(("draining", f"then {drain.get('then', '?')}" if isinstance(drain, dict) else None))
    pairs.append(("license", (worker.get("license") or {}).get("status")))
    summary = WorkerSummary.model_validate(worker.get("summary") or {"id": worker.get("id", "")})
    pairs += [("cpu_percent", summary.cpu_percent), ("memory_percent", summary.memory_percent),
              ("disk_percent", summary.disk_percent), ("collected_at", summary.collected_at)]
    pairs.append(("launch_failure", launch_failure(summary.launch_failure)))
    return render.fields(pairs)


def launch_failure(failure: LaunchFailure | None) -> str | None:
    """Why the worker's instance could not be launched, in one line (None while nothing failed)."""
    if failure is None:
        return None
    return (f"{failure.attempts} failed attempt(s) since {render.cell(failure.since)}, last at "
            f"{render.cell(failure.last_at)}: {failure.error}")


def _show(ctx: Context, args: argparse.Namespace) -> int:
    worker = ctx.api.get(f"/api/workers/{seg(args.worker_id)}")
    ctx.emit(worker, lambda: detail(worker))
    return 0


def changed(worker: dict[str, Any]) -> str:
    desired = worker.get("desired_status") or "-"
    return f"worker {worker.get('id')} ({worker.get('name')}): status {worker.get('status')}, desired {desired}"


def _action(name: str, with_force: bool) -> Any:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        params = {"force": "true"} if with_force and args.force else {}
        worker = ctx.api.post(f"/api/workers/{seg(args.worker_id)}/{name}", reason_body(args.reason), **params)
        ctx.emit(worker, lambda: changed(worker))
        return 0
    return run


def _drain(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"then": args.then}
    if args.reason:
        body["reason"] = args.reason
    worker = ctx.api.post(f"/api/workers/{seg(args.worker_id)}/drain", body)
    ctx.emit(worker, lambda: changed(worker))
    return 0


def _undrain(ctx: Context, args: argparse.Namespace) -> int:
    worker = ctx.api.post(f"/api/workers/{seg(args.worker_id)}/undrain")
    ctx.emit(worker, lambda: changed(worker))
    return 0


def register(root: Subparsers) -> None:
    sub = group(root, "workers", "CML workers (EC2 instances): list, inspect, start, stop, drain, terminate")

    listing = command(sub, "list", "list workers (newest telemetry in each row)", _list)
    listing.add_argument("--status", action="append", metavar="STATUS",
                         help=f"only these statuses (repeat or comma-separate): {', '.join(WorkerStatus)}")
    listing.add_argument("--region", action="append", metavar="REGION", help="only these AWS regions")
    listing.add_argument("--health", action="append", metavar="HEALTH",
                         help=f"only these health statuses: {', '.join(HealthStatus)}")
    listing.add_argument("--search", "-q", metavar="TEXT", help="name, instance id or IP containing TEXT")
    listing.add_argument("--exclude-terminated", action="store_true", help="leave terminated workers out")
    listing.add_argument("--sort", default="name", metavar="FIELD", help=f"sort by ({', '.join(SORTS)})")
    listing.add_argument("--order", choices=["asc", "desc"], default="asc")
    paging(listing)

    show = command(sub, "show", "a worker's detail and latest telemetry", _show)
    show.add_argument("worker_id")

    for name, help_text, with_force in (
        ("start", "start (or resume) a worker", False),
        ("stop", "stop (pause) a worker", True),
        ("terminate", "terminate a worker's instance", True),
    ):
        action = command(sub, name, help_text, _action(name, with_force))
        action.add_argument("worker_id")
        action.add_argument("--reason", help="why (kept in the worker's history)")
        if with_force:
            action.add_argument("--force", action="store_true",
                                help="end the worker's lablet sessions properly first, then go on")

    drain = command(sub, "drain", "no new session; once the last one ends, stop (or terminate, or stay)", _drain)
    drain.add_argument("worker_id")
    drain.add_argument("--then", choices=["stopped", "terminated", "running"], default="stopped",
                       help="what the worker does once empty (default: stopped)")
    drain.add_argument("--reason", help="why (kept in the worker's history)")

    undrain = command(sub, "undrain", "cancel a drain: the worker takes sessions again", _undrain)
    undrain.add_argument("worker_id")
