"""A simulated CML 2.9 controller for every EC2 instance id, for the local stack and the tests.

`/hosts/{instance_id}/api/v0/...` serves the CML REST API subset LCM and virl2-client use, for any id,
with a host profile derived deterministically from the id; `/_admin/...` controls faults and hosts.
Run it with `python -m lcm_core.testing.cml_simulator --port N --username U --password P`.
"""

from lcm_core.testing.cml_simulator.app import create_app, create_fastapi
from lcm_core.testing.cml_simulator.config import SimulatorConfig
from lcm_core.testing.cml_simulator.faults import FaultSpec
from lcm_core.testing.cml_simulator.malform import MalformedMode

__all__ = ["FaultSpec", "MalformedMode", "SimulatorConfig", "create_app", "create_fastapi"]
