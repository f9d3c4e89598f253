"""One full discovery + metrics cycle over simulated fleets, side by side with per-worker polling.

    make bench                      # fleets of 100, 500 and 2,000 workers
    .venv/bin/python bench/fleet_cycle.py --sizes 100 --cml-latency-ms 50

Real parts only: etcd, Redis and MongoDB-wire servers, moto (AWS), the CML simulator (with the given latency
on every CML call) and the control-plane API run as separate processes; the worker-controller code runs
in this process. "Ours" is the production code path (batched per region, bounded concurrency, metrics:batch);
"per-worker" is per-worker polling, the naive baseline: batches of 10 (health) / 5 (metrics), concurrent within a
batch, 0.5 s / 1.0 s pauses between batches, one EC2, CloudWatch, CML and control-plane call per worker.
A cycle ends when the control plane has persisted every worker's metrics. Each fleet size runs in a process
of its own (the fleet is seeded by another), whose peak memory after our cycles is the controller's at that
size. "Ours" is a discovery that measures as it goes, as the controller runs it; it runs two cycles with the
same long-lived adapters: the first is cold (every worker new, no CML token cached) and is the headline; the
second ("warm") is the steady state. Per cycle, the CPU seconds of every process are printed too: on a
shared machine they are the stable measure, wall-clock time is not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
from pydantic import SecretStr

from lcm_core.cml import CmlClient, CmlError
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.testing import servers
from lcm_core.testing.devstack.aws_seed import register_ami
from lcm_core.testing.processes import ManagedProcess, ProcessGroup, free_port, http_ok
from worker_controller.application.discovery import Discovery
from worker_controller.application.fleet_cycle import FleetCycle
from worker_controller.application.fleet_settings import FleetSettingsReader
from worker_controller.application.metrics import MetricsCollector, build_report
from worker_controller.domain.worker_view import WorkerView
from worker_controller.infrastructure.aws import AwsFleet
from worker_controller.infrastructure.control_plane import ControlPlaneGateway
from worker_controller.settings import WorkerControllerSettings

API_KEY = "bench-internal-key-0123456789"
REGIONS = ("us-east-1", "us-west-2")
CML_USER, CML_PASSWORD = "admin", "bench-password"


@dataclass
class Stack:
    cpa_url: str
    moto_url: str
    cml_url: str
    etcd: servers.Endpoint
    pids: dict[str, int]
    """Process-group leader of each server (its CPU time is read from /proc)."""


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each server's process group and of this process (the controller).

    On a shared 2-core machine wall-clock time swings with the neighbours' load; CPU seconds do not, so the
    bench prints both.
    """
    tick = os.sysconf("SC_CLK_TCK")
    by_group = dict.fromkeys(pids.values(), 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) in by_group:  # fields[2] is the process group id
            by_group[int(fields[2])] += (int(fields[11]) + int(fields[12])) / tick
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"controller": usage.ru_utime + usage.ru_stime} | {name: by_group[pid] for name, pid in pids.items()}


@contextlib.contextmanager
def stack(root: Path) -> Iterator[Stack]:
    group = ProcessGroup()
    try:
        etcd_port, redis_port, mongo_port, moto_port, cml_port, cpa_port = (free_port() for _ in range(6))
        for proc in (
            servers.etcd(root / "etcd", etcd_port, free_port(), root / "etcd.log"),
            servers.redis(root / "redis", redis_port, root / "redis.log"),
            servers.mongo_wire(root / "mongo", mongo_port, root / "mongo.log"),
            servers.moto(moto_port, root / "moto.log"),
            servers.cml_simulator(cml_port, root / "cml.log", CML_USER, CML_PASSWORD, boot_seconds=0.1),
        ):
            group.start(proc)
        env = {**os.environ, "LCM_ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "CPA_PORT": str(cpa_port),
               "MONGODB_URL": f"mongodb://127.0.0.1:{mongo_port}", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "ETCD_HOST": "127.0.0.1", "ETCD_PORT": str(etcd_port), "CONTROL_PLANE_API_KEY": API_KEY}
        cpa_bin = str(Path(sys.executable).with_name("lcm-control-plane-api"))
        group.start(ManagedProcess(name="cpa", argv=[cpa_bin], env=env, log_path=root / "cpa.log",
                                   ready=lambda: http_ok(f"http://127.0.0.1:{cpa_port}/api/ready")))
        yield Stack(f"http://127.0.0.1:{cpa_port}", f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{cml_port}",
                    servers.Endpoint("127.0.0.1", etcd_port), {p.name: p.pid for p in group.processes if p.pid})
    finally:
        group.stop_all()


