"""`python -m lcm_core.testing.cml_simulator`: serve the simulator with uvicorn (see `servers.cml_simulator`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from lcm_core.testing.cml_simulator.app import create_app
from lcm_core.testing.cml_simulator.config import SimulatorConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lcm_core.testing.cml_simulator",
                                     description="Simulated CML 2.9 controllers at /hosts/{instance_id}/api/v0")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--boot-seconds", type=float, default=2.0, help="time from node start to BOOTED")
    parser.add_argument("--token-ttl", type=float, default=8 * 3600.0, help="lifetime of issued tokens (s)")
    parser.add_argument("--registration-seconds", type=float, default=1.0,
                        help="time a licence registration stays IN_PROGRESS")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = SimulatorConfig(username=args.username, password=args.password, boot_seconds=args.boot_seconds,
                             token_ttl_seconds=args.token_ttl, registration_seconds=args.registration_seconds)
    # A short graceful shutdown: requests hanging under a timeout fault must not delay a stop.
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
