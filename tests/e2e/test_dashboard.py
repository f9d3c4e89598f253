"""The dashboard in headless Chromium against the running local stack: log in, see the demo workers, watch a
status change arrive live, read a worker's CML and Monitoring tabs, and a viewer sees no admin controls.

The fleet is the demo fleet (the seeded instances, `LocalStack.demo_workers`) plus whatever the seeded pool
launched meanwhile; the tests act on demo workers only, so that the pool's autoscaler does not react to them."""

from __future__ import annotations

import re
import shutil
from urllib.parse import unquote

import httpx
import pytest

from tests.e2e.stack import (
    ARTIFACTS,
    DEMO_WORKERS,
    STREAM_LIFETIME_SECONDS,
    LocalStack,
    log_in,
    open_page,
)
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.e2e

NOT_AVAILABLE = "N/A"


def _rows(page):
    return page.locator("#workers-table tbody tr[data-worker-id]")


def _names(page) -> list[str]:
    return page.locator("#workers-table tbody td[data-field=name]").all_inner_texts()


def _live_workers(stack: LocalStack, status: str | None = None) -> int:
    return sum(w["status"] != "terminated" and status in (None, w["status"]) for w in stack.workers())


def test_admin_logs_in_and_sees_the_demo_fleet(browser, local_stack: LocalStack, tmp_path) -> None:
    page = open_page(browser, local_stack)
    page.goto("/")
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Wrong username or password.").wait_for()

    log_in(page, local_stack, "admin")
    page.get_by_role("heading", name="Fleet overview").wait_for()
    total = page.locator("[data-metric=total]")
    wait_for("the overview's total of the fleet", lambda: total.inner_text() == str(_live_workers(local_stack)))
    assert int(total.inner_text()) >= DEMO_WORKERS
    for service in ("worker-controller", "lablet-controller"):
        page.locator("#controller-rows td", has_text=service).first.wait_for(timeout=30_000)
    # Utilisation averages come from the CML simulator's system_stats once a metrics cycle has run.
    page.locator("[data-metric=cpu_percent]").filter(has_text=re.compile(r"\d+\.\d %")).wait_for(timeout=30_000)
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "overview.png")
    assert shot.stat().st_size > 10_000

    page.get_by_role("link", name="Workers").click()
    demo = local_stack.demo_workers()
    _rows(page).nth(DEMO_WORKERS - 1).wait_for()
    # Every worker the API lists, the demo fleet among them; each with its actions (admin).
    wait_for("the table to list the fleet", lambda: set(_names(page)) == {w["name"] for w in local_stack.workers()})
    assert {w["name"] for w in demo} <= set(_names(page))
    for w in demo:
        assert page.locator(f"tr[data-worker-id='{w['id']}'] button[data-action=stop]").count() == 1

    # Search and filters narrow the table; sorting by a column reorders it.
    page.get_by_label("Status").select_option("stopped")
    stopped = [w["name"] for w in demo if w["status"] == "stopped"]
    assert len(stopped) == 1  # the seed stops one
    assert set(page.locator("#workers-table tbody td[data-field=status]").all_inner_texts()) == {"stopped"}
    assert set(stopped) <= set(_names(page))
    page.get_by_label("Status").select_option("")
    page.get_by_label("Region").select_option("us-west-2")
    west = {w["name"] for w in demo if w["aws_region"] == "us-west-2"}
    assert len(west) == 2  # 1 running and 1 stopped
    assert set(page.locator("#workers-table tbody td[data-field=aws_region]").all_inner_texts()) == {"us-west-2"}
    assert west <= set(_names(page))
    page.get_by_label("Region").select_option("")
    expected = {w["name"] for w in demo}
    some = sorted(expected)[0]
    page.get_by_label("Search").fill(some)
    assert page.locator("#workers-table tbody td[data-field=name]").all_inner_texts() == [some]
    by_ip = next(w for w in demo if w["private_ip"])
    page.get_by_label("Search").fill(by_ip["private_ip"])
    assert page.locator("#workers-table tbody td[data-field=name]").all_inner_texts() == [by_ip["name"]]
    page.get_by_label("Search").fill("")
    page.locator("button[data-sort=name]").click()
    names = _names(page)
    assert names == sorted(names, reverse=True)
    assert expected <= set(names)
    assert page.locator("th[aria-sort=descending]").count() == 1
    page.close()


