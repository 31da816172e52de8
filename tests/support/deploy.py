"""deploy/ from the tests' side: the shipped nginx configuration, runnable on a test machine."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.servers import ROOT

DEPLOY = ROOT / "deploy"


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
