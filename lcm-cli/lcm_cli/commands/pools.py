"""`lcm pools list|show|create|scale|adopt|release|drain|undrain|delete|history|forecast`: `/api/pools`.
Answers are read as the shared contracts `lcm_core.domain.pools` (PoolView, ScalingDecision, PoolForecast)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

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
    read_bounded,
    seg,
)
from lcm_cli.commands.workers import workers_table
from lcm_core.domain.pools import (
    MAX_POOL_WORKERS,
    PoolForecast,
    PoolView,
    ScaleDownAction,
    ScaleRequest,
    ScalingDecision,
    ScalingPolicy,
)

HEADERS = ["ID", "NAME", "TRACK", "TEMPLATE", "PHASE", "DESIRED", "MIN", "MAX", "WORKERS", "READY", "REGIONS",
           "STATE"]
#: The furthest a forecast looks ahead (the API's bound: a week).
MAX_FORECAST_HOURS = 168


def _state(pool: PoolView) -> str | None:
    return "deleting" if pool.deleting else "draining" if pool.draining else pool.error


def pools_table(items: list[dict[str, Any]]) -> str:
    pools = [PoolView.model_validate(item) for item in items]
    return render.table(HEADERS, [[p.id, p.name, p.lab_track, p.template_name, p.phase.value, p.desired_workers,
                                   p.scaling.min_workers, p.scaling.max_workers, p.capacity.workers,
                                   p.capacity.ready, p.regions, _state(p)] for p in pools])


def pool_fields(pool: PoolView) -> str:
    last = pool.last_decision
    return render.fields([
        ("id", pool.id), ("name", pool.name), ("lab_track", pool.lab_track), ("template", pool.template_name),
        ("regions", pool.regions), ("phase", pool.phase.value), ("state", _state(pool)),
        ("policy", pool.scaling.policy.value), ("workers", f"{pool.desired_workers} desired "
                                                           f"({pool.scaling.min_workers}..{pool.scaling.max_workers})"),
        ("capacity", f"{pool.capacity.workers} workers, {pool.capacity.ready} ready, "
                     f"{pool.capacity.on_the_way} on the way, {pool.capacity.parked} parked"),
        ("last_decision", f"{last.action.value} {last.from_workers}->{last.to_workers}: {last.reason}"
         if last else None),
        ("spec_version", pool.spec_version), ("updated_at", pool.updated_at),
    ])


def _list(ctx: Context, args: argparse.Namespace) -> int:
    page = ctx.api.get("/api/pools", include_terminated=str(args.include_terminated).lower(),
                       limit=args.limit, offset=args.offset)
    ctx.emit_page(page, "pools", pools_table)
    return 0


def pool_detail(found: dict[str, Any]) -> str:
    """A pool and its workers (`PoolDetail`: what show, adopt and release answer)."""
    text = pool_fields(PoolView.model_validate(found["pool"]))
    workers = found.get("workers") or []
    return text + "\n\n" + (workers_table(workers) if workers else "(no workers)")


def _show(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.get(f"/api/pools/{seg(args.pool_id)}")
    ctx.emit(found, lambda: pool_detail(found))
    return 0


#: A pool spec file is a few hundred bytes; anything past this is not one.
MAX_SPEC_BYTES = 64_000


def read_spec(source: str) -> dict[str, Any]:
    """A `PoolSpec` as JSON from a file (`-`: stdin), read up to its bound."""
    raw = read_bounded(source, MAX_SPEC_BYTES, "the pool spec")
    try:
        spec = json.loads(raw)
    except ValueError as exc:  # not UTF-8, or not JSON
        raise UsageError(f"the pool spec {source} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise UsageError(f"the pool spec {source} is not a JSON object")
    return spec


# The flags a whole spec (--spec) replaces, by their argparse names.
SPEC_FLAGS = ("name", "track", "template", "region", "description", "policy", "min_workers", "max_workers",
              "labs_per_worker", "scale_down_action")


def spec_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    missing = [flag for flag, value in (("--name", args.name), ("--track", args.track),
                                        ("--template", args.template)) if not value]
    if missing:
        raise UsageError(f"{', '.join(missing)} needed (or a whole spec with --spec FILE)")
    spec: dict[str, Any] = {"name": args.name, "lab_track": args.track, "template_name": args.template}
    if args.region:
        spec["regions"] = (csv(args.region) or "").split(",")
    if args.description:
        spec["description"] = args.description
    scaling = {k: v for k, v in (("policy", args.policy), ("min_workers", args.min_workers),
                                 ("max_workers", args.max_workers), ("max_labs_per_worker", args.labs_per_worker),
                                 ("scale_down_action", args.scale_down_action)) if v is not None}
    if scaling:
        spec["scaling"] = scaling
    return spec


def _create(ctx: Context, args: argparse.Namespace) -> int:
    if args.spec:
        given = [flag for flag in SPEC_FLAGS if getattr(args, flag) is not None]
        if given:
            raise UsageError(f"--spec is the whole spec: leave out --{given[0].replace('_', '-')}")
        spec = read_spec(args.spec)
    else:
        spec = spec_from_flags(args)
    pool = ctx.api.post("/api/pools", spec)  # the API validates it (PoolSpec): a 422 names what is wrong
    _pool_answer(ctx, pool, f"created for track {pool.get('lab_track')}, {pool.get('phase')}")
    return 0


def _adopt(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.post(f"/api/pools/{seg(args.pool_id)}/workers/{seg(args.worker_id)}")
    ctx.emit(found, lambda: pool_detail(found))
    return 0


def _release(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.delete(f"/api/pools/{seg(args.pool_id)}/workers/{seg(args.worker_id)}")
    ctx.emit(found, lambda: pool_detail(found))
    return 0


def _pool_answer(ctx: Context, pool: dict[str, Any], said: str) -> None:
    ctx.emit(pool, lambda: f"pool {pool['id']} ({pool['name']}): {said}")


def _scale(ctx: Context, args: argparse.Namespace) -> int:
    try:
        request = ScaleRequest(workers=args.workers, reason=args.reason)
    except ValidationError as exc:  # the command line's own input (a reason too long, a control character)
        raise UsageError(f"--reason: {exc.errors()[0]['msg']}") from None
    pool = ctx.api.post(f"/api/pools/{seg(args.pool_id)}/scale", request.model_dump(exclude_none=True))
    _pool_answer(ctx, pool, f"held at {pool['desired_workers']} workers")
    return 0


def _drain(ctx: Context, args: argparse.Namespace) -> int:
    pool = ctx.api.post(f"/api/pools/{seg(args.pool_id)}/drain")
    _pool_answer(ctx, pool, "draining: no new session, no scaling; its workers stop once empty")
    return 0


def _undrain(ctx: Context, args: argparse.Namespace) -> int:
    pool = ctx.api.post(f"/api/pools/{seg(args.pool_id)}/undrain")
    _pool_answer(ctx, pool, "takes sessions and scales again")
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    pool = ctx.api.delete(f"/api/pools/{seg(args.pool_id)}")
    _pool_answer(ctx, pool, "deleting: its workers are drained and terminated, then the pool goes")
    return 0


def _history(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.get(f"/api/pools/{seg(args.pool_id)}/history")
    decisions = [ScalingDecision.model_validate(d) for d in found]

    def human() -> str:
        if not decisions:
            return "(no scaling decision yet)"
        return render.table(["AT", "ACTION", "TRIGGER", "POLICY", "FROM", "TO", "BY", "REASON"], [
            [d.at, d.action.value, d.trigger.value, d.policy.value, d.from_workers, d.to_workers, d.by, d.reason]
            for d in decisions])

    ctx.emit(found, human)
    return 0


def _forecast(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.get(f"/api/pools/{seg(args.pool_id)}/forecast", hours=args.hours)
    forecast = PoolForecast.model_validate(found)

    def human() -> str:
        price = f"${forecast.cost_per_hour_usd:.2f}/h" if forecast.cost_per_hour_usd is not None else None
        head = render.fields([
            ("pool", forecast.pool_id), ("at", forecast.at), ("look_ahead_minutes", forecast.look_ahead_minutes),
            ("workers", f"{forecast.desired_workers} desired, {forecast.ready_workers} ready, "
                        f"{forecast.parked_workers} parked, at most {forecast.max_workers}"),
            ("labs_per_worker", forecast.labs_per_worker),
            ("lead_time", f"provision {forecast.lead_time.provision_seconds:.0f}s, "
                          f"resume {forecast.lead_time.resume_seconds:.0f}s"),
            ("cost_per_hour", price)])
        steps = render.table(["START", "END", "SESSIONS", "CPU", "MEM_GB", "WORKERS"], [
            [s.start, s.end, s.sessions, s.cpu_cores, s.memory_gb, s.workers] for s in forecast.steps])
        return head + "\n\n" + (steps if forecast.steps else "(no booked demand ahead)")

    ctx.emit(found, human)
    return 0


def hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_FORECAST_HOURS:
        raise argparse.ArgumentTypeError(f"{text} is not within 1..{MAX_FORECAST_HOURS} hours")
    return value


def register(root: Subparsers) -> None:
    sub = group(root, "pools", "worker pools: list, inspect, create, scale, adopt/release workers, drain, delete, "
                               "history, forecast")

    listing = command(sub, "list", "list pools", _list)
    listing.add_argument("--include-terminated", action="store_true", help="also deleted pools")
    paging(listing)

    for name, help_text, handler in (
        ("show", "a pool and its workers", _show),
        ("drain", "no new session on its workers, no scaling; they stop once empty", _drain),
        ("undrain", "cancel a drain", _undrain),
        ("delete", "drain and terminate its workers, then delete the pool", _delete),
        ("history", "the pool's scaling decisions, newest first", _history),
    ):
        command(sub, name, help_text, handler).add_argument("pool_id")

    create = command(sub, "create", "create a pool, from flags or a whole JSON spec (--spec FILE, - for stdin)",
                     _create)
    create.add_argument("--spec", metavar="FILE", help="a JSON PoolSpec (docs/pools.md); excludes the other flags")
    create.add_argument("--name", help="the pool's name")
    create.add_argument("--track", metavar="TRACK", help="the lab track it serves (one pool per track)")
    create.add_argument("--template", metavar="NAME", help="the worker template its workers are launched from")
    create.add_argument("--region", action="append", metavar="REGION",
                        help="AWS regions (repeat or comma-separate; default us-east-1)")
    create.add_argument("--description")
    create.add_argument("--policy", choices=[p.value for p in ScalingPolicy], help="how it scales (default none)")
    create.add_argument("--min-workers", type=bounded_int(0, MAX_POOL_WORKERS), metavar="N", help="default 1")
    create.add_argument("--max-workers", type=bounded_int(0, MAX_POOL_WORKERS), metavar="N", help="default 10")
    create.add_argument("--labs-per-worker", type=bounded_int(1, 1000), metavar="N",
                        help="sessions a worker holds before lab_count_based adds one (default 15)")
    create.add_argument("--scale-down-action", choices=[a.value for a in ScaleDownAction],
                        help="what a retired worker becomes (default stop)")

    for name, help_text, handler in (
        ("adopt", "give an existing worker to the pool (it serves the pool's track)", _adopt),
        ("release", "take a worker out of the pool (it stays, outside any pool)", _release),
    ):
        membership = command(sub, name, help_text, handler)
        membership.add_argument("pool_id")
        membership.add_argument("worker_id")

    scale = command(sub, "scale", "hold the pool at a number of workers (within its bounds)", _scale)
    scale.add_argument("pool_id")
    scale.add_argument("workers", type=bounded_int(0, MAX_POOL_WORKERS), help="how many workers")
    scale.add_argument("--reason", help="why (kept in the pool's history)")

    forecast = command(sub, "forecast", "booked demand over the next hours, against the pool's workers", _forecast)
    forecast.add_argument("pool_id")
    forecast.add_argument("--hours", type=hours, help="how far ahead (default: the pool's look-ahead)")
