"""The placement rules (docs/lablet-controller.md): each filter, the score, each strategy, ties and "no candidate"."""

from __future__ import annotations

import random
from collections.abc import Set
from typing import Any

import pytest

from lablet_controller.domain.decisions import no_candidate_reason
from lablet_controller.domain.placement import (
    Requirements,
    WorkerCandidate,
    base_score,
    candidate_from,
    reject_capacity,
    reject_license,
    reject_ports,
    reject_state,
    reject_track,
    rejection,
    score,
)
from lablet_controller.domain.scheduling import Group, Scheduler
from lcm_core.domain.workers import WorkerSummary

REQ = Requirements(cpu_cores=4, memory_gb=8, storage_gb=20, nodes=3, ports=2)


def worker(wid: str = "w1", **kw: Any) -> WorkerCandidate:
    values: dict[str, Any] = {"status": "running", "service_status": "available", "health_status": "healthy",
                              "license_status": "registered",
                              "cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200,
                              "port_capacity": 100}
    values.update(kw)
    return WorkerCandidate(id=wid, **values)


# ---- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "why"), [
    ({}, None),
    ({"health_status": "degraded"}, None),
    ({"health_status": "critical"}, "health critical"),
    ({"health_status": "unreachable"}, "health unreachable"),
    ({"health_status": "unknown"}, "health unknown"),
    ({"status": "draining"}, "draining"),
    ({"status": "stopped"}, "not running"),
    ({"service_status": "starting"}, "CML unavailable"),
])
def test_state_filter(state: dict[str, Any], why: str | None) -> None:
    assert reject_state(worker(**state)) == why


def test_an_unhealthy_worker_is_never_chosen_however_well_it_scores() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("a", health_status="unreachable"), worker("b", used_cpu=40, used_memory=150)])
    decision = scheduler.decide(REQ)
    assert decision.worker_id == "b"
    assert decision.candidates_evaluated == 1


def test_license_filter() -> None:
    assert reject_license(worker(), REQ, require_license=True) is None
    unlicensed = worker(license_status="evaluation")
    assert reject_license(unlicensed, REQ, require_license=True) == "unlicensed"
    # Allowed unlicensed: only within CML's 5-node limit.
    assert reject_license(unlicensed, REQ, require_license=False) is None
    big = Requirements(nodes=6)
    assert reject_license(unlicensed, big, require_license=False) == "unlicensed"
    # The session's licence affinity overrides the default rule.
    eval_only = Requirements(license_affinity=frozenset({"evaluation"}))
    assert reject_license(unlicensed, eval_only, require_license=True) is None
    assert reject_license(worker(), eval_only, require_license=True) == "licence not in affinity"
    enterprise = Requirements(license_affinity=frozenset({"enterprise"}))
    assert reject_license(worker(is_enterprise=True), enterprise, require_license=True) is None
    assert reject_license(worker(), enterprise, require_license=True) == "licence not in affinity"
    product = Requirements(license_affinity=frozenset({"cml_personal"}))
    assert reject_license(worker(license_product="CML_Personal"), product, require_license=True) is None


def test_track_filter() -> None:
    assert reject_track(worker(), Requirements(lab_track="ccna")) is None  # general worker takes any track
    assert reject_track(worker(lab_track="ccna"), Requirements(lab_track="ccna")) is None
    assert reject_track(worker(lab_track="ccnp"), Requirements(lab_track="ccna")) == "other track"
    assert reject_track(worker(lab_track="ccnp"), Requirements()) == "other track"


@pytest.mark.parametrize(("used", "why"), [
    ({}, None),
    ({"used_cpu": 45}, "insufficient cpu"),
    ({"used_memory": 190}, "insufficient memory"),
    ({"used_storage": 490}, "insufficient storage"),
    ({"used_nodes": 198}, "insufficient nodes"),
    ({"cpu_cores": 0}, "no declared capacity"),
])
def test_capacity_filter(used: dict[str, Any], why: str | None) -> None:
    assert reject_capacity(worker(**used), REQ) == why


