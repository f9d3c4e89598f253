"""Seed the local AWS (moto) with what a real CML fleet account looks like.

Per region: a CML AMI named like `CML-2.9.0-*`, an unrelated Ubuntu AMI (to prove the name filter),
and a few bare-metal instances from the CML AMI, some running and, in the second region, one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3

CML_AMI_NAME = "CML-2.9.0-20260110"
OTHER_AMI_NAME = "ubuntu-22.04-jammy-20260101"
#: The tag of the seeded CML instances (the demo fleet discovery imports). Instances LCM launches itself, for a
#: pool, carry `lcm:worker-id` instead.
DEMO_TAG = ("lcm:managed", "true")


@dataclass(frozen=True)
class RegionPlan:
    region: str
    running: int
    stopped: int


def default_plan(regions: list[str]) -> list[RegionPlan]:
    """First region: 3 running; every other region: 1 running and 1 stopped."""
    return [
        RegionPlan(region, running=3, stopped=0) if index == 0 else RegionPlan(region, running=1, stopped=1)
        for index, region in enumerate(regions)
    ]


def ec2_client(endpoint_url: str, region: str, access_key: str, secret_key: str):
    return boto3.client(
        "ec2", region_name=region, endpoint_url=endpoint_url,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
    )


def register_ami(ec2, name: str) -> str:
    existing = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    if existing:
        return str(existing[0]["ImageId"])
    return str(
        ec2.register_image(
            Name=name,
            Architecture="x86_64",
            RootDeviceName="/dev/sda1",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 64, "VolumeType": "gp3"}}],
        )["ImageId"]
    )


def seed(endpoint_url: str, access_key: str, secret_key: str, plans: list[RegionPlan]) -> dict[str, list[str]]:
    """Create AMIs and instances; return the CML instance ids per region."""
    created: dict[str, list[str]] = {}
    for plan in plans:
        ec2 = ec2_client(endpoint_url, plan.region, access_key, secret_key)
        cml_ami = register_ami(ec2, CML_AMI_NAME)
        other_ami = register_ami(ec2, OTHER_AMI_NAME)
        ec2.run_instances(
            ImageId=other_ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "bastion"}]}],
        )
        total = plan.running + plan.stopped
        ids: list[str] = []
        for index in range(total):
            name = f"cml-{plan.region}-{index + 1:02d}"
            instance = ec2.run_instances(
                ImageId=cml_ami, MinCount=1, MaxCount=1, InstanceType="m5zn.metal",
                TagSpecifications=[{
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": name}, {"Key": DEMO_TAG[0], "Value": DEMO_TAG[1]}],
                }],
            )["Instances"][0]
            ids.append(str(instance["InstanceId"]))
        if plan.stopped:
            ec2.stop_instances(InstanceIds=ids[plan.running:])
        created[plan.region] = ids
    return created
