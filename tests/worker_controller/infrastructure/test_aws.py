"""The EC2/CloudWatch adapter against a real moto server: name filters, batching, missing ids, actions."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime

import boto3
import botocore.utils
import pytest

from lcm_core.leader.fence import LeadershipLost
from lcm_core.testing.devstack.aws_seed import register_ami
from worker_controller.infrastructure.aws import AwsFleet, parse_aws_timestamp


def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def aws(moto_server):
    url = f"http://{moto_server.address}"
    fleet = AwsFleet(endpoint_url=url, max_concurrency=4, session_factory=session)
    yield fleet, url
    fleet.close()


def ec2(url: str, region: str):
    return session().client("ec2", region_name=region, endpoint_url=url)


def launch(client, ami: str, count: int) -> list[str]:
    reply = client.run_instances(ImageId=ami, MinCount=count, MaxCount=count, InstanceType="m5zn.metal")
    return [i["InstanceId"] for i in reply["Instances"]]


def test_discovery_reads_are_filtered_by_ami_name_and_skip_terminated(aws) -> None:
    fleet, url = aws
    tag = uuid.uuid4().hex[:8]
    client = ec2(url, "eu-central-1")
    cml = register_ami(client, f"CML-9.{tag}-a")
    other = register_ami(client, f"ubuntu-{tag}")
    cml_ids = launch(client, cml, 3)
    launch(client, other, 1)
    client.terminate_instances(InstanceIds=[cml_ids[2]])

    async def run():
        amis = await fleet.find_amis("eu-central-1", f"CML-9.{tag}-*")
        return amis, [i async for page in fleet.instances_from_amis("eu-central-1", list(amis)) for i in page]

    amis, instances = asyncio.run(run())
    assert list(amis) == [cml]
    assert sorted(i.instance_id for i in instances) == sorted(cml_ids[:2])
    assert {i.state for i in instances} == {"running"}
    assert all(i.private_ip for i in instances)
    assert all(i.launch_time is not None and i.launch_time.tzinfo is not None for i in instances)


def test_instances_come_a_page_at_a_time(aws) -> None:
    fleet, url = aws
    client = ec2(url, "eu-west-3")
    ami = register_ami(client, f"CML-pages-{uuid.uuid4().hex[:8]}")
    ids = [i for _ in range(12) for i in launch(client, ami, 1)]  # one reservation each, as workers launch

    async def run():
        fleet.calls.clear()
        return [[i.instance_id for i in page]
                async for page in fleet.instances_from_amis("eu-west-3", [ami], page_size=5)], dict(fleet.calls)

    pages, calls = asyncio.run(run())
    assert [len(page) for page in pages] == [5, 5, 2]
    assert sorted(i for page in pages for i in page) == sorted(ids)
    assert calls == {"describe_instances": 3}


def test_aws_timestamps_parse_fast_and_as_botocore_would() -> None:
    assert parse_aws_timestamp("2026-11-27T19:00:00.000Z") == datetime(2026, 11, 27, 19, tzinfo=UTC)
    assert parse_aws_timestamp("2026-11-27T19:00:00+01:00") == datetime(2026, 11, 27, 18, tzinfo=UTC)
    assert parse_aws_timestamp(1795806000) == datetime(2026, 11, 27, 19, tzinfo=UTC)  # epoch seconds (JSON)
    for odd in ("2026-11-27T19:00:00", "Fri, 27 Nov 2026 19:00:00 GMT"):  # botocore's rules for the rest
        assert parse_aws_timestamp(odd) == botocore.utils.parse_timestamp(odd)


def test_reads_by_id_tolerate_missing_ids_and_are_batched(aws) -> None:
    fleet, url = aws
    client = ec2(url, "ap-south-1")
    ami = register_ami(client, f"CML-batch-{uuid.uuid4().hex[:8]}")
    ids = launch(client, ami, 250)
    client.stop_instances(InstanceIds=ids[:1])
    missing = "i-0123456789abcdef0"

    async def run():
        fleet.calls.clear()
        found = await fleet.instances_by_id("ap-south-1", [*ids, missing])
        checks = await fleet.status_checks("ap-south-1", ids)
        samples = await fleet.cloudwatch("ap-south-1", ids, now=datetime.now(UTC))
        return found, checks, samples, dict(fleet.calls)

    found, checks, samples, calls = asyncio.run(run())
    assert set(found) == set(ids)
    assert found[ids[0]].state == "stopped"
    assert set(checks) == set(ids)
    assert checks[ids[1]].instance_status in ("ok", "initializing")
    assert isinstance(samples, dict)
    # 251 ids → 2 DescribeInstances (≤ 200 filter values), 3 DescribeInstanceStatus (≤ 100),
    # 750 metric queries → 2 GetMetricData (≤ 500): never one call per worker.
    assert calls["describe_instances"] == 2
    assert calls["describe_instance_status"] == 3
    assert calls["get_metric_data"] == 2


def test_actions_drive_instances(aws) -> None:
    fleet, url = aws
    client = ec2(url, "sa-east-1")
    ami = register_ami(client, f"CML-act-{uuid.uuid4().hex[:8]}")
    ids = launch(client, ami, 2)

    async def run():
        await fleet.stop("sa-east-1", ids)
        stopped = await fleet.instances_by_id("sa-east-1", ids)
        await fleet.start("sa-east-1", ids[:1])
        await fleet.terminate("sa-east-1", ids[1:])
        return stopped, await fleet.instances_by_id("sa-east-1", ids)

    stopped, after = asyncio.run(run())
    assert {i.state for i in stopped.values()} == {"stopped"}
    assert after[ids[0]].state in ("pending", "running")
    assert after[ids[1]].state == "terminated"


def test_a_guard_that_refuses_in_the_aws_thread_sends_nothing(aws) -> None:
    fleet, url = aws
    client = ec2(url, "eu-north-1")
    ids = launch(client, register_ami(client, f"CML-9.{uuid.uuid4().hex[:8]}-g"), 2)
    seen_in: list[str] = []

    def refuse() -> None:
        seen_in.append(threading.current_thread().name)
        raise LeadershipLost("refused to stop: 0.00s of lease left")

    async def run() -> None:
        with pytest.raises(LeadershipLost):
            await fleet.stop("eu-north-1", ids[:1], guard=refuse)
        await fleet.stop("eu-north-1", ids[1:], guard=lambda: None)

    asyncio.run(run())
    states = {i["InstanceId"]: i["State"]["Name"]
              for r in client.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    assert states[ids[0]] == "running"
    assert states[ids[1]] in ("stopping", "stopped")
    assert seen_in[0].startswith("aws")  # checked in the pool thread, as the request leaves


def test_instances_are_found_by_tag_in_any_live_state(aws) -> None:
    fleet, url = aws
    client = ec2(url, "eu-south-2")
    ami = register_ami(client, f"CML-9.{uuid.uuid4().hex[:8]}-t")
    worker_id = uuid.uuid4().hex
    tagged = client.run_instances(ImageId=ami, MinCount=2, MaxCount=2, InstanceType="m5zn.metal", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "lcm:worker-id", "Value": worker_id}]}])["Instances"]
    launch(client, ami, 1)
    client.stop_instances(InstanceIds=[tagged[0]["InstanceId"]])
    client.terminate_instances(InstanceIds=[tagged[1]["InstanceId"]])
    found = asyncio.run(fleet.instances_by_tag("eu-south-2", "lcm:worker-id", worker_id))
    assert [i.instance_id for i in found] == [tagged[0]["InstanceId"]]  # stopped counts, terminated does not