def test_a_stopped_instance_shows_up_live_without_a_reload(browser, local_stack: LocalStack) -> None:
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.goto("/#/workers")
    _rows(page).nth(DEMO_WORKERS - 1).wait_for()
    target = next(w for w in sorted(local_stack.demo_workers(), key=lambda w: w["name"])
                  if w["status"] == "running" and w["aws_region"] == "us-east-1")
    status_cell = page.locator(f"tr[data-worker-id='{target['id']}'] td[data-field=status]")
    assert status_cell.inner_text() == "running"
    page.evaluate("window.__sameDocument = true")

    local_stack.ec2(target["aws_region"]).stop_instances(InstanceIds=[target["aws_instance_id"]])
    status_cell.filter(has_text="stopped").wait_for(timeout=45_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    phase = page.locator(f"tr[data-worker-id='{target['id']}'] td[data-field=phase]").inner_text()
    assert phase == "STOPPED"
    page.get_by_role("link", name="Overview").click()
    stopped = page.locator("[data-count='status:stopped']")
    wait_for("the stopped count", lambda: stopped.inner_text() == str(_live_workers(local_stack, "stopped")))
    assert page.evaluate("window.__sameDocument") is True
    page.close()


def test_worker_detail_shows_cml_values_and_monitoring_charts(browser, local_stack: LocalStack) -> None:
    def measured(w: dict) -> bool:  # memory utilisation comes from CML only: CML was read
        return w["status"] == "running" and w["memory_percent"] is not None

    workers = local_stack.wait_for_workers(lambda ws: any(measured(w) for w in local_stack.demo_workers(ws)),
                                           "CML telemetry of a running worker")
    target = next(w for w in sorted(local_stack.demo_workers(workers), key=lambda w: w["name"]) if measured(w))
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.goto(f"/#/workers/{target['id']}/cml")
    page.get_by_role("heading", name=target["name"]).wait_for()
    assert page.get_by_role("tab", name="CML").get_attribute("aria-selected") == "true"
    panel = page.locator("#tab-panel")
    panel.get_by_role("heading", name="Compute nodes").wait_for()

    def fact(term: str) -> str:
        return panel.locator(f"dt:text-is('{term}') + dd").first.inner_text()

    assert fact("CML version").startswith("2.9")
    assert re.fullmatch(r"\d+", fact("CPU cores"))
    for term in ("Memory total", "Memory free", "Disk total", "Disk free", "Controller disk total"):
        assert re.fullmatch(r"\d+\.\d GB", fact(term)), f"{term}: {fact(term)}"
    assert fact("Core connected") == "yes"
    computes = panel.locator("table:has(caption:text('Compute nodes')) tbody tr")
    assert computes.count() >= 1
    assert computes.first.locator("td").nth(2).inner_text() in ("READY", "ONLINE")
    assert fact("Registration") != NOT_AVAILABLE
    assert fact("Stale data") == "none"  # every CML source answered
    assert fact("Last seen") != NOT_AVAILABLE
    page.screenshot(path=str(local_stack.root / "worker-cml.png"), full_page=True)

    page.get_by_role("tab", name="Monitoring").click()
    assert "/monitoring" in page.url
    page.locator("figure.chart canvas").nth(2).wait_for(timeout=30_000)
    assert page.locator("#tab-panel [data-source=cml]").count() == 1
    page.screenshot(path=str(local_stack.root / "worker-monitoring.png"), full_page=True)
    page.get_by_role("tab", name="Monitoring").press("ArrowRight")  # keyboard navigation between tabs
    assert page.get_by_role("tab", name="Events").get_attribute("aria-selected") == "true"
    page.get_by_role("heading", name="State history").wait_for()
    assert page.locator("#tab-panel table:has(caption:text('State history')) tbody tr").count() >= 1
    page.close()


def test_an_admin_toggles_idle_detection_from_the_detail_page(browser, local_stack: LocalStack) -> None:
    target = next(w for w in sorted(local_stack.demo_workers(), key=lambda w: w["name"]) if w["status"] == "running")
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.goto(f"/#/workers/{target['id']}/events")
    page.get_by_role("button", name="Disable idle detection").click()
    page.get_by_role("button", name="Enable idle detection").wait_for()
    page.locator("#tab-panel dt:text-is('Idle detection') + dd").filter(has_text="disabled").wait_for()
    assert local_stack.worker(target["id"])["activity"]["idle_detection_enabled"] is False
    page.get_by_role("button", name="Enable idle detection").click()
    page.get_by_role("button", name="Disable idle detection").wait_for()
    page.close()


def test_an_admin_drains_an_idle_worker_which_then_stops_and_starts_again(browser, local_stack: LocalStack) -> None:
    target = next(w for w in sorted(local_stack.demo_workers(), key=lambda w: w["name"], reverse=True)
                  if w["status"] == "running" and not w["sessions"])
    page = open_page(browser, local_stack)
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, local_stack, "admin")
    page.goto(f"/#/workers/{target['id']}/aws")
    page.get_by_role("button", name=f"Drain {target['name']}", exact=True).click()
    # No session on it: the drain is over at once and the worker goes on to stop (its licence released first).
    page.locator("[data-field=notices]").filter(has_text="Drained").wait_for(timeout=15_000)
    page.locator("[data-field=status]").filter(has_text="stopped").wait_for(timeout=60_000)
    stored = local_stack.worker(target["id"])
    assert (stored["desired_status"], stored["drain"]) == ("stopped", None)
    assert page.get_by_role("button", name=f"Undrain {target['name']}").is_disabled()
    page.get_by_role("button", name=f"Start {target['name']}").click()
    page.locator("[data-field=status]").filter(has_text="running").wait_for(timeout=60_000)
    page.close()
    local_stack.wait_for_workers(lambda ws: any(w["id"] == target["id"] and w["service_status"] == "available"
                                                for w in ws), "the drained worker back in service")


