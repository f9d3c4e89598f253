"""Costs and the time ahead in headless Chromium against the local stack. The seeded pool (`demo-pool`, template
`cml-metal` priced at `pool_seed.template()["cost_per_hour_usd"]` an hour; `lcm_core/testing/devstack/pool_seed.py`)
launches its first worker: once it ran, a viewer's Costs page shows non-zero totals, a chart with the pool's line
and the pool in its table (by pool, then by worker over another period); the pool's page charts the demand of a
session booked on its track for later against its capacity, with the lead times; the worker's page shows what it
cost (running and stopped); a decision taken on a forecast shows its figures in the history."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lcm_core.testing.devstack import pool_seed
from tests.e2e.stack import ARTIFACTS, LocalStack, log_in, open_page

pytestmark = pytest.mark.e2e

LAUNCH_SECONDS = 60  # the autoscaler's first evaluation launches the pool's first worker
PRICE = pool_seed.template(["us-east-1"])["cost_per_hour_usd"]
MONEY = re.compile(r"^(< )?\$\d[\d,]*\.\d\d$")
ONE_LEAD = r"\d+\.\d min \((default|p95 of \d+)\)"
LEAD_TIME = re.compile(rf"^provision {ONE_LEAD} / resume {ONE_LEAD}$")


def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    assert shot.stat().st_size > 10_000


def _dollars(text: str) -> float:
    assert MONEY.match(text), text
    return float(text.split("$")[1].replace(",", ""))


def _pool(stack: LocalStack) -> dict[str, Any]:
    answer = stack.api("GET", "/api/pools", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return next(p for p in answer.json()["items"] if p["name"] == pool_seed.POOL)


def _costs(stack: LocalStack, group_by: str, **filters: str) -> dict[str, Any]:
    to = datetime.now(UTC)
    answer = stack.api("GET", "/api/costs", who="viewer", params={
        "from": (to - timedelta(hours=24)).isoformat(), "to": to.isoformat(), "group_by": group_by, "bucket": "hour",
        **filters})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _pool_worker_that_ran(stack: LocalStack) -> dict[str, Any]:
    """A worker the pool launched, once it ran and the ledger priced it (more than nothing)."""
    workers = stack.wait_for_workers(lambda ws: any(w.get("pool_id") and w["status"] == "running" for w in ws),
                                     "a running worker of the pool", timeout=LAUNCH_SECONDS * 2)
    worker = next(w for w in workers if w.get("pool_id") and w["status"] == "running")
    deadline = time.monotonic() + 60
    while (report := _costs(stack, "worker", worker_id=worker["id"]))["totals"]["running_usd"] <= 0:
        assert time.monotonic() < deadline, f"the ledger priced nothing for {worker['name']}: {report}"
        time.sleep(1)
    return worker


def test_a_viewer_sees_the_fleet_costs_with_a_chart_per_pool(browser, local_stack: LocalStack, tmp_path) -> None:
    worker = _pool_worker_that_ran(local_stack)
    pool = _pool(local_stack)
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "viewer")
    page.get_by_role("link", name="Costs").click()
    page.get_by_role("heading", name="Costs").wait_for()

    # Totals: money everywhere, the total above nothing (a priced worker ran) and the sum of its parts.
    total = page.locator("#costs-totals [data-field=total_usd]")
    total.wait_for()
    figures = {key: _dollars(page.locator(f"#costs-totals [data-field={key}]").inner_text()) for key in (
        "total_usd", "running_usd", "stopped_usd", "idle_usd", "savings_idle_pause_usd", "savings_scale_down_usd")}
    assert figures["total_usd"] > 0, figures
    assert figures["running_usd"] > 0, figures
    assert abs(figures["total_usd"] - figures["running_usd"] - figures["stopped_usd"]) <= 0.011, figures
    assert re.match(r"^\d+\.\d+ h$", page.locator("#costs-totals [data-field=running_hours]").inner_text())

    # The chart over time has the pool's line (uPlot's legend names it) and says what it shows in words.
    figure = page.locator("#costs-chart figure")
    figure.locator("canvas").first.wait_for()
    assert page.locator("#costs-chart .u-legend").get_by_text(pool_seed.POOL).count() == 1
    assert figure.get_attribute("aria-label").startswith("Last 24 hours: $")

    # The table: the pool, by its id, with a link to its page, priced above nothing.
    row = page.locator(f"#costs-table tr[data-group='{pool['id']}']")
    row.wait_for()
    assert row.locator("td[data-field=name] a").inner_text() == pool_seed.POOL
    assert _dollars(row.locator("td[data-field=total_usd]").inner_text()) > 0
    _screenshot(page, tmp_path, "costs.png")

    # By worker over 7 days: the pool's worker is a row of its own, and the address keeps the choice.
    page.get_by_label("Period").select_option("7d")
    page.get_by_label("Group by").select_option("worker")
    by_worker = page.locator(f"#costs-table tr[data-group='{worker['id']}']")
    by_worker.wait_for()
    assert by_worker.locator("td[data-field=name]").inner_text() == worker["name"]
    assert page.locator("#costs-table th").first.inner_text() == "Worker"
    assert "period=7d&group_by=worker" in page.url
    assert page.locator("#costs-chart figure").get_attribute("aria-label").startswith("Last 7 days: $")

    # A running worker costs by the minute: the page reads the ledger again by itself (every 30 s), in place.
    page.evaluate("window.__sameDocument = true")
    status = page.locator("#costs-status")
    before, spent = status.inner_text(), _dollars(total.inner_text())
    assert re.match(r"^From .+ to .+; updated .+\.$", before), before
    page.wait_for_function("(before) => document.querySelector('#costs-status').textContent !== before",
                           arg=before, timeout=45_000)
    assert _dollars(total.inner_text()) >= spent
    assert page.evaluate("window.__sameDocument") is True
    page.close()


def test_the_pool_page_charts_booked_demand_against_capacity(browser, local_stack: LocalStack, tmp_path) -> None:
    pool = _pool(local_stack)
    definition = next(d for d in local_stack.api("GET", "/api/lablet-definitions").json()["items"]
                      if d["name"] == pool_seed.DEFINITION)
    start = (datetime.now(UTC) + timedelta(minutes=60)).replace(microsecond=0)
    booked = local_stack.api("POST", "/api/lablet-sessions", json={
        "definition_id": definition["id"], "timeslot_start": start.isoformat(),
        "timeslot_end": (start + timedelta(minutes=60)).isoformat(), "owner": "student-later"})
    assert booked.status_code == 201, booked.text
    try:
        page = open_page(browser, local_stack)
        log_in(page, local_stack, "viewer")
        page.goto(f"/#/pools/{pool['id']}")
        page.get_by_role("heading", name=pool_seed.POOL).wait_for()

        # The booking is the peak of the demand ahead: one worker for one session, from its timeslot on.
        peak = page.locator("#pool-forecast [data-field=peak]")
        peak.filter(has_text=re.compile(r"^1 worker\(s\) for 1 session\(s\)")).wait_for()
        forecast = local_stack.api("GET", f"/api/pools/{pool['id']}/forecast", who="viewer", params={"hours": 6})
        assert forecast.status_code == 200, forecast.text
        ahead = forecast.json()
        lead = page.locator("#pool-lead-time").inner_text()
        assert LEAD_TIME.match(lead), lead
        provision = f"provision {ahead['lead_time']['provision_seconds'] / 60:.1f} min"
        assert lead.startswith(provision), (lead, ahead["lead_time"])

        # The chart: demand as a step line against desired, ready and the most workers, said in words too.
        figure = page.locator("#pool-demand-chart figure")
        figure.locator("canvas").first.wait_for()
        legend = page.locator("#pool-demand-chart .u-legend")
        for series in ("Booked demand", "Desired", "Ready", "Max"):
            assert legend.get_by_text(series, exact=True).count() == 1, series
        label = figure.get_attribute("aria-label")
        assert label.startswith("Over the next 6 h the booked sessions need at most 1 worker(s)"), label
        assert f"at most {pool['scaling']['max_workers']}." in label
        page.get_by_label("Show the next").select_option("12")
        page.locator("#pool-demand-chart figure[aria-label^='Over the next 12 h']").wait_for()

        _screenshot(page, tmp_path, "pool-demand.png")

        # The autoscaler's decisions record the forecast they were taken on: the history shows its figures.
        decision = _decision_on_a_forecast(local_stack, pool["id"])
        key = _decision_key(decision)
        forecast_cell = page.locator(f"#pool-history tr[data-decision={json.dumps(key)}] td[data-field=forecast]")
        workers = decision["inputs"]["forecast_workers"]
        assert forecast_cell.locator("[data-figure=forecast_workers]").inner_text().startswith(
            f"forecast {workers} worker{'' if workers == 1 else 's'}")
        assert LEAD_TIME.match(forecast_cell.locator("[data-figure=lead_time]").inner_text().removeprefix("lead "))
        page.close()
    finally:
        ended = local_stack.api("POST", f"/api/lablet-sessions/{booked.json()['id']}/terminate")
        assert ended.status_code in (200, 202), ended.text


def _decision_on_a_forecast(stack: LocalStack, pool_id: str) -> dict[str, Any]:
    """The newest decision of the pool that carries the forecast and lead times it was taken on."""
    deadline = time.monotonic() + LAUNCH_SECONDS
    while True:
        history = stack.api("GET", f"/api/pools/{pool_id}/history", who="viewer").json()
        found = [d for d in history if "forecast_workers" in d["inputs"] and d.get("lead_time")]
        if found:
            return max(found, key=lambda d: d["at"])
        assert time.monotonic() < deadline, f"no decision of the pool carries a forecast: {history[:2]}"
        time.sleep(1)


def _decision_key(decision: dict[str, Any]) -> str:
    """The page's key of a decision (`decisionKey` in js/pools.js): its time in milliseconds since the epoch."""
    at = datetime.fromisoformat(decision["at"].replace("Z", "+00:00"))
    millis = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return "|".join(str(v) for v in (millis, decision["action"], decision["trigger"], decision["to_workers"],
                                      decision["reason"]))


