"""LCM's check of a definition's topology and CML's import (the simulator's, which implements CML's checks)
agree: what one refuses the other refuses, so a stored definition is never one CML will not import.

LCM is deliberately stricter in a few ways the cases below do not cover (at least one node, string node ids,
unique labels, port-tag rules); those are LCM's own requirements, not CML's.
"""

from __future__ import annotations

import time

import pytest
import yaml

from lcm_core.domain.lablet_topology import TopologyError, parse_topology
from lcm_core.testing import sample_topologies
from lcm_core.testing.cml_simulator.errors import CmlError
from lcm_core.testing.cml_simulator.labs import Lab
from lcm_core.testing.cml_simulator.topology import import_topology, parse_yaml

NODE = {"id": "n0", "label": "r1", "node_definition": "iosv", "x": 0, "y": 0,
        "interfaces": [{"id": "i0", "type": "physical", "slot": 0}, {"id": "i1", "type": "physical", "slot": 1}]}
PEER = {"id": "n1", "label": "r2", "node_definition": "iosv", "x": 10, "y": 0,
        "interfaces": [{"id": "i0", "type": "physical", "slot": 0}]}


def _doc(lab: dict | None = None, node: dict | None = None, links: list | None = None) -> str:
    return yaml.safe_dump({"lab": {"title": "t", "version": "0.3.0"} if lab is None else lab,
                           "nodes": [{**NODE, **(node or {})}, PEER], "links": [] if links is None else links})


def _cml_accepts(text: str) -> bool:
    lab = Lab(id="lab", title="t", description="", notes="", owner="u", created=time.time(), modified=time.time())
    try:
        import_topology(parse_yaml(text.encode()), lab, None)
    except CmlError:
        return False
    return True


def _lcm_accepts(text: str) -> bool:
    try:
        parse_topology(text)
    except TopologyError:
        return False
    return True


LINK = {"id": "l0", "n1": "n0", "i1": "i0", "n2": "n1", "i2": "i0"}

CASES = {
    "the sample": (sample_topologies.load("ccna-basic"), True),
    "plain": (_doc(), True),
    "no lab.version": (_doc(lab={"title": "t"}), False),
    "an unknown lab.version": (_doc(lab={"title": "t", "version": "9.9"}), False),
    "lab.version 0.1 (a number)": (_doc(lab={"title": "t", "version": 0.1}), False),
    "configuration as text": (_doc(node={"configuration": "hostname r1\n"}), True),
    "configuration as a file": (_doc(node={"configuration": {"name": "ios_config.txt", "content": "x"}}), True),
    "configuration as files": (_doc(node={"configuration": [{"name": "a", "content": "x"}]}), True),
    "configuration as a number": (_doc(node={"configuration": 42}), False),
    "configuration as a list of numbers": (_doc(node={"configuration": [1, 2]}), False),
    "cpus 0": (_doc(node={"cpus": 0}), False),
    "cpu_limit 10": (_doc(node={"cpu_limit": 10}), False),
    "cpu_limit 50": (_doc(node={"cpu_limit": 50}), True),
    "an empty tag": (_doc(node={"tags": [""]}), False),
    "slot 200": (_doc(node={"interfaces": [{"id": "i0", "type": "physical", "slot": 200}]}), False),
    "a link": (_doc(links=[LINK]), True),
    "a link without id": (_doc(links=[{k: v for k, v in LINK.items() if k != "id"}]), False),
    "an interface linked twice": (_doc(links=[LINK, {**LINK, "id": "l1", "n2": "n0", "i2": "i1"}]), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lcm_refuses_exactly_what_cml_refuses(case: str) -> None:
    text, accepted = CASES[case]
    assert _cml_accepts(text) is accepted, "the simulator's import changed: update the case"
    assert _lcm_accepts(text) is accepted
