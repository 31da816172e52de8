"""``flask vault purge|backup|restore|epoch``, ``flask holds``, ``flask rights`` end to end (own database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.services import services
from tests.support.buyers import sample_label
from tests.support.servers import Database
from tests.support.vault import make_account, sample_facts
from vault.models import AuditEvent
from vault.orders import store_order
from vault.records import OrderStatus
from vault.tenants import create_tenant


@pytest.fixture
def cli_app(make_app: Any, fresh_db: Database) -> Any:
    app = make_app(fresh_db.app_url)
    svc = services(app)
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=svc.keys, slug="cli-seller", name="CLI Seller", actor="test")
        account = make_account(s, tenant)
        for i in range(3):  # due now: cancelled orders are erased at the next purge
            f = sample_facts(i, OrderStatus.CANCELLED)
            store_order(s, keys=svc.keys, account=account, facts=f, label=sample_label(i))
        for i in range(3, 5):  # not due for weeks
            store_order(s, keys=svc.keys, account=account, facts=sample_facts(i), label=sample_label(i))
        s.commit()
    return app


def order(i: int) -> str:
    return f"amazon:{sample_facts(i).external_order_id}"


def run(app: Any, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=list(args), input=input, catch_exceptions=False)


def actions(app: Any) -> list[tuple[str, str, str | None]]:
    with services(app).sessions() as s:
        return [(e.action, e.outcome, e.purpose) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_purge_dry_run_then_purge(cli_app: Any) -> None:
    dry = run(cli_app, "vault", "purge", "--dry-run")
    assert dry.exit_code == 0 and "tenant cli-seller: 3 due, 0 held" in dry.output
    done = run(cli_app, "vault", "purge", "--batch-size", "2")
    assert done.exit_code == 0 and "3 orders erased in 2 batches" in done.output
    assert "receipt sha256:" in done.output
    assert "山田" not in done.output
    assert run(cli_app, "vault", "purge").output.strip().endswith("0 orders erased in 0 batches")


def test_holds_keep_orders_until_released(cli_app: Any) -> None:
    added = run(
        cli_app, "holds", "add", "--tenant", "cli-seller", "--order", order(0), "--reason", "Case 7",
        "--owner", "Legal", "--until", "2099-12-31",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    hold_id = added.output.split()[1]
    assert "Case 7" in run(cli_app, "holds", "list", "--tenant", "cli-seller").output
    assert "2 orders erased" in run(cli_app, "vault", "purge").output
    assert run(cli_app, "holds", "release", hold_id, "--tenant", "cli-seller").exit_code == 0
    assert "1 orders erased" in run(cli_app, "vault", "purge").output
    assert ("hold.place", "ok", "legal-hold") in actions(cli_app)
    bad = app_result = run(
        cli_app, "holds", "add", "--tenant", "cli-seller", "--reason", "x", "--owner", "L", "--until", "2099-01-01"
    )
    assert app_result.exit_code != 0 and "reason" in bad.output


def test_rights_access_correct_and_erase(cli_app: Any, tmp_path: Path) -> None:
    who = ["--tenant", "cli-seller", "--order", order(3), "--request-id", "T-9", "--verified-by", "owner"]
    out = tmp_path / "export.json"
    assert run(cli_app, "rights", "access", *who, "--output", str(out)).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    export = json.loads(out.read_text(encoding="utf-8"))
    assert export["shipping_label_data"]["name"] == sample_label(3).name

    corrected = {**{k: v for k, v in sample_label(3).as_dict().items() if v is not None}, "city": "大阪市"}
    fixed = run(cli_app, "rights", "correct", *who, "--address", "-", input=json.dumps(corrected))
    assert fixed.exit_code == 0 and "record version 2" in fixed.output
    again = json.loads(run(cli_app, "rights", "access", *who, "--output", "-").output)
    assert again["shipping_label_data"]["city"] == "大阪市"
    bad = run(cli_app, "rights", "correct", *who, "--address", "-", input='{"name": "x"}')
    assert bad.exit_code != 0 and "JSON object" in bad.output

    run(cli_app, "holds", "add", "--tenant", "cli-seller", "--order", order(3), "--reason", "Dispute 1",
        "--owner", "Finance", "--until", "2099-12-31")  # fmt: skip
    refused = run(cli_app, "rights", "erase", *who)
    assert refused.exit_code != 0 and "legal hold" in refused.output and "Dispute 1" in refused.output
    other = ["--tenant", "cli-seller", "--order", order(4), "--request-id", "T-10", "--verified-by", "owner"]
    assert "label data erased" in run(cli_app, "rights", "erase", *other).output
    purposes = [p for a, _, p in actions(cli_app) if a.startswith("rights.")]
    assert purposes == ["rights:access", "rights:correction", "rights:access", "rights:erasure", "rights:erasure"]


@pytest.mark.parametrize("output", ["file", "-"])
def test_rights_access_exports_nothing_unless_its_audit_is_committed(
    cli_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    def failing_commit(self: Session) -> None:
        raise OperationalError("COMMIT", None, Exception("the database went away"))

    monkeypatch.setattr(Session, "commit", failing_commit)
    out = tmp_path / "export.json"
    who = ["--tenant", "cli-seller", "--order", order(3), "--request-id", "T-11", "--verified-by", "owner"]
    result = run(cli_app, "rights", "access", *who, "--output", str(out) if output == "file" else "-")
    assert result.exit_code == 1 and "could not be audited; nothing was exported" in result.output
    assert not out.exists()
    assert sample_label(3).name not in result.output
    monkeypatch.undo()
    assert not [a for a, _, _ in actions(cli_app) if a == "rights.access"]


def test_backup_restore_and_epoch(cli_app: Any, tmp_path: Path) -> None:
    path = tmp_path / "b.lvb"
    made = run(cli_app, "vault", "backup", str(path))
    assert made.exit_code == 0 and path.exists()
    run(cli_app, "vault", "purge")
    restored = run(cli_app, "vault", "restore", str(path), "--yes")
    assert restored.exit_code == 0 and "now run `flask vault purge`" in restored.output
    assert "tenant cli-seller: 3 due" in run(cli_app, "vault", "purge", "--dry-run").output
    epoch = run(cli_app, "vault", "epoch")
    assert epoch.exit_code == 0 and "erased data leaves every backup within" in epoch.output
