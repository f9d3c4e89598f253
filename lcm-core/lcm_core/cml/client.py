"""Async client of the CML 2.9 REST API for a whole fleet (docs/architecture.md, 'CML client performance').

`CmlClient` is the endpoint layer over `CmlTransport` (one shared connection pool, per-host token cache,
fleet-wide and per-host concurrency bounds, typed errors; see `transport`). Each method takes the host's
base URL (`https://10.0.0.5`, or `http://127.0.0.1:PORT/hosts/i-abc` for the simulator); the client
appends `/api/v0/...`. Telemetry reads return the key-by-key parsed models of `parsers`; lab operations
return the lenient pydantic models of `models`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any

from lcm_core.cml import collect
from lcm_core.cml.errors import CmlError, CmlNotFoundError, CmlRejectedError, CmlResponseError
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
    parse_lab_ids,
    parse_licensing,
    parse_system_health,
    parse_system_information,
    parse_system_stats,
    parse_telemetry_events,
)
from lcm_core.cml.pool import host_label
from lcm_core.cml.telemetry import CmlLicenseInfo, CmlSystemHealth, CmlSystemStats, CmlTelemetrySnapshot
from lcm_core.cml.transport import CmlCredentials, CmlTransport
from lcm_core.errors import InvalidError

__all__ = ["CmlClient", "CmlCredentials"]


class CmlClient(CmlTransport):
    """Fleet-wide CML API client. Use as an async context manager or call `aclose()`.

    Construct it once per process with the fleet's API credentials (`set_host_credentials` for
    exceptions) and pass each host's base URL to the methods.
    """

    # ---- system and licensing -------------------------------------------------------------------

    async def system_information(self, host: str) -> SystemInformation:
        """GET `/system_information` without a token: the cheapest "is CML up" probe (`ready`, `version`)."""
        body = await self.get_json(host, "/system_information", auth=False)
        return parse_system_information(body, host=host_label(host))

    async def system_stats(self, host: str) -> CmlSystemStats:
        """GET `/system_stats`, parsed key by key (a bad key is None plus a warning, see `parsers`)."""
        return parse_system_stats(await self.get_json(host, "/system_stats"), host=host_label(host))

    async def system_health(self, host: str) -> CmlSystemHealth:
        """GET `/system_health` (controller and per-compute health flags), parsed key by key."""
        return parse_system_health(await self.get_json(host, "/system_health"), host=host_label(host))

    async def licensing(self, host: str) -> CmlLicenseInfo:
        """GET `/licensing`, flattened, with `node_limit` from the node-count feature (see `parse_licensing`)."""
        body = await self.get_json(host, "/licensing")
        return parse_licensing(body, host=host_label(host), base_nodes_by_product=self._base_nodes)

    async def register_license(self, host: str, token: str, *, reregister: bool = False) -> None:
        """POST `/licensing/registration` (204 = accepted; registration completes asynchronously)."""
        await self.request(host, "POST", "/licensing/registration",
                           json={"token": token, "reregister": reregister}, redact=(token,))

    async def deregister_license(self, host: str) -> bool:
        """DELETE `/licensing/deregistration`: True if SSMS confirmed (204), False if only local (202)."""
        response = await self.request(host, "DELETE", "/licensing/deregistration")
        return response.status_code != 202

    async def telemetry_events(self, host: str) -> list[TelemetryEvent]:
        """GET `/telemetry/events` as `TelemetryEvent`s (malformed events are skipped with a warning)."""
        return parse_telemetry_events(await self.get_json(host, "/telemetry/events"), host=host_label(host))

    # ---- labs -----------------------------------------------------------------------------------

    async def lab_ids(self, host: str, *, show_all: bool = True) -> list[str]:
        """GET `/labs` (`show_all=true`: for an admin, every user's labs)."""
        body = await self.get_json(host, "/labs", params={"show_all": "true" if show_all else "false"})
        ids = parse_lab_ids(body, host=host_label(host))
        if ids is None:
            raise CmlResponseError(f"CML {host_label(host)} /labs: expected a list of ids", host=host_label(host))
        return ids

    async def labs_count(self, host: str) -> int:
        return len(await self.lab_ids(host))

    async def lab(self, host: str, lab_id: str) -> Lab:
        path = f"/labs/{lab_id}"
        return self._model(host, path, Lab, await self.get_json(host, path))

    async def import_lab(self, host: str, topology_yaml: str, *, title: str | None = None,
                         request_timeout: float | None = 120.0) -> ImportResult:
        """POST `/import` with the raw YAML text (what virl2-client sends); `title` overrides the file's."""
        if title is not None and not 1 <= len(title) <= 64:
            raise InvalidError("a CML lab title must be 1-64 characters", title_length=len(title))
        params = {"title": title} if title is not None else None
        response = await self.request(host, "POST", "/import", params=params, content=topology_yaml,
                                      request_timeout=request_timeout)
        return self._model(host, "/import", ImportResult, self._decode(host, "/import", response))

    async def start_lab(self, host: str, lab_id: str) -> None:
        await self.request(host, "PUT", f"/labs/{lab_id}/start")

    async def stop_lab(self, host: str, lab_id: str) -> None:
        await self.request(host, "PUT", f"/labs/{lab_id}/stop")

    async def wipe_lab(self, host: str, lab_id: str) -> None:
        """PUT `/labs/{id}/wipe` (the lab must be stopped)."""
        await self.request(host, "PUT", f"/labs/{lab_id}/wipe")

    async def delete_lab(self, host: str, lab_id: str) -> None:
        """DELETE `/labs/{id}` (stop and wipe it first, as virl2-client does)."""
        await self.request(host, "DELETE", f"/labs/{lab_id}")

    async def lab_state(self, host: str, lab_id: str) -> str:
        path = f"/labs/{lab_id}/state"
        return self._scalar(host, path, await self.get_json(host, path), str)

    async def check_if_converged(self, host: str, lab_id: str) -> bool:
        path = f"/labs/{lab_id}/check_if_converged"
        return self._scalar(host, path, await self.get_json(host, path), bool)

    async def simulation_stats(self, host: str, lab_id: str) -> SimulationStats:
        path = f"/labs/{lab_id}/simulation_stats"
        return self._model(host, path, SimulationStats, await self.get_json(host, path))

    # ---- nodes, interfaces, links ---------------------------------------------------------------

    async def nodes(self, host: str, lab_id: str) -> list[Node]:
        """GET `/labs/{id}/nodes?data=true` (full Node objects, main day-0 config only)."""
        path = f"/labs/{lab_id}/nodes"
        return self._models(host, path, Node, await self.get_json(host, path, params={"data": "true"}))

    async def node(self, host: str, lab_id: str, node_id: str) -> Node:
        """GET one node. The spec answers 400 (not 404) for a missing node or lab; both become not-found."""
        path = f"/labs/{lab_id}/nodes/{node_id}"
        try:
            body = await self.get_json(host, path)
        except CmlRejectedError as exc:
            if exc.status_code != 400:
                raise
            raise CmlNotFoundError(exc.message, host=exc.host, status_code=400) from exc
        return self._model(host, path, Node, body)

    async def interfaces(self, host: str, lab_id: str, node_id: str) -> list[Interface]:
        """GET `/labs/{id}/nodes/{nid}/interfaces?data=true` (2.9 has no lab-wide interface list)."""
        path = f"/labs/{lab_id}/nodes/{node_id}/interfaces"
        return self._models(host, path, Interface, await self.get_json(host, path, params={"data": "true"}))

    async def links(self, host: str, lab_id: str) -> list[Link]:
        path = f"/labs/{lab_id}/links"
        return self._models(host, path, Link, await self.get_json(host, path, params={"data": "true"}))

    async def patch_node(self, host: str, lab_id: str, node_id: str, changes: Mapping[str, Any]) -> str:
        """PATCH a node (`NodeUpdate`, any subset); CML answers the node id as a bare string."""
        path = f"/labs/{lab_id}/nodes/{node_id}"
        response = await self.request(host, "PATCH", path, json=dict(changes),
                                      params={"exclude_configurations": "false"})
        return self._scalar(host, path, self._decode(host, path, response), str)

    async def set_node_tags(self, host: str, lab_id: str, node_id: str, tags: Sequence[str]) -> str:
        """Replace the node's whole tag list (CML has no add/remove; each tag ≤ 64 characters)."""
        too_long = [tag for tag in tags if not 0 < len(tag) <= 64]
        if too_long:
            raise InvalidError("CML node tags must be 1-64 characters", tags=too_long)
        return await self.patch_node(host, lab_id, node_id, {"tags": list(tags)})

    # ---- fleet telemetry --------------------------------------------------------------------------

    async def collect_cml_telemetry(self, host: str, *, include_activity: bool = False) -> CmlTelemetrySnapshot:
        """Telemetry snapshot of one host (see `lcm_core.cml.collect.collect_cml_telemetry`)."""
        return await collect.collect_cml_telemetry(self, host, include_activity=include_activity)

    async def iter_fleet_telemetry(self, hosts: Iterable[str] | AsyncIterable[str], *,
                                   include_activity: bool | Collection[str] = False,
                                   max_hosts: int = 50, without_information: Collection[str] = (),
                                   ) -> AsyncIterator[tuple[str, CmlTelemetrySnapshot | CmlError]]:
        """Snapshots of many hosts as they complete (see `lcm_core.cml.collect.iter_fleet_telemetry`)."""
        async for item in collect.iter_fleet_telemetry(self, hosts, include_activity=include_activity,
                                                       max_hosts=max_hosts, without_information=without_information):
            yield item

    async def collect_fleet_telemetry(self, hosts: Iterable[str], *, include_activity: bool = False,
                                      max_hosts: int = 50) -> dict[str, CmlTelemetrySnapshot | CmlError]:
        """Every host's snapshot or error (see `lcm_core.cml.collect.collect_fleet_telemetry`)."""
        return await collect.collect_fleet_telemetry(self, hosts, include_activity=include_activity,
                                                     max_hosts=max_hosts)
