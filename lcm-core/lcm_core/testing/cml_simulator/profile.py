"""The static identity of one simulated host, derived only from its instance id.

Every value that a real host would keep across reboots (version, CPUs, memory, disks, compute hosts,
hostnames, UUIDs, licence account) comes from a `random.Random` seeded with the instance id, so the
same EC2 instance always shows the same CML host, across simulator restarts and on every machine.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

GIB = 1024**3

#: (CPU count, memory GiB) of the bare-metal EC2 shapes CML runs on (nested virtualisation).
_SHAPES = ((48, 192), (48, 192), (48, 384), (96, 192), (96, 384), (72, 512))
_CPU_MODELS = (
    "Intel(R) Xeon(R) Platinum 8252C CPU @ 3.80GHz",
    "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz",
    "AMD EPYC 7R13 Processor",
)
_DISK_GIB = (250, 250, 500, 1000)
_ACCOUNTS = (("CML Prod", "Default"), ("CML Prod", "Labs"), ("Learning Labs", "EMEA"), ("Learning Labs", "AMER"))


@dataclass(frozen=True)
class ComputeProfile:
    """One compute host of the cluster (the controller is the first one and also runs nodes)."""

    id: str
    hostname: str
    server_address: str
    is_controller: bool
    cpu_count: int
    cpu_model: str
    memory_total: int
    memory_idle_used: int
    memory_cache: int
    disk_total: int
    disk_idle_used: int
    cpu_idle_percent: float
    load_idle: tuple[float, float, float]


@dataclass(frozen=True)
class HostProfile:
    """Everything about a host that does not change while it runs."""

    instance_id: str
    version: str
    computes: tuple[ComputeProfile, ...]
    admin_user_id: str
    product_uuid: str
    smart_account: str
    virtual_account: str
    expansion_nodes: int
    registered_days_ago: int
    oui: str

    @property
    def controller(self) -> ComputeProfile:
        return self.computes[0]


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pages(value: float) -> int:
    """Round a byte count down to whole 4 KiB pages, the way the kernel reports sizes."""
    return int(value) // 4096 * 4096


def _compute(rng: random.Random, index: int, shape: tuple[int, int], subnet: int) -> ComputeProfile:
    cpus, memory_gib = shape
    memory_total = _pages(memory_gib * GIB * rng.uniform(0.978, 0.986))
    disk_total = _pages(rng.choice(_DISK_GIB) * GIB * (1.0 if index == 0 else 0.5) * 0.993)
    octet = rng.randint(1, 254)
    idle_percent = round(rng.uniform(0.2, 1.5), 4)
    load = round(cpus * idle_percent / 100.0, 4)
    return ComputeProfile(
        id=_uuid4(rng),
        hostname=f"ip-172-31-{subnet}-{octet}",
        server_address=f"172.31.{subnet}.{octet}",
        is_controller=index == 0,
        cpu_count=cpus,
        cpu_model=rng.choice(_CPU_MODELS),
        memory_total=memory_total,
        memory_idle_used=_pages(memory_total * rng.uniform(0.008, 0.03)),
        memory_cache=_pages(memory_total * rng.uniform(0.004, 0.01)),
        disk_total=disk_total,
        disk_idle_used=_pages(disk_total * rng.uniform(0.25, 0.55)),
        cpu_idle_percent=idle_percent,
        load_idle=(load, round(load * 1.6, 4), round(load * 0.8, 4)),
    )


def host_profile(instance_id: str) -> HostProfile:
    """The deterministic profile of the host simulated for `instance_id`."""
    rng = random.Random(f"cml-simulator/{instance_id}")
    version = f"2.9.{rng.choice((0, 0, 0, 1))}+build.{rng.randint(1, 40)}"
    count = 1 if rng.random() < 0.8 else rng.choice((2, 3))
    shape = rng.choice(_SHAPES)
    subnet = rng.randint(0, 63)
    computes = tuple(_compute(rng, index, shape, subnet) for index in range(count))
    smart_account, virtual_account = rng.choice(_ACCOUNTS)
    return HostProfile(
        instance_id=instance_id,
        version=version,
        computes=computes,
        admin_user_id=_uuid4(rng),
        product_uuid=_uuid4(rng),
        smart_account=smart_account,
        virtual_account=virtual_account,
        expansion_nodes=rng.choice((0, 0, 20, 50, 100)),
        registered_days_ago=rng.randint(1, 300),
        oui="52:54:00",
    )
