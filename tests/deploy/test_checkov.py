"""checkov over what gets deployed: the Dockerfile, docker-compose.yml, each Kubernetes overlay as rendered
by `kubectl kustomize`, and the template of the Secret. No check may fail; a check that does not apply is
skipped where it is raised (a `# checkov:skip=ID: reason` comment in the Dockerfile, a
`checkov.io/skipN: ID=reason` annotation on a Kubernetes object) and must say why.

checkov has no policies for Compose files: its `secrets` framework scans docker-compose.yml (and everything
else given) for credentials; the Compose hardening is checked by test_compose.py. checkov runs from its own
venv (.lcm/tools/checkov, built by `make test`) and offline (rendering.CHECKOV_OFFLINE_*).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.deployment_model import COMPOSE_FILE, ROOT, SECRET_TEMPLATE, build_of
from tests.deploy.rendering import (
    CHECKOV_OFFLINE_ENV,
    CHECKOV_OFFLINE_FLAGS,
    OVERLAYS,
    checkov,
    render_overlay,
)

FRAMEWORKS = ("dockerfile", "kubernetes", "secrets")
#: A reason is a sentence, not a token.
SHORTEST_REASON = 20


def run_checkov(files: list[Path]) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_API_KEY", "PRISMA_"))}
    env.update(CHECKOV_OFFLINE_ENV)
    command = [str(checkov()), *CHECKOV_OFFLINE_FLAGS, "--output", "json", "--framework", *FRAMEWORKS]
    for path in files:
        command += ["--file", str(path)]
    # Exit status 1 means "a check failed": the JSON says which; anything else is checkov itself failing.
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), f"checkov exited {result.returncode}:\n{result.stderr[-5000:]}"
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason(tmp_path: Path) -> None:
    dockerfile, _ = build_of("control-plane-api")
    files = [dockerfile, COMPOSE_FILE, SECRET_TEMPLATE]
    for overlay in OVERLAYS:
        rendered = tmp_path / f"k8s-{overlay}.yaml"
        rendered.write_text(render_overlay(overlay))
        files.append(rendered)

    reports = {report["check_type"]: report for report in run_checkov(files)}
    # checkov leaves out a framework that found nothing to scan: these two must have scanned something.
    for framework in ("dockerfile", "kubernetes"):
        assert framework in reports, f"checkov reported no {framework} results: {sorted(reports)}"
        assert reports[framework]["summary"]["resource_count"] > 0, f"checkov scanned no {framework} resource"
        assert reports[framework]["summary"]["passed"] > 0, f"no {framework} check passed: were they run?"

    failed, unparsed, unexplained = [], [], []
    for framework, report in reports.items():
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            lines = "-".join(map(str, check.get("file_line_range") or []))
            failed.append(f"{framework} {check['check_id']} {check['check_name']}\n"
                          f"    {check['resource']} in {check['file_path']}:{lines}")
        unparsed += [f"{framework}: {path}" for path in results.get("parsing_errors", [])]
        for check in results.get("skipped_checks", []):
            reason = (check["check_result"].get("suppress_comment") or "").strip()
            if len(reason) < SHORTEST_REASON:
                unexplained.append(f"{framework} {check['check_id']} on {check['resource']}: {reason!r}")
    assert not unparsed, "checkov could not parse:\n" + "\n".join(unparsed)
    assert not failed, f"{len(failed)} failed checkov checks:\n" + "\n".join(failed)
    assert not unexplained, "checks skipped without a written reason:\n" + "\n".join(unexplained)
