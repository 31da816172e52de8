"""TLS to the vault verifies the server: against a configured CA bundle the label prints; without it (a
certificate the system doesn't trust) nothing is sent, the key never leaves, and the line says what to set."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from printagent.agent import Agent, Outcome
from printagent.client import ConfigError, VaultClient
from printagent.fakeprinter import FakeZebra
from printagent.printers import ZebraPrinter
from tests.support.deploy import self_signed
from tests.support.printing import UNLIMITED, served
from tests.support.servers import Database
from tests.support.world import World

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


def test_the_vaults_certificate_is_verified_against_the_configured_ca_bundle(
    make_app: Any, shared_db: Database, world: World, zebra: FakeZebra, tmp_path: Path
) -> None:
    self_signed(tmp_path / "certs")
    cert, key = tmp_path / "certs" / "fullchain.pem", tmp_path / "certs" / "privkey.pem"
    with served(make_app(shared_db.app_url, **UNLIMITED), tls=(cert, key)) as url:
        assert url.startswith("https://127.0.0.1:")
        for bundle, outcome in ((None, Outcome.UNAVAILABLE), (str(cert), Outcome.PRINTED)):
            out = io.StringIO()
            client = VaultClient(url, world.key, ca_bundle=bundle, backoff=0.01)
            agent = Agent(client, [ZebraPrinter("zebra-1", zebra.host, zebra.port)], out=out, printer_wait=0)
            assert agent.scan(world.order_ids[0]) == outcome
            agent.close()
            client.close()
            if bundle is None:
                assert out.getvalue() == (
                    f"UNAVAILABLE amazon:{world.order_ids[0]} not printed: the vault's TLS certificate could not be "
                    "verified: set --ca-bundle to its CA's certificate; scan it again\n"
                )
    assert len(zebra.labels) == 1


@pytest.mark.parametrize(
    "url",
    ["http://labels.example.com", "ftp://labels.example.com", "https://user:pw@labels.example.com", "https://"],
)
def test_plain_http_only_to_loopback_and_no_credentials_in_the_url(url: str) -> None:
    with pytest.raises(ConfigError):
        VaultClient(url, "lv_key")


def test_an_unreadable_ca_bundle_is_a_setting_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the CA bundle can't be read"):
        VaultClient("https://labels.example.com", "lv_key", ca_bundle=str(tmp_path / "missing.pem"))
