"""`lcm events tail`: the API's event stream, live, across dropped connections (resumed with Last-Event-ID,
so nothing is missed or shown twice). Ctrl-C ends it; `--json` prints one JSON object a line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lcm_cli import render
from lcm_cli.commands.common import Context, Subparsers, bounded_int, command, csv, group, seconds
from lcm_cli.transport.events import EventTail, Frame

#: Fields of an event's data that name what it is about, in the order a line shows them.
SUBJECTS = ["worker_id", "session_id", "pool_id", "definition_id", "service", "identity"]


def line(frame: Frame) -> str:
    envelope: Any = frame.data
    data = envelope.get("data") if isinstance(envelope, dict) else None
    at = render.when(str(envelope.get("time") or "")) if isinstance(envelope, dict) else ""
    if not isinstance(data, dict):
        return f"{at}  {frame.event}"
    if frame.event == "worker.snapshot":
        return f"{at}  {frame.event}  {len(data.get('workers') or [])} workers"
    about = [f"{key}={data[key]}" for key in SUBJECTS if isinstance(data.get(key), str)]
    summary = data.get("summary")
    if isinstance(summary, dict):  # a worker's row: its status as the list shows it
        about += [f"{key}={summary[key]}" for key in ("status", "health_status") if summary.get(key)]
    about += [f"{key}={data[key]}" for key in ("status", "phase", "reason")
              if isinstance(data.get(key), str) and not (key == "status" and isinstance(summary, dict))]
    return f"{at}  {frame.event}  {' '.join(about)}".rstrip()


def tail_handler(ctx: Context, args: argparse.Namespace) -> int:
    filters = {"worker_ids": csv(args.worker), "event_types": csv(args.type)}
    params = {name: value for name, value in filters.items() if value}
    stream = EventTail(ctx.target.api_url, ctx.api.credentials, params=params, last_event_id=args.since,
                       read_timeout=args.read_timeout, notice=ctx.note)
    for shown, frame in enumerate(stream.frames(), start=1):
        if args.json:
            ctx.print(json.dumps({"id": frame.id, "event": frame.event, "data": frame.data}, default=str))
        else:
            ctx.print(line(frame))
        if args.count and shown >= args.count:
            break
    return 0


def register(root: Subparsers) -> None:
    sub = group(root, "events", "the API's domain events (Server-Sent Events)")
    tail = command(sub, "tail", "follow events live; reconnects and resumes where it left off; Ctrl-C ends",
                   tail_handler)
    tail.add_argument("--type", action="append", metavar="TYPE",
                      help="only these event types (repeat or comma-separate; `worker.*` style prefixes)")
    tail.add_argument("--worker", action="append", metavar="ID", help="only events of these workers")
    tail.add_argument("--since", metavar="EVENT_ID",
                      help="resume after this event id (as printed with --json): the missed events first")
    tail.add_argument("--count", type=bounded_int(1, 10_000_000), metavar="N", help="stop after N events")
    tail.add_argument("--read-timeout", type=seconds, default=60.0, metavar="SECONDS",
                      help="reconnect when the stream is silent this long (the API sends heartbeats; default 60)")
