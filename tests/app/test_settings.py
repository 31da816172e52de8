"""Settings: one prefix, validated once; production refuses unsafe configurations in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.settings import SettingsError, load_settings

GOOD_SECRET = "x" * 40


def test_defaults_are_the_embedded_ones(tmp_path: Path) -> None:
    s = load_settings({"instance_path": tmp_path})
    assert s.database_url == f"sqlite:///{tmp_path / 'labelvault.db'}"
    assert s.keyring_path == tmp_path / "keyring.json"
    assert s.key_provider == "local" and not s.production


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABELVAULT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("LABELVAULT_KEY_CACHE_MAX_USES", "7")
    assert load_settings().key_cache_max_uses == 7


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"debug": True, "key_provider": "aws-kms", "kms_key_id": "k"}, "LABELVAULT_DEBUG must be off"),
        ({"secret_key": "", "key_provider": "aws-kms", "kms_key_id": "k"}, "LABELVAULT_SECRET_KEY must be set"),
        ({}, "local keyring keeps the root key on the same disk"),
        ({"key_provider": "aws-kms"}, "LABELVAULT_KMS_KEY_ID is required"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], reason: str) -> None:
    settings = {"env": "production", "secret_key": GOOD_SECRET, "global_allowlist": "203.0.113.0/24", **overrides}
    with pytest.raises(SettingsError, match=reason) as info:
        load_settings(settings)
    assert "\n" not in str(info.value)


def test_endpoint_overrides_are_origins_and_https_in_production() -> None:
    s = load_settings({"marketplace_endpoint_overrides": "http://127.0.0.1:8400, https://sandbox.example"})
    assert s.endpoint_overrides == {"http://127.0.0.1:8400", "https://sandbox.example"}
    assert load_settings().endpoint_overrides == frozenset()  # by default, the marketplaces' own hosts only
    with pytest.raises(SettingsError, match="OVERRIDES: entry 2 is not an origin") as info:
        load_settings({"marketplace_endpoint_overrides": "https://a.example, https://ops:hunter2@b.example/x"})
    assert "hunter2" not in str(info.value)
    production = {"env": "production", "secret_key": GOOD_SECRET, "global_allowlist": "203.0.113.0/24"}
    production |= {"key_provider": "aws-kms", "kms_key_id": "k"}
    with pytest.raises(SettingsError, match=r"OVERRIDES must be https in production .*not http://sandbox\.example"):
        load_settings({**production, "marketplace_endpoint_overrides": "http://sandbox.example"})
    for loopback in ("http://127.0.0.1:8400", "http://localhost:8400", "http://[::1]:8400"):  # never leaves the host
        assert load_settings({**production, "marketplace_endpoint_overrides": loopback}).production
    assert load_settings({**production, "marketplace_endpoint_overrides": "https://sandbox.example"}).production


def test_production_accepts_the_named_local_keyring_risk(tmp_path: Path) -> None:
    s = load_settings(
        {
            "env": "production",
            "secret_key": GOOD_SECRET,
            "accept_local_keyring_risk": True,
            "instance_path": tmp_path,
            "global_allowlist": "203.0.113.0/24",
        }
    )
    assert s.production


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELVAULT_KEY_CACHE_MAX_AGE", "soon")
    with pytest.raises(SettingsError, match="LABELVAULT_KEY_CACHE_MAX_AGE"):
        load_settings()
    monkeypatch.delenv("LABELVAULT_KEY_CACHE_MAX_AGE")
    monkeypatch.setenv("LABELVAULT_ENV", "staging")
    with pytest.raises(SettingsError, match="LABELVAULT_ENV"):
        load_settings()


def test_secret_key_is_not_in_the_settings_repr() -> None:
    s = load_settings({"secret_key": GOOD_SECRET})
    assert GOOD_SECRET not in repr(s)


def test_health_endpoint(tmp_path: Path) -> None:
    app = create_app({"instance_path": tmp_path})
    assert app.test_client().get("/healthz").json == {"status": "ok"}


def test_rights_due_days_are_read_and_a_malformed_table_refused(tmp_path: Path) -> None:
    assert load_settings({"instance_path": tmp_path}).due_days["default"] == 30
    table = load_settings({"instance_path": tmp_path, "rights_due_days": "EU=20, pipl=15,default=25"}).due_days
    assert table == {"eu": 20, "pipl": 15, "default": 25}
    for bad in ("eu=30", "eu=thirty,default=30", "default=0"):
        with pytest.raises(SettingsError, match="LABELVAULT_RIGHTS_DUE_DAYS"):
            load_settings({"instance_path": tmp_path, "rights_due_days": bad})
