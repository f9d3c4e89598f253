"""The simulator speaks the shapes of CML 2.9's API: every endpoint LCM uses is read through lcm-core's CML
client and parsers, over real sockets, and must parse without a single warning or a missing key."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from lcm_core.cml import CmlClient
from lcm_core.domain.cml_snapshot import SOURCE_FIELDS
from lcm_core.domain.workers import utilisation
from tests.fixtures.cml_simulator import new_instance_id

LAB = (Path(__file__).parents[1] / "fixtures" / "cml" / "lab.yaml").read_text()


def test_every_endpoint_parses_with_the_client_models(cml_simulator, caplog: pytest.LogCaptureFixture) -> None:
    host = cml_simulator.host_url(new_instance_id())

    async def run() -> None:
        async with CmlClient(cml_simulator.username, cml_simulator.password) as cml:
            info = await cml.system_information(host)
            assert info.version
            assert info.version.startswith("2.9.")
            assert info.ready is True

            snapshot = await cml.collect_cml_telemetry(host, include_activity=True)
            assert snapshot.errors == {}
            assert snapshot.warnings == []
            missing = [key for key in (*SOURCE_FIELDS["system_stats"], "computes")
                       if getattr(snapshot, key) in (None, {})]
            assert missing == [], f"system_stats keys without a value: {missing}"
            assert snapshot.health_valid is True
            assert snapshot.license is not None
            assert snapshot.license.registration_status
            derived = utilisation(snapshot, None)
            assert derived.cpu_percent is not None
            assert derived.cpu_source == "cml"
            assert derived.memory_percent is not None
            assert derived.disk_percent is not None
            assert all(node.admission_state == "READY" for node in snapshot.computes.values())

            imported = await cml.import_lab(host, LAB, title="contract")
            lab_id = imported.id
            assert await cml.lab_state(host, lab_id) == "DEFINED_ON_CORE"
            await cml.start_lab(host, lab_id)
            for _ in range(100):
                if await cml.check_if_converged(host, lab_id):
                    break
                await asyncio.sleep(0.1)
            assert await cml.lab_state(host, lab_id) == "STARTED"
            nodes = await cml.nodes(host, lab_id)
            assert nodes
            assert all(node.state == "BOOTED" for node in nodes)
            assert all(node.cpus is not None and node.ram is not None for node in nodes)
            tagged = [node for node in nodes if node.tags]
            assert tagged, "the sample lab has port tags"
            interfaces = await cml.interfaces(host, lab_id, nodes[0].id)
            assert interfaces
            assert all(i.label for i in interfaces)
            links = await cml.links(host, lab_id)
            assert links is not None
            stats = await cml.simulation_stats(host, lab_id)
            assert stats.nodes is not None
            running = await cml.system_stats(host)
            assert running.running_nodes == len(nodes)
            assert (running.allocated_cpus or 0) > 0
            events = await cml.telemetry_events(host)
            assert any(e.category == "start_lab" for e in events)
            await cml.stop_lab(host, lab_id)
            await cml.wipe_lab(host, lab_id)
            await cml.delete_lab(host, lab_id)
            assert lab_id not in await cml.lab_ids(host)
            assert (await cml.system_stats(host)).running_nodes == 0

    with caplog.at_level(logging.WARNING, logger="lcm_core.cml"):
        asyncio.run(run())
    assert [r.getMessage() for r in caplog.records if r.name.startswith("lcm_core.cml")] == []