def test_capacity_fits_exactly() -> None:
    assert reject_capacity(worker(used_cpu=44, used_memory=184), REQ) is None


def test_port_filter() -> None:
    assert reject_ports(worker(used_ports=98), REQ) is None
    assert reject_ports(worker(used_ports=99), REQ) == "no free ports"


def test_rejection_reports_the_first_failing_filter() -> None:
    assert rejection(worker(status="stopped", used_cpu=48), REQ, require_license=True) == "not running"
    assert rejection(worker(), REQ, require_license=True) is None


# ---- score -----------------------------------------------------------------------------------------


def test_score_weights() -> None:
    idle = worker()
    # capacity 0.4 + labs<15 0.2 + 0.2*(1-0) + licensed 0.1 + ready 0.05 + CML-capable 0.1
    assert base_score(idle) == pytest.approx(1.05)
    assert score(worker(lab_track="ccna"), Requirements(lab_track="ccna")) == pytest.approx(1.10)
    busy = worker(labs_count=15, used_cpu=43.2, used_memory=172.8, used_storage=450, license_status="evaluation")
    # 90 % used: no capacity bonus, no labs bonus, 0.2*0.1, unlicensed, active, CML-capable
    assert base_score(busy) == pytest.approx(0.02 + 0.1)


# ---- strategies ------------------------------------------------------------------------------------


def fleet() -> list[WorkerCandidate]:
    return [
        worker("w1", used_cpu=24, used_memory=96, used_storage=250, labs_count=4),   # half used
        worker("w2", used_cpu=4, used_memory=8, used_storage=20, labs_count=6),      # lightly used, many labs
        worker("w3", used_cpu=12, used_memory=48, used_storage=125, labs_count=1),   # quarter used, few labs
    ]


def decide(strategy: str, **kw: Any) -> str | None:
    scheduler = Scheduler(strategy, **kw)
    scheduler.refresh(fleet())
    return scheduler.decide(REQ).worker_id


def test_best_fit_picks_the_highest_score() -> None:
    assert decide("best_fit") == "w2"


def test_least_utilized() -> None:
    assert decide("least_utilized") == "w2"


def test_least_labs() -> None:
    assert decide("least_labs") == "w3"


def test_round_robin_cycles_in_id_order() -> None:
    scheduler = Scheduler("round_robin")
    scheduler.refresh(fleet())
    chosen = [scheduler.decide(REQ).worker_id for _ in range(4)]
    assert chosen == ["w1", "w2", "w3", "w1"]
    scheduler.refresh(fleet())  # the cursor survives a new pass
    assert scheduler.decide(REQ).worker_id == "w2"


def test_random_uses_the_injected_rng() -> None:
    first = [decide("random", rng=random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1  # same seed, same choice
    picks = set()
    scheduler = Scheduler("random", rng=random.Random(1))
    scheduler.refresh(fleet())
    for _ in range(30):
        picks.add(scheduler.decide(REQ).worker_id)
    assert picks == {"w1", "w2", "w3"}


def test_ties_go_to_the_lowest_worker_id() -> None:
    for strategy in ("best_fit", "least_utilized", "least_labs"):
        scheduler = Scheduler(strategy)
        scheduler.refresh([worker("w9"), worker("w3"), worker("w5")])
        assert scheduler.decide(REQ).worker_id == "w3", strategy


def test_track_match_wins_a_tie_under_best_fit() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("a"), worker("b", lab_track="ccna")])
    assert scheduler.decide(Requirements(cpu_cores=1, memory_gb=1, lab_track="ccna")).worker_id == "b"


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scheduling strategy"):
        Scheduler("first_fit")


# ---- decisions and reservations --------------------------------------------------------------------


