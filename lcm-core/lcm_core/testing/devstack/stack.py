"""`make run`: start the whole local stack on loopback, write `.lcm/dev/stack.env`, stop it all on a signal.

Order: etcd, Redis, MongoDB-wire (or MONGODB_URL), moto (seeded), CML simulator, control-plane API,
then the controllers (two replicas each, so leader election is visible). The env file is written only
once every child is healthy and removed on shutdown: its presence means "the stack is up".
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from lcm_core.logging import configure_logging
from lcm_core.testing import servers
from lcm_core.testing.devstack import aws_seed, env_file, pool_seed, tokens
from lcm_core.testing.processes import (
    ManagedProcess,
    ProcessGroup,
    ProcessStartError,
    free_port,
    http_ok,
    port_is_open,
)

logger = logging.getLogger("lcm.devstack")

AWS_KEY_ID = "lcm-local-access-key"
AWS_SECRET = "lcm-local-secret-key"  # noqa: S105 - moto accepts any credentials
CML_USERNAME = "admin"
DEFAULT_REGIONS = ["us-east-1", "us-west-2"]

#: Short intervals for a lively local stack; the services' own defaults are production values.
DEV_INTERVALS = {
    "WORKER_DISCOVERY_INTERVAL": "5",
    "WORKER_CONTROLLER_RECONCILE_INTERVAL": "5",
    "METRICS_POLL_INTERVAL": "5",
    "LABLET_CONTROLLER_RECONCILE_INTERVAL": "5",
    "LABLET_SCHEDULING_INTERVAL": "2",
    "LABLET_BOOT_POLL_INTERVAL": "1",
    "LABLET_BOOT_TIMEOUT": "120",
    "LABLET_DISCOVERY_INTERVAL": "30",
    "WORKER_CONTROLLER_LEADER_LEASE_TTL": "10",
    "LABLET_CONTROLLER_LEADER_LEASE_TTL": "10",
    "CONTROLLER_STATUS_REPORT_INTERVAL": "5",
}


@dataclass
class StackOptions:
    root: Path
    api_host: str = "127.0.0.1"
    api_port: int = 8030
    regions: list[str] = field(default_factory=lambda: list(DEFAULT_REGIONS))
    controller_replicas: int = 2
    mongodb_url: str | None = None
    cml_boot_seconds: float = 2.0

    @property
    def state_dir(self) -> Path:
        return self.root / ".lcm" / "dev"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "stack.env"


class Stack:
    """The running local stack."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.group = ProcessGroup()
        self.env: dict[str, str] = {}
        self.services: list[ManagedProcess] = []
        self._replicas: set[str] = set()
        self._gone: set[str] = set()

    # -- helpers --------------------------------------------------------------------------------
    def _log(self, name: str) -> Path:
        return self.options.state_dir / "logs" / f"{name}.log"

    def _start(self, process: ManagedProcess, what: str) -> None:
        started = time.monotonic()
        self.group.start(process)
        logger.info("%-22s ready in %.1fs  (%s)", process.name, time.monotonic() - started, what)

    def _service(self, name: str, console_script: str, env: dict[str, str], health_url: str) -> ManagedProcess:
        binary = Path(sys.executable).parent / console_script
        return ManagedProcess(
            name=name,
            argv=[str(binary)],
            env={**self.env, **env, "LOG_FORMAT": "json"},
            ready=lambda: http_ok(health_url),
            log_path=self._log(name),
            cwd=self.options.root,
        )

    # -- start ----------------------------------------------------------------------------------
    def start(self) -> None:
        opts = self.options
        state = opts.state_dir
        (state / "logs").mkdir(parents=True, exist_ok=True)
        opts.env_file.unlink(missing_ok=True)
        if port_is_open(opts.api_host, opts.api_port):
            raise ProcessStartError(
                f"port {opts.api_port} is already in use (another `make run`?); stop it or set LCM_API_PORT"
            )

        etcd_port = free_port()
        self._start(servers.etcd(state / "data" / "etcd", etcd_port, free_port(), self._log("etcd")),
                    f"etcd on {servers.LOOPBACK}:{etcd_port}")

        redis_port = free_port()
        self._start(servers.redis(state / "data" / "redis", redis_port, self._log("redis")),
                    f"redis on {servers.LOOPBACK}:{redis_port}")

        if opts.mongodb_url:
            mongodb_url = opts.mongodb_url
            logger.info("%-22s using MONGODB_URL from the environment", "mongodb")
        else:
            mongo_port = free_port()
            self._start(servers.mongo_wire(state / "data" / "mongo", mongo_port, self._log("mongodb-wire")),
                        f"nx-27017 on {servers.LOOPBACK}:{mongo_port}")
            mongodb_url = f"mongodb://{servers.LOOPBACK}:{mongo_port}"

        moto_port = free_port()
        aws_url = f"http://{servers.LOOPBACK}:{moto_port}"
        self._start(servers.moto(moto_port, self._log("moto")), f"local AWS at {aws_url}")
        seeded = aws_seed.seed(aws_url, AWS_KEY_ID, AWS_SECRET, aws_seed.default_plan(opts.regions))
        logger.info("%-22s seeded %s", "aws", ", ".join(f"{r}: {len(ids)} CML instances"
                                                         for r, ids in seeded.items()))

        cml_port = free_port()
        cml_url = f"http://{servers.LOOPBACK}:{cml_port}"
        cml_password = secrets.token_urlsafe(12)
        self._start(
            servers.cml_simulator(cml_port, self._log("cml-simulator"), CML_USERNAME, cml_password,
                                  boot_seconds=opts.cml_boot_seconds),
            f"CML simulator at {cml_url}/hosts/<instance-id>/api/v0",
        )

        private_pem, public_pem = tokens.ensure_keypair(state / "auth")
        users_file, passwords = tokens.ensure_local_users(state / "auth")
        private_key = private_pem.read_bytes()
        api_url = f"http://{opts.api_host}:{opts.api_port}"
        self.env = {
            "LCM_ENVIRONMENT": "local",
            "LCM_API_URL": api_url,
            "LCM_ADMIN_TOKEN": tokens.issue_token(private_key, "dev-admin", ["admin"], 30 * 86400),
            "LCM_VIEWER_TOKEN": tokens.issue_token(private_key, "dev-viewer", ["viewer"], 30 * 86400),
            "CONTROL_PLANE_API_URL": api_url,
            "CONTROL_PLANE_API_KEY": secrets.token_urlsafe(24),
            "AUTH_JWT_PUBLIC_KEY_FILE": str(public_pem),
            "AUTH_OIDC_ISSUER": tokens.ISSUER,
            "AUTH_LOCAL_USERS_FILE": str(users_file),
            "AUTH_SESSION_SECRET": secrets.token_urlsafe(32),
            "LCM_ADMIN_USER": "admin",
            "LCM_ADMIN_PASSWORD": passwords["admin"],
            "LCM_VIEWER_USER": "viewer",
            "LCM_VIEWER_PASSWORD": passwords["viewer"],
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_REGION": opts.regions[0],
            "AWS_DEFAULT_REGION": opts.regions[0],
            "WORKER_DISCOVERY_ENABLED": "true",
            "WORKER_DISCOVERY_REGIONS": ",".join(opts.regions),
            "WORKER_DISCOVERY_AMI_NAME": "CML-2.9.0-*",
            "CML_SIMULATOR_URL": cml_url,
            "CML_WORKER_URL_TEMPLATE": f"{cml_url}/hosts/{{instance_id}}",
            "CML_WORKER_API_USERNAME": CML_USERNAME,
            "CML_WORKER_API_PASSWORD": cml_password,
            "CML_WORKER_VERIFY_TLS": "false",
            # The simulator accepts any well-formed Smart Licensing token: licensing works out of the box.
            "CML_LICENSE_TOKEN": "LCM-local-stack-token",
            "MONGODB_URL": mongodb_url,
            "REDIS_URL": f"redis://{servers.LOOPBACK}:{redis_port}/0",
            "ETCD_HOST": servers.LOOPBACK,
            "ETCD_PORT": str(etcd_port),
            **DEV_INTERVALS,
        }

        cpa = self._service(
            "control-plane-api", "lcm-control-plane-api",
            {"CPA_HOST": opts.api_host, "CPA_PORT": str(opts.api_port)},
            f"{api_url}/api/health",
        )
        self._start(cpa, f"API at {api_url}")
        self.services.append(cpa)

        for service, script, port_var in (
            ("worker-controller", "lcm-worker-controller", "WORKER_CONTROLLER_PORT"),
            ("lablet-controller", "lcm-lablet-controller", "LABLET_CONTROLLER_PORT"),
        ):
            for replica in range(1, opts.controller_replicas + 1):
                port = free_port()
                name = f"{service}-{replica}"
                proc = self._service(
                    name, script,
                    {port_var: str(port), "CONTROLLER_IDENTITY": name},
                    f"http://{servers.LOOPBACK}:{port}/health",
                )
                self._start(proc, f"status at http://{servers.LOOPBACK}:{port}/status")
                self.services.append(proc)
                self._replicas.add(name)

        self._wait_ready(f"{api_url}/api/ready", timeout=30)
        seeded_pool = pool_seed.seed(api_url, self.env["LCM_ADMIN_TOKEN"], opts.regions)
        if seeded_pool:
            logger.info("%-22s seeded %s", "control-plane", ", ".join(seeded_pool))
        self._write_env_file()

    def _wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not http_ok(url, timeout=3):
            if time.monotonic() > deadline:
                raise ProcessStartError(f"{url} did not report ready within {timeout:.0f}s")
            time.sleep(0.2)

    def _write_env_file(self) -> None:
        """Exported, shell-quoted (`env_file`): `source .lcm/dev/stack.env` and aws, curl and lcm find the stack.
        `LCM_TOKEN` is the admin token again, under the name `lcm` reads; the venv's bin folder goes first on PATH so
        that `lcm` runs by its name."""
        keys = [
            "LCM_API_URL", "LCM_TOKEN", "LCM_ADMIN_TOKEN", "LCM_VIEWER_TOKEN", "CONTROL_PLANE_API_KEY",
            "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION",
            "WORKER_DISCOVERY_REGIONS", "WORKER_DISCOVERY_AMI_NAME", "CML_SIMULATOR_URL",
            "CML_WORKER_URL_TEMPLATE", "CML_WORKER_API_USERNAME", "CML_WORKER_API_PASSWORD", "MONGODB_URL",
            "REDIS_URL", "ETCD_HOST", "ETCD_PORT", "LCM_ADMIN_USER", "LCM_ADMIN_PASSWORD", "LCM_VIEWER_USER",
            "LCM_VIEWER_PASSWORD",
        ]
        path = self.options.env_file
        tmp = path.with_suffix(".tmp")
        values = {**self.env, "LCM_TOKEN": self.env["LCM_ADMIN_TOKEN"]}
        tmp.write_text(env_file.render({key: values[key] for key in keys}, bin_dir=Path(sys.executable).parent))
        tmp.chmod(0o600)
        tmp.replace(path)

    # -- supervise ------------------------------------------------------------------------------
    def first_dead(self) -> ManagedProcess | None:
        """The first child whose death stops the stack. A controller replica may die (that is how leader
        failover is tried out) as long as another replica of its service still runs: that is logged once."""
        for proc in self.group.processes:
            if proc.running() or proc.name in self._gone:
                continue
            service = proc.name.rsplit("-", 1)[0]
            peers = [p for p in self.services if p is not proc and p.name.rsplit("-", 1)[0] == service]
            if proc.name in self._replicas and any(p.running() for p in peers):
                self._gone.add(proc.name)
                logger.warning("%s exited; another %s replica takes over (restart the stack to get it back)",
                               proc.name, service)
                continue
            return proc
        return None

    def stop(self) -> None:
        self.options.env_file.unlink(missing_ok=True)
        self.group.stop_all()


