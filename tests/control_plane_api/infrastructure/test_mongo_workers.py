"""Worker reads that load no worker, against the MongoDB-wire server."""

from __future__ import annotations

from control_plane_api.infrastructure.mongo_workers import WorkerRepository
from tests.fixtures.mongo import fresh_database


async def test_workers_are_counted_by_status_and_health_without_loading_them(mongo_server) -> None:
    async with fresh_database(mongo_server, "workers") as db:
        collection = db["workers"]
        await collection.insert_many([{"_id": f"w{n}", "status": "running" if n % 2 else "stopped",
                                       "health_status": "healthy" if n % 3 else "unknown"} for n in range(10)])
        counts = await WorkerRepository(collection).count_by_status_and_health()
    assert counts == {("running", "healthy"): 3, ("running", "unknown"): 2, ("stopped", "healthy"): 3,
                      ("stopped", "unknown"): 2}


def test_a_worker_stored_before_telemetry_moved_out_is_read_in_the_current_shape() -> None:
    """An installation upgraded in place: its worker documents still hold the telemetry, idle state and
    licence details that now live in the telemetry collection. They are read (not a 500), and lose those."""
    from control_plane_api.infrastructure.mongo_workers import from_document

    stored = {
        "_id": "w1", "name": "cml-1", "aws_region": "us-east-1", "aws_instance_id": "i-0123456789abcdef0",
        "status": "running", "created_at": "2026-11-01T00:00:00+00:00", "updated_at": "2026-11-01T00:00:00+00:00",
        "version": 12, "health_reasons": ["status is running"], "last_seen_at": "2026-11-30T00:00:00+00:00",
        "last_health_check_at": "2026-11-30T00:00:00+00:00",
        "telemetry": {"ec2": {"state": "running"}, "cpu_percent": 12.0, "labs_count": 2},
        "license": {"status": "registered", "nodes_in_use": 4},
        "activity": {"idle_detection_enabled": False, "idle_since": None, "idle_verdict": "activity seen",
                     "last_activity_at": None, "eligible_for_auto_pause": False, "idle_checked_at": None},
        "capacity": {"hosted_lab_ids": [], "session_ids": ["s1"]},
    }
    worker = from_document(stored)
    assert (worker.id, worker.version, worker.ec2_state) == ("w1", 12, "running")
    assert worker.license.status.value == "registered"
    assert worker.activity.idle_detection_enabled is False  # what the operator set is kept
    assert worker.capacity.session_ids == ["s1"]
    assert "telemetry" not in worker.model_dump()
