"""What may answer at LCM_API_URL instead of the control-plane API (tests/lcm_cli/canned_api.py: a real HTTP
server answering what each test sets): an ingress's redirect, a login page, a proxy's JSON or error page, a body
that fails to decode, an API one release ahead. Each is a one-line `lcm: ...` and exit 1, never a traceback,
and nothing the server sends reaches the terminal as a control sequence."""

from __future__ import annotations

import json

from tests.lcm_cli.conftest import assert_one_line_error, rows_of

JSON = {"Content-Type": "application/json"}


def test_a_redirect_names_where_it_sends(canned, run_lcm) -> None:
    # An ingress sending http to https (or to an SSO page): 301 with an empty body. Not followed: the token
    # would go where the API did not say.
    canned.status, canned.headers_out, canned.body = 301, {"Location": "https://lcm.example/api/workers"}, b""
    ran = run_lcm("workers", "list", env={"LCM_API_URL": canned.url})
    assert_one_line_error(ran, "HTTP 301", "https://lcm.example/api/workers", "LCM_API_URL")


def test_an_html_page_is_named_as_not_json(canned, run_lcm) -> None:
    canned.status, canned.headers_out = 200, {"Content-Type": "text/html; charset=utf-8"}
    canned.body = b"<html><body>Please sign in</body></html>"
    ran = run_lcm("workers", "list", env={"LCM_API_URL": canned.url})
    assert_one_line_error(ran, "unexpected answer (HTTP 200, text/html): not JSON; is LCM_API_URL the API?")


def test_json_of_another_shape_is_an_unexpected_answer(canned, run_lcm) -> None:
    canned.status, canned.headers_out, canned.body = 200, JSON, b"[1, 2]"
    assert_one_line_error(run_lcm("workers", "list", env={"LCM_API_URL": canned.url}),
                          "lcm: unexpected answer from the API: a page of workers")
    # A detail answer missing what the contract holds.
    canned.body = b'{"pool": {"id": "p1"}}'
    assert_one_line_error(run_lcm("pools", "show", "p1", env={"LCM_API_URL": canned.url}),
                          "lcm: unexpected answer from the API: ")
    # --json prints any JSON answer as it came: a script decides what it makes of it.
    shown = run_lcm("--json", "pools", "show", "p1", env={"LCM_API_URL": canned.url})
    assert (shown.code, json.loads(shown.out)) == (0, {"pool": {"id": "p1"}})


def test_a_body_that_fails_to_decode_is_an_unexpected_answer(canned, run_lcm) -> None:
    canned.status, canned.headers_out = 200, {**JSON, "Content-Encoding": "gzip"}
    canned.body = b"not gzip at all"
    assert_one_line_error(run_lcm("workers", "list", env={"LCM_API_URL": canned.url}),
                          "lcm: unexpected answer from the API: DecodingError")


def test_a_newer_apis_unknown_worker_status_is_shown_as_it_came(canned, run_lcm) -> None:
    # Version skew: a CPA one release ahead has a status this CLI's enum does not know yet.
    canned.status, canned.headers_out = 200, JSON
    canned.body = (b'{"items": [{"id": "w1", "name": "cml-001", "aws_region": "us-east-1", '
                   b'"aws_instance_id": "i-1", "status": "hibernating"}], "total": 1}')
    ran = run_lcm("workers", "list", env={"LCM_API_URL": canned.url})
    assert ran.code == 0, ran.err
    [row] = rows_of(ran.out)
    assert (row["ID"], row["STATUS"], row["REGION"]) == ("w1", "hibernating", "us-east-1")


def test_an_error_page_cannot_send_escape_sequences_to_the_terminal(canned, run_lcm) -> None:
    canned.status, canned.headers_out, canned.body = 502, {"Content-Type": "text/plain"}, b"bad\x1b[2Jgate\x9bway"
    ran = run_lcm("workers", "list", env={"LCM_API_URL": canned.url})
    assert_one_line_error(ran, "server error (502): bad\\x1b[2Jgate")
    assert "\x1b" not in ran.err, repr(ran.err)
    assert "\x9b" not in ran.err, repr(ran.err)


def test_an_error_detail_in_json_is_escaped_too(canned, run_lcm) -> None:
    canned.status, canned.headers_out = 409, JSON
    canned.body = json.dumps({"detail": "taken\u001b]0;pwned\u0007\nsecond line"}).encode()
    ran = run_lcm("workers", "list", env={"LCM_API_URL": canned.url})
    assert_one_line_error(ran, "conflict (409): taken\\x1b]0;pwned\\x07\\x0asecond line")


def test_a_malformed_snapshot_frame_is_shown_without_a_count(canned_stream, run_lcm) -> None:
    canned_stream.frames = (b'id: 1\nevent: worker.snapshot\ndata: {"time": "2026-01-01T00:00:00Z", '
                            b'"data": {"workers": 5}}\n\n')
    ran = run_lcm("events", "tail", "--count", "1", env={"LCM_API_URL": canned_stream.url})
    assert ran.code == 0, ran.err
    assert ran.out.split() == ["2026-01-01", "00:00:00", "worker.snapshot", "?", "workers"]


def test_an_event_field_cannot_send_escape_sequences_to_the_terminal(canned_stream, run_lcm) -> None:
    canned_stream.frames = (b'id: 1\nevent: worker.updated\ndata: {"time": "2026-01-01T00:00:00Z", '
                            b'"data": {"worker_id": "w1", "reason": "x\\u001b]0;pwned\\u0007\\u001b[2J"}}\n\n')
    ran = run_lcm("events", "tail", "--count", "1", env={"LCM_API_URL": canned_stream.url})
    assert ran.code == 0, ran.err
    assert ran.out.strip() == "2026-01-01 00:00:00  worker.updated  worker_id=w1 reason=x\\x1b]0;pwned\\x07\\x1b[2J"


def test_a_message_built_from_an_answer_is_escaped_too(canned, run_lcm) -> None:
    # `workers start` says what the API answered in a sentence of its own, not a table cell.
    canned.status, canned.headers_out = 200, JSON
    canned.body = json.dumps({"id": "w1", "name": "cml\u001b[2J-001", "status": "running"}).encode()
    ran = run_lcm("workers", "start", "w1", env={"LCM_API_URL": canned.url})
    assert ran.code == 0, ran.err
    assert ran.out.strip() == "worker w1 (cml\\x1b[2J-001): status running, desired -"
    as_json = run_lcm("--json", "workers", "start", "w1", env={"LCM_API_URL": canned.url})
    assert "\x1b" not in as_json.out
    assert json.loads(as_json.out)["name"] == "cml\u001b[2J-001"  # --json: the value itself, JSON-escaped


def test_events_tail_ends_on_a_redirect_or_a_page_that_is_not_an_event_stream(canned, run_lcm) -> None:
    # Reconnecting would get the same answer forever: the tail ends with the reason instead.
    canned.status, canned.headers_out, canned.body = 302, {"Location": "https://sso.example/login"}, b""
    assert_one_line_error(run_lcm("events", "tail", env={"LCM_API_URL": canned.url}),
                          "HTTP 302, a redirect to https://sso.example/login")
    canned.status, canned.headers_out, canned.body = 200, {"Content-Type": "text/html"}, b"<html>sign in</html>"
    assert_one_line_error(run_lcm("events", "tail", env={"LCM_API_URL": canned.url}),
                          "unexpected answer (HTTP 200, text/html): not an event stream; is LCM_API_URL the API?")