def _record_decision(stack: LocalStack, pool_id: str, decision: dict[str, Any]) -> None:
    """Record `decision` as the worker-controller's autoscaler does (`POST /api/internal/pools/{id}/evaluation`
    with the stack's API key and its leader's epoch), keeping the pool as it is; again if the pool changed
    meanwhile (409: the real autoscaler evaluated it first)."""
    for _ in range(20):
        pool = stack.api("GET", f"/api/pools/{pool_id}").json()["pool"]
        controllers = stack.api("GET", "/api/system/controllers").json()["controllers"]
        epoch = controllers["worker-controller"]["leader_epoch"]
        answer = httpx.post(f"{stack.url}/api/internal/pools/{pool_id}/evaluation", timeout=10, headers={
            "X-API-Key": stack.env["CONTROL_PLANE_API_KEY"], "X-LCM-Leader-Epoch": str(epoch)}, json={
            "expected_version": pool["version"], "observed_at": datetime.now(UTC).isoformat(),
            "phase": pool["phase"], "capacity": pool["capacity"], "desired_workers": pool["desired_workers"],
            "decision": decision})
        if answer.status_code == 200:
            return
        assert answer.status_code == 409, answer.text
        time.sleep(0.3)
    raise AssertionError("the pool kept changing: the decision could not be recorded")


