"""deploy/nginx/nginx.conf, live: TLS termination and client addresses, nginx in front of the label API.

nginx runs with the shipped configuration, changed only where this machine differs from the compose network:
its ports, the certificate, temp paths, and the upstream (the app on loopback instead of ``app:8000``, which
nginx reaches from 127.0.0.2 so that it, and only it, is the app's trusted proxy, as the nginx container is
in compose.yaml). The client connects from 127.0.0.1.
"""

from __future__ import annotations

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

from tests.support.deploy import EDGE_PEER, local_nginx_conf, nginx_binary
from tests.support.servers import Database, free_port
from tests.support.world import World, build_world
from vault.keys import KeyManager


@pytest.fixture
def edge(tmp_path: Path, make_app: Any, shared_db: Database, keys: KeyManager) -> Iterator[dict[str, Any]]:
    nginx = nginx_binary()
    world = build_world(shared_db, keys, n_orders=2, cidrs=["127.0.0.1/32"])
    app = make_app(
        shared_db.app_url, trusted_proxies=f"{EDGE_PEER}/32", global_allowlist="127.0.0.1/32, 203.0.113.0/24"
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    http, https = free_port(), free_port()
    conf = local_nginx_conf(tmp_path, http=http, https=https, upstream=server.server_port)
    log = (tmp_path / "nginx.log").open("wb")
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    tls = ssl.create_default_context(cafile=str(tmp_path / "certs" / "fullchain.pem"))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{https}/healthz", verify=tls, timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "nginx.log").read_text()) from None
                time.sleep(0.1)
        yield {"world": world, "http": http, "https": https, "tls": tls, "ca": tmp_path / "certs" / "fullchain.pem",
               "log": tmp_path / "nginx.log"}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        server.shutdown()
        thread.join(timeout=5)


def test_labels_go_out_over_tls_only_with_the_edge_headers(edge: dict[str, Any]) -> None:
    world: World = edge["world"]
    base = f"https://127.0.0.1:{edge['https']}"
    with httpx.Client(base_url=base, verify=edge["tls"], headers=world.auth()) as client:
        resp = client.get(f"/v1/labels/amazon/{world.order_ids[0]}", headers={"X-Request-ID": "edge-check-0001"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["order_ref"] == world.order_ids[0]
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=63072000")
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Request-ID"] == "edge-check-0001"  # passed through to the app and back
        assert "nginx/" not in resp.headers.get("Server", "")  # server_tokens off
        assert client.get("/metrics").status_code == 404  # scraped inside, never through the edge
    plain = httpx.get(f"http://127.0.0.1:{edge['http']}/v1/labels/amazon/x", follow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):  # both offered (ssl_protocols)
        pinned = ssl.create_default_context(cafile=str(edge["ca"]))
        pinned.minimum_version = pinned.maximum_version = version
        with httpx.Client(verify=pinned) as client:
            resp = client.get(f"{base}/healthz")
            assert resp.status_code == 200
            assert resp.extensions["network_stream"].get_extra_info("ssl_object").version() == version.name.replace(
                "_", "."
            )


def test_a_forged_x_forwarded_for_does_not_choose_the_client_address(edge: dict[str, Any], keys: KeyManager) -> None:
    """A key allowed only from 203.0.113.9 is refused from 127.0.0.1, whatever X-Forwarded-For the client sends."""
    world: World = edge["world"]
    _, key = world.add_client(keys, cidrs=["203.0.113.9/32"])
    url = f"https://127.0.0.1:{edge['https']}/v1/labels/amazon/{world.order_ids[1]}"
    for forged in ({}, {"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"},
                   {"Forwarded": "for=203.0.113.9"}, {"X-Real-IP": "203.0.113.9"}):  # fmt: skip
        resp = httpx.get(url, headers={**world.auth(key), **forged}, verify=edge["tls"])
        assert resp.status_code == 403, (forged, resp.status_code)
    # The same order through the same edge with the loopback client's key: the address nginx saw is used.
    assert httpx.get(url, headers=world.auth(), verify=edge["tls"]).status_code == 200
    access = [line for line in edge["log"].read_text().splitlines() if line.startswith("{")]
    assert access and all('"client_ip":"127.0.0.1"' in line for line in access)
