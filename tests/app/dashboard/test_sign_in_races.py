"""Sign-in under parallel requests: the app served by werkzeug's threaded server, a pool of real clients.

One TOTP code submitted by 8 clients at once signs in exactly one; 20 wrong passwords or 14 wrong codes at
once are checked no more often than the lockout allows (the rest are refused as locked, unchecked).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

import app.dashboard.auth
from tests.support.dashboard import PASSWORD, Seller
from vault.users import second_factor, signin

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def base(seller: Seller, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(app.dashboard.auth, "ATTEMPTS_PER_MINUTE", 1000)  # one test address sends them all
    httpd = make_server("127.0.0.1", 0, seller.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=5)


def _csrf(client: httpx.Client, path: str) -> str:
    match = _CSRF.search(client.get(path).text)
    assert match, path
    return match[1]


def _password(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/login", data={"csrf_token": _csrf(client, "/login"), "email": email, "password": password})


def _at_code_step(base: str, email: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=30)
    resp = _password(client, email, PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/code"), resp.text
    return client, _csrf(client, "/login/code")


def _at_once(tasks: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(tasks))

    def run(task: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return task()

    with ThreadPoolExecutor(len(tasks)) as pool:
        return list(pool.map(run, tasks))


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[object]:
    calls: list[object] = []
    real = getattr(module, name)
    lock = threading.Lock()

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_one_code_sent_by_eight_clients_at_once_signs_in_once(
    seller: Seller, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lockout that can't interfere: this test is about the code's time step alone.
    monkeypatch.setattr(
        app.dashboard.auth, "login_policy", lambda: signin.LoginPolicy(max_failures=100, account_max_failures=100)
    )
    user, auth = seller.user()
    assert auth is not None
    clients = [_at_code_step(base, user.email) for _ in range(8)]
    code = auth.code()
    try:
        answers = _at_once(
            [lambda c=c, t=t: c.post("/login/code", data={"csrf_token": t, "code": code}) for c, t in clients]
        )
    finally:
        for c, _ in clients:
            c.close()
    signed_in = [r for r in answers if r.status_code == 302 and r.headers["Location"] == "/"]
    assert len(signed_in) == 1, [(r.status_code, r.headers.get("Location")) for r in answers]
    assert all("not right" in r.text for r in answers if r not in signed_in)


def test_twenty_wrong_passwords_at_once_are_checked_no_more_than_the_limit(
    seller: Seller, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, _ = seller.user()
    checked = _counting(monkeypatch, signin, "verify_password")
    clients = [httpx.Client(base_url=base, timeout=30) for _ in range(20)]
    tokens = [_csrf(c, "/login") for c in clients]
    try:
        answers = _at_once(
            [
                lambda c=c, t=t: c.post("/login", data={"csrf_token": t, "email": user.email, "password": "wrong!!"})
                for c, t in zip(clients, tokens, strict=True)
            ]
        )
    finally:
        for c in clients:
            c.close()
    limit = seller.app.extensions["labelvault"].settings.dashboard_max_failed_logins
    assert len(checked) == limit
    assert sum("locked until" in r.text for r in answers) == 20 - limit + 1  # the last checked one locks too
    with httpx.Client(base_url=base, timeout=30) as late:  # the right password, from the same address: locked
        assert "locked until" in _password(late, user.email, PASSWORD).text


def test_fourteen_wrong_codes_at_once_are_checked_no_more_than_the_limit(
    seller: Seller, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, auth = seller.user()
    assert auth is not None
    clients = [_at_code_step(base, user.email) for _ in range(14)]
    checked = _counting(monkeypatch, second_factor, "_matching_step")
    wrong = auth.wrong_code()
    try:
        answers = _at_once(
            [lambda c=c, t=t: c.post("/login/code", data={"csrf_token": t, "code": wrong}) for c, t in clients]
        )
    finally:
        for c, _ in clients:
            c.close()
    limit = seller.app.extensions["labelvault"].settings.dashboard_max_failed_logins
    assert len(checked) == limit
    assert all(r.status_code in (200, 302) for r in answers)
    seller.clock.advance(timedelta(minutes=16).total_seconds())  # the lockout ends; the real code works
    client, token = _at_code_step(base, user.email)
    try:
        assert client.post("/login/code", data={"csrf_token": token, "code": auth.code()}).headers["Location"] == "/"
    finally:
        client.close()
