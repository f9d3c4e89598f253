"""One metrics cycle is one trace across services: the worker-controller's cycle (in this process, against moto
and the CML simulator) reports to a real CPA run as a process of its own (its own tracer provider and service
name), both exporting over OTLP/HTTP to a receiver in this process.

The CPA batches its spans for a minute here: they can only arrive through the flush of its tracer provider
when it is stopped, which is what a Ctrl-C of `make run` or a pod's SIGTERM relies on.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from control_plane_api.settings import ControlPlaneSettings
from lcm_core import tracing
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.telemetry import traces_url
from lcm_core.testing.devstack import tokens
from lcm_core.testing.devstack.aws_seed import register_ami
from lcm_core.testing.otlp_receiver import OtlpReceiver, ReceivedSpan, serve_receiver
from lcm_core.testing.processes import ManagedProcess, free_port, http_ok
from lcm_core.testing.servers import Endpoint
from tests.fixtures.control_plane import API_KEY, ControlPlaneUnderTest, discovered, settings_values
from tests.fixtures.settings import from_environment
from tests.fixtures.tracing import TEST_PROCESS_SERVICE, traced
from worker_controller.application.metrics import MetricsCollector
from worker_controller.infrastructure.aws import AwsFleet
from worker_controller.infrastructure.control_plane import ControlPlaneGateway
from worker_controller.settings import WorkerControllerSettings

REGION = "eu-north-1"
CPA_SERVICE = "control-plane-api"
REPORT = "POST /api/internal/workers/metrics:batch"


@pytest.fixture
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    found = OtlpReceiver()
    with serve_receiver(found) as endpoint:
        yield found, endpoint


@pytest.fixture
def traced_cpa(tmp_path: Path, mongo_server: Endpoint, redis_server: Endpoint, etcd_server: Endpoint,
               receiver: tuple[OtlpReceiver, str]) -> Iterator[tuple[ControlPlaneUnderTest, ManagedProcess]]:
    """`lcm-control-plane-api` as a process, exporting its spans to the receiver (flushed when it stops)."""
    values = settings_values(tmp_path, mongo_server, f"redis://{redis_server.address}/0", etcd_server)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: str(value) for key, value in values.items()} | {
        "CPA_HOST": "127.0.0.1", "CPA_PORT": str(port), "LOG_FORMAT": "json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver[1], "OTEL_BSP_SCHEDULE_DELAY": "60000",
    }
    binary = Path(sys.executable).parent / "lcm-control-plane-api"
    process = ManagedProcess(name="control-plane-api", argv=[str(binary)],
                             ready=lambda: http_ok(f"{url}/api/health"), log_path=tmp_path / "cpa.log", env=env)
    process.start()
    private = (tmp_path / "auth" / "jwt-private.pem").read_bytes()
    try:
        yield ControlPlaneUnderTest(
            url=url, settings=ControlPlaneSettings(**values), private_key=private, etcd=etcd_server,
            admin_token=tokens.issue_token(private, "test-admin", ["admin"], 3600),
            viewer_token=tokens.issue_token(private, "test-viewer", ["viewer"], 3600),
            nobody_token=tokens.issue_token(private, "test-nobody", [], 3600)), process
    finally:
        process.stop()


@pytest.fixture
def two_workers(traced_cpa, moto_server: Endpoint) -> dict[str, str]:
    """Two running CML instances in moto, imported as workers: worker id by instance id."""
    cp, _process = traced_cpa
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=f"http://{moto_server.address}",
                       aws_access_key_id="x", aws_secret_access_key="x")
    ami = register_ami(ec2, f"CML-2.9.{uuid.uuid4().hex[:8]}-build")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2,
                                                       InstanceType="m5zn.metal")["Instances"]]
    instances = [discovered(n, region=REGION, ami_id=ami) | {"aws_instance_id": iid} for n, iid in enumerate(ids)]
    reply = httpx.post(f"{cp.url}/api/internal/workers/bulk-import", headers=cp.leader(),
                       json={"instances": instances, "source": "test"})
    assert reply.status_code == 200, reply.text
    return {w["aws_instance_id"]: w["id"] for w in reply.json()["workers"]}


async def measure(cp: ControlPlaneUnderTest, moto_server: Endpoint, cml_simulator: Any) -> int:
    """One metrics cycle of the worker-controller, as its leader runs it; the workers it reported."""
    settings = from_environment(
        WorkerControllerSettings, LCM_ENVIRONMENT="test", CONTROL_PLANE_API_URL=cp.url, CONTROL_PLANE_API_KEY=API_KEY,
        CML_WORKER_URL_TEMPLATE=f"{cml_simulator.url}/hosts/{{instance_id}}",
        CML_WORKER_API_USERNAME=cml_simulator.username, CML_WORKER_API_PASSWORD=cml_simulator.password,
        CML_WORKER_VERIFY_TLS="false")
    cp.leader()  # campaigns: the epoch the reports carry
    aws = AwsFleet(endpoint_url=f"http://{moto_server.address}", session_factory=lambda: boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x"))
    async with ControlPlaneClient(cp.url, API_KEY, epoch_provider=lambda: cp.epochs["worker-controller"]) as client, \
            settings.cml_client() as cml:
        collector = MetricsCollector(aws, cml, ControlPlaneGateway(client), cml_url_template=settings.cml_url_template)
        outcome = await collector.run_once()
    return outcome.reported


def only(spans: list[ReceivedSpan], **fields: Any) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in fields.items())]
    assert len(found) == 1, f"{len(found)} spans with {fields}: {[s.line() for s in spans]}"
    return found[0]


async def test_a_metrics_cycle_is_one_trace_across_the_controller_and_the_cpa(
        receiver, traced_cpa, two_workers, moto_server, cml_simulator) -> None:
    found, endpoint = receiver
    cp, cpa_process = traced_cpa
    with traced(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint)))):
        assert await measure(cp, moto_server, cml_simulator) == 2
    cpa_process.stop()  # its spans are still batched: they go out as it shuts down

    cycle = found.wait_for("the metrics cycle", lambda spans: [s for s in spans if s.name == "metrics.cycle"])[0]

    def whole_trace(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        trace = [s for s in spans if s.trace_id == cycle.trace_id]
        return trace if any(s.service == CPA_SERVICE and s.name == REPORT for s in trace) else []

    trace = found.wait_for("the CPA's spans of the cycle", whole_trace)
    assert cycle.service == TEST_PROCESS_SERVICE
    assert cycle.parent_span_id is None
    assert cycle.attributes[tracing.WORKERS_COUNT] == 2
    assert {s.service for s in trace} == {TEST_PROCESS_SERVICE, CPA_SERVICE}

    # One span per worker, with what operators search by.
    workers = [s for s in trace if s.name == "metrics.worker"]
    assert {s.parent_span_id for s in workers} == {cycle.span_id}
    assert {(s.attributes[tracing.WORKER_ID], s.attributes[tracing.INSTANCE_ID]) for s in workers} == {
        (worker_id, instance_id) for instance_id, worker_id in two_workers.items()}
    for worker in workers:
        assert worker.attributes[tracing.CLOUD_REGION] == REGION
        assert worker.attributes[tracing.CLOUD_PROVIDER] == "aws"
        assert worker.attributes["lcm.worker.cml.reachable"] is True
        assert worker.attributes[tracing.CML_HOST].endswith(worker.attributes[tracing.INSTANCE_ID])

    # The report: the controller's span, its HTTP call, and the CPA's handling of it, parent to child.
    report = only(trace, name="metrics.report")
    assert report.parent_span_id == cycle.span_id
    assert set(report.links) == {s.span_id for s in workers}
    call = only(trace, name=REPORT, kind="CLIENT")
    assert call.service == TEST_PROCESS_SERVICE
    assert call.parent_span_id == report.span_id
    handled = only(trace, name=REPORT, kind="SERVER")
    assert handled.service == CPA_SERVICE
    assert handled.parent_span_id == call.span_id
    assert handled.attributes["http.route"] == "/api/internal/workers/metrics:batch"
    assert handled.attributes["http.response.status_code"] == 200
    writes = {s.name: s for s in trace if s.parent_span_id == handled.span_id}
    assert set(writes) == {"metrics.load", "metrics.store", "metrics.publish"}
    assert {s.service for s in writes.values()} == {CPA_SERVICE}
    assert writes["metrics.load"].attributes[tracing.REPORTS_COUNT] == 2

    # The cycle's read of the running workers is in the same trace, on both sides.
    listing = only(trace, name="GET /api/internal/workers", kind="CLIENT")
    assert listing.parent_span_id == cycle.span_id
    assert only(trace, name="GET /api/internal/workers", kind="SERVER").parent_span_id == listing.span_id
