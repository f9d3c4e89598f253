"""Async client of the Cisco Modeling Labs 2.9 API for a fleet of hosts, and its telemetry parsers.

- `CmlClient`: one shared HTTP pool, per-host token cache, bounded concurrency, typed errors.
- `collect_cml_telemetry` / `iter_fleet_telemetry`: one `CmlTelemetrySnapshot` per host, tolerating
  partial failure.
- `parsers`: key-by-key parsing of `system_information`, `system_stats`, `system_health`, `licensing`,
  labs and telemetry events: a bad key is None plus a warning, never an exception.
"""

from lcm_core.cml.client import CmlClient, CmlCredentials
from lcm_core.cml.collect import (
    build_snapshot,
    collect_cml_telemetry,
    collect_fleet_telemetry,
    iter_fleet_telemetry,
)
from lcm_core.cml.errors import (
    CmlAuthError,
    CmlError,
    CmlNotFoundError,
    CmlRejectedError,
    CmlResponseError,
    CmlUnreachableError,
)
from lcm_core.cml.models import (
    ImportResult,
    Interface,
    Lab,
    Link,
    Node,
    SimulationStats,
    SystemInformation,
    TelemetryEvent,
)
from lcm_core.cml.parsers import (
    last_activity_at,
    parse_lab_ids,
    parse_licensing,
    parse_system_health,
    parse_system_information,
    parse_system_stats,
    parse_telemetry_events,
)
from lcm_core.cml.pool import host_key, host_label
from lcm_core.cml.telemetry import CmlSystemHealth, CmlSystemStats
from lcm_core.domain.cml_snapshot import CmlComputeNode, CmlLicenseFeature, CmlLicenseInfo, CmlTelemetrySnapshot

__all__ = [
    "CmlAuthError",
    "CmlClient",
    "CmlComputeNode",
    "CmlCredentials",
    "CmlError",
    "CmlLicenseFeature",
    "CmlLicenseInfo",
    "CmlNotFoundError",
    "CmlRejectedError",
    "CmlResponseError",
    "CmlSystemHealth",
    "CmlSystemStats",
    "CmlTelemetrySnapshot",
    "CmlUnreachableError",
    "ImportResult",
    "Interface",
    "Lab",
    "Link",
    "Node",
    "SimulationStats",
    "SystemInformation",
    "TelemetryEvent",
    "build_snapshot",
    "collect_cml_telemetry",
    "collect_fleet_telemetry",
    "host_key",
    "host_label",
    "iter_fleet_telemetry",
    "last_activity_at",
    "parse_lab_ids",
    "parse_licensing",
    "parse_system_health",
    "parse_system_information",
    "parse_system_stats",
    "parse_telemetry_events",
]
