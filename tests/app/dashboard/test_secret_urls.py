"""A URL that carries a secret (an invitation's token takes over the invited account) reaches no log.

The app is served for real: by werkzeug's threaded server in this process (its access log and the app's
request lines captured together), by gunicorn with the shipped deploy/gunicorn.conf.py in a subprocess, and
behind nginx with the shipped deploy/nginx/nginx.conf. Each is sent the invitation link, with a query
string and with a trailing slash, and the token must appear in no line any of them writes.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from tests.support.dashboard import Seller, unique_email
from tests.support.deploy import BIN, gunicorn_env, local_nginx_conf, nginx_binary
from tests.support.servers import ROOT, Database, free_port
from vault.users.invitations import invite_user


def _invite(seller: Seller) -> str:
    with seller.session() as s:
        token = invite_user(s, tenant_id=seller.tenant.id, email=unique_email("op"), role="operator", actor="t")
        s.commit()
    return token.token


def _visit(base: str, token: str, **kw: Any) -> None:
    with httpx.Client(base_url=base, timeout=10, **kw) as http:
        assert "password2" in http.get(f"/invitation/{token}").text  # the real page: the token was valid
        http.get(f"/invitation/{token}?lang=de")
        http.get(f"/invitation/{token}/")  # no such route: logged as unrouted
        http.post(f"/invitation/{token}", data={"password": "x"})  # no CSRF token: refused, and logged


@pytest.fixture
def werkzeug_server(seller: Seller) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, seller.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=5)


def test_werkzeug_and_the_app_log_the_route_never_the_token(
    seller: Seller, werkzeug_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = _invite(seller)
    with caplog.at_level(logging.INFO):
        _visit(werkzeug_server, token)
        time.sleep(0.2)  # werkzeug logs after the response is sent
    lines = [r.getMessage() + " " + str(r.__dict__) for r in caplog.records]
    assert any(r.name == "werkzeug" for r in caplog.records), "werkzeug's access log was captured"
    assert any("/invitation/<token>" in line for line in lines)
    assert not [line for line in lines if token in line]


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, **kw: Any) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=1, **kw).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.1)


def test_gunicorn_with_the_shipped_config_logs_no_token(seller: Seller, shared_db: Database, tmp_path: Path) -> None:
    token = _invite(seller)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = gunicorn_env(
        tmp_path,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        LABELVAULT_LOG_FORMAT="json",
        LABELVAULT_DATABASE_URL=shared_db.app_url,
        LABELVAULT_INSTANCE_PATH=str(seller.app.extensions["labelvault"].settings.instance_path),
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", proc, log)
        _visit(f"http://127.0.0.1:{port}", token)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert '"path": "/invitation/<token>"' in text, text[-3000:]
    assert token not in text


def test_nginx_logs_the_invitation_route_not_its_token(
    seller: Seller, werkzeug_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nginx = nginx_binary()
    token = _invite(seller)
    http, https = free_port(), free_port()
    conf = local_nginx_conf(tmp_path, http=http, https=https, upstream=int(werkzeug_server.rsplit(":", 1)[1]))
    log = tmp_path / "nginx.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    ca = ssl.create_default_context(cafile=str(tmp_path / "certs" / "fullchain.pem"))
    try:
        _wait_for(f"https://127.0.0.1:{https}/healthz", proc, log, verify=ca)
        with caplog.at_level(logging.INFO):
            _visit(f"https://127.0.0.1:{https}", token, verify=ca)
            httpx.get(f"http://127.0.0.1:{http}/invitation/{token}")  # the plain-HTTP redirect logs too
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    access = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert any('"path":"/invitation/<token>"' in line for line in access), access
    assert not [line for line in access if token in line]
    assert not [r for r in caplog.records if token in r.getMessage()]
