"""The pool pages in headless Chromium against the local stack, which seeds `demo-pool` (track demo, lab-count
policy, 1 to 3 workers, a warm pool of 1; `lcm_core/testing/devstack/pool_seed.py`) whose first worker the
worker-controller's autoscaler launches (and one more into its warm pool, which boots once and stops): the admin
sees it on the Pools page and its launch decision on its page, scales it with the Scale button while a second
browser watches the change arrive live, creates a pool with the form (after the API's 422 for a minimum above the
maximum is shown), meets the 409 of a stale edit, drains and undrains it and deletes it; a viewer sees the same
pages without any admin control."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from lcm_core.domain.pool_capacity import MemberRole, member_role
from lcm_core.domain.workers import WorkerSummary
from lcm_core.testing.devstack import pool_seed
from tests.e2e.stack import ARTIFACTS, LocalStack, log_in, open_page

pytestmark = pytest.mark.e2e

PHASES = {"pending", "initializing", "ready", "scaling_up", "scaling_down", "draining", "terminating",
          "terminated", "failed"}
LAUNCH_SECONDS = 60  # the autoscaler's first evaluation launches the pool's first worker

# Records every phase the pool page's header shows, however the page redraws it.
WATCH_PHASES = """() => { window.__phases = [];
  const seen = () => { const badge = document.querySelector('.detail-header [data-field=phase]');
    const phase = badge && badge.textContent.trim();
    if (phase && window.__phases.at(-1) !== phase) window.__phases.push(phase); };
  seen();
  new MutationObserver(seen).observe(document.querySelector('#main'),
    { subtree: true, childList: true, characterData: true }); }"""


#: A description written as markup: shown as text, never run or rendered.
HOSTILE = '<img src=x onerror="window.__injected=1"><b>bold</b>'


def _screenshot(page: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    assert shot.stat().st_size > 10_000


def _pool(stack: LocalStack, name: str) -> dict[str, Any]:
    answer = stack.api("GET", "/api/pools", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return next(p for p in answer.json()["items"] if p["name"] == name)


def _row(page: Any, name: str) -> Any:
    return page.locator("#pools-table tbody tr[data-pool-id]").filter(
        has=page.locator("td[data-field=name]", has_text=re.compile(f"^{re.escape(name)}$")))


def _counted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pool's workers that count toward its size (not those warming up into, or parked in, its warm pool)."""
    return [row for row in rows if member_role(WorkerSummary.model_validate(row)) is MemberRole.ACTIVE]


def _history(page: Any) -> Any:
    return page.locator("#pool-history tbody tr[data-decision]")


def test_admin_sees_the_seeded_pool_launch_its_first_worker(browser, local_stack: LocalStack, tmp_path) -> None:
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.get_by_role("link", name="Pools").click()
    page.get_by_role("heading", name="Worker pools").wait_for()
    row = _row(page, pool_seed.POOL)
    row.wait_for()
    cell = lambda field: row.locator(f"td[data-field={field}]")  # noqa: E731
    assert cell("lab_track").inner_text() == pool_seed.TRACK
    assert cell("policy").inner_text().startswith("Lab count")
    assert (cell("min_workers").inner_text(), cell("max_workers").inner_text()) == ("1", "3")
    assert cell("phase").locator(".badge").inner_text() in PHASES
    # The autoscaler launches the first worker; the row follows the pool's events (no reload).
    cell("workers").filter(has_text=re.compile(r"^1 \(\d ready\)$")).wait_for(timeout=LAUNCH_SECONDS * 1000)
    assert cell("desired_workers").inner_text() == "1"
    _screenshot(page, tmp_path, "pools.png")

    row.get_by_role("link", name=pool_seed.POOL).click()
    page.get_by_role("heading", name=pool_seed.POOL).wait_for()
    launch = _history(page).filter(has_text=f"launching 1 from template {pool_seed.TEMPLATE}")
    launch.first.wait_for()
    assert launch.first.locator("td[data-field=action]").inner_text() == "scale_up"
    assert "workers=0" in launch.first.locator("td[data-field=inputs]").inner_text()  # the numbers it was taken on

    pool = _pool(local_stack, pool_seed.POOL)
    workers = _counted(local_stack.api("GET", f"/api/pools/{pool['id']}").json()["workers"])
    assert len(workers) == 1
    member = page.locator(f"#pool-workers tr[data-worker-id='{workers[0]['id']}']")
    member.wait_for()
    page.locator("#pool-capacity [data-field=workers]").filter(has_text=re.compile(r"^1 \(")).wait_for()
    _screenshot(page, tmp_path, "pool-detail.png")

    # The worker's page names its pool, with a link back.
    member.locator("td[data-field=name] a").click()
    pool_link = page.locator(".detail-header a[data-field=pool]")
    pool_link.filter(has_text=pool_seed.POOL).wait_for()
    pool_link.click()
    page.get_by_role("heading", name=pool_seed.POOL).wait_for()
    page.close()