def test_a_decision_taken_on_a_forecast_shows_its_figures_live(browser, local_stack: LocalStack) -> None:
    pool = _pool(local_stack)
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "viewer")
    page.goto(f"/#/pools/{pool['id']}")
    page.locator("#pool-history tbody tr[data-decision]").first.wait_for()
    page.evaluate("window.__sameDocument = true")

    now = datetime.now(UTC).replace(microsecond=0)
    reason = f"e2e: 2 workers needed from {(now + timedelta(minutes=30)).isoformat()} (3 sessions booked)"
    _record_decision(local_stack, pool["id"], {
        "at": now.isoformat(), "action": "none", "trigger": "policy", "policy": "lab_count_based",
        "from_workers": pool["desired_workers"], "to_workers": pool["desired_workers"], "reason": reason,
        "inputs": {"workers": pool["desired_workers"], "look_ahead_minutes": 120, "booked": 3,
                   "forecast_now_workers": 0, "forecast_workers": 2, "forecast_peak_workers": 2,
                   "lead_provision_minutes": 15.0, "lead_resume_minutes": 6.5,
                   "cost_per_hour_usd": PRICE * pool["desired_workers"]},
        "demand": [{"start": (now + timedelta(minutes=30)).isoformat(),
                    "end": (now + timedelta(minutes=90)).isoformat(), "sessions": 3, "cpu_cores": 6,
                    "memory_gb": 12, "workers": 2}],
        "lead_time": {"provision_seconds": 900, "resume_seconds": 390, "provision_samples": 1, "resume_samples": 7}})

    # It arrives with its event (no reload), its figures in words beside the raw numbers.
    row = page.locator("#pool-history tbody tr[data-decision]").filter(has_text=reason)
    row.wait_for()
    cell = row.locator("td[data-field=forecast]")
    assert cell.locator("[data-figure=forecast_workers]").inner_text() == "forecast 2 workers (now 0, peak 2)"
    assert cell.locator("[data-figure=booked]").inner_text() == "3 booked within 120 min"
    assert cell.locator("[data-figure=demand]").inner_text().startswith("peak 3 session(s) from ")
    assert cell.locator("[data-figure=lead_time]").inner_text() == (
        "lead provision 15.0 min (default) / resume 6.5 min (p95 of 7)")
    assert cell.locator("[data-figure=cost_per_hour_usd]").inner_text() == (
        f"${PRICE * pool['desired_workers']:.2f}/h at {pool['desired_workers']} worker(s)")
    # The raw numbers: the forecast's are said in words beside them, all of them are in the tooltip.
    numbers = row.locator("td[data-field=inputs]")
    assert "forecast_workers" not in numbers.inner_text()
    assert f"workers={pool['desired_workers']}" in numbers.inner_text()
    assert "forecast_workers=2" in numbers.get_attribute("title")
    assert page.evaluate("window.__sameDocument") is True
    page.close()


