"""Lablet definitions and sessions in the dashboard, in headless Chromium against the local stack.

Sessions change status the way the stack makes them change (`lablet_steps`): by its lablet-controller on
the simulated CML when that controller runs sessions, else through the internal API as that controller
would. Either way the page must follow each change live, without a reload.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e import lablet_steps as steps
from tests.e2e.stack import ARTIFACTS, LocalStack, log_in, open_page

pytestmark = pytest.mark.e2e

NAME = steps.NAME
CONTROLLER = steps.CONTROLLER_RUNS_SESSIONS
# Records every status a session's row shows, however the table redraws it.
WATCH_STATUSES = """id => { window.__seen = [];
  const seen = () => { const row = document.querySelector(`tr[data-session-id="${id}"]`);
    if (row && window.__seen.at(-1) !== row.dataset.status) window.__seen.push(row.dataset.status); };
  seen();
  new MutationObserver(seen).observe(document.querySelector('#sessions-table'),
    { subtree: true, childList: true, attributes: true }); }"""


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    assert (ARTIFACTS / name).stat().st_size > 10_000


def test_admin_creates_a_definition_from_the_sample_topology(browser, local_stack: LocalStack) -> None:
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.get_by_role("link", name="Definitions").click()
    page.get_by_role("heading", name="Lablet definitions").wait_for()
    page.locator("#definition-create summary").click()

    # A malformed topology: the CPA's 422 message is shown as it is, next to the form.
    page.get_by_label("Name", exact=True).fill("broken")
    page.get_by_label("… or paste it").fill("lab: {title: x}\nnodes: [\n")
    page.get_by_role("button", name="Create definition").click()
    error = page.locator("#definition-error")
    error.filter(has_text="not parseable as YAML at line").wait_for()
    assert error.inner_text().startswith("The CPA refused this definition: invalid lab topology")
    assert error.get_attribute("role") == "alert"

    # The sample topology, uploaded as a file: the name comes from the file, the YAML lands in the textarea.
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_label("Upload a CML lab YAML").set_input_files(str(steps.SAMPLE))
    page.wait_for_function("document.querySelector('#definition-yaml').value.includes('serial:5041')")
    assert page.get_by_label("Name", exact=True).input_value() == NAME
    page.get_by_label("Lab track").fill("ccna")
    page.get_by_label("Activate now (accept sessions)").check()
    page.get_by_role("button", name="Create definition").click()

    page.get_by_role("heading", name=NAME, exact=True).wait_for()
    assert page.locator(".detail-header [data-field=status]").inner_text() == "active"
    assert page.locator("#topology-nodes tbody tr").count() == 4
    assert page.locator("#topology-nodes tr[data-node=PC] td").last.inner_text() == "PC_serial (5043), PC_vnc (5044)"
    ports = page.locator("#port-template tbody tr")
    assert ports.count() == 4
    assert ports.first.inner_text().split("\t") == ["R1_serial", "R1", "serial", "5041"]
    assert page.locator("#observation-empty").is_visible()
    assert page.locator("#apply-form").count() == 0  # nothing observed, nothing to apply
    _screenshot(page, "definition-detail.png")

    # Deactivate and activate again: the badge follows, each button only when it applies.
    page.locator("button[data-action=deactivate]").click()
    page.locator(".detail-header [data-field=status]").filter(has_text="inactive").wait_for()
    assert page.locator("button[data-action=deactivate]").is_disabled()
    page.locator("button[data-action=activate]").click()
    page.locator(".detail-header [data-field=status]").filter(has_text=re.compile("^active$")).wait_for()

    page.get_by_role("link", name="← All definitions").click()
    row = page.locator("#definitions-table tbody tr", has_text=NAME)
    row.wait_for()
    cells = {f: row.locator(f"td[data-field={f}]").inner_text() for f in
             ("version", "status", "lab_track", "resource_requirements", "ports", "observation_review")}
    assert cells == {"version": "1", "status": "active", "lab_track": "ccna", "ports": "4",
                     "resource_requirements": "3 CPU · 2.5 GB RAM · 10 GB disk · 3 nodes", "observation_review": "—"}
    _screenshot(page, "definitions.png")
    page.close()



def test_a_session_created_in_the_page_changes_status_live(browser, local_stack: LocalStack) -> None:
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    page.goto("/#/sessions")
    page.locator("#session-create").wait_for()
    definition = steps.definition(local_stack, "ccna-live")  # activated after the page was drawn
    page.locator(f"#session-definition option[value='{definition['id']}']").wait_for(state="attached")
    page.locator("#session-create summary").focus()
    page.keyboard.press("Enter")  # the collapsed form opens from the keyboard
    page.get_by_label("Active definition").select_option(definition["id"])
    page.get_by_label("Owner (student)").fill("student-live")
    page.get_by_role("button", name="Create session").click()

    row = page.locator("#sessions-table tbody tr", has_text="student-live")
    row.wait_for()
    session_id = row.get_attribute("data-session-id")
    page.evaluate(WATCH_STATUSES, session_id)
    page.evaluate("window.__sameDocument = true")
    status = row.locator("td[data-field=status]")
    if CONTROLLER:  # placed, lab imported and booted on the simulated CML, handed over
        status.filter(has_text="running").wait_for(timeout=120_000)
        worker_id, final = steps.get_session(local_stack, session_id)["worker_id"], "running"
    else:
        assert status.inner_text() == "pending"
        assert row.locator("td[data-field=note]").inner_text() == "waiting for the scheduler"
        worker_id = steps.schedule(local_stack, session_id)["worker_id"]
        status.filter(has_text="scheduled").wait_for(timeout=20_000)
        steps.internal(local_stack, session_id, "transition", {"to": "instantiating", "reason": "e2e: importing"})
        status.filter(has_text="instantiating").wait_for(timeout=20_000)
        final = "instantiating"
        assert page.evaluate("window.__seen") == ["pending", "scheduled", "instantiating"]
    assert len(page.evaluate("window.__seen")) >= 2, page.evaluate("window.__seen")  # changed while watched
    worker = next(w for w in local_stack.workers() if w["id"] == worker_id)
    assert row.locator("td[data-field=worker]").inner_text() == worker["name"]
    assert row.locator("td[data-field=ports]").inner_text() == "4"
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded

    # Filters: by status (the CPA filters), by worker; an empty result says so.
    page.get_by_label("Status").select_option(final)
    page.locator(f"#sessions-table tr[data-session-id='{session_id}']").wait_for()
    # The session's row was there before the filter too: wait for the filtered list (other tests' sessions,
    # in other statuses, leave it when the CPA's answer is drawn).
    page.wait_for_function("""final => {
        const rows = [...document.querySelectorAll('#sessions-table tbody tr[data-status]')];
        return rows.length > 0 && rows.every(r => r.dataset.status === final);
    }""", arg=final, timeout=15_000)
    page.get_by_label("Status").select_option("expired")
    page.get_by_text("No session matches the filters.").wait_for()
    page.get_by_label("Status").select_option("")
    page.get_by_label("Worker").select_option(worker["id"])
    page.locator(f"#sessions-table tr[data-session-id='{session_id}']").wait_for()
    assert "worker_id=" in page.url
    _screenshot(page, "sessions.png")
    page.close()


def test_port_drift_notice_session_detail_and_observation_panel(browser, local_stack: LocalStack) -> None:
    definition = steps.definition(local_stack)
    session = steps.run_to_lab(local_stack, steps.create_session(local_stack, definition["id"])["id"])
    allocated = session["allocated_ports"]
    moved = allocated["PC_vnc"] + 100
    page = open_page(browser, local_stack)
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, local_stack, "admin")
    page.goto(f"/#/sessions/{session['id']}")
    header = page.locator(".detail-header [data-field=status]")
    header.filter(has_text=session["status"]).wait_for()
    assert page.locator("dt:text-is('CML lab id') + dd").inner_text() == session["cml_lab_id"]
    assert page.locator("#session-ports tbody tr").count() == 4

    # Someone moves PC's VNC port on CML; an admin asks for an observation and the drift shows everywhere.
    if CONTROLLER:
        steps.move_port_on_cml(local_stack, session, "PC", "vnc", moved)
    observe = page.locator("button[data-action=observe]")
    assert not observe.is_disabled()
    observe.click()  # the CPA writes the etcd request key for the lablet-controller
    if not CONTROLLER:
        page.get_by_text("Observation requested; waiting for the lablet-controller.").wait_for()
        assert page.locator("button[data-action=observe]").is_disabled()  # one request at a time
        steps.report_observation(local_stack, session["id"], {**allocated, "PC_vnc": moved})
    notice = page.locator("#notices [data-kind=port-drift]")
    notice.wait_for(timeout=60_000)
    assert f"PC_vnc allocated {allocated['PC_vnc']}, observed {moved}" in notice.inner_text()
    page.locator("#drift-flag").wait_for()
    drifted = page.locator("#session-ports tr[data-drift=true]")
    assert drifted.count() == 1
    assert drifted.locator("th").inner_text() == "PC_vnc"
    assert page.locator("#session-ports tr[data-drift=false]").count() == 3
    cpus = page.locator("dt:text-is('CPU cores') + dd").inner_text()
    assert re.fullmatch(r"\d+(\.\d+)? \(declared 3\)", cpus), cpus
    _screenshot(page, "session-detail.png")

    page.locator("button[data-action=terminate]").click()  # a session with a lab: the controller tears it down
    header.filter(has_text=re.compile("^(stopping|terminated)$")).wait_for()
    steps.finish_teardown(local_stack, session["id"])
    header.filter(has_text="terminated").wait_for(timeout=60_000)
    assert page.locator("button[data-action=terminate]").is_disabled()
    page.locator("#notices button", has_text="Dismiss").first.click()
    assert page.locator("#notices [data-kind=port-drift]").count() == 0

    # The definition's panel: the observation against the declared values; an apply on a stale version is a
    # 409 said in words; reloading and applying again makes a new version.
    page.goto(f"/#/definitions/{definition['id']}")
    panel = page.locator("#observation-panel")
    panel.locator("#observation-table").wait_for()
    assert panel.locator("tr[data-resource=cpu_cores] td[data-field=declared]").inner_text() == "3"
    if not CONTROLLER:  # 6 observed CPUs against 3 declared: flagged for review
        assert panel.locator("tr[data-resource=cpu_cores] td[data-field=max]").inner_text() == "6"
        assert "Flagged for review" in panel.locator("[data-field=review]").inner_text()
        assert page.get_by_label("CPU cores").input_value() == "6"  # prefilled with the maximum
    current = local_stack.api("GET", f"/api/lablet-definitions/{definition['id']}").json()
    page.get_by_label("CPU cores").fill("5")  # the admin edits the form; meanwhile another change lands
    bumped = local_stack.api("POST", f"/api/lablet-definitions/{definition['id']}/apply-observations",
                             json={"version": current["version"], "storage_gb": 11})
    assert bumped.status_code == 200, bumped.text
    panel.get_by_text(f"your form still applies to version {current['version']}").wait_for(timeout=20_000)
    page.locator("#apply-form button[type=submit]").click()
    error = page.locator("#apply-error")
    error.filter(has_text="changed since you read version").wait_for()
    # Said in words, with the CPA's reason (not as a status code).
    assert error.inner_text().startswith(f"Not applied: the definition changed since you read version "
                                         f"{current['version']} (definition {definition['id']} is at version")
    page.locator("#apply-reload").click()
    page.locator(f"#apply-form[data-version='{current['version'] + 1}']").wait_for()
    page.get_by_label("CPU cores").fill("5")
    page.locator("#apply-form button[type=submit]").click()
    page.locator(".detail-header [data-field=version]").filter(has_text=str(current["version"] + 2)).wait_for()
    applied = local_stack.api("GET", f"/api/lablet-definitions/{definition['id']}").json()
    assert (applied["resource_requirements"]["cpu_cores"], applied["observation_review"]) == (5, False)
    _screenshot(page, "definition-observations.png")
    page.close()


def test_a_viewer_sees_no_lablet_admin_controls(browser, local_stack: LocalStack) -> None:
    definition = steps.definition(local_stack)
    session = steps.create_session(local_stack, definition["id"])
    page = open_page(browser, local_stack, width=820, height=1180)  # a tablet, portrait
    log_in(page, local_stack, "viewer")
    page.get_by_role("link", name="Definitions").click()
    page.locator("#definitions-table tbody tr", has_text=NAME).wait_for()
    assert page.locator("#definition-create").count() == 0
    page.locator("#definitions-table a", has_text=NAME).click()
    page.locator("#observation-panel").wait_for()
    page.locator("#topology-nodes").wait_for()
    assert page.locator("main button[data-action]").count() == 0
    assert page.locator("#apply-form").count() == 0
    _screenshot(page, "definition-detail-tablet.png")
    page.get_by_role("link", name="Sessions of this definition").click()
    page.locator(f"#sessions-table tr[data-session-id='{session['id']}']").wait_for()
    assert page.get_by_label("Definition").input_value() == definition["id"]
    assert page.locator("#session-create").count() == 0
    _screenshot(page, "sessions-tablet.png")
    page.locator(f"#sessions-table tr[data-session-id='{session['id']}'] a").first.focus()
    page.keyboard.press("Enter")  # keyboard: the session link opens the detail
    page.locator(".detail-header [data-field=status]").wait_for()
    assert page.locator("main button[data-action]").count() == 0
    page.close()


def test_no_console_errors_on_the_lablet_pages(local_stack: LocalStack) -> None:
    errors = [e for e in local_stack.console_errors if "ERR_INTERNET_DISCONNECTED" not in e
              and "Failed to load resource" not in e]
    assert errors == []
