"""The label API's settings: refused when unsafe, with a one-line reason naming the variable."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from app.allowlist import LOOPBACK, NetworkPolicy
from app.settings import SettingsError, load_settings

PRODUCTION = {
    "env": "production",
    "secret_key": "x" * 40,
    "key_provider": "aws-kms",
    "kms_key_id": "alias/labelvault",
    "database_url": "postgresql+psycopg://db/labelvault",
    "redis_url": "redis://127.0.0.1:6379/0",
}


def settings(tmp_path: Path, **overrides: Any) -> Any:
    return load_settings({"instance_path": tmp_path, **overrides})


def test_production_refuses_an_empty_global_allowlist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LABELVAULT_GLOBAL_ALLOWLIST must name the networks"):
        settings(tmp_path, **PRODUCTION)
    ok = settings(tmp_path, **PRODUCTION, global_allowlist="203.0.113.0/24")
    assert NetworkPolicy.from_settings(ok).allowlist == (ipaddress.ip_network("203.0.113.0/24"),)


def test_outside_production_an_empty_allowlist_means_loopback(tmp_path: Path) -> None:
    assert NetworkPolicy.from_settings(settings(tmp_path, env="test")).allowlist == LOOPBACK


def test_a_broad_global_allowlist_needs_the_risk_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"LABELVAULT_GLOBAL_ALLOWLIST: /0 is too broad.*ACCEPT_BROAD_CIDR_RISK"):
        settings(tmp_path, global_allowlist="0.0.0.0/0")
    accepted = settings(tmp_path, global_allowlist="0.0.0.0/0", accept_broad_cidr_risk=True)
    assert accepted.global_allowlist == "0.0.0.0/0"


@pytest.mark.parametrize("value", ["0.0.0.0/0", "10.0.0.0/7", "::/0", "2001:d00::/31", "10.0.0.0/8, ::/0"])
@pytest.mark.parametrize("risk", [False, True], ids=["", "risk-accepted"])
def test_trusted_proxies_are_never_everyone(tmp_path: Path, value: str, risk: bool) -> None:
    """The broad-range consent is the global allowlist's: no setting lifts the proxies' bound (/8, /32)."""
    with pytest.raises(SettingsError, match=r"LABELVAULT_TRUSTED_PROXIES: /[0-9]+ is too broad for trusted proxies"):
        settings(tmp_path, trusted_proxies=value, accept_broad_cidr_risk=risk)


def test_trusted_proxies_up_to_the_bound_are_accepted(tmp_path: Path) -> None:
    policy = NetworkPolicy.from_settings(settings(tmp_path, trusted_proxies="10.0.0.0/8, 2001:db8::/32"))
    assert policy.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    assert policy.max_proxies == 2


@pytest.mark.parametrize("value", ["10.0.0.1/24", "010.0.0.0/24", "10.0.0.0/255.255.255.0", "fe80::1%eth0"])
def test_malformed_ranges_are_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="LABELVAULT_GLOBAL_ALLOWLIST"):
        settings(tmp_path, global_allowlist=value)


def test_rate_limits_must_parse(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LABELVAULT_RATE_LIMIT_CLIENT"):
        settings(tmp_path, rate_limit_client="lots")
    with pytest.raises(SettingsError, match="LABELVAULT_LABEL_REISSUE_CAP"):
        settings(tmp_path, label_reissue_cap=0)