def test_the_pool_and_worker_pages_show_what_they_cost(browser, local_stack: LocalStack, tmp_path) -> None:
    worker = _pool_worker_that_ran(local_stack)
    pool = _pool(local_stack)
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "viewer")

    # The pool: its last 24 h above nothing, and what its counted workers cost per hour now (the forecast's).
    page.goto(f"/#/pools/{pool['id']}")
    page.get_by_role("heading", name=pool_seed.POOL).wait_for()
    cost = page.locator("#pool-cost")
    total = cost.locator("[data-field=total_usd]")
    total.wait_for()
    assert _dollars(total.inner_text()) > 0
    ahead = local_stack.api("GET", f"/api/pools/{pool['id']}/forecast", who="viewer").json()
    assert ahead["cost_per_hour_usd"] >= PRICE, ahead
    cost.locator("[data-field=cost_per_hour]").filter(
        has_text=re.compile(r"^\$\d+\.\d\d/h for its counted workers$")).wait_for()

    # The worker: its last 24 h, running and stopped.
    page.goto(f"/#/workers/{worker['id']}")
    page.get_by_role("heading", name=worker["name"]).wait_for()
    cost = page.locator("#worker-cost")
    total = cost.locator("[data-field=total_usd]")
    total.wait_for()
    assert _dollars(total.inner_text()) > 0
    running = cost.locator("[data-field=running_usd]").inner_text()
    assert re.match(r"^\$\d+\.\d\d for \d+\.\d+ h$", running), running
    assert re.match(r"^\$\d+\.\d\d for \d+\.\d+ h$", cost.locator("[data-field=stopped_usd]").inner_text())
    # Running time is priced at the template's price: a minute at least per start.
    assert _dollars(running.split(" for ")[0]) >= round(PRICE / 60, 2)
    _screenshot(page, tmp_path, "worker-cost.png")
    page.close()


def test_no_console_errors_or_csp_violations(local_stack: LocalStack) -> None:
    """Runs last in this module: everything the cost pages logged as an error."""
    errors = [e for e in local_stack.console_errors if "ERR_INTERNET_DISCONNECTED" not in e
              and "Failed to load resource" not in e]
    assert errors == []
