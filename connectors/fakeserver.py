"""How every fake platform is served: one lifecycle instead of eight copies of it.

Each fake (``connectors/fake_*/``) is a WSGI application that tests, benches and the dashboard's demo start
on a loopback port. Serving it is the same everywhere: werkzeug's threaded server in a daemon thread that
polls for shutdown every 50 ms (so ``stop`` is quick), the port the OS picked read back, ``with Fake() as
f``, and a ``base_url``. That lives here once, in :class:`ServedFake`; a fake says only what differs: its
thread's name, the error an extra ``start`` raises, the request handler (Walmart's keeps header names with
underscores), whether ``base_url`` shows a wildcard address as loopback, and a step before serving
(:meth:`ServedFake._before_start`, e.g. Shopify compiles its schema).

The request handler logs no request lines: paths and query strings carry ids, tracking numbers, app secrets
and tokens, and bodies carry addresses; none of it is a log's business.

``_stopping`` is set by ``stop`` so that a fake's injected delays and held answers (which wait on it) end at
once instead of holding the server's shutdown.

:class:`FaultQueue` holds the faults a test queues on a fake ("answer the next two purchases 503", "hold the
next answer 3 s"): each is taken by the calls it names, the number of times it was queued for.

A request whose client went away while sending its body (a killed worker, a client's timeout) is not a bug
in the fake: :func:`client_went_away` tells a fake's error handler not to record it in ``server_errors``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = ["Fault", "FaultQueue", "QuietRequestHandler", "ServedFake", "client_went_away"]


def client_went_away(exc: BaseException) -> bool:
    """Whether a request failed only because its client disconnected before sending the whole body."""
    return isinstance(exc, ClientDisconnected)


@dataclass
class Fault:
    """One queued fault: its kind ("fail", "lose", …), how many calls it has left, the operation it is for
    (``None``: any), and its HTTP status or delay where the kind has one."""

    kind: str
    count: int
    operation: str | None = None
    status: int = 503
    seconds: float = 0.0


class FaultQueue:
    """The faults queued on a fake, taken by the calls they name (thread-safe: the fake serves in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self, kind: str, count: int, operation: str | None = None, *, status: int = 503, seconds: float = 0.0
    ) -> None:
        """Queue ``kind`` for the next ``count`` calls of ``operation`` (of any operation when ``None``)."""
        with self._lock:
            self._faults.append(Fault(kind, count, operation, status=status, seconds=seconds))

    def take(self, operation: str, kind: str) -> Fault | None:
        """The first queued ``kind`` fault for ``operation``, used once; ``None`` when there is none."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.operation in (None, operation):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


class QuietRequestHandler(WSGIRequestHandler):
    """No per-request log lines: a fake's paths, query strings and bodies are none of a log's business."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class ServedFake(abc.ABC):
    """Serve ``self`` (a WSGI application) on ``host:port`` in a background thread.

    A subclass calls ``super().__init__(host=host, port=port)`` and sets the class attributes it needs.
    ``port=0`` lets the OS choose; after ``start`` ``port`` is the one it chose.
    """

    #: The serving thread's name (it shows in thread dumps and ``threading.enumerate()``).
    thread_name: ClassVar[str] = "fake"
    #: Raised by ``start`` when the fake is already serving.
    already_started: ClassVar[type[Exception]] = RuntimeError
    request_handler: ClassVar[type[WSGIRequestHandler]] = QuietRequestHandler
    #: Show ``""``/``0.0.0.0`` (listening everywhere) as ``127.0.0.1`` in ``base_url``.
    wildcard_as_loopback: ClassVar[bool] = True

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one request (WSGI)."""

    def _before_start(self) -> None:  # noqa: B027 - a hook, empty unless a fake needs a step
        """A fake's own step before it serves (nothing by default)."""

    def start(self) -> Self:
        """Start serving in a background thread; ``base_url`` is valid afterwards."""
        if self._server is not None:
            raise self.already_started("already started")
        self._before_start()
        self._stopping.clear()
        self._server = make_server(self.host, self.port, self, threaded=True, request_handler=self.request_handler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (injected delays and held answers in progress end at once)."""
        self._stopping.set()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the fake answers, e.g. ``http://127.0.0.1:8500``."""
        host = self.host
        if self.wildcard_as_loopback and host in ("", "0.0.0.0"):  # noqa: S104 - a display name only
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"
