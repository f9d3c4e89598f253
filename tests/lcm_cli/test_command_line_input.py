"""What the command line itself takes, bounded before the API is called: durations (at most a day), times
(a timeslot past the year 9999), topology files (read as bytes up to the bound, whatever they are: a FIFO,
/dev/zero, stdin; UTF-8 or refused). Each refusal is exit 2 with one line, never a traceback."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from lcm_cli.commands.definitions import MAX_TOPOLOGY_BYTES


def _usage_error(ran, *expected: str) -> None:
    """Exit 2 and one `lcm: ...` line (argparse's own refusals print the usage above it)."""
    assert ran.code == 2, (ran.code, ran.err)
    assert ran.out == ""
    assert "Traceback" not in ran.err
    lines = ran.err.strip().splitlines()
    assert lines[-1].startswith("lcm"), ran.err
    for text in expected:
        assert text in lines[-1], ran.err


@pytest.mark.parametrize("argv", [["--timeout", "1e308", "workers", "list"], ["--timeout", "86401", "costs"],
                                  ["--timeout", "0", "workers", "list"],
                                  ["events", "tail", "--read-timeout", "1e300"]])
def test_durations_are_bounded_to_a_day(run_lcm, argv: list[str]) -> None:
    _usage_error(run_lcm(*argv), "is not within (0, 86400] seconds")


def test_a_day_long_timeout_is_taken(control_plane, run_lcm) -> None:
    ran = run_lcm("--timeout", "86400", "workers", "list")
    assert (ran.code, ran.err.strip()) == (0, "no workers")


def test_a_timeslot_past_the_year_9999_is_a_usage_error(run_lcm) -> None:
    _usage_error(run_lcm("sessions", "create", "--definition", "d1", "--start", "9999-12-31T23:30:00Z"),
                 "past the year 9999")


def test_a_topology_that_is_not_utf8_is_a_usage_error(run_lcm, tmp_path: Path) -> None:
    topology = tmp_path / "lab.yaml"
    topology.write_bytes(b"lab:\n  title: caf\xe9\n")  # Latin-1, as an old editor saves it
    _usage_error(run_lcm("definitions", "create", "--name", "latin1", "--topology", str(topology)),
                 "is not UTF-8 text (byte 17)")


def test_an_endless_topology_source_is_read_only_up_to_the_bound(run_lcm, tmp_path: Path) -> None:
    _usage_error(run_lcm("definitions", "create", "--name", "zeros", "--topology", "/dev/zero"),
                 f"the topology /dev/zero is over {MAX_TOPOLOGY_BYTES} bytes")
    fifo = tmp_path / "lab.fifo"
    os.mkfifo(fifo)

    def feed() -> None:  # more than the bound, and never a size to trust
        with fifo.open("wb") as out:
            try:
                for _ in range(3):
                    out.write(b"#" * MAX_TOPOLOGY_BYTES)
            except BrokenPipeError:
                pass  # the CLI stopped reading at the bound and closed its end

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    _usage_error(run_lcm("definitions", "create", "--name", "fifo", "--topology", str(fifo)), "is over")
    writer.join(timeout=30)


def test_a_topology_on_stdin_is_read_as_bytes(run_lcm, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"lab: \xff\n")))
    _usage_error(run_lcm("definitions", "create", "--name", "stdin", "--topology", "-"), "- is not UTF-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x" * (MAX_TOPOLOGY_BYTES + 1))))
    _usage_error(run_lcm("definitions", "create", "--name", "stdin", "--topology", "-"), "is over")


def test_a_scale_reason_the_contract_refuses_is_a_usage_error(run_lcm) -> None:
    # Checked against ScaleRequest before sending: the command line's own input, not an answer of the API.
    _usage_error(run_lcm("pools", "scale", "p1", "2", "--reason", "exam\x01week"),
                 "--reason: Value error, text must not contain control characters")
