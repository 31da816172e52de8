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
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = ["QuietRequestHandler", "ServedFake"]


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
