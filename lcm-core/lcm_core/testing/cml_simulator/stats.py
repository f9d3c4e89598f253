"""system_stats, system_health and compute_hosts of a simulated host, computed from what runs on it.

Each compute starts from its idle profile; every active node (QUEUED/STARTED/BOOTED) adds its CPUs
and RAM to `dominfo.allocated_*`, its RAM (in bytes) to used memory, and CPU load (heavier while it
boots); every deployed node (not wiped) adds an overlay disk. Stopping lowers the allocation, wiping
also frees the disk. The shapes are those recorded from a live 2.9 host (tests/fixtures/cml/).
"""

from __future__ import annotations

from typing import Any

from lcm_core.testing.cml_simulator.labs import BOOTED, Node
from lcm_core.testing.cml_simulator.profile import ComputeProfile
from lcm_core.testing.cml_simulator.state import HostState

MIB = 1024**2
#: Bytes of qcow2 overlay a deployed node keeps on its compute's disk.
OVERLAY_BYTES = 512 * MIB
#: Share of a node's vCPUs it keeps busy while booting / once booted (percent of one CPU).
BOOT_CPU_PERCENT = 60.0
IDLE_CPU_PERCENT = 6.0


def _compute_stats(compute: ComputeProfile, nodes: list[Node]) -> dict[str, Any]:
    active = [node for node in nodes if node.is_active]
    deployed = [node for node in nodes if node.is_deployed]
    allocated_cpus = sum(node.effective_cpus for node in active)
    allocated_memory = sum(node.effective_ram for node in active)
    busy = sum(node.effective_cpus * (IDLE_CPU_PERCENT if node.state == BOOTED else BOOT_CPU_PERCENT)
               for node in active)
    percent = round(min(100.0, compute.cpu_idle_percent + busy / compute.cpu_count), 4)
    load_now = compute.cpu_count * percent / 100.0
    load = [round(base + load_now * weight, 4) for base, weight in zip(compute.load_idle, (1.0, 0.7, 0.4),
                                                                         strict=True)]
    mem_used = min(compute.memory_total - compute.memory_cache, compute.memory_idle_used + allocated_memory * MIB)
    disk_used = min(compute.disk_total, compute.disk_idle_used + len(deployed) * OVERLAY_BYTES)
    return {
        "cpu": {"load": load, "count": compute.cpu_count, "percent": percent, "model": compute.cpu_model,
                "predicted": max(1, compute.cpu_count // 8)},
        "memory": {"total": compute.memory_total, "free": compute.memory_total - mem_used - compute.memory_cache,
                   "used": mem_used},
        "disk": {"total": compute.disk_total, "free": compute.disk_total - disk_used, "used": disk_used},
        "dominfo": {"allocated_cpus": allocated_cpus, "allocated_memory": allocated_memory,
                    "total_nodes": len(deployed), "total_orphans": 0, "running_nodes": len(active),
                    "running_orphans": 0},
    }


def system_stats(host: HostState) -> dict[str, Any]:
    computes: dict[str, Any] = {}
    for compute in host.profile.computes:
        computes[compute.id] = {"hostname": compute.hostname, "is_controller": compute.is_controller,
                                "stats": _compute_stats(compute, host.nodes_on(compute.id))}
    stats = [entry["stats"] for entry in computes.values()]
    cpu_count = sum(entry["cpu"]["count"] for entry in stats)
    weighted = sum(entry["cpu"]["percent"] * entry["cpu"]["count"] for entry in stats)
    totals = {key: {part: sum(entry[key][part] for entry in stats) for part in ("total", "free", "used")}
              for key in ("memory", "disk")}
    controller_disk = computes[host.profile.controller.id]["stats"]["disk"]
    return {
        "computes": computes,
        "all": {"cpu": {"count": cpu_count, "percent": round(weighted / cpu_count, 4)}, **totals},
        "controller": {"disk": dict(controller_disk)},
    }


def _admission(host: HostState) -> str:
    return "READY" if host.ready else "ONLINE"


def system_health(host: HostState) -> dict[str, Any]:
    computes = {}
    for compute in host.profile.computes:
        computes[compute.id] = {
            "kvm_vmx_enabled": True, "enough_cpus": True, "lld_connected": True, "lld_synced": host.ready,
            "libvirt": True, "fabric": True, "device_mux": True, "refplat_images_available": True,
            "docker_shim": True, "valid": host.ready, "admission_state": _admission(host),
            "is_controller": compute.is_controller, "hostname": compute.hostname,
        }
    return {
        "valid": host.ready,
        "computes": computes,
        "is_licensed": host.licensing.is_licensed,
        "is_enterprise": host.licensing.is_enterprise,
        "controller": {"core_connected": True, "nodes_loaded": True, "images_loaded": True, "valid": True},
    }


def compute_hosts(host: HostState) -> list[dict[str, Any]]:
    result = []
    for compute in host.profile.computes:
        nodes = host.nodes_on(compute.id)
        result.append({
            "id": compute.id, "server_address": compute.server_address, "hostname": compute.hostname,
            "is_simulator": True, "is_connector": compute.is_controller, "admission_state": _admission(host),
            "nodes": [node.id for node in nodes],
            "node_counts": {"total_nodes": sum(node.is_deployed for node in nodes), "total_orphans": 0,
                            "running_nodes": sum(node.is_active for node in nodes), "running_orphans": 0},
            "is_connected": True, "is_synced": host.ready,
        })
    return result


def system_information(host: HostState) -> dict[str, Any]:
    return {"version": host.profile.version, "ready": host.ready, "allow_ssh_pubkey_auth": False,
            "oui": host.profile.oui}
