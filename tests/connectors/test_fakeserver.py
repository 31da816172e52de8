"""The one serving lifecycle every fake platform shares (``connectors/fakeserver.py``), on a tiny fake."""

from __future__ import annotations

import base64
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from werkzeug.exceptions import BadRequest, ClientDisconnected

from connectors.fake_easypost import FakeEasyPost
from connectors.fake_easypost.carrier import DEFAULT_KEY as EASYPOST_KEY
from connectors.fake_shippo import FakeShippo
from connectors.fake_shippo.carrier import DEFAULT_TOKEN as SHIPPO_TOKEN
from connectors.fakeserver import FaultQueue, ServedFake, client_went_away


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


def _send_half_a_post(base_url: str, path: str, authorization: str) -> None:
    """POST a body that promises 4 KiB, send 10 bytes of it and hang up, as a killed client does."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n"
            'Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"address_'.encode()
        )
        conn.shutdown(socket.SHUT_WR)
        conn.recv(65536)  # the fake's answer (or nothing): it has finished with the request


@pytest.mark.parametrize(
    ("make", "path", "authorization"),
    [
        (FakeShippo, "/transactions", f"ShippoToken {SHIPPO_TOKEN}"),
        (FakeEasyPost, "/v2/addresses", "Basic " + base64.b64encode(f"{EASYPOST_KEY}:".encode()).decode()),
    ],
    ids=["shippo", "easypost"],
)
def test_a_client_that_hangs_up_mid_body_is_not_recorded_as_a_fault_of_the_fake(
    make: Callable[[], Any], path: str, authorization: str
) -> None:
    with make() as fake:
        _send_half_a_post(fake.base_url, path, authorization)
        assert fake.server_errors == []


def test_client_went_away_is_only_a_disconnect() -> None:
    assert client_went_away(ClientDisconnected())
    assert not client_went_away(BadRequest())
    assert not client_went_away(KeyError("x"))


def test_a_queued_fault_is_taken_by_the_calls_it_names_as_often_as_queued() -> None:
    faults = FaultQueue()
    faults.add("fail", 2, "Buy", status=429)
    faults.add("lose", 1, seconds=1.5)  # any operation
    assert faults.take("Quote", "fail") is None  # another operation's
    first = faults.take("Buy", "fail")
    assert first is not None and (first.kind, first.status, first.count) == ("fail", 429, 1)
    assert faults.take("Buy", "fail") is first and first.count == 0
    assert faults.take("Buy", "fail") is None  # used up
    lost = faults.take("Quote", "lose")
    assert lost is not None and lost.seconds == 1.5 and faults.take("Buy", "lose") is None
