"""Seed the local stack with a worker template, a pool of it and a definition of the pool's track, so that a
new user sees a pool launch its first worker and scale with the sessions booked on its track.

Idempotent: a stack restarted on its own data keeps what is there (409 is "already seeded"). A definition is
looked for first: the API answers a create of an existing name and content with the existing definition (201),
which is not something seeded.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from lcm_core.testing import sample_topologies

logger = logging.getLogger("lcm.devstack")

TEMPLATE = "cml-metal"
POOL = "demo-pool"
TRACK = "demo"
DEFINITION = "demo-lab"


def template(regions: list[str]) -> dict[str, Any]:
    """An m5zn.metal CML host from the seeded CML AMI, in every region of the stack (the default VPC)."""
    return {"name": TEMPLATE, "instance_type": "m5zn.metal", "ami_name_pattern": "CML-2.9.0-*",
            "regions": {region: {} for region in regions},
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200},
            "cost_per_hour_usd": 3.96}


def pool(region: str) -> dict[str, Any]:
    """Lab-count scaling at 2 sessions per worker, 1 to 3 workers, with cooldowns short enough to watch; sessions
    booked up to 30 minutes ahead are counted, and one retired worker is kept stopped to resume."""
    return {"name": POOL, "lab_track": TRACK, "template_name": TEMPLATE, "regions": [region],
            "description": "Seeded by make run: book sessions of the demo-lab definition to watch it scale",
            "scaling": {"policy": "lab_count_based", "min_workers": 1, "max_workers": 3, "max_labs_per_worker": 2,
                        "min_labs_per_worker": 1, "scale_up_cooldown_minutes": 1,
                        "scale_down_cooldown_minutes": 2, "scale_down_delay_after_add_minutes": 1,
                        "look_ahead_minutes": 30, "warm_pool_size": 1}}


def definition() -> dict[str, Any]:
    return {"name": DEFINITION, "lab_topology_yaml": sample_topologies.load(), "lab_track": TRACK,
            "activate": True}


def seed(api_url: str, admin_token: str, regions: list[str]) -> list[str]:
    """Create what is missing; returns what was created (for the start-up log)."""
    created = []
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as http:
        for what, path, body in (("template " + TEMPLATE, "/api/templates", template(regions)),
                                 ("pool " + POOL, "/api/pools", pool(regions[0])),
                                 ("definition " + DEFINITION, "/api/lablet-definitions", definition())):
            if path == "/api/lablet-definitions" and _definition_exists(http):
                continue
            reply = http.post(path, json=body)
            if reply.status_code == 201:
                created.append(what)
            elif reply.status_code != 409:
                logger.warning("could not seed %s: %s %s", what, reply.status_code, reply.text[:300])
    return created


def _definition_exists(http: httpx.Client) -> bool:
    reply = http.get("/api/lablet-definitions", params={"lab_track": TRACK, "limit": 1000})
    return reply.status_code == 200 and any(d["name"] == DEFINITION for d in reply.json()["items"])
