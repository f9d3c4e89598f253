"""Sample CML lab topologies with port tags, for lablet definitions in the local stack and in tests."""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in DIRECTORY.glob("*.yaml"))


def load(name: str = "ccna-basic") -> str:
    """The YAML text of the sample topology `name` (see `names()`)."""
    return (DIRECTORY / f"{name}.yaml").read_text()