def test_decision_records_candidates_scores_and_latency() -> None:
    scheduler = Scheduler("best_fit")
    # w2 is the best but too full for REQ; w3 is next in line.
    scheduler.refresh([*fleet(), worker("w4", status="stopped"), worker("w0", used_ports=99)])
    decision = scheduler.decide(REQ)
    assert decision.success
    assert decision.worker_id == "w2"
    assert decision.candidates_evaluated == 4  # the running, available workers (w4 is stopped)
    assert decision.reason == "best_fit: chose w2 among 4 candidates (2 examined)"  # w0 (ports full), then w2
    assert decision.latency_ms >= 0
    assert decision.strategy == "best_fit"
    assert decision.scores == {"w2": pytest.approx(score(scheduler.workers["w2"], REQ), abs=1e-4)}
    assert decision.to_json()["worker_id"] == "w2"


def exhaustive(workers: list[WorkerCandidate], req: Requirements, strategy: str) -> str | None:
    """The specification: every filter over every worker, then the strategy's preference, ties by id."""
    fits = [w for w in workers if rejection(w, req, require_license=True) is None]
    if not fits:
        return None
    keys = {"best_fit": lambda w: (-round(score(w, req), 9), w.id),
            "least_utilized": lambda w: (round(w.mean_utilisation(), 9), -round(base_score(w), 9), w.id),
            "least_labs": lambda w: (w.labs_count, round(w.mean_utilisation(), 9), w.id)}
    return min(fits, key=keys[strategy]).id


@pytest.mark.parametrize("strategy", ["best_fit", "least_utilized", "least_labs"])
def test_indexed_walk_chooses_what_an_exhaustive_search_chooses(strategy: str) -> None:
    rng = random.Random(strategy)
    tracks = [None, None, "ccna", "ccnp"]
    fleet_ = [worker(f"w{n:03d}", lab_track=rng.choice(tracks), status=rng.choice(["running"] * 5 + ["stopped"]),
                     license_status=rng.choice(["registered"] * 4 + ["evaluation"]),
                     cpu_cores=16, memory_gb=64, storage_gb=200, max_nodes=20, port_capacity=12,
                     labs_count=rng.randint(0, 3)) for n in range(60)]
    reference = [WorkerCandidate(**{k: getattr(w, k) for k in w.__slots__}) for w in fleet_]
    by_id = {w.id: w for w in reference}
    scheduler = Scheduler(strategy)
    scheduler.refresh(fleet_)
    for _ in range(400):
        req = Requirements(cpu_cores=rng.choice([1, 2, 4]), memory_gb=rng.choice([2, 4, 8]), storage_gb=10,
                           nodes=rng.randint(1, 4), ports=rng.randint(0, 3), lab_track=rng.choice(tracks))
        expected = exhaustive(reference, req, strategy)
        decision = scheduler.decide(req)
        assert decision.worker_id == expected
        if expected is None:
            assert decision.reason.startswith("no eligible worker")
            continue
        scheduler.reserve(expected, req)
        ref = by_id[expected]
        ref.take(req)


def test_reserve_prevents_over_commit_within_a_pass() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("only", cpu_cores=8, memory_gb=16)])
    first = scheduler.decide(REQ)
    assert first.worker_id == "only"
    scheduler.reserve("only", REQ)
    second = scheduler.decide(REQ)
    assert second.worker_id == "only"
    scheduler.reserve("only", REQ)
    third = scheduler.decide(REQ)
    assert not third.success
    assert third.reason.endswith("worker only: insufficient cpu")


def test_exclude_drops_a_worker_for_the_pass() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh(fleet())
    scheduler.exclude("w2")
    assert scheduler.decide(REQ).worker_id != "w2"


