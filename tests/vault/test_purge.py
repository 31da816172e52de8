"""The purge under crashes and concurrency, on databases of their own (real commits), SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.servers import Database
from tests.support.vault import T0, make_account, make_orders
from vault import retention
from vault.audit import chain_for, verify_chain
from vault.keys import KeyManager
from vault.models import AuditEvent, LabelRecordRow, Order
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[2]
NOW = T0 + timedelta(days=60)


def populate(db: Database, keys: KeyManager, n: int) -> int:
    with Session(db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=keys, slug="purge-seller", name="Purge Seller", actor="test")
        make_orders(s, keys, make_account(s, tenant), n)
        s.commit()
        return tenant.id


def receipts(db: Database, tenant_id: int) -> list[AuditEvent]:
    with Session(db.engine) as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == retention.PURGE_ACTION)
                .order_by(AuditEvent.seq)
            )
        )


def counts(db: Database) -> tuple[int, int]:
    with Session(db.engine) as s:
        erased = s.scalar(select(func.count()).select_from(Order).where(Order.erased_at.is_not(None))) or 0
        records = s.scalar(select(func.count()).select_from(LabelRecordRow)) or 0
        return erased, records


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from sqlalchemy import event
    from vault import retention
    from vault.db import make_engine, make_session_factory

    url, now, kill_after, batch = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    session = make_session_factory(make_engine(url))()
    committed = []

    @event.listens_for(session, "before_commit")
    def _die(_session):
        if len(committed) == kill_after:  # inside the next batch: its UPDATE and DELETE ran, its COMMIT never does
            os.kill(os.getpid(), signal.SIGKILL)

    retention.purge_due(session, now=now, batch_size=batch, progress=committed.append)
    """
)


def test_a_purge_killed_midway_and_run_again_erases_each_due_record_once(fresh_db: Database, keys: KeyManager) -> None:
    n, batch = 50, 10
    tenant_id = populate(fresh_db, keys, n)
    # batches 1 and 2 commit; the process dies inside batch 3
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, fresh_db.app_url, NOW.isoformat(), "2", str(batch)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert counts(fresh_db) == (2 * batch, n - 2 * batch)  # the killed batch left nothing behind
    assert [e.details["count"] for e in receipts(fresh_db, tenant_id) if e.details] == [batch, batch]

    with Session(fresh_db.engine, expire_on_commit=False) as s:
        rerun = retention.purge_due(s, now=NOW + timedelta(hours=1), batch_size=batch)
    assert rerun.erased == n - 2 * batch
    assert counts(fresh_db) == (n, 0)
    events = receipts(fresh_db, tenant_id)
    assert sum(e.details["count"] for e in events if e.details) == n
    with Session(fresh_db.engine) as s:
        assert all(retention.verify_receipt(s, event=e) for e in events)
        assert verify_chain(s, chain=chain_for(tenant_id)).ok
        again = retention.purge_due(s, now=NOW + timedelta(hours=2), batch_size=batch)
    assert again.erased == 0 and len(receipts(fresh_db, tenant_id)) == len(events)


def test_purges_running_at_once_never_double_count(fresh_db: Database, keys: KeyManager) -> None:
    n, workers = 300, 3
    tenant_id = populate(fresh_db, keys, n)
    barrier = threading.Barrier(workers)
    results: list[retention.PurgeResult | None] = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with Session(fresh_db.engine, expire_on_commit=False) as s:
                barrier.wait(timeout=30)
                results[i] = retention.purge_due(s, now=NOW, batch_size=7)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    done = [r for r in results if r is not None]
    assert len(done) == workers
    assert sum(r.erased for r in done) == n  # every due order erased by exactly one worker
    assert counts(fresh_db) == (n, 0)
    events = receipts(fresh_db, tenant_id)
    assert sum(e.details["count"] for e in events if e.details) == n
    assert sum(len(r.receipts) for r in done) == len(events)
    with Session(fresh_db.engine) as s:
        assert verify_chain(s, chain=chain_for(tenant_id)).ok
