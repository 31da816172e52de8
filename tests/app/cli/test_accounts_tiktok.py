"""``accounts add tiktok`` trades the seller's auth code for sealed tokens and lists its shops; a refusal is
one line naming no secret, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.fake_tiktok import FakeTikTok
from tests.support.servers import Database


@pytest.fixture
def shop() -> Iterator[FakeTikTok]:
    with FakeTikTok(speedup=50, seed=5, shops=2) as fake:
        yield fake


def _env(fake: FakeTikTok, code: str) -> dict[str, str]:
    return {
        "LABELVAULT_TIKTOK_APP_KEY": fake.app.app_key,
        "LABELVAULT_TIKTOK_APP_SECRET": fake.app.app_secret,
        "LABELVAULT_TIKTOK_AUTH_CODE": code,
    }


def test_a_seller_is_connected_from_its_auth_code_and_a_spent_code_is_refused_in_one_line(
    make_app: Any, fresh_db: Database, shop: FakeTikTok
) -> None:
    runner = make_app(fresh_db.app_url, marketplace_endpoint_overrides=shop.base_url).test_cli_runner()
    assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
    args = ["accounts", "add", "tiktok", "--tenant", "acme", "--name", "TikTok", "--api-endpoint", shop.base_url]
    args += ["--token-endpoint", shop.auth_url]
    code = shop.authorize()
    added = runner.invoke(args=args, env=_env(shop, code))
    assert added.exit_code == 0, added.output
    assert "tiktok, 2 shop(s)" in added.output and "acme/TikTok" in runner.invoke(args=["accounts", "list"]).output
    again = runner.invoke(args=[*args[:-4], "--name", "Again", *args[-4:]], env=_env(shop, code))
    assert again.exit_code == 1 and again.output.startswith("Error: ") and again.output.count("\n") == 1
    assert "auth code" in again.output and "nothing was stored" in again.output
    assert shop.app.app_secret not in again.output and code not in again.output
    assert "Again" not in runner.invoke(args=["accounts", "list"]).output


def test_without_credentials_or_a_terminal_it_says_which_is_missing(make_app: Any, fresh_db: Database) -> None:
    runner = make_app(fresh_db.app_url).test_cli_runner()
    assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
    result = runner.invoke(args=["accounts", "add", "tiktok", "--tenant", "acme", "--name", "T"], env={}, input="")
    assert result.exit_code == 1 and "LABELVAULT_TIKTOK_APP_KEY" in result.output, result.output