def test_a_viewer_sees_no_admin_controls(browser, local_stack: LocalStack) -> None:
    page = open_page(browser, local_stack, width=820, height=1180)  # a tablet, portrait
    log_in(page, local_stack, "viewer")
    assert page.get_by_role("link", name="Settings").is_hidden()
    page.goto("/#/workers")
    _rows(page).nth(DEMO_WORKERS - 1).wait_for()
    assert page.locator("#workers-table button[data-action]").count() == 0
    assert page.get_by_role("columnheader", name="Actions").count() == 0
    page.screenshot(path=str(local_stack.root / "workers-tablet.png"), full_page=True)
    page.locator("#workers-table tbody td[data-field=name] a").first.click()
    page.get_by_role("tab", name="AWS").wait_for()
    assert page.locator("button[data-action]").count() == 0
    page.goto("/#/settings")
    page.locator("#settings-form").wait_for()
    assert page.get_by_label("AMI name pattern").is_disabled()  # inside the disabled fieldset
    assert page.get_by_role("button", name="Save settings").count() == 0
    page.close()


def test_an_admin_changes_one_settings_section_and_only_that_one_is_saved(browser, local_stack: LocalStack) -> None:
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.get_by_role("link", name="Settings").click()
    threshold = page.get_by_label("Idle after (minutes)")
    threshold.fill("45")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    page.locator("#settings-meta").filter(has_text="by admin").wait_for()
    headers = {"Authorization": f"Bearer {local_stack.env['LCM_ADMIN_TOKEN']}"}
    stored = httpx.get(f"{local_stack.url}/api/settings", headers=headers, timeout=10).json()
    assert stored["idle"]["threshold_minutes"] == 45
    assert stored["customized"] == ["idle"]  # discovery still follows the stack's environment (both regions)
    assert page.get_by_label("Idle after (minutes)").input_value() == "45"
    page.close()


def test_the_stream_reconnects_after_a_drop_and_resumes_from_the_last_event(browser, local_stack: LocalStack) -> None:
    """The API ends the stream after STREAM_LIFETIME_SECONDS (a dropped connection, as a proxy would drop it);
    the page reconnects by itself, asks to resume after the last event it saw, and keeps updating."""
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    assert page.locator("#connection").inner_text() == "Live"
    page.goto("/#/workers")
    _rows(page).nth(DEMO_WORKERS - 1).wait_for()
    with page.expect_request(lambda r: "/api/events/stream" in r.url,
                             timeout=(STREAM_LIFETIME_SECONDS + 20) * 1000) as reconnect:
        pass
    headers = reconnect.value.all_headers()
    resumed_from = headers.get("last-event-id") or reconnect.value.url.partition("last_event_id=")[2]
    assert re.fullmatch(r"[0-9a-f]+:\d+-\d+", unquote(resumed_from)), headers
    page.locator("#connection[data-state=live]").wait_for(timeout=30_000)

    # Events still arrive after the reconnect: start the instance stopped earlier (or any stopped one).
    stopped = next(w for w in local_stack.demo_workers() if w["status"] == "stopped")
    local_stack.ec2(stopped["aws_region"]).start_instances(InstanceIds=[stopped["aws_instance_id"]])
    page.locator(f"tr[data-worker-id='{stopped['id']}'] td[data-field=status]").filter(
        has_text="running").wait_for(timeout=45_000)
    page.close()


def test_a_replica_that_stopped_reporting_is_shown_stale_not_leading(browser, local_stack: LocalStack) -> None:
    # A replica that reported leading and then fell silent (kill -9), posted straight to the internal endpoint.
    answer = httpx.post(f"{local_stack.url}/api/internal/controllers/status", timeout=10,
                        headers={"X-API-Key": local_stack.env["CONTROL_PLANE_API_KEY"]},
                        json={"service": "worker-controller", "identity": "e2e-killed", "is_leader": True,
                              "epoch": 1, "report_interval_seconds": 0.5})
    assert answer.status_code == 204, answer.text
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.get_by_role("heading", name="Fleet overview").wait_for()
    row = page.locator("#controller-rows tr.stale-replica", has_text="e2e-killed")
    row.wait_for(timeout=30_000)
    assert row.locator(".badge").inner_text() == "stale"
    entry = local_stack.api("GET", "/api/system/controllers").json()["controllers"]["worker-controller"]
    assert entry["leader"] != "e2e-killed"
    page.close()


def test_no_console_errors_or_csp_violations(local_stack: LocalStack) -> None:
    """Runs last in this module: everything the pages above logged as an error (outside the offline spell)."""
    errors = [e for e in local_stack.console_errors if "ERR_INTERNET_DISCONNECTED" not in e
              and "Failed to load resource" not in e]
    assert errors == []
