"""No request input produces a 500: schemathesis fuzzes every operation of the OpenAPI document against a
real CPA (with admin, API-key and leader-epoch credentials, so that requests get past authentication).

The lablet endpoints are fenced by the lablet-controller's epoch, the others by the worker-controller's:
they are fuzzed in a second run with that epoch, so that their bodies are exercised too.

One schemathesis worker: with two, its coverage phase parses hypothesis filter sources in two threads at
once, and CPython 3.11's `ast.parse` is not thread-safe (an intermittent `SystemError: AST constructor
recursion depth mismatch` inside schemathesis, not a finding about the API)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import httpx

ST = Path(sys.executable).with_name("st")
LABLET_PATHS = "^/api/internal/lablet-"


def _fuzz(url: str, schema: Path, headers: dict[str, str], report: Path, *selection: str) -> int:
    report.mkdir()
    argv = [str(ST), "run", str(schema), "--url", url,
            "--checks", "not_a_server_error", "--max-examples", os.environ.get("LCM_FUZZ_EXAMPLES", "25"),
            "--seed", "1", "--exclude-path", "/api/events/stream", "--workers", "1",
            "--request-timeout", "10", "--no-shrink", "--report", "junit", "--report-dir", str(report), *selection]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    cases = ElementTree.parse(next(report.glob("*.xml"))).getroot().iter("testcase")  # noqa: S314 - our own report
    return len(list(cases))


def test_no_input_produces_a_server_error(control_plane, tmp_path: Path) -> None:
    headers = {**control_plane.admin(), **control_plane.leader()}
    schema = tmp_path / "openapi.json"
    schema.write_text(httpx.get(f"{control_plane.url}/api/openapi.json", headers=headers).text)
    others = _fuzz(control_plane.url, schema, headers, tmp_path / "main", "--exclude-path-regex", LABLET_PATHS)
    assert others >= 30, "schemathesis exercised fewer operations than the API has"
    lablet_headers = {**control_plane.admin(), **control_plane.leader("lablet-controller")}
    lablets = _fuzz(control_plane.url, schema, lablet_headers, tmp_path / "lablets",
                    "--include-path-regex", LABLET_PATHS)
    assert lablets >= 7, "schemathesis exercised fewer lablet operations than there are"