def test_no_candidate_reason_counts_every_rejection() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("a", status="stopped"), worker("b", status="stopped"),
                       worker("c", service_status="starting"), worker("d", license_status="unregistered"),
                       worker("e", lab_track="ccnp"), worker("f", used_ports=100)])
    decision = scheduler.decide(REQ)
    assert not decision.success
    assert decision.worker_id is None
    assert decision.candidates_evaluated == 2  # d and f: running, available, no track (e serves ccnp)
    assert decision.reason == ("no eligible worker among 6: 2 workers: not running (a, b); worker c: CML "
                               "unavailable; worker f: no free ports; worker e: other track; worker d: unlicensed")


def test_an_unhealthy_fleet_says_which_worker_is_unhealthy_by_name() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("id-1", name="cml-1", health_status="unreachable"),
                       worker("id-2", name="cml-2", status="draining")])
    assert scheduler.decide(REQ).reason == ("no eligible worker among 2: worker cml-2: draining; "
                                            "worker cml-1: health unreachable")


def test_a_long_reason_names_a_few_workers_and_fits_the_contract() -> None:
    many = {"health unreachable": [f"w{n}" for n in range(5)]}
    assert no_candidate_reason(many, 5) == "no eligible worker among 5: 5 workers: health unreachable (w0, w1, w2, ...)"
    huge = {f"reason {n}": [f"worker-with-a-long-name-{n}-{k}" for k in range(4)] for n in range(40)}
    assert len(no_candidate_reason(huge, 160)) == 1000


def test_no_workers_at_all() -> None:
    scheduler = Scheduler()
    scheduler.refresh([])
    assert scheduler.decide(REQ).reason == "no workers known"
    assert no_candidate_reason({}, 0) == "no workers known"


def test_candidate_from_the_worker_row() -> None:
    item = {"id": "w1", "name": "cml-1", "status": "running", "service_status": "available",
            "health_status": "degraded", "license_status": "registered", "lab_track": "ccna", "pool_id": "p1",
            "labs_count": 3, "sessions": 1,
            "capacity": {"declared": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200},
                         "allocated": {"cpu_cores": 4, "memory_gb": 8, "storage_gb": 0, "max_nodes": 3},
                         "ports_used": 2}}
    candidate = candidate_from(WorkerSummary.model_validate(item), default_port_capacity=1000)
    assert (candidate.labs_count, candidate.used_cpu, candidate.used_nodes, candidate.used_ports) == (3, 4, 3, 2)
    assert candidate.port_capacity == 1000
    assert (candidate.lab_track, candidate.pool_id, candidate.licensed) == ("ccna", "p1", True)
    assert (candidate.health_status, candidate.label) == ("degraded", "cml-1")
    assert candidate_from(WorkerSummary.model_validate(item | {"labs_count": None}),
                          default_port_capacity=1).labs_count == 1  # not yet measured: its sessions
    empty = candidate_from(WorkerSummary(id="w2"), default_port_capacity=10)
    assert (empty.status, empty.health_status, empty.cpu_cores, empty.labs_count) == ("unknown", "unknown", 0, 0)
    assert empty.pool_id is None
    assert empty.label == "w2"
    assert reject_state(empty) == "not running"


def test_a_failed_requirement_is_answered_from_memory_until_the_next_pass() -> None:
    calls = 0

    class Counting(Scheduler):
        def _why_nothing_fits(self, req: Requirements, groups: Set[Group] | None,
                              closed: tuple[Group, str] | None = None) -> str:
            nonlocal calls
            calls += 1
            return super()._why_nothing_fits(req, groups, closed)

    scheduler = Counting("best_fit")
    scheduler.refresh([worker("a", cpu_cores=2, memory_gb=4)])
    first, second = scheduler.decide(REQ), scheduler.decide(REQ)
    assert not first.success
    assert second.reason == first.reason
    assert calls == 1
    assert scheduler.decide(Requirements(cpu_cores=1, memory_gb=1)).success  # other needs are still judged
    scheduler.refresh([worker("a")])  # a new pass forgets
    assert scheduler.decide(REQ).success
