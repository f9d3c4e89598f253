"""`lcm definitions ...` and `lcm sessions ...` against a real CPA: a definition created from a topology file,
listed, shown, its observations, a revision applied; a session created, listed, shown, observed (refused while
pending), terminated."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.lablet_api import LABLET, SAMPLE_TOPOLOGY, create_definition, ready_workers, schedule_body
from tests.lcm_cli.conftest import assert_one_line_error, rows_of


def _fields(text: str) -> dict[str, str]:
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in text.splitlines())}


def test_definitions_create_list_show_observations_and_apply(control_plane, run_lcm, tmp_path: Path) -> None:
    topology = tmp_path / "lab.yaml"
    topology.write_text(SAMPLE_TOPOLOGY)
    created = run_lcm("--json", "definitions", "create", "--name", "ccna-basic", "--topology", str(topology),
                      "--track", "ccna", "--max-duration", "90", "--activate")
    assert created.code == 0, created.err
    definition = json.loads(created.out)
    assert (definition["name"], definition["status"], definition["version"]) == ("ccna-basic", "active", 1)
    assert (definition["lab_track"], definition["max_duration_minutes"]) == ("ccna", 90)
    assert definition["lab_topology_yaml"] == SAMPLE_TOPOLOGY
    other = create_definition(control_plane, name="devnet", activate=False)

    listed = run_lcm("definitions", "list")
    assert listed.code == 0, listed.err
    rows = {r["NAME"]: r for r in rows_of(listed.out)}
    assert set(rows) == {"ccna-basic", "devnet"}
    assert (rows["ccna-basic"]["ID"], rows["ccna-basic"]["STATUS"], rows["ccna-basic"]["MAX_MIN"]) == (
        definition["id"], "active", "90")
    assert rows["devnet"]["STATUS"] == "draft"
    drafts = run_lcm("--json", "definitions", "list", "--status", "draft")
    assert [d["id"] for d in json.loads(drafts.out)["items"]] == [other["id"]]

    shown = _fields(run_lcm("definitions", "show", definition["id"]).out)
    assert (shown["id"], shown["version"], shown["lab_track"]) == (definition["id"], "1", "ccna")

    observed = run_lcm("definitions", "observations", definition["id"])
    assert observed.code == 0, observed.err
    head, table = observed.out.split("\n\n")
    assert _fields(head)["sessions_observed"] == "0"
    resources = {r["RESOURCE"]: r for r in rows_of(table)}
    assert set(resources) == {"cpu_cores", "memory_gb", "storage_gb", "node_count"}
    assert resources["cpu_cores"]["MAX"] == "-"  # nothing observed yet
    with control_plane.client() as http:
        api = http.get(f"/api/lablet-definitions/{definition['id']}/resource-observations",
                       headers=control_plane.viewer()).json()
    assert json.loads(run_lcm("--json", "definitions", "observations", definition["id"]).out) == api

    applied = run_lcm("definitions", "apply", definition["id"], "--cpu", "6", "--memory", "12")
    assert applied.code == 0, applied.err
    assert applied.out.startswith(f"definition {definition['id']} is now version 2: cpu_cores=6.0, memory_gb=12.0")
    # The version read is the guard: applying against version 1 again is a conflict.
    assert_one_line_error(run_lcm("definitions", "apply", definition["id"], "--version", "1", "--cpu", "8"),
                          "conflict (409)")
    nothing = run_lcm("definitions", "apply", definition["id"])
    assert (nothing.code, nothing.err.strip()) == (2, "lcm: give at least one of --cpu, --memory, --storage")
    missing = run_lcm("definitions", "create", "--name", "x", "--topology", str(tmp_path / "absent.yaml"))
    assert missing.code == 2
    assert "cannot read the topology" in missing.err
    assert_one_line_error(run_lcm("definitions", "create", "--name", "bad name!", "--topology", str(topology)),
                          "invalid input (422)", "name")


def _make_ready(cp, session_id: str, worker_id: str) -> None:
    """What the lablet-controller reports as it places the session and its lab boots."""
    base = f"/api/internal/lablet-sessions/{session_id}"
    with cp.client() as http:
        for path, body in ((f"{base}/schedule", schedule_body(worker_id)),
                           (f"{base}/transition", {"to": "instantiating", "reason": "importing"}),
                           (f"{base}/mark-ready", {"cml_lab_id": "lab-1"})):
            answer = http.post(path, headers=cp.leader(LABLET), json=body)
            assert answer.status_code == 200, answer.text


def test_sessions_create_list_show_observe_and_terminate(control_plane, run_lcm) -> None:
    worker_id = ready_workers(control_plane, 1)[0]
    definition = create_definition(control_plane)
    created = run_lcm("sessions", "create", "--definition", definition["id"], "--duration", "45",
                      "--owner", "student-1")
    assert created.code == 0, created.err
    assert created.out.startswith("session ")
    assert " created: pending (ccna-basic for student-1, " in created.out
    session_id = created.out.split()[1]

    as_json = run_lcm("--json", "sessions", "create", "--definition", definition["id"],
                      "--start", "2030-01-01T09:00:00Z", "--end", "2030-01-01T10:00:00Z")
    later = json.loads(as_json.out)
    assert (later["timeslot_start"], later["owner"]) == ("2030-01-01T09:00:00Z", "test-admin")

    listed = run_lcm("sessions", "list")
    assert listed.code == 0, listed.err
    rows = {r["ID"]: r for r in rows_of(listed.out)}
    assert set(rows) == {session_id, later["id"]}
    assert (rows[session_id]["OWNER"], rows[session_id]["DEFINITION"]) == ("student-1", "ccna-basic")
    assert rows[later["id"]]["START"] == "2030-01-01 09:00:00"
    mine = run_lcm("--json", "sessions", "list", "--owner", "student-1")
    assert [s["id"] for s in json.loads(mine.out)["items"]] == [session_id]

    shown = _fields(run_lcm("sessions", "show", session_id).out)
    assert (shown["id"], shown["owner"], shown["definition_id"]) == (session_id, "student-1", definition["id"])

    # Observing needs a live lab: a session still pending is refused by the API.
    assert_one_line_error(run_lcm("sessions", "observe", session_id), "conflict (409)")
    _make_ready(control_plane, session_id, worker_id)
    observing = run_lcm("sessions", "observe", session_id)
    assert observing.code == 0, observing.err
    request_id = observing.out.split()[1]
    assert observing.out.startswith(f"observation {request_id} requested for session {session_id} (ready)")
    with control_plane.client() as http:
        stored = http.get(f"/api/lablet-sessions/{session_id}", headers=control_plane.viewer()).json()
    assert (stored["observe_requested"], stored["observe_request_id"]) == (True, request_id)

    ended = run_lcm("--json", "sessions", "terminate", later["id"], "--reason", "not needed")
    assert ended.code == 0, ended.err
    with control_plane.client() as http:
        stored = http.get(f"/api/lablet-sessions/{later['id']}", headers=control_plane.viewer()).json()
    assert json.loads(ended.out)["status"] == stored["status"]
    assert stored["status"] in ("terminated", "terminating")

    assert_one_line_error(run_lcm("sessions", "show", "nope"), "not found (404)")
    assert_one_line_error(run_lcm("sessions", "create", "--definition", "nope"), "not found (404)")
    assert_one_line_error(run_lcm("sessions", "list", "--status", "dancing"), "invalid input (422)")
    bad_time = run_lcm("sessions", "create", "--definition", definition["id"], "--start", "tomorrow")
    assert bad_time.code == 2
    assert "not an ISO 8601 time" in bad_time.err
