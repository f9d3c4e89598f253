"""deploy/prometheus: the rules pass `promtool check rules`, their unit tests pass `promtool test rules`, the
example configuration passes `promtool check config`, and every alert is documented and tested."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.prometheus_rules import PROMETHEUS, ROOT, RULE_FILES, RULE_TESTS, promtool, rules


def _run(*args: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rule_files_pass_promtool_check_rules() -> None:
    out = _run("check", "rules", *map(str, RULE_FILES))
    assert out.count("SUCCESS") == len(RULE_FILES) == 2


def test_rule_unit_tests_pass_promtool_test_rules() -> None:
    out = _run("test", "rules", *map(str, RULE_TESTS))
    assert out.count("SUCCESS") == len(RULE_TESTS) >= 3


def test_a_broken_expectation_fails_promtool_test_rules(tmp_path: Path) -> None:
    """The unit tests can fail: an alert expected at a time it is only pending is reported."""
    source = (PROMETHEUS / "tests" / "fleet.yml").read_text()
    broken = tmp_path / "tests" / "fleet.yml"
    broken.parent.mkdir()
    broken.write_text(source.replace("eval_time: 16m", "eval_time: 13m", 1))
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    done = subprocess.run([promtool(), "test", "rules", str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "LcmWorkersUnreachable" in done.stdout + done.stderr


def test_example_configuration_passes_promtool_check_config(tmp_path: Path) -> None:
    """As deployed: the rules beside it, and a token file where the configuration says."""
    token = tmp_path / "lcm-viewer-token"
    token.write_text("a-viewer-token\n")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "/etc/prometheus/lcm-viewer-token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/lcm-viewer-token", str(token)))
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    out = _run("check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert "SUCCESS: 2 rule files found" in out


def test_every_alert_has_a_severity_a_summary_a_runbook_entry_and_a_unit_test() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    runbook = (ROOT / "docs" / "alerts.md").read_text()
    tested = {test["alertname"] for path in RULE_TESTS for case in yaml.safe_load(path.read_text())["tests"]
              for test in case.get("alert_rule_test", [])}
    fired = {test["alertname"] for path in RULE_TESTS for case in yaml.safe_load(path.read_text())["tests"]
             for test in case.get("alert_rule_test", []) if test.get("exp_alerts")}
    quiet = {test["alertname"] for path in RULE_TESTS for case in yaml.safe_load(path.read_text())["tests"]
             for test in case.get("alert_rule_test", []) if not test.get("exp_alerts")}
    assert alerts
    for alert in alerts:
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["description"], name
        anchor = alert["annotations"]["runbook"]
        assert anchor == f"docs/alerts.md#{name.lower()}", name
        assert re.search(rf"^### {name}$", runbook, re.MULTILINE), f"{name} has no section in docs/alerts.md"
        assert "for" in alert, name
    names = {alert["alert"] for alert in alerts}
    assert names - tested == set(), "alerts without a unit test"
    assert names - fired == set(), "alerts never seen firing in the unit tests"
    assert names - quiet == set(), "alerts never seen staying quiet in the unit tests"


def test_without_promtool_the_tests_skip_with_a_hint_but_fail_on_ci(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing here: no promtool
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install prometheus"):
        promtool()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required on CI"):
        promtool()
