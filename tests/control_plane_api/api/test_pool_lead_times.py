"""Lead times measured by a real CPA: a pool's worker launched from its template gives a "provision" sample the
first time it serves (running, CML available, licensed, healthy), a worker resumed from stopped a "resume"
sample, each timed on the CPA's clock from its request; the work the autoscaler reads serves their p95 once
enough were measured, the pool's defaults until then."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from lcm_core.domain.pool_forecast import LEAD_TIME_MIN_SAMPLES
from lcm_core.testing.servers import Endpoint
from tests.fixtures.control_plane import ControlPlaneUnderTest, discovered
from tests.fixtures.lablet_api import report_cml_health, report_status, worker_detail
from tests.fixtures.mongo import mongo_client
from tests.fixtures.pool_api import evaluate_pool, pool_work

TEMPLATE: dict[str, Any] = {"name": "standard", "instance_type": "m5zn.metal", "regions": {"us-east-1": {}},
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200}}
SPEC: dict[str, Any] = {"name": "ccna-pool", "lab_track": "ccna", "template_name": "standard", "regions": ["us-east-1"],
        "scaling": {"min_workers": 0, "max_workers": 2, "provision_lead_minutes": 15, "resume_lead_minutes": 8}}


def _samples(cp: ControlPlaneUnderTest, mongo_server: Endpoint, kind: str) -> list[float]:
    with mongo_client(mongo_server) as mongo:
        found = mongo[cp.settings.mongodb_database]["lead_time_samples"].find({"kind": kind})
        return [d["seconds"] for d in found]


def test_a_launched_worker_gives_a_provision_sample_when_it_first_serves(control_plane, mongo_server) -> None:
    cp = control_plane
    with cp.client() as http:
        assert http.post("/api/templates", headers=cp.admin(), json=TEMPLATE).status_code == 201
        pool = http.post("/api/pools", headers=cp.admin(), json=SPEC).json()
        evaluate_pool(cp, http, pool["id"], desired_workers=1, launch=["us-east-1"], phase="initializing")
        [row] = pool_work(cp, http, pool["id"]).workers
        worker_id = row.id
        clock = worker_detail(cp, http, worker_id)["lead_clock"]
        assert clock["kind"] == "provision"

        http.post(f"/api/internal/workers/{worker_id}/provisioned", headers=cp.leader(),
                  json=discovered(5, state="pending", tags={"lcm:worker-id": worker_id})).raise_for_status()
        report_status(cp, http, worker_id, "running", "available")
        assert worker_detail(cp, http, worker_id)["license"]["status"] == "registering"  # asked by itself
        registered = http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(),
                               json={"status": "registered", "finished": True})
        assert registered.status_code == 200, registered.text
        assert pool_work(cp, http, pool["id"]).lead_time.provision_samples == 0  # licensed, not measured healthy yet
        time.sleep(1.0)
        assert report_cml_health(cp, http, worker_id)["summary"]["phase"] == "READY"
        served = pool_work(cp, http, pool["id"])
        report_cml_health(cp, http, worker_id)  # serving again: the clock has stopped, nothing more is measured
        after = worker_detail(cp, http, worker_id)
        again = pool_work(cp, http, pool["id"])

    [seconds] = _samples(cp, mongo_server, "provision")
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(clock["since"])).total_seconds()
    assert 1.0 <= seconds <= elapsed
    assert after["lead_clock"] is None
    assert (served.lead_time.provision_samples, again.lead_time.provision_samples) == (1, 1)
    # Fewer than LEAD_TIME_MIN_SAMPLES: the pool's default stands.
    assert served.lead_time.provision_seconds == SPEC["scaling"]["provision_lead_minutes"] * 60


def test_resumed_workers_give_resume_samples_and_their_p95_is_served(control_plane, mongo_server) -> None:
    """A pool's member stopped by a scale-down and resumed by the next scale-up, LEAD_TIME_MIN_SAMPLES times,
    serving after a different wait each time: the work serves the p95 of the samples (the longest of 3)."""
    cp = control_plane
    waits = [0.2, 1.2, 0.5][:LEAD_TIME_MIN_SAMPLES]
    # Until 20 were measured the lead time is at least the pool's default: a default shorter than any sample
    # lets their p95 show.
    spec = {**SPEC, "scaling": {**SPEC["scaling"], "resume_lead_minutes": 0.001}}
    with cp.client() as http:
        assert http.post("/api/templates", headers=cp.admin(), json=TEMPLATE).status_code == 201
        pool = http.post("/api/pools", headers=cp.admin(), json=spec).json()
        evaluate_pool(cp, http, pool["id"], desired_workers=1, launch=["us-east-1"], phase="initializing")
        [row] = pool_work(cp, http, pool["id"]).workers
        worker_id = row.id
        http.post(f"/api/internal/workers/{worker_id}/provisioned", headers=cp.leader(),
                  json=discovered(6, state="running", tags={"lcm:worker-id": worker_id})).raise_for_status()
        report_status(cp, http, worker_id, "running", "available")
        http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(),
                  json={"status": "registered", "finished": True}).raise_for_status()
        report_cml_health(cp, http, worker_id)
        assert worker_detail(cp, http, worker_id)["lead_clock"] is None  # the provision clock was measured

        for wait in waits:
            evaluate_pool(cp, http, pool["id"], desired_workers=0, retire=[worker_id], retire_then="stop",
                          phase="scaling_down")
            assert worker_detail(cp, http, worker_id)["desired_status"] == "stopped"
            report_status(cp, http, worker_id, "stopped")
            evaluate_pool(cp, http, pool["id"], desired_workers=1, resume=[worker_id], phase="scaling_up")
            clock = worker_detail(cp, http, worker_id)["lead_clock"]
            assert clock["kind"] == "resume"
            report_status(cp, http, worker_id, "running", "available")
            time.sleep(wait)
            report_cml_health(cp, http, worker_id)
            assert worker_detail(cp, http, worker_id)["lead_clock"] is None
        work = pool_work(cp, http, pool["id"])

    samples = _samples(cp, mongo_server, "resume")
    assert len(samples) == len(waits)
    assert all(s >= wait for s, wait in zip(sorted(samples), sorted(waits), strict=True))
    assert (work.lead_time.resume_samples, work.lead_time.provision_samples) == (len(waits), 1)
    assert not work.lead_time.resume_measured  # fewer than LEAD_TIME_WINDOW
    assert work.lead_time.resume_seconds == max(samples)  # nearest-rank p95 of 3 is the longest
    assert work.lead_time.provision_seconds == SPEC["scaling"]["provision_lead_minutes"] * 60
