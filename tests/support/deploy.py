"""deploy/ from the tests' side: the shipped nginx configuration, runnable on a test machine."""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.servers import ROOT

DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
EDGE_PEER = "127.0.0.2"  # the address nginx proxies from: the app's one trusted proxy


def self_signed(directory: Path) -> None:
    """A fresh certificate and key for labelvault.test and 127.0.0.1, as nginx.conf expects them in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labelvault.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("labelvault.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def nginx_conf(tmp_path: Path) -> Path:
    """deploy/nginx/nginx.conf with the test's certificate and temp paths (nothing else changed)."""
    self_signed(tmp_path / "certs")
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    text = text.replace("/etc/nginx/certs/", f"{tmp_path}/certs/").replace("/tmp/nginx", f"{tmp_path}/nginx")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_binary() -> str:
    """The nginx executable, or the test skips saying where it comes from."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/test-packages.txt lists it)")
    return nginx


def local_nginx_conf(tmp_path: Path, *, http: int, https: int, upstream: int) -> Path:
    """The shipped nginx.conf on loopback ports, proxying from EDGE_PEER to a local upstream."""
    conf = nginx_conf(tmp_path)
    text = conf.read_text()
    replacements = {
        "listen 80 default_server;": f"listen 127.0.0.1:{http} default_server;",
        "listen [::]:80 default_server;": "",
        "listen 443 ssl http2 default_server;": f"listen 127.0.0.1:{https} ssl http2 default_server;",
        "listen [::]:443 ssl http2 default_server;": "",
        "resolver 127.0.0.11 valid=10s ipv6=off;": f"proxy_bind {EDGE_PEER};",
        "http://app:8000": f"http://127.0.0.1:{upstream}",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old  # the shipped file still says this; update the test with it
        text = text.replace(old, new)
    conf.write_text(text)
    return conf


def gunicorn_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment gunicorn runs the app in for a test: test settings, ``tmp_path``'s instance."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LABELVAULT_", "PROMETHEUS_", "GUNICORN_"))},
        "PYTHONPATH": str(ROOT),
        "LABELVAULT_ENV": "test",
        "LABELVAULT_INSTANCE_PATH": str(tmp_path / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        **extra,
    }
