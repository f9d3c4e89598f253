"""deploy/docker/Dockerfile and .dockerignore against the code they deploy (deploy/k8s: test_kubernetes.py)."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.deployment_model import (
    DOCKERIGNORE,
    LCM_SERVICES,
    build_of,
    default_port,
    lineage,
    parse_dockerfile,
    pyproject_scripts,
)

# --------------------------------------------------------------------------------------- Dockerfile

@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_dockerfile_stage_runs_the_console_script(service: str) -> None:
    spec = LCM_SERVICES[service]
    dockerfile, target = build_of(service)
    global_args, stages = parse_dockerfile(dockerfile)
    stage = stages[target]

    cmds = stage.all("CMD")
    assert cmds, f"{target}: no CMD"
    command = json.loads(cmds[-1])  # exec form: signals reach the process directly
    scripts = pyproject_scripts(spec.package_dir)
    assert command[0] in scripts, f"{target}: CMD {command[0]!r} is not a script of {spec.package_dir}: {scripts}"
    assert command[0] == spec.script
    assert scripts[command[0]].startswith(f"{spec.module}.main:")

    # The effective user is the last USER of the nearest stage (in the lineage) that sets one.
    user = next((s.all("USER")[-1] for s in lineage(stages, target) if s.all("USER")), None)
    assert user, f"{target} must set USER"
    assert user.split(":")[0] not in ("root", "0"), f"{target} must run as a non-root user"
    assert str(default_port(service)) in " ".join(stage.all("EXPOSE")).split(), f"{target}: EXPOSE the port"
    healthcheck = " ".join(stage.all("HEALTHCHECK"))
    assert spec.live_path in healthcheck, f"{target}: HEALTHCHECK must probe {spec.live_path}"
    assert "urllib" in healthcheck, f"{target}: HEALTHCHECK must probe with Python (no curl in slim images)"
    assert spec.port_env in healthcheck or str(default_port(service)) in healthcheck

    bases = {s.base for s in lineage(stages, target)}
    resolved = {global_args.get(b[2:-1], b) if b.startswith("${") else b for b in bases}
    assert "python:3.11-slim" in resolved, f"{target}: base image must be python:3.11-slim, got {resolved}"


def _copied_from(copy: str) -> str:
    """The stage a `COPY --from=<stage> ...` instruction copies from."""
    match = re.search(r"--from=(\S+)", copy)
    if match is None:
        raise AssertionError(f"no stage in {copy!r}")
    return match[1]


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_dockerfile_installs_lcm_core_and_the_service_without_dev_extras(service: str) -> None:
    spec = LCM_SERVICES[service]
    dockerfile, target = build_of(service)
    _, stages = parse_dockerfile(dockerfile)
    sources = [_copied_from(c) for c in stages[target].all("COPY") if "--from=" in c]
    assert sources, f"{target}: multi-stage build expected (COPY --from=<build stage>)"
    runs = [run for source in sources for s in lineage(stages, source) for run in s.all("RUN")]
    installs = " ".join(run for run in runs if "pip install" in run)
    assert f"./{spec.package_dir}" in installs, f"{target} does not pip install ./{spec.package_dir}"
    assert "./lcm-core" in installs, f"{target} does not pip install ./lcm-core"
    assert not re.search(r"\[[^\]]*\b(dev|test)\b", installs), f"{target} installs dev/test extras"
    assert not re.search(r"(^|\s)(-e|--editable)\s", installs), "no editable installs in images"
    unpinned = [run for run in runs if "pip install" in run and "-c requirements.lock" not in run]
    assert not unpinned, f"{target}: every pip install is constrained by requirements.lock: {unpinned}"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for required in (".venv", ".lcm", ".git", ".env", "tests", "**/__pycache__", "bench", "node_modules"):
        assert required in patterns, f".dockerignore must exclude {required}"
    for package in {s.package_dir for s in LCM_SERVICES.values()} | {"lcm-core", "requirements.lock"}:
        assert package not in patterns, f".dockerignore excludes {package}, which the images need"

