"""`lcm sessions list|create|show|observe|terminate`: `/api/lablet-sessions`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from lcm_cli import render
from lcm_cli.commands.common import (
    Context,
    Subparsers,
    bounded_int,
    command,
    csv,
    group,
    paging,
    reason_body,
    seg,
)
from lcm_core.domain.lablets import LabletSessionStatus

HEADERS = ["ID", "DEFINITION", "OWNER", "STATUS", "WORKER", "START", "END"]
SORTS = ["created_at", "updated_at", "timeslot_start", "timeslot_end", "status"]


def sessions_table(items: list[dict[str, Any]]) -> str:
    return render.table(HEADERS, [[s.get("id"), s.get("definition_name"), s.get("owner"), s.get("status"),
                                   s.get("worker_id"), s.get("timeslot_start"), s.get("timeslot_end")]
                                  for s in items])


DETAIL = ["id", "definition_id", "definition_name", "definition_version", "owner", "status", "timeslot_start",
          "timeslot_end", "lab_track", "worker_id", "cml_lab_id", "pending_reason", "scheduling_attempts",
          "scheduled_at", "terminate_requested", "observe_requested", "observation_count", "observed_at",
          "port_drift_detected", "last_error", "created_by", "created_at", "updated_at"]


def detail(session: dict[str, Any]) -> str:
    pairs: list[tuple[str, Any]] = [(key, session.get(key)) for key in DETAIL]
    ports = session.get("allocated_ports") or {}
    pairs.append(("allocated_ports", ", ".join(f"{name}={port}" for name, port in sorted(ports.items()))))
    needs = session.get("resource_requirements") or {}
    pairs.append(("requirements", ", ".join(f"{k}={v}" for k, v in needs.items() if v is not None)))
    return render.fields(pairs)


def _list(ctx: Context, args: argparse.Namespace) -> int:
    page = ctx.api.get("/api/lablet-sessions", status=csv(args.status), definition_id=args.definition,
                       worker_id=args.worker, owner=args.owner, limit=args.limit, offset=args.offset,
                       sort=args.sort, order=args.order)
    ctx.emit_page(page, "sessions", sessions_table)
    return 0


def instant(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC (the API wants a zone, and operators think in UTC)."""
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-01-01T09:00:00Z)") from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _create(ctx: Context, args: argparse.Namespace) -> int:
    start = args.start or datetime.now(UTC)
    end = args.end or start + timedelta(minutes=args.duration)
    body: dict[str, Any] = {"definition_id": args.definition, "timeslot_start": start.isoformat(),
                            "timeslot_end": end.isoformat()}
    if args.owner:
        body["owner"] = args.owner
    if args.idempotency_key:
        body["idempotency_key"] = args.idempotency_key
    session = ctx.api.post("/api/lablet-sessions", body)
    ctx.emit(session, lambda: f"session {session['id']} created: {session['status']} "
                              f"({session['definition_name']} for {session['owner']}, "
                              f"{render.when(session['timeslot_start'])} to {render.when(session['timeslot_end'])})")
    return 0


def _show(ctx: Context, args: argparse.Namespace) -> int:
    session = ctx.api.get(f"/api/lablet-sessions/{seg(args.session_id)}")
    ctx.emit(session, lambda: detail(session))
    return 0


def _observe(ctx: Context, args: argparse.Namespace) -> int:
    asked = ctx.api.post(f"/api/lablet-sessions/{seg(args.session_id)}/observe-resources")
    ctx.emit(asked, lambda: f"observation {asked['request_id']} requested for session {asked['session_id']} "
                            f"({asked['status']}); `lcm sessions show` has it once the controller answered")
    return 0


def _terminate(ctx: Context, args: argparse.Namespace) -> int:
    session = ctx.api.post(f"/api/lablet-sessions/{seg(args.session_id)}/terminate", reason_body(args.reason))
    ctx.emit(session, lambda: f"session {session['id']}: {session['status']}"
                              f"{' (termination requested)' if session.get('terminate_requested') else ''}")
    return 0


def register(root: Subparsers) -> None:
    sub = group(root, "sessions", "lablet sessions: list, create, inspect, observe, terminate")

    listing = command(sub, "list", "list lablet sessions (newest first)", _list)
    listing.add_argument("--status", action="append", metavar="STATUS",
                         help=f"only these statuses (repeat or comma-separate): {', '.join(LabletSessionStatus)}")
    listing.add_argument("--definition", metavar="ID", help="only sessions of this definition")
    listing.add_argument("--worker", metavar="ID", help="only sessions on this worker")
    listing.add_argument("--owner", help="only this owner's sessions")
    listing.add_argument("--sort", default="created_at", metavar="FIELD", help=f"sort by ({', '.join(SORTS)})")
    listing.add_argument("--order", choices=["asc", "desc"], default="desc")
    paging(listing)

    create = command(sub, "create", "create a session of an active definition for a timeslot", _create)
    create.add_argument("--definition", required=True, metavar="ID", help="the definition's id")
    create.add_argument("--start", type=instant, metavar="TIME", help="ISO 8601 (default: now; no zone is UTC)")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--end", type=instant, metavar="TIME", help="ISO 8601 end of the timeslot")
    when.add_argument("--duration", type=bounded_int(1, 7 * 24 * 60), default=60, metavar="MINUTES",
                      help="length of the timeslot when --end is not given (default 60)")
    create.add_argument("--owner", help="the student (default: you)")
    create.add_argument("--idempotency-key", metavar="KEY", help="repeat with the same key: the same session")

    show = command(sub, "show", "a session's detail (allocation, observations)", _show)
    show.add_argument("session_id")

    observe = command(sub, "observe", "ask the lablet-controller to observe the session's live lab now", _observe)
    observe.add_argument("session_id")

    terminate = command(sub, "terminate", "terminate a session (its lab is torn down)", _terminate)
    terminate.add_argument("session_id")
    terminate.add_argument("--reason", help="why (kept in the session's history)")
