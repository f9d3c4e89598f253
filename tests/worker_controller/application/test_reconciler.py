"""The worker reconciler's safety rules, with the control plane, EC2 and CML as in-memory fakes: it decides
only from EC2 reads made after the worker's last change and says when it read; it passes the fence before
every change and checks an old decision again; a registered worker releases its licence (after its labs are
stopped) before it goes down and a worker with sessions never goes down; provisioning never launches twice;
licence polling has a bounded rate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from lcm_core.cml import CmlError
from lcm_core.domain.cml_snapshot import CmlLicenseInfo
from lcm_core.domain.worker_launch import LaunchFailureReport
from lcm_core.errors import UnavailableError
from lcm_core.leader.fence import AlwaysLeading, LeadershipLost, LeaseFence
from worker_controller.application.reconciler import WorkerReconciler
from worker_controller.domain.ec2 import Ec2Instance
from worker_controller.domain.worker_view import ImportReply, WorkerView

REGION = "eu-west-3"
IID = "i-0000000000000a001"


def now() -> datetime:
    return datetime.now(UTC)


class FakeGateway:
    """The control plane: one worker document, the reports it received, in order."""

    def __init__(self, **worker: Any) -> None:
        self.doc: dict[str, Any] = {"id": "w1", "name": "cml-1", "aws_region": REGION, "aws_instance_id": IID,
                                    "status": "running", "service_status": "available",
                                    "private_ip": "10.0.0.1", **worker}
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.imported: list[dict[str, Any]] = []

    async def worker(self, worker_id: str) -> WorkerView:
        return WorkerView.model_validate(self.doc)

    async def workers(self) -> list[WorkerView]:
        return [WorkerView.model_validate(self.doc)]

    async def report_status(self, worker_id: str, body: dict[str, Any]) -> WorkerView:
        self.reports.append(("status", body))
        return WorkerView.model_validate(self.doc)

    async def license_progress(self, worker_id: str, body: dict[str, Any]) -> WorkerView:
        self.reports.append(("license", body))
        licence = self.doc.setdefault("license", {})
        if body.get("status"):
            licence["status"] = body["status"]
        if body.get("finished"):
            licence["pending_action"] = None
        return WorkerView.model_validate(self.doc)

    async def template(self, name: str) -> dict[str, Any]:
        return {"name": name, "instance_type": "m5zn.metal", "ami_name_pattern": "CML-*"}

    async def launch_failed(self, worker_id: str, report: dict[str, Any]) -> WorkerView:
        self.reports.append(("launch_failed", report))
        return WorkerView.model_validate(self.doc)

    async def provisioned(self, worker_id: str, instance: dict[str, Any]) -> WorkerView:
        self.reports.append(("provisioned", instance))
        self.doc["aws_instance_id"] = instance["aws_instance_id"]
        return WorkerView.model_validate(self.doc)

    async def bulk_import(self, instances: list[dict[str, Any]], source: str) -> ImportReply:
        self.imported += instances
        return ImportReply()


class FakeAws:
    def __init__(self, state: str = "running") -> None:
        self.instances: dict[str, Ec2Instance] = {IID: Ec2Instance(IID, REGION, state, private_ip="10.0.0.1")}
        self.calls: list[str] = []
        self.read_delay = 0.0
        self.during_read: Any = None
        self.run_fails_after_launch = False

    def set_state(self, state: str) -> None:
        self.instances[IID] = Ec2Instance(IID, REGION, state, private_ip="10.0.0.1")

    async def instances_by_id(self, region: str, ids: list[str]) -> dict[str, Ec2Instance]:
        self.calls.append("describe")
        if self.during_read is not None:
            self.during_read()
        await asyncio.sleep(self.read_delay)
        return {i: self.instances[i] for i in ids if i in self.instances}

    async def instances_by_tag(self, region: str, key: str, value: str) -> list[Ec2Instance]:
        self.calls.append("describe-by-tag")
        return [i for i in self.instances.values() if i.tags.get(key) == value]

    async def run_from_template(self, region: str, template: dict[str, Any], *, name: str, client_token: str,
                                tags: dict[str, str], guard: Any = None) -> Ec2Instance:
        if guard is not None:
            guard()
        self.calls.append("run")
        number = len(self.instances) + 1
        instance = Ec2Instance(f"i-{number:017x}", region, "pending", tags=dict(tags),
                               launch_time=now() + timedelta(seconds=number))
        self.instances[instance.instance_id] = instance
        if self.run_fails_after_launch:
            raise UnavailableError("AWS ec2.run_instances failed: read timeout (the instance exists anyway)")
        return instance

    async def start(self, region: str, ids: list[str], guard: Any = None) -> None:
        if guard is not None:
            guard()
        self.calls.append("start")

    async def stop(self, region: str, ids: list[str], guard: Any = None) -> None:
        if guard is not None:
            guard()
        self.calls.append("stop")

    async def terminate(self, region: str, ids: list[str], guard: Any = None) -> None:
        if guard is not None:
            guard()
        self.calls.append("terminate")


class FakeCml:
    """The CML API calls the reconciler makes; refuses to deregister while a lab runs, as CML does."""

    def __init__(self, registered: bool = True) -> None:
        self.registered = registered
        self.labs = {"lab-a": "STARTED", "lab-b": "STOPPED"}
        self.calls: list[str] = []

    async def system_information(self, host: str) -> Any:
        return SimpleNamespace(ready=True)

    async def lab_ids(self, host: str) -> list[str]:
        return list(self.labs)

    async def lab_state(self, host: str, lab_id: str) -> str:
        return self.labs[lab_id]

    async def stop_lab(self, host: str, lab_id: str) -> None:
        self.calls.append(f"stop {lab_id}")
        self.labs[lab_id] = "STOPPED"

    async def deregister_license(self, host: str) -> bool:
        assert "STARTED" not in self.labs.values(), "CML refuses to deregister while nodes run"
        self.calls.append("deregister")
        self.registered = False
        return True

    async def register_license(self, host: str, token: str) -> None:
        self.calls.append("register")
        if self.registered:
            raise CmlError("The product is already registered; use reregister to register again", host=host,
                           status_code=409)

    async def licensing(self, host: str) -> CmlLicenseInfo:
        self.calls.append("licensing")
        return CmlLicenseInfo(registration_status="COMPLETED" if self.registered else "NOT_REGISTERED",
                              authorization_status="IN_COMPLIANCE", product_license="CML_Enterprise",
                              is_enterprise=True, node_limit=None)


def reconciler(aws: FakeAws, gateway: FakeGateway, cml: FakeCml | None = None, fence: Any = None,
               **kwargs: Any) -> WorkerReconciler:
    async def refresh(_worker: WorkerView) -> None:
        return None

    return WorkerReconciler(aws, cml or FakeCml(), gateway, fence or AlwaysLeading(),  # type: ignore[arg-type]
                            cml_url_template="http://cml/{instance_id}", resync_interval=60,
                            ec2_timeout_seconds=600, cml_boot_timeout_seconds=900, license_token="TOKEN",
                            refresh=refresh, **kwargs)


async def test_an_ec2_read_older_than_the_last_change_is_never_used() -> None:
    aws, gateway = FakeAws("running"), FakeGateway()
    wc = reconciler(aws, gateway)
    await wc.list_keys()  # prefetch: running
    aws.set_state("stopped")  # then stopped behind LCM's back, seen by discovery, and started by an operator
    gateway.doc.update(status="stopped", status_changed_at=now().isoformat(), desired_status="running",
                       desired_changed_at=now().isoformat())
    await wc.reconcile("w1")
    assert aws.calls == ["describe", "describe", "start"]
    assert not [body for kind, body in gateway.reports if body.get("ec2_state") == "running"]


async def test_every_status_report_says_when_ec2_was_read() -> None:
    aws, gateway = FakeAws("stopped"), FakeGateway()
    wc = reconciler(aws, gateway)
    before = now()
    await wc.reconcile("w1")
    [(_, body)] = gateway.reports
    assert body["ec2_state"] == "stopped"
    assert before <= datetime.fromisoformat(body["observed_at"]) <= now()


async def test_a_fence_that_refuses_means_no_ec2_call() -> None:
    aws, gateway = FakeAws("stopped"), FakeGateway(status="stopped", desired_status="running")
    fence = LeaseFence(lambda: 0.5, margin_seconds=1.0)
    with pytest.raises(LeadershipLost):
        await reconciler(aws, gateway, fence=fence).reconcile("w1")
    assert "start" not in aws.calls
    assert fence.refused == 1


async def test_a_decision_older_than_the_margin_is_checked_again_before_it_is_carried_out() -> None:
    aws, gateway = FakeAws("running"), FakeGateway(desired_status="stopped", license={"status": "unregistered"})
    aws.read_delay = 0.2  # the EC2 read outlasts the fence margin ...
    aws.during_read = lambda: gateway.doc.update(desired_status="running")  # ... and the operator changes her mind
    fence = LeaseFence(lambda: 10.0, margin_seconds=0.1)
    await reconciler(aws, gateway, fence=fence).reconcile("w1")
    assert "stop" not in aws.calls


async def test_a_registered_worker_releases_its_licence_after_its_labs_are_stopped_then_stops() -> None:
    aws, cml = FakeAws("running"), FakeCml(registered=True)
    gateway = FakeGateway(desired_status="stopped", desired_changed_at=now().isoformat(),
                          license={"status": "registered"})
    wc = reconciler(aws, gateway, cml)
    first = await wc.reconcile("w1")
    assert cml.calls == ["stop lab-a", "deregister", "licensing"]
    assert "stop" not in aws.calls  # not before the licence is released
    assert [b["status"] for k, b in gateway.reports if k == "license"] == ["deregistering", "unregistered"]
    assert gateway.reports[0][1]["restore_on_start"] is True  # registered again when started
    assert first.requeue_after is not None
    await wc.reconcile("w1")
    assert aws.calls[-1] == "stop"


async def test_a_worker_holding_sessions_never_goes_down() -> None:
    aws = FakeAws("running")
    gateway = FakeGateway(desired_status="terminated", sessions=2, license={"status": "unregistered"})
    result = await reconciler(aws, gateway).reconcile("w1")
    assert "terminate" not in aws.calls
    assert result.requeue_after is not None


async def test_a_licence_cml_cannot_release_is_reported_when_the_instance_goes_down_anyway() -> None:
    aws = FakeAws("running")
    gateway = FakeGateway(desired_status="terminated", service_status="error", license={"status": "registered"},
                          desired_changed_at=(now() - timedelta(minutes=11)).isoformat())
    await reconciler(aws, gateway, deregister_timeout_seconds=600).reconcile("w1")
    assert aws.calls[-1] == "terminate"
    assert any(kind == "license" and "not released" in body["error"] for kind, body in gateway.reports)


async def test_a_failed_run_instances_that_launched_anyway_never_leads_to_a_second_instance() -> None:
    aws = FakeAws()
    aws.instances.clear()
    aws.run_fails_after_launch = True
    gateway = FakeGateway(aws_instance_id=None, status="pending", template_name="metal", desired_status="running")
    wc = reconciler(aws, gateway)
    await wc.reconcile("w1")
    assert len(aws.instances) == 1
    [(kind, body)] = gateway.reports
    assert (kind, body["aws_instance_id"]) == ("provisioned", next(iter(aws.instances)))
    await wc.reconcile("w1")  # attached: never launched again
    assert aws.calls.count("run") == 1


async def test_a_failed_run_instances_that_launched_nothing_is_raised_for_a_retry() -> None:
    aws = FakeAws()
    aws.instances.clear()

    async def fail(*_args: Any, **_kwargs: Any) -> Ec2Instance:
        aws.calls.append("run")
        raise UnavailableError("AWS ec2.run_instances failed: InsufficientInstanceCapacity")

    aws.run_from_template = fail  # type: ignore[method-assign]
    gateway = FakeGateway(aws_instance_id=None, status="pending", template_name="metal", desired_status="running")
    with pytest.raises(UnavailableError):  # the reconcile loop backs off and retries
        await reconciler(aws, gateway).reconcile("w1")
    assert aws.calls == ["describe-by-tag", "run", "describe-by-tag"]
    # Checked again by tag, nothing launched: the attempt is reported, for the control plane to count.
    ((kind, report),) = gateway.reports
    assert kind == "launch_failed"
    assert report["error"] == "AWS ec2.run_instances failed: InsufficientInstanceCapacity"
    assert report["observed_at"]


@pytest.mark.parametrize(("message", "reported"), [
    ("InvalidParameterValue:\n  bad subnet\x1b[0m", "InvalidParameterValue:   bad subnet [0m"),
    ("", "the launch failed"),
])
async def test_a_launch_error_is_reported_as_storable_text(message: str, reported: str) -> None:
    aws = FakeAws()
    aws.instances.clear()

    async def fail(*_args: Any, **_kwargs: Any) -> Ec2Instance:
        raise UnavailableError(message)

    aws.run_from_template = fail  # type: ignore[method-assign]
    gateway = FakeGateway(aws_instance_id=None, status="pending", template_name="metal", desired_status="running")
    with pytest.raises(UnavailableError):
        await reconciler(aws, gateway).reconcile("w1")
    ((kind, report),) = gateway.reports
    assert (kind, report["error"]) == ("launch_failed", reported)
    LaunchFailureReport.model_validate(report)  # raises if the control plane would refuse it


async def test_duplicate_instances_keep_the_oldest_and_report_the_others() -> None:
    aws = FakeAws()
    tags = {"lcm:worker-id": "w1"}
    aws.instances = {iid: Ec2Instance(iid, REGION, "running", tags=tags, launch_time=now() + timedelta(seconds=n))
                     for n, iid in enumerate(("i-00000000000000b02", "i-00000000000000b01", "i-00000000000000b03"))}
    gateway = FakeGateway(aws_instance_id=None, status="pending", template_name="metal", desired_status="running")
    wc = reconciler(aws, gateway)
    await wc.reconcile("w1")
    assert "run" not in aws.calls
    assert gateway.reports[0][1]["aws_instance_id"] == "i-00000000000000b02"
    assert {i["aws_instance_id"] for i in gateway.imported} == {"i-00000000000000b01", "i-00000000000000b03"}
    assert wc.provisioner.duplicates == 2


async def test_licence_progress_is_polled_at_a_bounded_rate_and_reported_once_per_change() -> None:
    aws, cml = FakeAws("running"), FakeCml(registered=False)
    gateway = FakeGateway(license={"status": "registering", "pending_action": "register"})
    wc = reconciler(aws, gateway, cml)
    for _ in range(20):  # every licence write wakes the reconcile through etcd
        result = await wc.reconcile("w1")
        assert result.requeue_after is not None
        assert result.requeue_after > 0
    assert cml.calls.count("licensing") == 1
    assert cml.calls.count("register") == 1
    assert len([r for r in gateway.reports if r[0] == "license"]) == 1


async def test_a_second_licence_request_is_reported_to_its_end_like_the_first() -> None:
    aws, cml = FakeAws("running"), FakeCml(registered=True)
    gateway = FakeGateway(license={"status": "deregistering", "pending_action": "deregister"})
    wc = reconciler(aws, gateway, cml)
    wc.licensing._poll = 0.0  # no waiting between polls in this test
    cml.labs = {}
    for action, registered in (("deregister", False), ("register", True), ("deregister", False)):
        gateway.doc["license"] = {"status": f"{action}ing", "pending_action": action}
        cml.registered = not registered
        await wc.reconcile("w1")
        if action == "register":
            cml.registered = True  # registration completes asynchronously in CML
            await wc.reconcile("w1")
        assert gateway.doc["license"]["pending_action"] is None, action
    finished = [b for kind, b in gateway.reports if kind == "license" and b.get("finished")]
    assert [b["status"] for b in finished] == ["unregistered", "registered", "unregistered"]


async def test_registering_a_host_cml_has_registered_already_completes_the_request() -> None:
    aws, cml = FakeAws("running"), FakeCml(registered=True)
    gateway = FakeGateway(license={"status": "registering", "pending_action": "register"})
    wc = reconciler(aws, gateway, cml)
    await wc.reconcile("w1")
    assert cml.calls[:2] == ["register", "licensing"]  # CML's 409 is not a failure: its licensing says why
    (report,) = [b for kind, b in gateway.reports if kind == "license"]
    assert report["status"] == "registered"
    assert report["finished"] is True
    assert "error" not in report
