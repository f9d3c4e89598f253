"""`lcm workers ...` against a real CPA: the table and the API's JSON, the filters, the actions (what the API
stores after them), and the one-line errors of refused or unreachable calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lcm_cli import render
from lcm_core.testing.processes import free_port
from tests.fixtures.control_plane import discovered
from tests.fixtures.lablet_api import report_status, worker_detail
from tests.lcm_cli.conftest import assert_one_line_error, rows_of

LCM = Path(sys.executable).parent / "lcm"


def _fleet(cp) -> list[str]:
    """Three workers: two running in us-east-1, one stopped in us-west-2."""
    with cp.client() as http:
        answer = http.post("/api/internal/workers/bulk-import", headers=cp.leader(), json={"instances": [
            discovered(1), discovered(2), discovered(3, region="us-west-2", state="stopped")]})
        assert answer.status_code == 200, answer.text
        ids = answer.json()["created"]
        for worker_id in ids[:2]:
            report_status(cp, http, worker_id, "running", "available")
    return ids


def test_list_prints_an_aligned_table_and_json_prints_the_apis_answer(control_plane, run_lcm) -> None:
    ids = _fleet(control_plane)
    ran = run_lcm("workers", "list")
    assert ran.code == 0, ran.err
    header, *lines = ran.lines()
    assert header.split() == ["ID", "NAME", "REGION", "INSTANCE", "STATUS", "DESIRED", "HEALTH", "TRACK",
                              "SESSIONS", "CPU%", "MEM%"]
    rows = rows_of(ran.out)
    assert [(r["ID"], r["NAME"], r["REGION"], r["STATUS"]) for r in rows] == [
        (ids[0], "cml-001", "us-east-1", "running"), (ids[1], "cml-002", "us-east-1", "running"),
        (ids[2], "cml-003", "us-west-2", "stopped")]
    assert rows[0]["INSTANCE"] == discovered(1)["aws_instance_id"]
    assert rows[0]["SESSIONS"] == "0"
    assert rows[0]["DESIRED"] == "-"
    # Aligned: every row's region starts where the header's does.
    start = header.index("REGION")
    assert all(line[start:].startswith(("us-east-1", "us-west-2")) for line in lines)
    assert ran.err == ""

    as_json = run_lcm("--json", "workers", "list")
    assert as_json.code == 0
    with control_plane.client() as http:
        api = http.get("/api/workers", headers=control_plane.viewer()).json()
    assert json.loads(as_json.out) == api


def test_list_filters_by_status_region_and_search(control_plane, run_lcm) -> None:
    ids = _fleet(control_plane)
    stopped = run_lcm("workers", "list", "--status", "stopped")
    assert [r["ID"] for r in rows_of(stopped.out)] == [ids[2]]
    east = run_lcm("--json", "workers", "list", "--region", "us-east-1")
    assert [w["id"] for w in json.loads(east.out)["items"]] == ids[:2]
    both = run_lcm("--json", "workers", "list", "--status", "running", "--status", "stopped", "--region",
                   "us-east-1,us-west-2")
    assert json.loads(both.out)["total"] == 3
    found = run_lcm("workers", "list", "-q", "cml-002")
    assert [r["NAME"] for r in rows_of(found.out)] == ["cml-002"]
    paged = run_lcm("workers", "list", "--limit", "2")
    assert len(rows_of(paged.out)) == 2
    assert paged.err.strip() == "2 of 3 workers shown (--limit/--offset for more)"
    nothing = run_lcm("workers", "list", "--status", "terminated")
    assert (nothing.code, nothing.out, nothing.err.strip()) == (0, "", "no workers")


def test_show_and_the_actions_change_what_the_api_holds(control_plane, run_lcm) -> None:
    cp = control_plane
    ids = _fleet(cp)
    shown = run_lcm("workers", "show", ids[0])
    assert shown.code == 0
    fields = dict(line.split(":", 1) for line in shown.lines())
    assert fields["id"].strip() == ids[0]
    assert fields["status"].strip() == "running"
    assert fields["aws_instance_id"].strip() == discovered(1)["aws_instance_id"]
    assert json.loads(run_lcm("--json", "workers", "show", ids[0]).out)["id"] == ids[0]

    stopped = run_lcm("workers", "stop", ids[0], "--reason", "maintenance")
    assert stopped.code == 0, stopped.err
    assert stopped.out.strip() == f"worker {ids[0]} (cml-001): status running, desired stopped"
    with cp.client() as http:
        after = worker_detail(cp, http, ids[0])
    assert (after["desired_status"], after["desired_reason"]) == ("stopped", "maintenance")

    started = run_lcm("--json", "workers", "start", ids[2])
    assert json.loads(started.out)["desired_status"] == "running"

    # Drained for maintenance: it stays running, empty, until undrained.
    drained = run_lcm("workers", "drain", ids[1], "--then", "running")
    assert drained.code == 0, drained.err
    assert drained.out.startswith(f"worker {ids[1]} (cml-002): status ")
    with cp.client() as http:
        assert worker_detail(cp, http, ids[1])["drain"]["then"] == "running"
    undrained = run_lcm("--json", "workers", "undrain", ids[1])
    assert undrained.code == 0, undrained.err
    assert json.loads(undrained.out)["drain"] is None

    terminated = run_lcm("workers", "terminate", ids[1], "--force")
    assert terminated.code == 0, terminated.err
    with cp.client() as http:
        assert worker_detail(cp, http, ids[1])["desired_status"] == "terminated"


def test_refusals_are_one_line_errors_with_a_non_zero_exit(control_plane, run_lcm) -> None:
    ids = _fleet(control_plane)
    assert_one_line_error(run_lcm("workers", "show", "no-such-worker"), "not found (404)")
    assert_one_line_error(run_lcm("workers", "list", token=None), "not authenticated (401)", "lcm login")
    assert_one_line_error(run_lcm("workers", "list", token="not-a-jwt-at-all"), "not authenticated (401)")
    assert_one_line_error(run_lcm("workers", "stop", ids[0], token=control_plane.viewer_token),
                          "forbidden (403)", "admin")
    assert_one_line_error(run_lcm("workers", "list", "--status", "sleeping"), "invalid input (422)", "status")
    # Draining a stopped worker: the API's 409, in its own words.
    assert_one_line_error(run_lcm("workers", "drain", ids[2]), "conflict (409)")
    # An id is one path segment: it cannot walk to another route.
    assert_one_line_error(run_lcm("workers", "show", "../pools"), "not found (404)")


def test_an_unreachable_api_and_bad_usage(run_lcm) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run_lcm("--api-url", nobody, "workers", "list"),
                          f"cannot reach the API at {nobody}", "connection refused")
    bad = run_lcm("workers", "list", "--limit", "0")
    assert bad.code == 2
    assert "not within 1..1000" in bad.err
    assert "Traceback" not in bad.err
    bare = run_lcm("workers")
    assert bare.code == 2
    assert "COMMAND" in bare.err


def test_a_wide_character_name_keeps_the_columns_aligned(control_plane, run_lcm) -> None:
    with control_plane.client() as http:
        answer = http.post("/api/internal/workers/bulk-import", headers=control_plane.leader(), json={
            "instances": [discovered(1, name="cml-東京-01", tags={"Name": "cml-東京-01"}), discovered(2)]})
        assert answer.status_code == 200, answer.text
    ran = run_lcm("workers", "list")
    assert ran.code == 0, ran.err
    header, *lines = ran.lines()
    at = render.width(header[: header.index("REGION")])
    assert [render.width(line[: line.index("us-east-1")]) for line in lines] == [at, at], ran.out
    assert "cml-東京-01" in ran.out


def test_a_reason_with_control_characters_is_refused_by_the_api_and_echoed_escaped(control_plane, run_lcm) -> None:
    # The API stores no control character (lcm_core.domain.types), so nothing stored can reach a terminal later;
    # the refusal, which may quote the input, is escaped on its way to stderr.
    [worker_id] = _import(control_plane, 1)
    stopped = run_lcm("workers", "stop", worker_id, "--reason", "maint\x1b]0;pwned\x07")
    assert_one_line_error(stopped, "invalid input (422)", "control characters")
    assert "\x1b" not in stopped.err, repr(stopped.err)
    assert "\x07" not in stopped.err, repr(stopped.err)


def test_piping_into_head_exits_zero(control_plane, tmp_path) -> None:
    _import(control_plane, *range(1, 120))
    env = {**os.environ, "LCM_API_URL": control_plane.url, "LCM_TOKEN": control_plane.admin_token,
           "LCM_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run(["bash", "-o", "pipefail", "-c", f"'{LCM}' --json workers list | head -c 10"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "{\n  \"items", "")


def _import(cp, *numbers: int) -> list[str]:
    with cp.client() as http:
        answer = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                           json={"instances": [discovered(n) for n in numbers]})
        assert answer.status_code == 200, answer.text
        return answer.json()["created"]


def test_show_says_why_a_worker_could_not_be_launched(control_plane, run_lcm) -> None:
    cp = control_plane
    error = "AWS ec2.run_instances in us-east-1 failed: InsufficientInstanceCapacity"
    with cp.client() as http:
        assert http.post("/api/templates", headers=cp.admin(), json={
            "name": "cli-metal", "instance_type": "m5zn.metal", "ami_name_pattern": "CML-*",
            "regions": {"us-east-1": {}}, "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 300,
                                                       "max_nodes": 100}}).status_code == 201
        worker_id = http.post("/api/workers", headers=cp.admin(),
                              json={"template_name": "cli-metal", "aws_region": "us-east-1"}).json()["id"]
        before = dict(line.split(":", 1) for line in run_lcm("workers", "show", worker_id).lines())
        assert before["launch_failure"].strip() == "-"
        for second in ("01", "02"):
            answer = http.post(f"/api/internal/workers/{worker_id}/launch-failed", headers=cp.leader(),
                               json={"error": error, "observed_at": f"2026-12-05T12:00:{second}+00:00"})
            assert answer.status_code == 200, answer.text
    shown = run_lcm("workers", "show", worker_id)
    assert shown.code == 0, shown.err
    line = next(line for line in shown.lines() if line.startswith("launch_failure:"))
    assert line.split(":", 1)[1].strip() == (
        f"2 failed attempt(s) since 2026-12-05 12:00:01, last at 2026-12-05 12:00:02: {error}")
    as_json = json.loads(run_lcm("--json", "workers", "show", worker_id).out)
    assert as_json["launch_failure"]["attempts"] == 2
