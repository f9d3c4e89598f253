"""The CPA's process pool for CPU-heavy parsing: the work runs in another process, errors come back as
themselves, and a pool whose process died is replaced."""

from __future__ import annotations

import os
import signal

import pytest

from control_plane_api.domain.lablet_definition import DefinitionContent, LabletDefinition
from control_plane_api.infrastructure.cpu_pool import CpuPool
from lcm_core.errors import InvalidError
from lcm_core.testing.sample_topologies import load


async def test_work_runs_in_another_process_and_errors_come_back() -> None:
    pool = CpuPool()
    assert await pool.run(os.getpid) != os.getpid()
    text = load()
    derived = await pool.run(LabletDefinition.derive, DefinitionContent(lab_topology_yaml=text))
    assert derived == LabletDefinition.derive(DefinitionContent(lab_topology_yaml=text))
    with pytest.raises(InvalidError, match="'links' is missing"):
        await pool.run(LabletDefinition.derive, DefinitionContent(lab_topology_yaml="lab: {}\nnodes: []\n"))


async def test_a_pool_whose_process_died_is_replaced() -> None:
    pool = CpuPool()
    first = await pool.run(os.getpid)
    os.kill(first, signal.SIGKILL)
    again = await pool.run(os.getpid)
    assert again not in (first, os.getpid())
