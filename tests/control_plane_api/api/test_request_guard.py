"""Bodies against a real CPA socket: an anonymous caller is refused from its headers alone (the body is never
read), and a body over the route's allowance is refused with 413 whether its length is announced or not."""

from __future__ import annotations

import json
import select
import socket
import time
from urllib.parse import urlsplit

from tests.fixtures.lablet_api import SAMPLE_TOPOLOGY

MIB = 1024 * 1024


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock


def _head(method: str, path: str, url: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def _status(sock: socket.socket) -> int:
    """The status code of the response on `sock` (waits at most the socket's timeout)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_an_anonymous_huge_body_is_refused_before_it_is_sent(control_plane) -> None:
    with _connect(control_plane.url) as sock:
        started = time.monotonic()
        sock.sendall(_head("POST", "/api/lablet-definitions", control_plane.url,
                           {"Content-Length": str(400 * MIB)}) + b'{"name": "x", "lab_topology_yaml": "')
        # The server has 0.0001% of the announced body: an answer now means it did not wait for the rest.
        status = _status(sock)
        elapsed = time.monotonic() - started
    assert status == 401
    assert elapsed < 2.0


def test_an_announced_body_over_the_limit_is_413_before_it_is_sent(control_plane) -> None:
    with _connect(control_plane.url) as sock:
        sock.sendall(_head("POST", "/api/lablet-sessions", control_plane.url,
                           {"Content-Length": str(2 * MIB), **control_plane.admin()}))
        assert _status(sock) == 413
    with _connect(control_plane.url) as sock:  # the topology routes have a larger allowance, but one still
        sock.sendall(_head("POST", "/api/lablet-definitions", control_plane.url,
                           {"Content-Length": str(64 * MIB), **control_plane.admin()}))
        assert _status(sock) == 413


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(control_plane) -> None:
    total = 16 * MIB
    chunk = b"[" + b"1," * (32 * 1024)  # about 64 KiB of a never-ending JSON array
    sent = 0
    with _connect(control_plane.url) as sock:
        sock.sendall(_head("POST", "/api/lablet-sessions", control_plane.url,
                           {"Transfer-Encoding": "chunked", **control_plane.admin()}))
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break  # the server answered while the body was still coming
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection after answering: the answer is still there to read
        status = _status(sock)
    assert status == 413
    assert sent < total  # refused long before the whole body was sent


def test_a_topology_over_the_default_limit_but_within_its_allowance_is_accepted(control_plane) -> None:
    # Comment lines of quotes: under the 1,000,000 characters a topology may have, but over 1 MiB in JSON.
    padding = "".join('#' + '"' * 8 + "\n" for _ in range(90_000))
    body = json.dumps({"name": "big-topology", "lab_topology_yaml": SAMPLE_TOPOLOGY + padding}).encode()
    assert MIB < len(body) < 4 * MIB
    with control_plane.client() as http:
        created = http.post("/api/lablet-definitions", content=body,
                            headers={"Content-Type": "application/json", **control_plane.admin()})
        assert created.status_code == 201, created.text[:300]
        small_route = http.post("/api/lablet-sessions", content=body,
                                headers={"Content-Type": "application/json", **control_plane.admin()})
        assert small_route.status_code == 413


def test_health_and_login_stay_anonymous_and_a_forged_cookie_is_refused_at_the_door(control_plane) -> None:
    with control_plane.client() as http:
        assert http.get("/api/health").status_code == 200
        assert http.post("/api/auth/login", json={"username": "nobody", "password": "x"}).status_code == 401
        forged = http.post("/api/lablet-definitions", json={}, headers={"Cookie": "lcm_session=forged"})
        assert forged.status_code == 401
        assert forged.headers["www-authenticate"] == "Bearer"
