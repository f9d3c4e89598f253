"""What the worker contract cannot carry (more computes or features than it bounds, text of several lines) is
left out by the CML parsers with a warning: never raised, never sent to fail the control plane's validation."""

from __future__ import annotations

from datetime import UTC, datetime

from lcm_core.cml import build_snapshot, parse_lab_ids, parse_licensing, parse_system_stats
from lcm_core.domain.cml_snapshot import MAX_COMPUTES, MAX_FEATURES
from lcm_core.domain.workers import WorkerMetricsReport


def test_what_the_contract_cannot_carry_is_left_out_with_a_warning_never_raised() -> None:
    """A host with more computes than the report carries, a compute id of several lines, lab ids that are not
    one line of text, too many licence features: each costs its own entries, and the snapshot still validates
    as the control plane's report."""

    entry = {"stats": {"cpu": {"count": 4, "percent": 1.0}, "dominfo": {"allocated_cpus": 0}}}
    computes = {"bad\nid": entry} | {f"c{n}": entry for n in range(MAX_COMPUTES + 6)}
    warnings: list[str] = []
    stats = parse_system_stats({"all": {}, "computes": computes}, host="h", warnings=warnings)
    assert len(stats.computes) == MAX_COMPUTES
    assert any(f"has more than {MAX_COMPUTES} entries" in w for w in warnings)
    assert any("has an id that is not a single line" in w for w in warnings)
    labs = parse_lab_ids(["ok-lab", "two\nlines", "x" * 300], host="h", warnings=warnings)
    assert labs == ["ok-lab"]
    licence = parse_licensing({"registration": {"status": "COMPLETED"}, "features": [
        {"name": f"f{n}", "in_use": 1, "max": 2, "status": None} for n in range(MAX_FEATURES + 3)]},
        host="h", warnings=warnings)
    assert licence.features is not None
    assert len(licence.features) == MAX_FEATURES
    snapshot = build_snapshot(host="h", stats=stats, licensing=licence, lab_ids=labs, warnings=warnings)
    sent = WorkerMetricsReport(worker_id="w", collected_at=datetime(2026, 12, 5, tzinfo=UTC), cml=snapshot)
    assert WorkerMetricsReport.model_validate(sent.model_dump(mode="json")).cml == snapshot
