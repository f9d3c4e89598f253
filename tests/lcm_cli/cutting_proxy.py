"""A TCP proxy in front of the CPA that can cut every connection through it, as a network drop or a restarted
load balancer would, and hold new ones until released. It keeps the head of every request it forwards (the
tests read the `Last-Event-ID` a client resumed with)."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit

from lcm_core.testing.processes import free_port


class CuttingProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.request_heads: list[str] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._passing = threading.Event()
        self._passing.set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._passing.wait()
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open += [client, server]
        head = bytearray()

        def pump(source: socket.socket, sink: socket.socket, record: bool) -> None:
            try:
                while chunk := source.recv(65536):
                    if record and b"\r\n\r\n" not in head:
                        head.extend(chunk)
                        if b"\r\n\r\n" in head:
                            with self._lock:
                                self.request_heads.append(head.split(b"\r\n\r\n")[0].decode("latin-1"))
                    sink.sendall(chunk)
            except OSError:
                pass
            finally:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump, args=(server, client, False), daemon=True).start()
        pump(client, server, True)

    def cut_and_hold(self) -> None:
        """Cut every open connection; new ones wait (connected, unanswered) until `release`."""
        self._passing.clear()
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def release(self) -> None:
        self._passing.set()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.release()
        self.cut_and_hold()
        self.release()
