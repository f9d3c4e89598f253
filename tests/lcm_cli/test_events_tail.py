"""`lcm events tail` against a real CPA's event stream, through a proxy that drops the connection: the tail
reconnects asking with `Last-Event-ID` (the id of the last event it printed), the API replays what was published
while it was away, and every event shows exactly once, in order. Run as the installed `lcm` console script,
ended with Ctrl-C (SIGINT): exit 0, no traceback."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.control_plane import discovered
from tests.lcm_cli.cutting_proxy import CuttingProxy

LCM = Path(sys.executable).parent / "lcm"


class Tail:
    """The console script running, its stdout lines in a queue."""

    def __init__(self, *argv: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(LCM), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_event(self, timeout: float = 15.0) -> dict[str, Any]:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no event within {timeout}s; stderr: {self.proc.communicate()[1]}") from None

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err


def _import(cp, *numbers: int) -> list[str]:
    with cp.client() as http:
        answer = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                           json={"instances": [discovered(n) for n in numbers]})
        assert answer.status_code == 200, answer.text
        return answer.json()["created"]


def _resumed_with(head: str) -> str | None:
    found = [line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("last-event-id:")]
    return found[0] if found else None


@pytest.fixture
def proxy(control_plane):
    through = CuttingProxy(control_plane.url)
    yield through
    through.close()


def test_tail_resumes_after_a_dropped_connection_without_losing_or_repeating(control_plane, proxy,
                                                                              tmp_path) -> None:
    cp = control_plane
    first = _import(cp, 1)
    env = {**os.environ, "LCM_API_URL": proxy.url, "LCM_TOKEN": cp.viewer_token,
           "LCM_CONFIG_DIR": str(tmp_path / "config")}
    tail = Tail("--json", "events", "tail", "--type", "worker.imported", env=env)
    try:
        snapshot = tail.next_event()
        assert snapshot["event"] == "worker.snapshot"
        assert [w["id"] for w in snapshot["data"]["data"]["workers"]] == first

        before = _import(cp, 2, 3)
        seen = [tail.next_event(), tail.next_event()]
        assert [e["data"]["data"]["worker_id"] for e in seen] == before

        proxy.cut_and_hold()
        missed = _import(cp, 4, 5)  # published while the tail is cut off
        proxy.release()
        replayed = [tail.next_event(), tail.next_event()]
        after = _import(cp, 6)
        live = tail.next_event()
    finally:
        code, err = tail.interrupt()

    shown = [e["data"]["data"]["worker_id"] for e in [*seen, *replayed, live]]
    assert shown == before + missed + after  # each once, in order
    assert all(e["event"] == "worker.imported" for e in [*seen, *replayed, live])
    ids = [e["id"] for e in [*seen, *replayed, live]]
    assert len(set(ids)) == len(ids)

    # The first connection asked for nothing; the one after the cut resumed after the last event printed.
    assert len(proxy.request_heads) >= 2
    assert _resumed_with(proxy.request_heads[0]) is None
    assert all(_resumed_with(h) == seen[-1]["id"] for h in proxy.request_heads[1:2])
    assert "GET /api/events/stream?event_types=worker.imported " in proxy.request_heads[1]
    assert f"reconnecting in 0.5s (resuming after {seen[-1]['id']})" in err
    assert cp.viewer_token not in err

    assert code == 0, err
    assert "Traceback" not in err


def test_tail_human_lines_count_filters_and_refusals(control_plane, proxy, tmp_path) -> None:
    cp = control_plane
    env = {**os.environ, "LCM_API_URL": cp.url, "LCM_TOKEN": cp.viewer_token,
           "LCM_CONFIG_DIR": str(tmp_path / "config")}
    ids = _import(cp, 1, 2)
    tail = Tail("events", "tail", "--worker", ids[1], "--count", "2", env=env)
    snapshot = tail.lines.get(timeout=15)
    assert snapshot.split()[2:] == ["worker.snapshot", "1", "workers"]  # only the worker asked for
    with cp.client() as http:
        answer = http.post(f"/api/workers/{ids[1]}/stop", headers=cp.admin())
        assert answer.status_code == 200, answer.text
    event = tail.lines.get(timeout=15)
    assert tail.proc.wait(timeout=15) == 0  # --count 2: the snapshot and one event
    assert f"worker_id={ids[1]}" in event
    assert event.split()[2].startswith("worker.")

    refused = subprocess.run([str(LCM), "events", "tail"], env={**env, "LCM_TOKEN": cp.nobody_token},
                             capture_output=True, text=True, timeout=30)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.startswith("lcm: forbidden (403)")
    assert len(refused.stderr.strip().splitlines()) == 1
