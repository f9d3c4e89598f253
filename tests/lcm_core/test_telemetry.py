"""A service process's tracing setup (lcm_core.telemetry), each case in a process of its own (the global tracer
provider is set once per process): where the spans go, how the process names itself, what the log says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lcm_core.testing.otlp_receiver import TRACES_PATH, OtlpReceiver, serve_receiver
from lcm_core.testing.processes import free_port

STARTUP = """
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
from lcm_core.telemetry import configure_telemetry
provider = configure_telemetry("worker-controller", sys.argv[1])
provider.shutdown()
"""

ONE_SPAN = """
import sys
from lcm_core import tracing
from lcm_core.settings import LcmSettings
from lcm_core.telemetry import exported_traces
settings = LcmSettings()
assert not tracing.enabled()
with exported_traces("lablet-controller", settings.otel_exporter_otlp_endpoint,
                     traces_endpoint=settings.otel_exporter_otlp_traces_endpoint, instance_id=sys.argv[1]):
    assert tracing.enabled()
    with tracing.tracer().start_as_current_span("sessions.schedule"):
        pass
"""


def run_python(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done


def test_the_startup_line_names_the_collector_without_its_credentials() -> None:
    """A collector behind basic auth takes the user-info in the URL (the exporter sends it as `Authorization:
    Basic`), a token may sit in the query: neither reaches the log."""
    endpoint = "https://lcm:s3cret-collector-password@otel.example.com:4318/?token=s3cret-token"
    done = run_python(STARTUP, endpoint)
    assert "s3cret" not in done.stdout + done.stderr
    assert "tracing exported to https://otel.example.com:4318/v1/traces as service worker-controller" in done.stdout


def test_spans_carry_the_service_and_its_instance() -> None:
    receiver = OtlpReceiver()
    with serve_receiver(receiver) as endpoint:
        run_python(ONE_SPAN, "lablet-controller-7f9c-1", env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
        (span,) = receiver.wait_for("the span", lambda spans: spans)
    assert (span.name, span.service, span.instance) == ("sessions.schedule", "lablet-controller",
                                                        "lablet-controller-7f9c-1")


def test_the_traces_endpoint_is_used_as_is_and_wins_over_the_base_one() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the traces URL itself (the receiver answers only on /v1/traces: with
    /v1/traces appended nothing would arrive); the base endpoint beside it, where nothing listens, is unused."""
    receiver = OtlpReceiver()
    with serve_receiver(receiver) as endpoint:
        run_python(ONE_SPAN, "replica-2", env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint + TRACES_PATH,
                                               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
        (span,) = receiver.wait_for("the span", lambda spans: spans)
    assert span.instance == "replica-2"


@pytest.mark.parametrize("environment", [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "",
                                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}])
def test_without_an_endpoint_tracing_stays_off(environment: dict[str, str]) -> None:
    script = ("from lcm_core import tracing\nfrom lcm_core.settings import LcmSettings\n"
              "from lcm_core.telemetry import configure_telemetry\nsettings = LcmSettings()\n"
              "print(configure_telemetry('control-plane-api', settings.otel_exporter_otlp_endpoint,\n"
              "                          traces_endpoint=settings.otel_exporter_otlp_traces_endpoint),\n"
              "      tracing.enabled())")
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**env, **environment})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False"]
