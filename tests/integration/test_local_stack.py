"""`make run`'s stack, started as a user would (one process), used, and stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

from lcm_core.testing.devstack import env_file as stack_env
from lcm_core.testing.devstack.aws_seed import DEMO_TAG
from lcm_core.testing.processes import free_port, port_is_open


def read_env(path: Path) -> dict[str, str]:
    return stack_env.read(path)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def stack(tmp_path: Path):
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    env["LCM_API_PORT"] = str(api_port)
    log = (tmp_path / "devstack.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lcm_core.testing.devstack", "--root", str(tmp_path), "--replicas", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    env_file = tmp_path / ".lcm" / "dev" / "stack.env"
    started = time.monotonic()
    try:
        while not env_file.exists():
            if proc.poll() is not None or time.monotonic() - started > 120:
                raise AssertionError(f"stack did not become ready:\n{(tmp_path / 'devstack.out').read_text()}")
            time.sleep(0.2)
        yield proc, read_env(env_file), tmp_path, time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_local_stack_starts_serves_and_stops_without_leftovers(stack) -> None:
    proc, env, root, ready_after = stack
    assert ready_after < 120
    expected = {
        "LCM_API_URL", "LCM_ADMIN_TOKEN", "LCM_VIEWER_TOKEN", "CONTROL_PLANE_API_KEY", "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "WORKER_DISCOVERY_REGIONS",
        "WORKER_DISCOVERY_AMI_NAME", "CML_SIMULATOR_URL", "CML_WORKER_API_USERNAME", "CML_WORKER_API_PASSWORD",
        "MONGODB_URL", "REDIS_URL", "ETCD_HOST", "ETCD_PORT", "LCM_TOKEN",
    }
    assert expected <= env.keys()
    assert env["LCM_TOKEN"] == env["LCM_ADMIN_TOKEN"]

    # `source .lcm/dev/stack.env` (no `set -a`) and `lcm` works by its name: the variables are exported to the
    # programs run after, and the venv's bin comes first on PATH. The shell starts with a PATH without the venv,
    # and a config directory holding no session of its own.
    venv_bin = str(Path(sys.executable).parent)
    bare_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    sourced = subprocess.run(
        ["bash", "-c", f'source "{root}/.lcm/dev/stack.env" && lcm --json whoami && lcm pools list'],
        capture_output=True, text=True, timeout=60, env={"PATH": bare_path, "LCM_CONFIG_DIR": str(root / "lcm-config")})
    assert sourced.returncode == 0, sourced.stderr
    me, _, table = sourced.stdout.partition("}\n")
    me = json.loads(me + "}")
    assert (me["subject"], me["roles"], me["credentials"], me["api_url"]) == (
        "dev-admin", ["admin"], "LCM_TOKEN", env["LCM_API_URL"])
    assert table.split()[:3] == ["ID", "NAME", "TRACK"]
    assert len(table.strip().splitlines()) == 2  # the pool the stack seeds

    api = env["LCM_API_URL"]
    assert httpx.get(f"{api}/api/health").json() == {"status": "ok"}
    assert httpx.get(f"{api}/api/ready").json()["status"] == "ready"

    # The local AWS holds the seeded CML instances in both regions (the demo fleet, tagged by the seed); the
    # non-CML instance is not matched. Any other instance of the CML AMI is one LCM launched for the seeded
    # pool, tagged with its worker's id.
    instances = {}
    for region in env["WORKER_DISCOVERY_REGIONS"].split(","):
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=env["AWS_ENDPOINT_URL"],
                           aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        images = ec2.describe_images(Owners=["self"], Filters=[
            {"Name": "name", "Values": [env["WORKER_DISCOVERY_AMI_NAME"]]}])["Images"]
        assert len(images) == 1
        reservations = ec2.describe_instances(Filters=[
            {"Name": "image-id", "Values": [images[0]["ImageId"]]}])["Reservations"]
        instances[region] = [i for r in reservations for i in r["Instances"]]
    found = [i for region in instances.values() for i in region]
    tags = [{t["Key"]: t["Value"] for t in i.get("Tags", [])} for i in found]
    demo = [i for i, tagged in zip(found, tags, strict=True) if tagged.get(DEMO_TAG[0]) == DEMO_TAG[1]]
    assert sorted(i["State"]["Name"] for i in demo) == ["running"] * 4 + ["stopped"]
    assert all("lcm:worker-id" in tagged for tagged in tags if tagged.get(DEMO_TAG[0]) != DEMO_TAG[1])

    # Every instance id answers as a CML host at the simulator.
    some_id = demo[0]["InstanceId"]
    info = httpx.get(f"{env['CML_SIMULATOR_URL']}/hosts/{some_id}/api/v0/system_information").json()
    assert info["version"].startswith("2.9")

    ports = [urlsplit(env[key]).port for key in ("LCM_API_URL", "AWS_ENDPOINT_URL", "CML_SIMULATOR_URL",
                                                 "MONGODB_URL", "REDIS_URL")] + [int(env["ETCD_PORT"])]
    assert all(port_is_open("127.0.0.1", port) for port in ports)

    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert proc.wait(timeout=60) == 0
    assert not (root / ".lcm" / "dev" / "stack.env").exists()
    assert [port for port in ports if port_is_open("127.0.0.1", port)] == []
    assert processes_mentioning(str(root)) == []