def test_admin_scales_the_pool_and_a_second_browser_sees_it_live(browser, local_stack: LocalStack,
                                                                   tmp_path) -> None:
    local_stack.wait_for_workers(lambda ws: any(w.get("pool_id") for w in ws), "the pool's first worker",
                                 timeout=LAUNCH_SECONDS)
    pool = _pool(local_stack, pool_seed.POOL)
    assert pool["desired_workers"] == 1, pool

    # A second browser (a viewer) watches the Pools page: what changes there comes from the event stream only.
    watcher = open_page(browser, local_stack)
    log_in(watcher, local_stack, "viewer")
    watcher.goto("/#/pools")
    watched = _row(watcher, pool_seed.POOL)
    watched.locator("td[data-field=desired_workers]").filter(has_text="1").wait_for()
    watcher.evaluate("window.__sameDocument = true")

    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.goto(f"/#/pools/{pool['id']}")
    page.get_by_role("heading", name=pool_seed.POOL).wait_for()
    _history(page).first.wait_for()
    before = _history(page).count()
    page.evaluate(WATCH_PHASES)
    page.evaluate("window.__sameDocument = true")

    page.get_by_label("Workers", exact=True).fill("2")
    page.get_by_label("Reason", exact=True).fill("e2e: more room for the demo track")
    page.get_by_role("button", name="Scale", exact=True).click()
    manual = _history(page).filter(has_text="e2e: more room for the demo track")
    manual.first.wait_for()
    assert manual.first.get_attribute("data-trigger") == "manual"
    assert manual.first.locator("td[data-field=size]").inner_text() == "1 → 2"
    assert _history(page).count() > before

    # Then the autoscaler brings the second worker (resumed from the warm pool, or launched while the warm one is
    # still warming up): its decision, the phase and the counted worker arrive live.
    grown = re.compile(f"launching 1 from template {re.escape(pool_seed.TEMPLATE)}|resuming 1 stopped worker")
    _history(page).filter(has_text=grown).filter(
        has=page.locator("td[data-field=size]", has_text="2 → 2")).first.wait_for(timeout=LAUNCH_SECONDS * 1000)
    page.locator("#pool-capacity [data-field=workers]").filter(has_text=re.compile(r"^2 \(")).wait_for(
        timeout=LAUNCH_SECONDS * 1000)
    page.locator("#pool-workers tbody tr[data-worker-id]").nth(1).wait_for()
    page.locator("#pool-capacity [data-field=desired_workers]").filter(has_text="2").wait_for()
    page.wait_for_function("window.__phases.includes('scaling_up')", timeout=LAUNCH_SECONDS * 1000)
    assert page.evaluate("window.__sameDocument") is True

    watched.locator("td[data-field=desired_workers]").filter(has_text="2").wait_for()
    watched.locator("td[data-field=workers]").filter(has_text=re.compile(r"^2 \(")).wait_for(
        timeout=LAUNCH_SECONDS * 1000)
    assert watcher.evaluate("window.__sameDocument") is True
    _screenshot(page, tmp_path, "pool-detail-scaled.png")
    watcher.close()
    page.close()


