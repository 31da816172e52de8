"""The one serving lifecycle every fake platform shares (``connectors/fakeserver.py``), on a tiny fake."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from connectors.fake_shippo import FakeShippo
from connectors.fakeserver import ServedFake


class _Hello(ServedFake):
    thread_name = "fake-hello"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.prepared = 0

    def _before_start(self) -> None:
        self.prepared += 1

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]


def test_serves_on_the_port_the_os_chose_and_stops() -> None:
    with _Hello() as fake:
        assert fake.port != 0
        assert fake.prepared == 1
        assert any(t.name == "fake-hello" and t.daemon for t in threading.enumerate())
        with urllib.request.urlopen(fake.base_url + "/", timeout=5) as answer:
            assert answer.read() == b"hello"
        url = fake.base_url
    assert not any(t.name == "fake-hello" for t in threading.enumerate())
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/", timeout=2)


def test_a_second_start_is_refused_and_a_restart_after_stop_works() -> None:
    fake = _Hello().start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            fake.start()
    finally:
        fake.stop()
    fake.stop()  # stopping twice is harmless
    with fake:
        assert fake.prepared == 2


def test_base_url_shows_a_wildcard_host_as_loopback_unless_the_fake_says_not() -> None:
    assert _Hello(host="0.0.0.0", port=8123).base_url == "http://127.0.0.1:8123"
    assert _Hello(host="", port=8123).base_url == "http://127.0.0.1:8123"
    assert FakeShippo(host="0.0.0.0", port=8123).base_url == "http://0.0.0.0:8123"
