"""`flask vault ...` and `flask tenants ...` as an operator runs them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.buyers import sample_label
from tests.support.servers import Database
from tests.support.vault import make_account, sample_facts
from vault.models import Tenant
from vault.orders import store_order


def test_init_create_rotate_status(make_app: Any, fresh_db: Database) -> None:
    app = make_app(fresh_db.app_url)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["vault", "init"])
    assert result.exit_code == 0, result.output
    assert "root key: local" in result.output
    assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
    assert "exists already" in runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).output

    svc = app.extensions["labelvault"]
    with svc.sessions() as s:
        tenant = s.query(Tenant).filter_by(slug="acme").one()
        account = make_account(s, tenant)
        for i in range(30):
            store_order(s, keys=svc.keys, account=account, facts=sample_facts(i), label=sample_label(i))
        s.commit()

    result = runner.invoke(args=["vault", "rotate", "--tenant", "acme", "--batch-size", "7"])
    assert result.exit_code == 0, result.output
    assert "new key version v2" in result.output and "30 data keys rewrapped" in result.output
    result = runner.invoke(args=["vault", "rotate", "--root"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["vault", "status"])
    assert result.exit_code == 0, result.output
    assert "key v2 active" in result.output and "30 label records" in result.output
    assert "山田" not in result.output and "千代田" not in result.output
    assert "no tenant with slug" in runner.invoke(args=["vault", "rotate", "--tenant", "nope"]).output
    assert runner.invoke(args=["vault", "rotate"]).exit_code != 0


def test_every_command_has_help(make_app: Any, tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'h.db'}")
    runner = app.test_cli_runner()
    for args in (["vault"], ["vault", "init"], ["vault", "status"], ["vault", "rotate"], ["tenants", "create"]):
        result = runner.invoke(args=[*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_return_address_is_set_and_printed_on_labels(make_app: Any, tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'ra.db'}")
    runner = app.test_cli_runner()
    runner.invoke(args=["vault", "init"])
    runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"])
    args = ["tenants", "return-address", "acme", "--name", "Acme Trading", "--line", "88 Keyuan Rd", "--country", "cn"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["tenants", "return-address", "acme", "--name", "A", "--line", "x", "--country", "China"])
    assert bad.exit_code != 0 and "two-letter country code" in bad.output
    with app.extensions["labelvault"].sessions() as s:
        tenant = s.query(Tenant).filter_by(slug="acme").one()
        assert tenant.return_address == {"name": "Acme Trading", "lines": ["88 Keyuan Rd"], "country_code": "CN"}


def test_tenants_create_takes_the_return_address(
    make_app: Any, fresh_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(fresh_db.app_url)
    runner = app.test_cli_runner()
    given = ["--return-name", "Acme Ltd", "--return-line", "1 Dock Rd", "--return-line", "Shenzhen"]
    result = runner.invoke(args=["tenants", "create", "acme", "--name", "Acme", *given, "--return-country", "cn"])
    assert result.exit_code == 0 and "FROM block" not in result.output, result.output
    bad = runner.invoke(args=["tenants", "create", "bad", "--name", "Bad", "--return-name", "Bad Ltd"])
    assert bad.exit_code == 1 and "two-letter country code" in bad.output
    quiet = runner.invoke(args=["tenants", "create", "piped", "--name", "Piped"])  # no terminal: not asked
    assert quiet.exit_code == 0 and "empty FROM block" in quiet.output
    monkeypatch.setattr("app.cli.tenants.sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))
    asked = runner.invoke(args=["tenants", "create", "typed", "--name", "Typed"], input="Typed Co\n9 Pier St\n\nJP\n")
    assert asked.exit_code == 0 and "FROM block" not in asked.output, asked.output
    svc = app.extensions["labelvault"]
    with svc.sessions() as s:
        addresses = {t.slug: t.return_address for t in s.query(Tenant)}
    assert addresses == {
        "acme": {"name": "Acme Ltd", "lines": ["1 Dock Rd", "Shenzhen"], "country_code": "CN"},
        "piped": None,
        "typed": {"name": "Typed Co", "lines": ["9 Pier St"], "country_code": "JP"},
    }