def _banner(stack: Stack, elapsed: float) -> str:
    opts = stack.options
    env = stack.env
    lines = [
        "",
        f"LCM local stack ready in {elapsed:.1f}s",
        f"  dashboard        {env['LCM_API_URL']}/",
        f"  API docs         {env['LCM_API_URL']}/api/docs",
        "  dashboard login  admin or viewer; passwords are LCM_ADMIN_PASSWORD / LCM_VIEWER_PASSWORD in the env file",
        f"  local AWS        {env['AWS_ENDPOINT_URL']}  (regions {env['WORKER_DISCOVERY_REGIONS']})",
        f"  CML simulator    {env['CML_SIMULATOR_URL']}/hosts/<instance-id>/api/v0",
        f"  logs             {opts.state_dir / 'logs'}",
        f"  environment      source {opts.env_file.relative_to(opts.root)}   "
        "(exports LCM_API_URL, LCM_TOKEN, AWS_*; puts the venv's lcm on PATH)",
        "  then try         lcm workers list     (the `lcm` command line; lcm --help)",
        "                   lcm events tail      (live events; Ctrl-C ends)",
        '                   curl -s -H "Authorization: Bearer $LCM_ADMIN_TOKEN" $LCM_API_URL/api/workers',
        "Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the LCM local stack on loopback.")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (state in .lcm/dev)")
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("LCM_DEV_CONTROLLER_REPLICAS", 2)))
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="start, report, and stop again (a smoke check of the stack)")
    args = parser.parse_args(argv)
    configure_logging("devstack", "INFO", "text")

    options = StackOptions(
        root=args.root.resolve(),
        api_port=int(os.environ.get("LCM_API_PORT", "8030")),
        controller_replicas=args.replicas,
        mongodb_url=os.environ.get("MONGODB_URL") or None,
    )
    stack = Stack(options)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the stack exactly like Ctrl-C

    signal.signal(signal.SIGTERM, on_signal)
    # Explicitly, because a shell starting `make run &` without job control leaves SIGINT ignored.
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    exit_code = 0
    try:
        stack.start()
        print(_banner(stack, time.monotonic() - started), flush=True)
        while not args.exit_when_ready:
            dead = stack.first_dead()
            if dead is not None:
                logger.error("%s exited unexpectedly; last log lines:\n%s", dead.name, dead.tail_log())
                exit_code = 1
                break
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except (ProcessStartError, FileNotFoundError) as exc:
        logger.error("the local stack could not start: %s", exc)
        exit_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logger.info("stopping the local stack ...")
        stack.stop()
        logger.info("stopped; no process left behind")
    return exit_code
