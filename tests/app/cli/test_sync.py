"""``flask accounts ...`` and ``flask sync run`` end to end against the fake marketplace (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.fake_amazon import FakeAmazon


def test_accounts_and_sync_cli(make_app: Any, tmp_path: Path) -> None:
    with FakeAmazon(speedup=5000, seed=5) as fake:
        app = make_app(f"sqlite:///{tmp_path / 'cli.db'}", marketplace_endpoint_overrides=fake.base_url)
        runner = app.test_cli_runner()
        s = fake.add_seller("A2USSELLER", marketplace_ids=["ATVPDKIKX0DER"])  # an account is one region's
        fake.generate_orders(120, seller=s.selling_partner_id)
        assert runner.invoke(args=["vault", "init"]).exit_code == 0
        assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
        env = {
            "LABELVAULT_AMAZON_CLIENT_ID": s.client_id,
            "LABELVAULT_AMAZON_CLIENT_SECRET": s.client_secret,
            "LABELVAULT_AMAZON_REFRESH_TOKEN": s.refresh_token,
        }
        add = ["accounts", "add", "amazon", "--tenant", "acme", "--name", "US store", "--region", "na"]
        add += [arg for m in s.marketplace_ids for arg in ("--marketplace-id", m)]
        add += ["--sp-api-endpoint", fake.base_url, "--lwa-endpoint", fake.lwa_url]
        # Secrets are never options: argv shows in `ps`.
        assert runner.invoke(args=[*add, "--client-secret", "x"], env=env).exit_code == 2
        result = runner.invoke(args=add, env=env)
        assert result.exit_code == 0, result.output
        assert s.client_secret not in result.output
        listed = runner.invoke(args=["accounts", "list"])
        assert "acme/US store" in listed.output and "never synced" in listed.output

        result = runner.invoke(args=["sync", "run", "--tenant", "acme", "--speedup", "5000"])
        assert result.exit_code == 0, result.output
        assert "120 new, 0 updated, 0 unchanged" in result.output and "calls    3 made" in result.output
        again = runner.invoke(args=["sync", "run", "--account", "US store", "--speedup", "5000"])
        assert "0 new, 0 updated" in again.output
        for value in fake.buyer_pii_strings():
            assert value not in result.output + again.output + listed.output
        assert "ok" in runner.invoke(args=["accounts", "list"]).output

        removed = runner.invoke(args=["accounts", "remove", "US store", "--yes"])
        assert removed.exit_code == 0, removed.output
        assert "label records shredded" in removed.output
        assert "US store" not in runner.invoke(args=["accounts", "list"]).output
        assert runner.invoke(args=["sync", "run"]).exit_code == 1  # nothing left to sync
