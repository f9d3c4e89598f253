"""EC2 and CloudWatch, batched per region, never one call per worker (docs/worker-controller.md, 'Cost of a cycle').

boto3 is blocking, so every call runs in a bounded thread pool; there is one client per service and region,
created once (boto3 clients are thread-safe). AWS responses are validated field by field: a missing or odd
field becomes None, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.utils
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lcm_core.domain.workers import CloudWatchSample, Ec2Checks
from lcm_core.errors import UnavailableError
from worker_controller.domain.ec2 import Ec2Instance, Guard

logger = logging.getLogger(__name__)

T = TypeVar("T")

DESCRIBE_FILTER_VALUES = 200
"""Values per EC2 filter in one call."""
DESCRIBE_PAGE = 250
"""DescribeInstances page size (AWS allows 5-1000). Discovery imports and measures each page while EC2
prepares the next, so a smaller page starts that work sooner, at the price of a few more calls. Measured with
`bench/fleet_cycle.py` at 2,000 workers: 250 gave 8.1-8.4 s cold and 6.4-6.7 s warm, 500 gave 8.3-8.5 s and
7.1-7.2 s, one page of 1,000 per region 9.1 s and 7.9 s."""
STATUS_BATCH = 100
"""Instance ids per DescribeInstanceStatus call."""
ACTION_BATCH = 1000
"""Instance ids per Start/Stop/TerminateInstances call."""
METRIC_QUERIES_PER_CALL = 500
"""CloudWatch GetMetricData limit."""
AWS_ERRORS = (BotoCoreError, ClientError)


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def instance_from_aws(region: str, raw: dict[str, Any]) -> Ec2Instance | None:
    """The instance of one item of a DescribeInstances or RunInstances answer; None (with a warning) if it has
    no id."""
    instance_id = raw.get("InstanceId")
    if not isinstance(instance_id, str):
        logger.warning("EC2 returned an instance without an id in %s; ignored", region)
        return None
    state = raw.get("State")
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []
            if isinstance(t, dict) and isinstance(t.get("Key"), str)}
    launch = raw.get("LaunchTime")
    return Ec2Instance(
        instance_id=instance_id, region=region,
        state=state.get("Name") if isinstance(state, dict) else None,
        instance_type=raw.get("InstanceType"), image_id=raw.get("ImageId"),
        private_ip=raw.get("PrivateIpAddress"), public_ip=raw.get("PublicIpAddress"),
        launch_time=launch if isinstance(launch, datetime) else None, tags=tags,
    )


def _label(value: Any) -> str | None:
    """A short AWS status word, or None (with a warning) when AWS answered something else."""
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value) <= 32 and value.isprintable():
        return value
    logger.warning("AWS answered an unreadable status %.40r; left empty", value)
    return None


def _datapoint(name: str, value: float | None, high: float | None = None) -> float | None:
    """A CloudWatch value within its range, or None (with a warning): one odd datapoint costs its field."""
    if value is None or (value >= 0 and (high is None or value <= high)):
        return value
    logger.warning("CloudWatch %s out of range (%s); left empty", name, value)
    return None


def parse_aws_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, with the ISO 8601 form EC2 and CloudWatch send parsed by
    `datetime.fromisoformat` (0.1 µs instead of dateutil's ~30 µs: a DescribeInstances page of 1,000
    instances carries several thousand). Anything else, or a time without a zone, goes to botocore's."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    return botocore.utils.parse_timestamp(value)


def _next_token(token: str | None) -> dict[str, Any]:
    """The paging argument of a follow-up call (none for the first page)."""
    return {"NextToken": token} if token else {}


class AwsFleet:
    """The worker-controller's view of EC2 and CloudWatch across regions."""

    def __init__(self, *, endpoint_url: str | None, max_concurrency: int = 8,
                 session_factory: Callable[[], boto3.session.Session] = boto3.session.Session) -> None:
        self._endpoint_url = endpoint_url
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="aws")
        self._session = session_factory()
        # boto3 has no public handle on its botocore session; this is the documented parser hook of botocore.
        self._session._session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_aws_timestamp)
        self._clients: dict[tuple[str, str], Any] = {}
        self._config = Config(retries={"max_attempts": 5, "mode": "adaptive"}, max_pool_connections=max_concurrency,
                              connect_timeout=5, read_timeout=30)
        self.calls: dict[str, int] = {}
        """API calls made, by operation (benchmarks and tests check the batching)."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(service, region_name=region, endpoint_url=self._endpoint_url,
                                                      config=self._config)
        return self._clients[key]

    async def _call(self, service: str, region: str, operation: str, guard: Guard | None = None,
                    **kwargs: Any) -> dict[str, Any]:
        """One AWS call in the thread pool. `guard` runs in the pool thread right before the request is sent
        (a call that waits for a free thread must still be allowed when it finally goes out); it raises to
        cancel the call."""
        client = self._client(service, region)
        self.calls[operation] = self.calls.get(operation, 0) + 1
        loop = asyncio.get_running_loop()

        def send() -> dict[str, Any]:
            if guard is not None:
                guard()
            return getattr(client, operation)(**kwargs)

        try:
            return await loop.run_in_executor(self._pool, send)
        except AWS_ERRORS as exc:
            raise UnavailableError(f"AWS {service}.{operation} in {region} failed: {exc}") from exc

    async def _pages(self, region: str, operation: str, key: str, **kwargs: Any
                     ) -> AsyncIterator[list[dict[str, Any]]]:
        """The `key` items of each page, as soon as that page is back."""
        token: str | None = None
        while True:
            page = await self._call("ec2", region, operation, **kwargs, **_next_token(token))
            yield page.get(key) or []
            token = page.get("NextToken")
            if not token:
                return

    async def _paginate(self, region: str, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [item async for page in self._pages(region, operation, key, **kwargs) for item in page]

    # ------------------------------------------------------------------ EC2 reads

    async def find_amis(self, region: str, name_pattern: str) -> dict[str, str]:
        """{ami_id: name} of images whose name matches the glob (EC2 name filters take `*` and `?`)."""
        reply = await self._call("ec2", region, "describe_images", Filters=[{"Name": "name", "Values": [name_pattern]}])
        return {img["ImageId"]: str(img.get("Name") or "") for img in reply.get("Images") or []
                if isinstance(img, dict) and isinstance(img.get("ImageId"), str)}

    async def instances_from_amis(self, region: str, ami_ids: Sequence[str], *, page_size: int = DESCRIBE_PAGE
                                  ) -> AsyncIterator[list[Ec2Instance]]:
        """Every instance launched from these AMIs, in any state but terminated, a page at a time: the caller
        works on one page while EC2 prepares the next."""
        for batch in chunks(list(ami_ids), DESCRIBE_FILTER_VALUES):
            async for reservations in self._pages(
                    region, "describe_instances", "Reservations",
                    Filters=[{"Name": "image-id", "Values": list(batch)},
                             {"Name": "instance-state-name",
                              "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]}],
                    MaxResults=page_size):
                instances = self._instances(region, reservations)
                if instances:
                    yield instances

    async def instances_by_id(self, region: str, instance_ids: Sequence[str]) -> dict[str, Ec2Instance]:
        """The instances that still exist (a filter, not InstanceIds, so that one missing id fails nothing)."""
        found: dict[str, Ec2Instance] = {}
        for batch in chunks(list(instance_ids), DESCRIBE_FILTER_VALUES):
            reservations = await self._paginate(region, "describe_instances", "Reservations",
                                                Filters=[{"Name": "instance-id", "Values": list(batch)}])
            found.update({i.instance_id: i for i in self._instances(region, reservations)})
        return found

    async def instances_by_tag(self, region: str, key: str, value: str) -> list[Ec2Instance]:
        """Live instances (any state but shutting-down and terminated) carrying the tag `key=value`."""
        reservations = await self._paginate(region, "describe_instances", "Reservations", Filters=[
            {"Name": f"tag:{key}", "Values": [value]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
        return self._instances(region, reservations)

    @staticmethod
    def _instances(region: str, reservations: list[dict[str, Any]]) -> list[Ec2Instance]:
        out = []
        for reservation in reservations:
            for raw in reservation.get("Instances") or []:
                instance = instance_from_aws(region, raw) if isinstance(raw, dict) else None
                if instance is not None:
                    out.append(instance)
        return out

    async def status_checks(self, region: str, instance_ids: Sequence[str]) -> dict[str, Ec2Checks]:
        """EC2 system and instance status checks, ≤ 100 ids per call."""
        found: dict[str, Ec2Checks] = {}
        for batch in chunks(list(instance_ids), STATUS_BATCH):
            reply = await self._call("ec2", region, "describe_instance_status", InstanceIds=list(batch),
                                     IncludeAllInstances=True)
            for item in reply.get("InstanceStatuses") or []:
                iid = item.get("InstanceId")
                if isinstance(iid, str):
                    found[iid] = Ec2Checks(
                        state=_label((item.get("InstanceState") or {}).get("Name")),
                        system_status=_label((item.get("SystemStatus") or {}).get("Status")),
                        instance_status=_label((item.get("InstanceStatus") or {}).get("Status")))
        return found

    # ------------------------------------------------------------------ EC2 actions

    async def start(self, region: str, instance_ids: Sequence[str], guard: Guard | None = None) -> None:
        for batch in chunks(list(instance_ids), ACTION_BATCH):
            await self._call("ec2", region, "start_instances", guard=guard, InstanceIds=list(batch))

    async def stop(self, region: str, instance_ids: Sequence[str], guard: Guard | None = None) -> None:
        for batch in chunks(list(instance_ids), ACTION_BATCH):
            await self._call("ec2", region, "stop_instances", guard=guard, InstanceIds=list(batch))

    async def terminate(self, region: str, instance_ids: Sequence[str], guard: Guard | None = None) -> None:
        for batch in chunks(list(instance_ids), ACTION_BATCH):
            await self._call("ec2", region, "terminate_instances", guard=guard, InstanceIds=list(batch))

    async def run_from_template(self, region: str, template: dict[str, Any], *, name: str, client_token: str,
                                tags: dict[str, str], guard: Guard | None = None) -> Ec2Instance:
        """RunInstances for one worker. The client token makes a retried call return the same instance."""
        amis = await self.find_amis(region, template["ami_name_pattern"])
        if not amis:
            raise UnavailableError(f"no AMI matches {template['ami_name_pattern']!r} in {region}")
        image_id = max(amis, key=lambda ami: amis[ami])  # CML AMI names end in a build date: the newest wins
        placement = (template.get("regions") or {}).get(region) or {}
        ebs = template.get("ebs") or {}
        volume: dict[str, Any] = {"VolumeSize": ebs.get("size_gb", 500), "VolumeType": ebs.get("volume_type", "gp3"),
                                  "DeleteOnTermination": True}
        if ebs.get("iops"):
            volume["Iops"] = ebs["iops"]
        request: dict[str, Any] = {
            "ImageId": image_id, "InstanceType": template["instance_type"], "MinCount": 1, "MaxCount": 1,
            "ClientToken": client_token, "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": volume}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [
                {"Key": k, "Value": v} for k, v in {"Name": name, **tags}.items()]}],
        }
        if placement.get("subnet_id"):
            request["SubnetId"] = placement["subnet_id"]
        if placement.get("security_group_ids"):
            request["SecurityGroupIds"] = placement["security_group_ids"]
        if placement.get("iam_instance_profile"):
            request["IamInstanceProfile"] = {"Name": placement["iam_instance_profile"]}
        if placement.get("key_name"):
            request["KeyName"] = placement["key_name"]
        reply = await self._call("ec2", region, "run_instances", guard=guard, **request)
        instance = instance_from_aws(region, (reply.get("Instances") or [{}])[0])
        if instance is None:
            raise UnavailableError(f"RunInstances in {region} returned no instance")
        return instance

    # ------------------------------------------------------------------ CloudWatch

    async def cloudwatch(self, region: str, instance_ids: Sequence[str], *, now: datetime,
                         window: timedelta = timedelta(minutes=10)) -> dict[str, CloudWatchSample]:
        """Latest CPU (%) and network (bytes) per instance: 3 queries each, ≤ 500 queries per call."""
        metrics = (("cpu", "CPUUtilization", "Average"), ("in", "NetworkIn", "Sum"), ("out", "NetworkOut", "Sum"))
        queries: list[dict[str, Any]] = []
        ids: dict[str, tuple[str, str]] = {}
        for index, iid in enumerate(instance_ids):
            for short, name, stat in metrics:
                qid = f"{short}{index}"
                ids[qid] = (iid, short)
                queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
                    "Metric": {"Namespace": "AWS/EC2", "MetricName": name,
                               "Dimensions": [{"Name": "InstanceId", "Value": iid}]},
                    "Period": 300, "Stat": stat}})
        values: dict[str, dict[str, float]] = {}
        for batch in chunks(queries, METRIC_QUERIES_PER_CALL):
            token: str | None = None
            while True:
                reply = await self._call("cloudwatch", region, "get_metric_data", MetricDataQueries=list(batch),
                                         StartTime=now - window, EndTime=now, ScanBy="TimestampDescending",
                                         **_next_token(token))
                for result in reply.get("MetricDataResults") or []:
                    target = ids.get(result.get("Id", ""))
                    points = result.get("Values") or []
                    if target and points and isinstance(points[0], int | float):
                        values.setdefault(target[0], {})[target[1]] = float(points[0])
                token = reply.get("NextToken")
                if not token:
                    break
        return {iid: CloudWatchSample(cpu_utilization=_datapoint("CPUUtilization", v.get("cpu"), 100.0),
                                      network_in_bytes=_datapoint("NetworkIn", v.get("in")),
                                      network_out_bytes=_datapoint("NetworkOut", v.get("out")))
                for iid, v in values.items()}
