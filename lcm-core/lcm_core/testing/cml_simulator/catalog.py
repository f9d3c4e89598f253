"""The node definitions of a stock CML 2.9 reference platform, reduced to what the simulator needs.

A node that leaves `cpus`/`ram`/`cpu_limit`/`image_definition` unset runs with its definition's
defaults; those defaults are what utilisation (allocated CPUs and memory) is computed from. Unknown
definitions are accepted with generic defaults (and an import warning) so that any lab file imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeDefinition:
    id: str
    label: str
    nature: str
    cpus: int
    ram: int  # MiB
    image: str | None
    physical: int  # number of physical interface slots
    default_count: int
    interface_label: Callable[[int], str]
    loopback: bool = False
    config_file: str = "config.txt"
    domain_driver: str = "kvm"
    driver: str = "server"
    boot_timeout: int = 300
    cpu_limit: int = 100
    description: str = ""

    @property
    def physical_labels(self) -> list[str]:
        return [self.interface_label(slot) for slot in range(self.physical)]


def _fmt(pattern: str) -> Callable[[int], str]:
    return lambda slot: pattern.format(n=slot, n1=slot + 1, hi=slot // 4, lo=slot % 4)


_DEFINITIONS = (
    NodeDefinition("iosv", "IOSv", "router", 1, 768, "iosv-159-3-m8", 16, 4, _fmt("GigabitEthernet0/{n}"),
                   loopback=True, config_file="ios_config.txt", driver="iosv"),
    NodeDefinition("iosvl2", "IOSvL2", "switch", 1, 768, "iosvl2-2020", 16, 4, _fmt("GigabitEthernet{hi}/{lo}"),
                   loopback=True, config_file="ios_config.txt", driver="iosvl2"),
    NodeDefinition("csr1000v", "CSR1000v", "router", 1, 3072, "csr1000v-17-03-08a", 16, 4,
                   _fmt("GigabitEthernet{n1}"), loopback=True, config_file="iosxe_config.txt", driver="csr1000v"),
    NodeDefinition("cat8000v", "Catalyst 8000V", "router", 1, 5120, "cat8000v-17-16-01a", 16, 4,
                   _fmt("GigabitEthernet{n1}"), loopback=True, config_file="iosxe_config.txt", driver="cat8000v"),
    NodeDefinition("iosxrv9000", "IOS XRv 9000", "router", 4, 20480, "xrv9k-24-3-1", 16, 4,
                   _fmt("GigabitEthernet0/0/0/{n}"), loopback=True, config_file="iosxr_config.txt",
                   driver="iosxrv9000", boot_timeout=1200),
    NodeDefinition("nxosv9000", "NX-OS 9000v", "switch", 2, 10240, "nxosv9300-10-5-1-f", 64, 8,
                   _fmt("Ethernet1/{n1}"), loopback=True, config_file="nxos_config.txt", driver="nxosv9000",
                   boot_timeout=900),
    NodeDefinition("asav", "ASAv", "firewall", 1, 2048, "asav-9-22-1-1", 10, 4, _fmt("GigabitEthernet0/{n}"),
                   config_file="day0-config", driver="asav"),
    NodeDefinition("iol-xe", "IOL XE", "router", 1, 768, "iol-xe-17-16-01a", 16, 4, _fmt("Ethernet{hi}/{lo}"),
                   loopback=True, config_file="iosxe_config.txt", domain_driver="iol", driver="iol-xe"),
    NodeDefinition("ubuntu", "Ubuntu", "server", 1, 2048, "ubuntu-24-04-20250503", 8, 1, _fmt("ens{n1}"),
                   config_file="user-data", driver="ubuntu"),
    NodeDefinition("alpine", "Alpine", "server", 1, 512, "alpine-base-3-21-3", 8, 1, _fmt("eth{n}"),
                   config_file="node.cfg", driver="alpine"),
    NodeDefinition("desktop", "Desktop", "host", 1, 3072, "desktop-3-21-3", 8, 1, _fmt("eth{n}"),
                   config_file="node.cfg", driver="alpine"),
    NodeDefinition("server", "Server", "server", 1, 128, "server-tcl-15-0", 8, 1, _fmt("eth{n}"),
                   config_file="node.cfg", driver="server"),
    NodeDefinition("unmanaged_switch", "Unmanaged Switch", "switch", 0, 0, None, 32, 8, _fmt("port{n}"),
                   config_file="", domain_driver="none", driver="unmanaged_switch"),
    NodeDefinition("external_connector", "External Connector", "external_connector", 0, 0, None, 1, 1,
                   _fmt("port"), config_file="", domain_driver="none", driver="external_connector"),
)

CATALOG: dict[str, NodeDefinition] = {definition.id: definition for definition in _DEFINITIONS}


def definition_for(node_definition: str) -> NodeDefinition:
    """The known definition, or generic defaults for one this reference platform does not ship."""
    known = CATALOG.get(node_definition)
    if known is not None:
        return known
    return NodeDefinition(node_definition, node_definition, "server", 1, 1024, None, 8, 1, _fmt("eth{n}"))


def simplified_json(definition: NodeDefinition) -> dict[str, Any]:
    """An entry of GET /simplified_node_definitions."""
    return {
        "id": definition.id,
        "general": {"nature": definition.nature, "description": definition.description, "read_only": True},
        "device": {"interfaces": {"has_loopback_zero": definition.loopback, "default_count": definition.default_count,
                                  "physical": definition.physical_labels, "serial_ports": 1}},
        "ui": {"label_prefix": f"{definition.id}-", "icon": definition.nature, "label": definition.label,
               "visible": True, "description": definition.description, "group": "Cisco"},
        "sim": {"ram": definition.ram, "cpus": definition.cpus, "cpu_limit": definition.cpu_limit,
                "data_volume": None, "boot_disk_size": None},
        "image_definitions": [definition.image] if definition.image else [],
    }


def full_json(definition: NodeDefinition) -> dict[str, Any]:
    """An entry of GET /node_definitions (NodeDefinitionResponse, all required keys present)."""
    loopback = "Loopback0" if definition.loopback else None
    return {
        "id": definition.id,
        "boot": {"timeout": definition.boot_timeout, "completed": ["CML_BOOT_COMPLETED"], "uses_regex": False},
        "sim": {
            "linux_native": {"libvirt_domain_driver": definition.domain_driver, "driver": definition.driver,
                             "ram": definition.ram, "cpus": definition.cpus, "cpu_limit": definition.cpu_limit,
                             "disk_driver": "virtio", "nic_driver": "virtio", "data_volume": None,
                             "boot_disk_size": None, "video": None},
            "parameters": {},
            "usage_estimations": {"cpus": definition.cpus, "ram": definition.ram, "disk": 1},
        },
        "general": {"nature": definition.nature, "description": definition.description, "read_only": True},
        "configuration": {"generator": {"driver": definition.driver},
                          "provisioning": {"files": [{"name": definition.config_file, "content": ""}]}
                          if definition.config_file else None},
        "device": {"interfaces": {"serial_ports": 1, "physical": definition.physical_labels,
                                  "has_loopback_zero": definition.loopback,
                                  "default_count": definition.default_count, "min_count": 1,
                                  "loopback": [loopback] if loopback else None, "management": None,
                                  "default_console": None, "iol_static_ethernets": None}},
        "ui": {"label_prefix": f"{definition.id}-", "icon": definition.nature, "label": definition.label,
               "visible": True, "description": definition.description, "group": "Cisco"},
        "inherited": None,
        "pyats": None,
        "schema_version": "0.0.1",
    }
