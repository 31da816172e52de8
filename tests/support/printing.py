"""What the print agent's tests and its benchmark share: the label API served on loopback, a TCP proxy that
loses requests and responses, an in-memory OS keyring, and the expected label of an order.

The proxy works on bytes, between the agent and the real server: a cut before the request is complete means
the vault never saw it; a cut in the middle of the response means the vault released (and audited) the
label and the agent never got it, the case the ``Idempotency-Key`` exists for.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keyring.backend
from werkzeug.serving import make_server

from render import LabelDocument
from render.zpl import ZplRenderer
from vault.records import LabelRecord

# -- the label API on loopback ----------------------------------------------------------------------------

#: Settings for an app the agent prints from: generous limits, since these runs count labels, not requests.
UNLIMITED = {"rate_limit_ip": "100000/minute", "rate_limit_client": "100000/minute"}


@contextlib.contextmanager
def served(app: Any, *, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """``app`` served by werkzeug (threaded) on 127.0.0.1; yields its base URL. ``tls``: (cert, key) files."""
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def answering_first(app: Any, answers: list[tuple[int, dict[str, str]]]) -> Any:
    """``app`` behind a gateway whose first requests get ``answers`` (status, headers) instead of the app: a
    proxy's 502, a 503 or a 429 with ``Retry-After``, without the app seeing the request."""
    from werkzeug.wrappers import Response

    pending = list(answers)
    lock = threading.Lock()

    def gateway(environ: Any, start_response: Any) -> Any:
        with lock:
            answer = pending.pop(0) if pending else None
        if answer is None:
            return app(environ, start_response)
        status, headers = answer
        return Response("<html>gateway</html>", status=status, headers=headers, mimetype="text/html")(
            environ, start_response
        )

    return gateway


# -- network faults -----------------------------------------------------------------------------------------


class FaultyProxy:
    """A TCP proxy on 127.0.0.1 to ``upstream_port`` that cuts connections at random, in both directions.

    Each chunk of bytes it forwards is, with probability ``rate``, not forwarded and both connections are
    reset instead: client → server chunks (the request, or part of it, lost) and server → client chunks (the
    response lost after the server did the work). ``seed`` makes a run repeatable; :attr:`cuts` counts them.
    """

    def __init__(self, upstream_port: int, *, rate: float, seed: int) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        self.cuts = {"request": 0, "response": 0}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _cut(self, direction: str) -> bool:
        with self._lock:
            if self._rng.random() < self.rate:
                self.cuts[direction] += 1
                return True
            return False

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._open |= {client, upstream}
            for src, dst, direction in ((client, upstream, "request"), (upstream, client, "response")):
                threading.Thread(target=self._pump, args=(src, dst, direction, (client, upstream)), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, pair: tuple[socket.socket, ...]) -> None:
        try:
            while chunk := src.recv(65536):
                if self._cut(direction):
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        for sock in pair:  # shutdown wakes the other direction's recv; close then frees the socket
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock:
            self._open.difference_update(pair)

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()


# -- the OS keyring -----------------------------------------------------------------------------------------


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend in this process's memory: what the OS store does, without touching the machine's."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            import keyring.errors

            raise keyring.errors.PasswordDeleteError("no such entry")


# -- labels as printed --------------------------------------------------------------------------------------

_PRINTED = re.compile(rb"\^FDPRINTED (\d{4}-\d\d-\d\d \d\d:\d\d)\+00:00\^FS")
_BARCODE = re.compile(rb"\^BCN[^\^]*\^FH\^FD([^\^]+)\^FS")


def barcode_of(zpl_format: bytes) -> str:
    """The order id a ZPL label's Code 128 barcode carries."""
    match = _BARCODE.search(zpl_format)
    assert match is not None, "no barcode in the label"
    return match.group(1).decode()


def expected_zpl(order_id: str, record: LabelRecord, printed: bytes, *, dpi: int = 203) -> bytes:
    """The label the vault should have printed for this order and buyer, at the minute ``printed`` shows."""
    match = _PRINTED.search(printed)
    assert match is not None, "no print time on the label"
    at = datetime.strptime(match.group(1).decode(), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    document = LabelDocument(order_ref=order_id, marketplace="amazon", ship_to=record, printed_at=at)
    return ZplRenderer(dpi=dpi).render([document])