async def lead(etcd: servers.Endpoint) -> int:
    """Become the worker-controller leader (the CPA fences every mutation on the epoch)."""
    import aetcd

    client = aetcd.Client(host=etcd.host, port=etcd.port)
    try:
        await client.put(b"/lcm/leaders/worker-controller", b"bench")
        return int((await client.get(b"/lcm/leaders/worker-controller")).create_revision)
    finally:
        await client.close()


def ami_pattern(tag: str) -> str:
    return f"CML-2.9.{tag}-*"


def seed_fleet(moto_url: str, size: int, tag: str) -> None:
    """`size` instances over the regions, launched one per RunInstances call as real workers are (each its own
    reservation: EC2 pages DescribeInstances by reservation, so 500 launched at once would be one page), from
    an AMI that `ami_pattern(tag)` matches."""
    per_region = [size - size // 2, size // 2]

    def launch(region: str, count: int) -> None:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=moto_url, aws_access_key_id="x",
                           aws_secret_access_key="x")
        ami = register_ami(ec2, ami_pattern(tag).replace("*", "bench"))
        for _ in range(count):
            ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="m5zn.metal")

    with ThreadPoolExecutor(len(REGIONS)) as pool:
        list(pool.map(launch, REGIONS, per_region))


def set_cml_latency(cml_url: str, latency_ms: int) -> None:
    body = json.dumps({"latency_ms": latency_ms}).encode()
    request = urllib.request.Request(f"{cml_url}/_admin/faults", data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()


@contextlib.asynccontextmanager
async def clients(s: Stack, epoch: int) -> AsyncIterator[tuple[ControlPlaneClient, ControlPlaneGateway, AwsFleet,
                                                                  CmlClient]]:
    """The worker-controller's adapters, as production wires them, pointed at the benchmark's stack."""
    client = ControlPlaneClient(s.cpa_url, API_KEY, epoch_provider=lambda: epoch, timeout=120)
    aws = AwsFleet(endpoint_url=s.moto_url, max_concurrency=8,
                   session_factory=lambda: boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x"))
    cml = CmlClient(CML_USER, CML_PASSWORD, max_in_flight=200, max_per_host=4)
    try:
        yield client, ControlPlaneGateway(client), aws, cml
    finally:
        await cml.aclose()
        await client.aclose()
        aws.close()


async def ours(s: Stack, pattern: str, epoch: int, expected: int, cycles: int = 2) -> list[float]:
    """`cycles` discovery + metrics cycles with long-lived adapters, as the controller runs them: the first is
    cold (every worker new, no CML token cached), the later ones are the steady state."""
    settings = WorkerControllerSettings(
        LCM_ENVIRONMENT="test", WORKER_DISCOVERY_REGIONS=list(REGIONS), WORKER_DISCOVERY_AMI_NAME=pattern,
        CONTROL_PLANE_API_URL=s.cpa_url, CONTROL_PLANE_API_KEY=SecretStr(API_KEY))
    times: list[float] = []
    async with clients(s, epoch) as (_client, gateway, aws, cml):
        discovery = Discovery(aws, gateway, FleetSettingsReader(gateway, settings))
        collector = MetricsCollector(aws, cml, gateway, cml_url_template=f"{s.cml_url}/hosts/{{instance_id}}",
                                     cml_max_hosts=400)
        fleet_cycle = FleetCycle(discovery, collector)  # as production runs a discovery: measuring as it goes
        for cycle in range(cycles):
            calls_before = dict(aws.calls)
            cpu_before = cpu_seconds(s.pids)
            started = time.perf_counter()
            run = await fleet_cycle.discover()
            elapsed = time.perf_counter() - started
            found, outcome = run.discovery, run.metrics
            assert outcome is not None
            cpu = {name: spent - cpu_before[name] for name, spent in cpu_seconds(s.pids).items()}
            calls = {op: n - calls_before.get(op, 0) for op, n in sorted(aws.calls.items())}
            print(f"    ours, cycle {cycle + 1} ({'cold' if cycle == 0 else 'warm'}): {elapsed:.2f}s; discovery "
                  f"{found.phases}, metrics {outcome.phases} (overlapping); AWS calls {calls}", file=sys.stderr)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"      peak memory so far {peak:.0f} MB; CPU seconds {sum(cpu.values()):.1f} = "
                  + ", ".join(f"{name} {spent:.2f}" for name, spent in sorted(cpu.items(), key=lambda kv: -kv[1])),
                  file=sys.stderr)
            if outcome.reported != expected:
                raise SystemExit(f"ours: {outcome.reported} of {expected} workers persisted")
            times.append(elapsed)
    return times


def instance_id(worker: WorkerView) -> str:
    """A running worker's EC2 instance id (every worker of the seeded fleet has one)."""
    if worker.aws_instance_id is None:
        raise SystemExit(f"worker {worker.id} has no EC2 instance id")
    return worker.aws_instance_id


async def per_worker_polling(s: Stack, epoch: int, limit: int) -> tuple[float, int]:
    """Per worker: one EC2 status call, one CloudWatch call, the CML calls, one metrics POST; batches of 10
    (health, 0.5 s pause) then batches of 5 (metrics, 1.0 s pause), concurrent within a batch."""
    async with clients(s, epoch) as (_client, gateway, aws, cml):
        workers = (await gateway.workers(status="running"))[:limit]
        started = time.perf_counter()

        async def health(w: WorkerView) -> None:
            await aws.status_checks(w.aws_region, [instance_id(w)])

        async def metrics(w: WorkerView) -> None:
            now = datetime.now(UTC)
            instance = instance_id(w)
            checks = (await aws.status_checks(w.aws_region, [instance])).get(instance)
            sample = (await aws.cloudwatch(w.aws_region, [instance], now=now)).get(instance)
            host = f"{s.cml_url}/hosts/{instance}"
            try:
                snapshot: object = await cml.collect_cml_telemetry(host)
            except CmlError as exc:
                snapshot = exc
            item = build_report(w, now, checks, sample, snapshot)  # type: ignore[arg-type]
            await gateway.report_metrics([item])  # one POST per worker

        for size, pause, body in ((10, 0.5, health), (5, 1.0, metrics)):
            for start in range(0, len(workers), size):
                await asyncio.gather(*(body(w) for w in workers[start:start + size]))
                if start + size < len(workers):
                    await asyncio.sleep(pause)
        return time.perf_counter() - started, len(workers)


def measure(size: int, latency_ms: int, baseline_limit: int) -> tuple[float, float, float, int, float]:
    """One fleet size, in a process of its own (see `main`): its stack, the fleet seeded by another process,
    our two cycles, then per-worker polling. Returns our cold and warm seconds, the per-worker seconds and
    workers, and this process's peak memory (MB) after our cycles, before the per-worker run."""
    with tempfile.TemporaryDirectory() as tmp, stack(Path(tmp)) as s:
        set_cml_latency(s.cml_url, latency_ms)
        seeding = multiprocessing.get_context("spawn").Process(target=seed_fleet, args=(s.moto_url, size, f"b{size}"))
        seeding.start()
        seeding.join()
        if seeding.exitcode != 0:
            raise SystemExit(f"seeding {size} instances failed")
        print(f"    seeded; controller memory before its first cycle "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", file=sys.stderr)
        epoch = asyncio.run(lead(s.etcd))
        ours_s, warm_s = asyncio.run(ours(s, ami_pattern(f"b{size}"), epoch, size))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        base_s, base_n = asyncio.run(per_worker_polling(s, epoch, min(size, baseline_limit)))
    return ours_s, warm_s, base_s, base_n, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,2000")
    parser.add_argument("--cml-latency-ms", type=int, default=50)
    parser.add_argument("--baseline-limit", type=int, default=500,
                        help="workers per-worker polling is timed on (its rate is per worker)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"fleet cycle benchmark: CML latency {args.cml_latency_ms} ms per call, regions {', '.join(REGIONS)}")
    print("per-worker: the naive baseline, one EC2, CloudWatch, CML and control-plane call per worker, "
          "in batches of 10 / 5 with 0.5 s / 1.0 s pauses")
    print(f"{'workers':>8} {'ours s':>8} {'ours w/s':>9} {'per-worker s':>12} {'per-worker w/s':>14} {'ratio':>6} "
          f"{'warm s':>7} {'peak MB':>8}")
    for size in sizes:
        # A fresh process per size: its peak memory is the controller's at that fleet size alone, not the
        # high-water mark of the smaller fleets, the seeding or the per-worker run before it.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            ours_s, warm_s, base_s, base_n, peak_mb = pool.submit(
                measure, size, args.cml_latency_ms, args.baseline_limit).result()
        ours_rate, base_rate = size / ours_s, base_n / base_s
        note = "" if base_n == size else f"  (per-worker timed on {base_n} workers)"
        print(f"{size:>8} {ours_s:>8.2f} {ours_rate:>9.0f} {base_s:>12.2f} {base_rate:>14.1f} "
              f"{ours_rate / base_rate:>5.0f}x {warm_s:>7.2f} {peak_mb:>8.0f}{note}", flush=True)


if __name__ == "__main__":
    main()
