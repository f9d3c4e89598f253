"""Typed settings refuse unsafe defaults; logs never carry secrets."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import Field, SecretStr, ValidationError

from lcm_core.errors import ConfigurationError
from lcm_core.logging import JsonFormatter, TextFormatter, configure_logging
from lcm_core.settings import LcmSettings


class DemoSettings(LcmSettings):
    api_key: SecretStr = Field(default=SecretStr("change-me"), validation_alias="DEMO_API_KEY")
    interval: int = Field(default=30, gt=0, validation_alias="DEMO_INTERVAL")


def test_placeholder_secret_is_refused_in_production(monkeypatch) -> None:
    monkeypatch.delenv("LCM_ENVIRONMENT", raising=False)
    with pytest.raises((ConfigurationError, ValidationError), match="placeholder"):
        DemoSettings()


def test_placeholder_secret_is_allowed_in_the_local_stack(monkeypatch) -> None:
    monkeypatch.setenv("LCM_ENVIRONMENT", "local")
    assert DemoSettings().api_key.get_secret_value() == "change-me"


def test_settings_come_from_the_environment_and_are_validated(monkeypatch) -> None:
    monkeypatch.setenv("LCM_ENVIRONMENT", "production")
    monkeypatch.setenv("DEMO_API_KEY", "a-real-key-0123456789")
    monkeypatch.setenv("DEMO_INTERVAL", "45")
    assert DemoSettings().interval == 45
    monkeypatch.setenv("DEMO_INTERVAL", "-1")
    with pytest.raises(ValidationError, match="DEMO_INTERVAL"):
        DemoSettings()


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "levelno": 20, "msg": message,
                                    "args": args})
    record.__dict__.update(extra)
    return record


def test_secrets_are_masked_in_json_and_text_logs(monkeypatch) -> None:
    monkeypatch.setenv("LCM_ENVIRONMENT", "production")
    monkeypatch.setenv("DEMO_API_KEY", "s3cr3t-value-xyz")
    DemoSettings()  # registering the settings registers its secrets with the log redactor
    record = _record("calling with key %s", "s3cr3t-value-xyz", header="X-API-Key: s3cr3t-value-xyz")
    line = JsonFormatter("svc").format(record)
    assert "s3cr3t-value-xyz" not in line
    payload = json.loads(line)
    assert payload["message"] == "calling with key ***"
    assert payload["header"] == "X-API-Key: ***"
    assert payload["service"] == "svc"
    assert payload["level"] == "info"
    assert "s3cr3t-value-xyz" not in TextFormatter().format(record)


def test_configure_logging_installs_one_handler() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("svc", "DEBUG", "json")
        configure_logging("svc", "INFO", "json")
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.INFO
    finally:
        root.handlers, root.level = saved_handlers, saved_level
