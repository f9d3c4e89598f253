"""The API does what its OpenAPI document says: schemathesis runs every check it has (no 500, every status and
body documented, valid input accepted, invalid input refused, the Allow header of a 405, authentication not
ignored...) over every operation, in all its phases including the stateful one (sequences of calls that feed
one answer's ids into the next request), against a real CPA with admin, API-key and leader-epoch credentials,
so that requests get past authentication.

The lablet endpoints are fenced by the lablet-controller's epoch, the others by the worker-controller's:
they are fuzzed in a second run with that epoch, so that their bodies are exercised too.

Where a check cannot hold for a route, `EXCEPTIONS` turns it off for that route only and says why.

One schemathesis worker: with two, its coverage phase parses hypothesis filter sources in two threads at
once, and CPython 3.11's `ast.parse` is not thread-safe (an intermittent `SystemError: AST constructor
recursion depth mismatch` inside schemathesis, not a finding about the API)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import httpx

ST = Path(sys.executable).with_name("st")
LABLET_PATHS = "^/api/internal/lablet-"

#: (method, path, check, why): a check that is wrong for one route, and only there.
EXCEPTIONS = (
    ("POST", "/api/lablet-definitions", "positive_data_acceptance",
     "the topology is a CML lab in YAML inside a JSON string: what CML's import accepts (lab.version, nodes, "
     "links, interfaces) cannot be said in JSON Schema, so a generated string is almost never a topology"),
    ("PUT", "/api/lablet-definitions/{definition_id}", "positive_data_acceptance",
     "the same YAML topology as on creation (see above)"),
    ("PUT", "/api/templates/{name}", "positive_data_acceptance",
     "the body's template must name the template of the path; JSON Schema cannot tie a body field to a path "
     "parameter"),
    ("POST", "/api/lablet-sessions", "positive_data_acceptance",
     "a timeslot must end after it starts and lie between the years 2000 and 2200: relations between fields "
     "and date ranges that `format: date-time` cannot express"),
    ("GET", "/api/costs", "positive_data_acceptance",
     "the window must end after it starts (`to` defaults to now), span at most 366 days and 2000 buckets: "
     "relations between parameters that `format: date-time` cannot express"),
)

#: A body over the route's limit is refused with 413 before it is parsed, whatever it holds (generated
#: invalid bodies can be megabytes of nested arrays): a right refusal of invalid data as much as a 422.
NEGATIVE_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]


def _config(path: Path) -> Path:
    lines = ["[checks]", "enabled = true", "",
             "[checks.negative_data_rejection]", f"expected-statuses = {json.dumps(NEGATIVE_REFUSALS)}", ""]
    for method, route, check, _why in EXCEPTIONS:
        lines += ["[[operations]]", f'include-method = "{method}"', f"include-path = {json.dumps(route)}",
                  f"checks.{check}.enabled = false", ""]
    path.write_text("\n".join(lines))
    return path


def _fuzz(url: str, schema: Path, config: Path, headers: dict[str, str], report: Path, *selection: str) -> int:
    report.mkdir()
    argv = [str(ST), "--config-file", str(config), "run", str(schema), "--url", url,
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", os.environ.get("LCM_FUZZ_EXAMPLES", "15"),
            "--seed", "1", "--exclude-path", "/api/events/stream", "--workers", "1",
            "--request-timeout", "10", "--no-shrink", "--report", "junit", "--report-dir", str(report), *selection]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    cases = ElementTree.parse(next(report.glob("*.xml"))).getroot().iter("testcase")  # noqa: S314 - our own report
    return len(list(cases))


def test_the_api_does_what_its_document_says(control_plane, tmp_path: Path) -> None:
    headers = {**control_plane.admin(), **control_plane.leader()}
    schema = tmp_path / "openapi.json"
    schema.write_text(httpx.get(f"{control_plane.url}/api/openapi.json", headers=headers).text)
    config = _config(tmp_path / "schemathesis.toml")
    others = _fuzz(control_plane.url, schema, config, headers, tmp_path / "main",
                   "--exclude-path-regex", LABLET_PATHS)
    assert others >= 30, "schemathesis exercised fewer operations than the API has"
    lablet_headers = {**control_plane.admin(), **control_plane.leader("lablet-controller")}
    lablets = _fuzz(control_plane.url, schema, config, lablet_headers, tmp_path / "lablets",
                    "--include-path-regex", LABLET_PATHS)
    assert lablets >= 7, "schemathesis exercised fewer lablet operations than there are"
