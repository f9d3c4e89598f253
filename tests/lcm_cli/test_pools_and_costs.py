"""`lcm pools ...` and `lcm costs` against a real CPA: a pool listed, shown with its worker, scaled, its history
and forecast, drained, undrained and deleted; the cost report's table (its total row) and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from tests.fixtures.control_plane import ControlPlaneUnderTest, discovered
from tests.lcm_cli.conftest import assert_one_line_error, rows_of

TEMPLATE = {"name": "priced", "instance_type": "m5zn.metal", "regions": {"us-east-1": {}},
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200},
            "cost_per_hour_usd": 3.6}
SPEC = {"name": "ccna-pool", "lab_track": "ccna", "template_name": "priced", "regions": ["us-east-1"],
        "scaling": {"min_workers": 0, "max_workers": 3}}


def _ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


def _pool_with_a_worker(cp: ControlPlaneUnderTest) -> tuple[dict, str]:
    """A pool whose autoscaler launched one worker (as the worker-controller reports it), now running."""
    with cp.client() as http:
        _ok(http.post("/api/templates", headers=cp.admin(), json=TEMPLATE), 201)
        pool = _ok(http.post("/api/pools", headers=cp.admin(), json=SPEC), 201)
        _ok(http.post(f"/api/internal/pools/{pool['id']}/evaluation", headers=cp.leader(), json={
            "expected_version": pool["version"], "observed_at": datetime.now(UTC).isoformat(),
            "phase": "initializing", "capacity": {}, "desired_workers": 1, "launch": ["us-east-1"],
            "decision": {"at": datetime.now(UTC).isoformat(), "action": "scale_up", "from_workers": 0,
                         "to_workers": 1, "reason": "below the minimum"}}))
        worker_id = _ok(http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()))["workers"][0]["id"]
        _ok(http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                      json={"ec2_state": "running", "service_status": "available"}))
    return pool, worker_id


def test_pools_list_show_scale_history_forecast_drain_and_delete(control_plane, run_lcm) -> None:
    cp = control_plane
    pool, worker_id = _pool_with_a_worker(cp)

    listed = run_lcm("pools", "list")
    assert listed.code == 0, listed.err
    [row] = rows_of(listed.out)
    assert (row["ID"], row["NAME"], row["TRACK"], row["TEMPLATE"], row["DESIRED"], row["MIN"], row["MAX"]) == (
        pool["id"], "ccna-pool", "ccna", "priced", "1", "0", "3")
    with cp.client() as http:
        assert json.loads(run_lcm("--json", "pools", "list").out) == http.get(
            "/api/pools", headers=cp.viewer()).json()

    shown = run_lcm("pools", "show", pool["id"])
    assert shown.code == 0, shown.err
    fields, workers = shown.out.split("\n\n")
    assert f"id:             {pool['id']}" in fields.splitlines()
    assert "workers:        1 desired (0..3)" in fields.splitlines()
    assert [r["ID"] for r in rows_of(workers)] == [worker_id]

    scaled = run_lcm("pools", "scale", pool["id"], "2", "--reason", "exam week")
    assert scaled.code == 0, scaled.err
    assert scaled.out.strip() == f"pool {pool['id']} (ccna-pool): held at 2 workers"
    assert_one_line_error(run_lcm("pools", "scale", pool["id"], "5"), "invalid input (422)")
    over = run_lcm("pools", "scale", pool["id"], "1001")
    assert over.code == 2

    history = run_lcm("pools", "history", pool["id"])
    assert history.code == 0, history.err
    decisions = rows_of(history.out)
    assert (decisions[0]["ACTION"], decisions[0]["FROM"], decisions[0]["TO"]) == ("scale_up", "1", "2")
    assert decisions[0]["REASON"] == "exam week"
    assert decisions[-1]["REASON"] == "below the minimum"
    assert len(json.loads(run_lcm("--json", "pools", "history", pool["id"]).out)) == len(decisions)

    forecast = run_lcm("pools", "forecast", pool["id"], "--hours", "2")
    assert forecast.code == 0, forecast.err
    head = forecast.out.split("\n\n")[0]
    assert f"pool:                {pool['id']}" in head.splitlines()
    assert "look_ahead_minutes:  120.0" in head.splitlines()
    raw = json.loads(run_lcm("--json", "pools", "forecast", pool["id"], "--hours", "2").out)
    assert (raw["pool_id"], raw["look_ahead_minutes"]) == (pool["id"], 120)
    assert run_lcm("pools", "forecast", pool["id"], "--hours", "500").code == 2

    drained = run_lcm("--json", "pools", "drain", pool["id"])
    assert json.loads(drained.out)["draining"] is True
    assert rows_of(run_lcm("pools", "list").out)[0]["STATE"] == "draining"
    assert json.loads(run_lcm("--json", "pools", "undrain", pool["id"]).out)["draining"] is False
    deleted = run_lcm("pools", "delete", pool["id"])
    assert deleted.code == 0, deleted.err
    with cp.client() as http:
        assert _ok(http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()))["pool"]["deleting"] is True

    assert_one_line_error(run_lcm("pools", "show", "nope"), "not found (404)")
    assert_one_line_error(run_lcm("pools", "drain", pool["id"], token=cp.viewer_token), "forbidden (403)")


def test_costs_table_and_json(control_plane, run_lcm) -> None:
    cp = control_plane
    began = datetime.now(UTC) - timedelta(minutes=5)
    pool, worker_id = _pool_with_a_worker(cp)
    window = ["--from", began.isoformat(), "--to", (datetime.now(UTC) + timedelta(minutes=5)).isoformat()]

    ran = run_lcm("costs", *window)
    assert ran.code == 0, ran.err
    head, table = ran.out.split("\n\n")
    assert head.startswith(f"costs from {began.strftime('%Y-%m-%d %H:%M:%S')} to ")
    assert head.endswith("by pool, in USD")
    body, idle = table.strip().rsplit("\n", 1)
    rows = rows_of(body)
    assert [r["KEY"] for r in rows] == [pool["id"], "TOTAL"]
    assert rows[0]["NAME"] == "ccna-pool"
    assert rows[0]["TOTAL_USD"] == rows[1]["TOTAL_USD"]
    assert idle.startswith("idle (running, no session held): $")

    as_json = json.loads(run_lcm("--json", "costs", "--group-by", "worker", *window).out)
    assert as_json["group_by"] == "worker"
    assert [g["key"] for g in as_json["groups"]] == [worker_id]
    assert set(as_json) == {"from", "to", "group_by", "currency", "bucket_seconds", "totals", "groups", "series"}
    only = json.loads(run_lcm("--json", "costs", "--worker", "nobody", *window).out)
    assert only["groups"] == []

    assert_one_line_error(run_lcm("costs", "--from", "2300-01-01T00:00:00Z"), "invalid input (422)", "from")
    assert run_lcm("costs", "--group-by", "colour").code == 2


def test_pools_create_from_flags_or_a_spec_file_and_adopt_and_release_a_worker(control_plane, run_lcm,
                                                                               tmp_path) -> None:
    cp = control_plane
    with cp.client() as http:
        _ok(http.post("/api/templates", headers=cp.admin(), json=TEMPLATE), 201)
        worker_id = _ok(http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                                  json={"instances": [discovered(1)]}))["created"][0]

    made = run_lcm("--json", "pools", "create", "--name", "ccna-pool", "--track", "ccna", "--template", "priced",
                   "--region", "us-east-1", "--policy", "lab_count_based", "--min-workers", "0", "--max-workers", "2",
                   "--labs-per-worker", "2", "--scale-down-action", "terminate")
    assert made.code == 0, made.err
    pool = json.loads(made.out)
    with cp.client() as http:  # --json: the API's answer (stored times come back at MongoDB's milliseconds)
        stored = _ok(http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()))["pool"]
    times = ("created_at", "updated_at")
    assert {k: v for k, v in pool.items() if k not in times} == {k: v for k, v in stored.items() if k not in times}
    assert set(pool) == set(stored)
    scaling = pool["scaling"]
    assert (pool["name"], pool["lab_track"], scaling["policy"], scaling["min_workers"], scaling["max_workers"],
            scaling["max_labs_per_worker"], scaling["scale_down_action"]) == (
        "ccna-pool", "ccna", "lab_count_based", 0, 2, 2, "terminate")

    spec = tmp_path / "pool.json"
    spec.write_text(json.dumps({**SPEC, "name": "encor-pool", "lab_track": "encor"}))
    from_file = run_lcm("pools", "create", "--spec", str(spec))
    assert from_file.code == 0, from_file.err
    assert from_file.out.startswith("pool ")
    assert "(encor-pool): created for track encor" in from_file.out

    # The API's refusals and the CLI's own, one line each.
    assert_one_line_error(run_lcm("pools", "create", "--spec", str(spec)), "conflict (409)")
    spec.write_text(json.dumps({**SPEC, "name": "x", "lab_track": "y", "regions": []}))
    assert_one_line_error(run_lcm("pools", "create", "--spec", str(spec)), "invalid input (422)", "regions")
    for argv, said in ((["--spec", str(spec), "--name", "x"], "leave out --name"),
                       (["--name", "x"], "--track, --template needed"),
                       (["--spec", str(spec), "--labs-per-worker", "2"], "leave out --labs-per-worker"),
                       (["--name", "x", "--track", "y", "--template", "z", "--labs-per-worker", "0"],
                        "--labs-per-worker"),
                       (["--spec", "/dev/zero"], "is over 64000 bytes")):
        refused = run_lcm("pools", "create", *argv)
        assert (refused.code, refused.out) == (2, ""), refused.err
        assert said in refused.err, refused.err
    spec.write_text("[1]")
    assert "is not a JSON object" in run_lcm("pools", "create", "--spec", str(spec)).err

    adopted = run_lcm("pools", "adopt", pool["id"], worker_id)
    assert adopted.code == 0, adopted.err
    fields, workers = adopted.out.split("\n\n")
    assert f"id:             {pool['id']}" in fields.splitlines()
    assert [r["ID"] for r in rows_of(workers)] == [worker_id]
    with cp.client() as http:
        assert _ok(http.get(f"/api/workers/{worker_id}", headers=cp.viewer()))["pool_id"] == pool["id"]
    released = run_lcm("--json", "pools", "release", pool["id"], worker_id)
    assert released.code == 0, released.err
    assert json.loads(released.out)["workers"] == []
    with cp.client() as http:
        assert _ok(http.get(f"/api/workers/{worker_id}", headers=cp.viewer())).get("pool_id") is None
