"""The Prometheus rules of deploy/prometheus as the tests read them, and Debian's `promtool` (installed by
.ci/run). Without promtool a test is skipped with the install hint, except on CI (`CI` set), where it fails:
CI must never go green without running it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql_names import metric_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
#: Series Prometheus makes itself for every target, not read from /metrics.
SCRAPE_SERIES = frozenset({"up"})
INSTALL_HINT = "apt-get install prometheus (Debian's package ships promtool; .ci/run installs it)"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"promtool is required on CI but missing: {INSTALL_HINT}")
        pytest.skip(f"promtool not found: {INSTALL_HINT}")
    return found


def rules() -> list[dict[str, Any]]:
    """Every rule of every rule file."""
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def series_read_from_metrics() -> set[str]:
    """The metric names the rules read that /metrics must expose: all those the expressions name, less what
    the recording rules define and what Prometheus makes itself."""
    read = {name for rule in rules() for name in metric_names(str(rule["expr"]))}
    return read - {rule["record"] for rule in rules() if "record" in rule} - SCRAPE_SERIES