def test_admin_creates_a_pool_edits_it_under_a_stale_version_and_deletes_it(browser, local_stack: LocalStack,
                                                                              tmp_path) -> None:
    name = f"e2e-pool-{uuid.uuid4().hex[:6]}"
    page = open_page(browser, local_stack)
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, local_stack, "admin")
    page.get_by_role("link", name="Pools").click()
    page.locator("#pool-create summary").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Lab track").fill(f"track-{name}")
    page.get_by_label("Template").select_option(pool_seed.TEMPLATE)
    page.get_by_label("Regions (comma-separated)").fill("us-west-2")
    page.get_by_label("Policy").select_option("none")

    # A minimum above the maximum: the API's 422, shown next to the form.
    page.get_by_label("Min workers").fill("3")
    page.get_by_label("Max workers").fill("1")
    page.get_by_role("button", name="Create pool").click()
    error = page.locator("#pool-error")
    error.filter(has_text="min_workers (3) is above max_workers (1)").wait_for()
    assert error.inner_text().startswith("The API refused this pool")
    assert error.get_attribute("role") == "alert"
    _screenshot(page, tmp_path, "pools-create-refused.png")

    # Min 0 with no policy: the pool launches nothing (the fleet stays as it is). Its description is markup,
    # which the pages show as text.
    page.get_by_label("Description").fill(HOSTILE)
    page.get_by_label("Min workers").fill("0")
    page.get_by_label("Max workers").fill("2")
    page.get_by_role("button", name="Create pool").click()
    row = _row(page, name)
    row.wait_for()
    assert row.locator("td[data-field=lab_track]").inner_text() == f"track-{name}"
    assert error.inner_text() == ""

    # Its page; the configuration form is drawn for the version read. Someone else changes the pool meanwhile:
    # the form says so, and the save is refused (409) with the way out.
    row.get_by_role("link", name=name).click()
    page.get_by_role("heading", name=name).wait_for()
    # A pool without any worker yet: its empty states, and its description as the text it is.
    expect(page.locator("#pool-workers tbody")).to_have_text("No worker yet.")
    expect(page.locator("#pool-capacity")).to_contain_text("no worker")
    expect(page.locator(".detail-header p.hint")).to_have_text(HOSTILE)
    page.locator("#pool-config dd", has_text=HOSTILE).wait_for()
    assert page.locator("#main img, #main b").count() == 0
    assert page.evaluate("window.__injected") is None
    page.locator("#pool-edit summary").click()
    page.locator("#pool-edit-description").fill("edited in the browser")
    created = _pool(local_stack, name)
    spec = {key: created[key] for key in ("name", "lab_track", "template_name", "regions", "scaling")}
    changed = local_stack.api("PUT", f"/api/pools/{created['id']}",
                              json={"spec": {**spec, "description": "changed elsewhere"},
                                    "spec_version": created["spec_version"]})
    assert changed.status_code == 200, changed.text
    page.locator("#pool-edit [role=status]").filter(has_text="Someone else changed").wait_for()
    page.get_by_role("button", name="Save configuration").click()
    page.locator("#pool-edit-error").filter(has_text="someone else changed this pool").wait_for()
    page.get_by_role("button", name="Reload the current configuration").click()
    expect(page.locator("#pool-edit-description")).to_have_value("changed elsewhere")
    page.locator("#pool-config dd", has_text="changed elsewhere").wait_for()

    # Drain (confirmed): the pool says so and takes no scale until it is undrained.
    scale = page.get_by_role("button", name="Scale", exact=True)
    undrain = page.get_by_role("button", name="Undrain", exact=True)
    page.get_by_role("button", name="Drain", exact=True).click()
    page.locator(".detail-header [data-field=draining]").wait_for()
    expect(scale).to_be_disabled()
    expect(undrain).to_be_enabled()
    assert _pool(local_stack, name)["draining"] is True
    undrain.click()
    page.locator(".detail-header [data-field=draining]").wait_for(state="detached")
    expect(scale).to_be_enabled()
    expect(undrain).to_be_disabled()

    # Delete (confirmed): a pool that never launched a worker is terminated at once.
    page.get_by_role("button", name="Delete", exact=True).click()
    page.locator(".detail-header [data-field=phase]").filter(has_text="terminated").wait_for()
    assert page.get_by_role("button", name="Delete", exact=True).is_disabled()
    page.get_by_role("link", name="← All pools").click()
    _row(page, pool_seed.POOL).wait_for()
    assert _row(page, name).count() == 0  # terminated pools are listed only on request
    page.get_by_label("Show terminated pools").check()
    _row(page, name).locator("td[data-field=phase]").filter(has_text="terminated").wait_for()
    page.close()


def test_a_viewer_sees_the_pool_pages_without_admin_controls(browser, local_stack: LocalStack, tmp_path) -> None:
    page = open_page(browser, local_stack, width=820, height=1180)  # a tablet, portrait
    log_in(page, local_stack, "viewer")
    page.get_by_role("link", name="Pools").click()
    row = _row(page, pool_seed.POOL)
    row.wait_for()
    assert page.locator("#pool-create").count() == 0
    _screenshot(page, tmp_path, "pools-tablet.png")
    row.get_by_role("link", name=pool_seed.POOL).click()
    page.get_by_role("heading", name=pool_seed.POOL).wait_for()
    _history(page).first.wait_for()
    page.locator("#pool-workers tbody tr[data-worker-id]").first.wait_for()
    page.locator("#pool-config").wait_for()
    assert page.locator("#main button, #main form, #pool-edit").count() == 0
    _screenshot(page, tmp_path, "pool-detail-tablet.png")
    page.close()


def test_no_console_errors_or_csp_violations(local_stack: LocalStack) -> None:
    """Runs last in this module: everything the pool pages logged as an error."""
    errors = [e for e in local_stack.console_errors if "ERR_INTERNET_DISCONNECTED" not in e
              and "Failed to load resource" not in e]
    assert errors == []
