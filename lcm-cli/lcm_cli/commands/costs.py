"""`lcm costs`: `GET /api/costs`, read as `lcm_core.domain.costs.CostReportView`."""

from __future__ import annotations

import argparse
from typing import Any

from lcm_cli import render
from lcm_cli.commands.common import Context, Subparsers, command
from lcm_cli.commands.sessions import instant
from lcm_core.domain.costs import CostReportView

HEADERS = ["KEY", "NAME", "RUNNING_USD", "STOPPED_USD", "TOTAL_USD", "RUN_H", "STOP_H", "SAVED_IDLE_USD",
           "SAVED_SCALE_USD", "PRICED"]


def money(value: float) -> str:
    """Dollars (and hours) to the cent: what a person compares; --json has the API's four decimals."""
    return f"{value:.2f}"


def report_text(report: CostReportView) -> str:
    head = (f"costs from {render.cell(report.from_)} to {render.cell(report.to)} UTC, by {report.group_by}, "
            f"in {report.currency}")
    rows: list[list[Any]] = [[g.key, g.name, money(g.running_usd), money(g.stopped_usd), money(g.total_usd),
                              money(g.running_hours), money(g.stopped_hours), money(g.savings_idle_pause_usd),
                              money(g.savings_scale_down_usd), g.priced] for g in report.groups]
    t = report.totals
    rows.append(["TOTAL", "", money(t.running_usd), money(t.stopped_usd), money(t.total_usd),
                 money(t.running_hours), money(t.stopped_hours), money(t.savings_idle_pause_usd),
                 money(t.savings_scale_down_usd), ""])
    unpriced = [g.key for g in report.groups if not g.priced]
    note = f"\nnot priced (counted as free): {', '.join(unpriced)}" if unpriced else ""
    figures = render.table(HEADERS, rows, right=HEADERS[2:9])
    return f"{head}\n\n{figures}\nidle (running, no session held): ${t.idle_usd:.2f}{note}"


def _costs(ctx: Context, args: argparse.Namespace) -> int:
    found = ctx.api.get("/api/costs", group_by=args.group_by, bucket=args.bucket, pool_id=args.pool,
                        worker_id=args.worker, **{"from": args.since.isoformat() if args.since else None,
                                                  "to": args.until.isoformat() if args.until else None})
    ctx.emit(found, lambda: report_text(CostReportView.model_validate(found)))
    return 0


def register(root: Subparsers) -> None:
    costs = command(root, "costs", "what the fleet cost over a window (default: the last 24 h, by pool)", _costs)
    costs.add_argument("--from", dest="since", type=instant, metavar="TIME", help="ISO 8601 (no zone is UTC)")
    costs.add_argument("--to", dest="until", type=instant, metavar="TIME", help="ISO 8601 (default: now)")
    costs.add_argument("--group-by", choices=["pool", "worker", "track", "definition"], default="pool")
    costs.add_argument("--bucket", choices=["hour", "day"], default="hour", help="the series' buckets (--json)")
    costs.add_argument("--pool", metavar="ID", help="only this pool's workers")
    costs.add_argument("--worker", metavar="ID", help="only this worker")
