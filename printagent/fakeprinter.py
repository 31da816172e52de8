"""A fake Zebra label printer on loopback: raw TCP (the 9100 protocol), ZPL in, ``~HS`` answered.

What a packing station's printer does, as far as the agent can tell: it reads one byte stream per
connection, answers ``~HS`` at once wherever it appears (tilde commands are executed as they arrive) in
Zebra's three-line format (:mod:`printagent.hoststatus`), and prints each complete ``^XA…^XZ`` format. It
can be put out of paper, have its head opened or be paused (then it answers with those flags, and a format
it still receives is held, not printed, as a real printer holds it in its buffer), and it can drop the
connection in the middle of a job, which discards the unfinished format, as a printer reboot or a pulled
cable does.

It keeps what it printed in memory (:attr:`FakeZebra.labels`) for tests to render with zplkit, and logs
nothing per connection. The demo and the benchmark use it too, which is why it ships in the package.
``python -m printagent.fakeprinter --port 9100`` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import threading
from collections import deque
from dataclasses import replace
from typing import Any

from printagent.hoststatus import HostStatus, format_status

_START, _END, _STATUS = b"^XA", b"^XZ", b"~HS"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeZebra


class _Connection(socketserver.BaseRequestHandler):
    """One connection's byte stream, read as the printer reads it."""

    server: _Server

    def handle(self) -> None:
        fake = self.server.fake
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with fake._lock:
            fake.connections += 1
        buffer = b""
        in_format = False
        drop_at: int | None = None
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while True:
                if not in_format:
                    start, status = buffer.find(_START), buffer.find(_STATUS)
                    if status != -1 and (start == -1 or status < start):
                        self._answer(sock)
                        buffer = buffer[status + len(_STATUS) :]
                        continue
                    if start == -1:
                        buffer = buffer[-2:]  # a command prefix split across reads
                        break
                    in_format = True
                    drop_at = fake._next_drop()
                    buffer = buffer[start:]
                end = buffer.find(_END)
                status = buffer.find(_STATUS)
                if status != -1 and (end == -1 or status < end):
                    self._answer(sock)
                    buffer = buffer[:status] + buffer[status + len(_STATUS) :]
                    continue
                seen = len(buffer) if end == -1 else end + len(_END)
                if drop_at is not None and seen >= drop_at:
                    with fake._lock:
                        fake.dropped += 1
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    return  # the unfinished format dies with the connection
                if end == -1:
                    break
                fake._received(buffer[: end + len(_END)])
                buffer = buffer[end + len(_END) :]
                in_format = False

    def _answer(self, sock: socket.socket) -> None:
        with self.server.fake._lock:
            answer = format_status(self.server.fake._status_for_query())
        with contextlib.suppress(OSError):
            sock.sendall(answer)


class FakeZebra:
    """A fake ZPL printer on ``127.0.0.1`` (a free port unless one is given), started by :meth:`start`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, dpi: int = 203) -> None:
        self.dpi = dpi
        self.labels: list[bytes] = []  # printed formats, in order
        self.held: list[bytes] = []  # formats received while it could not print
        self.status = HostStatus(label_length_dots=6 * dpi)
        self.connections = 0
        self.status_queries = 0
        self.dropped = 0
        self._drops: deque[int] = deque()
        self._status_plan: deque[HostStatus] = deque()
        self._lock = threading.Lock()
        self._server = _Server((host, port), _Connection, bind_and_activate=True)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    # -- faults -----------------------------------------------------------------------------------------

    def set_flags(self, **flags: bool) -> None:
        """Set status flags (``paper_out``, ``head_open``, ``paused``, ...) until set again."""
        with self._lock:
            self.status = replace(self.status, **flags)

    def fail_for(self, queries: int, **flags: bool) -> None:
        """Answer the next ``queries`` status queries with ``flags`` set, then as before (labels loaded)."""
        with self._lock:
            self._status_plan.extend([replace(self.status, **flags)] * queries)

    def drop_next_job(self, after_bytes: int = 200) -> None:
        """Drop the connection once the next format has sent ``after_bytes`` bytes (before its ``^XZ``)."""
        with self._lock:
            self._drops.append(after_bytes)

    # -- the printer ------------------------------------------------------------------------------------

    def _status_for_query(self) -> HostStatus:
        self.status_queries += 1
        status = self._status_plan.popleft() if self._status_plan else self.status
        return replace(status, formats_in_buffer=len(self.held))

    def _next_drop(self) -> int | None:
        with self._lock:
            return self._drops.popleft() if self._drops else None

    def _received(self, zpl_format: bytes) -> None:
        with self._lock:
            (self.held if self.status.problems else self.labels).append(zpl_format)

    def start(self) -> FakeZebra:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-zebra", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeZebra:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run a fake printer in the foreground until Ctrl-C; it prints only counts, never a label."""
    parser = argparse.ArgumentParser(prog="python -m printagent.fakeprinter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--dpi", type=int, choices=(203, 300), default=203)
    args = parser.parse_args(argv)
    fake = FakeZebra(port=args.port, dpi=args.dpi)
    print(f"fake Zebra ({args.dpi} dpi) listening on {fake.host}:{fake.port}; Ctrl-C stops it", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()
        print(f"printed {len(fake.labels)} labels", flush=True)


if __name__ == "__main__":
    main()
