"""Session fixtures: the real servers every suite talks to over real sockets.

They are started from the same packages as the local stack (`lcm_core.testing.servers`) on random free
ports, once per test session, and stopped (with their whole process group) at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lcm_core.testing import servers
from lcm_core.testing.processes import ManagedProcess, free_port
from lcm_core.testing.servers import Endpoint

pytest_plugins = ["tests.fixtures.cml_simulator", "tests.fixtures.control_plane"]


def _run(process: ManagedProcess) -> Iterator[ManagedProcess]:
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    base = tmp_path_factory.mktemp("etcd")
    port = free_port()
    proc = servers.etcd(base / "data", port, free_port(), base / "etcd.log")
    for _ in _run(proc):
        yield Endpoint(servers.LOOPBACK, port)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    base = tmp_path_factory.mktemp("redis")
    port = free_port()
    for _ in _run(servers.redis(base / "data", port, base / "redis.log")):
        yield Endpoint(servers.LOOPBACK, port)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    base = tmp_path_factory.mktemp("mongo")
    port = free_port()
    for _ in _run(servers.mongo_wire(base / "data", port, base / "mongo.log")):
        yield Endpoint(servers.LOOPBACK, port)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    base = tmp_path_factory.mktemp("moto")
    port = free_port()
    for _ in _run(servers.moto(port, base / "moto.log")):
        yield Endpoint(servers.LOOPBACK, port)
