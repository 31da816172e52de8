"""The sync engine: page commits, resumption after a failure, the account lease, changes during paging."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.interfaces import ConnectorStats, MarketplaceUnavailable, OrderPage, SyncCursor
from connectors.sync import LeaseLost, SyncBusy, acquire_lease, release_lease, sync_account
from tests.support.amazon import add_amazon_account, expected_state, make_connector, stored_state
from tests.support.servers import Database
from vault.db import make_session_factory
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, SyncState, Tenant, utcnow
from vault.tenants import create_tenant


class Interrupted(Exception):
    pass


class FailingAfter:
    """Wraps a connector; raises after ``pages`` pages have been handed out (a crash between pages)."""

    marketplace = "amazon"

    def __init__(self, inner: Any, pages: int, exc: Exception | None = None) -> None:
        self.inner, self.pages, self.exc = inner, pages, exc or Interrupted()

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        for n, page in enumerate(self.inner.pull(cursor)):
            if n == self.pages:
                raise self.exc
            yield page

    def stats(self) -> ConnectorStats:
        stats: ConnectorStats = self.inner.stats()
        return stats

    def close(self) -> None:
        self.inner.close()


def test_failure_between_pages_keeps_committed_pages_and_resumes(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(225)
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=50)
    with pytest.raises(MarketplaceUnavailable):
        sync_account(
            session,
            keys=keys,
            account=account,
            connector=FailingAfter(connector, 2, MarketplaceUnavailable("down")),
        )
    assert session.scalar(select(func.count()).where(Order.account_id == account.id)) == 100
    state = session.get(SyncState, account.id)
    assert state is not None and state.page_token and state.lease_owner is None
    calls_before = fake.calls["searchOrders"]
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    # Resumed on page 3 with the stored token: three more pages, no page fetched twice, then a fresh
    # (here empty) window up to now.
    assert (summary.orders_new, summary.orders_unchanged, summary.pages) == (125, 0, 4)
    assert fake.calls["searchOrders"] - calls_before == 4
    assert stored_state(session, keys, account) == expected_state(fake)
    session.refresh(account)
    assert account.last_sync and account.last_sync["ok"] and account.sync_cursor is not None


def test_changes_while_paging_are_caught_by_the_next_window(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock
) -> None:
    fake.generate_orders(200)
    fake.mutate_while_paging(True)
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=50)
    first = sync_account(session, keys=keys, account=account, connector=connector)
    # Orders changed before their page was served left this window (their lastUpdated is now "now").
    assert fake.mutations and first.orders_new < 200
    fake.mutate_while_paging(False)
    clock.advance(minutes=3)
    sync_account(session, keys=keys, account=account, connector=connector)
    assert stored_state(session, keys, account) == expected_state(fake)


def test_lease_refuses_a_second_run_and_expires(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    account = add_amazon_account(session, keys, tenant, fake)
    now = utcnow()
    assert acquire_lease(session, account_id=account.id, owner="otherhost:1:a", duration=timedelta(minutes=5), now=now)
    assert not acquire_lease(session, account_id=account.id, owner="otherhost:2:b", now=now)
    with pytest.raises(SyncBusy):
        sync_account(session, keys=keys, account=account, connector=make_connector(session, keys, account, fake))
    # A crashed holder's lease runs out.
    later = now + timedelta(minutes=6)
    assert acquire_lease(session, account_id=account.id, owner="otherhost:2:b", now=later)
    release_lease(session, account_id=account.id, owner="otherhost:2:b")
    assert acquire_lease(session, account_id=account.id, owner="otherhost:3:c", now=later)


def test_dead_holder_on_this_host_is_taken_over(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    import socket
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    account = add_amazon_account(session, keys, tenant, fake)
    dead = f"{socket.gethostname()}:{proc.pid}:deadbeef"
    assert acquire_lease(session, account_id=account.id, owner=dead)
    fake.generate_orders(3)
    summary = sync_account(session, keys=keys, account=account, connector=make_connector(session, keys, account, fake))
    assert summary.orders_new == 3


def test_a_run_whose_lease_was_taken_over_rolls_its_page_back(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(150)
    account = add_amazon_account(session, keys, tenant, fake)

    def steal(progress: Any) -> None:
        session.execute(SyncState.__table__.update().values(lease_owner="thief:1:x"))

    with pytest.raises(LeaseLost):
        sync_account(
            session, keys=keys, account=account, connector=make_connector(session, keys, account, fake), progress=steal
        )
    assert session.scalar(select(func.count()).where(Order.account_id == account.id)) == 100


def test_two_concurrent_runs_on_one_account(fresh_db: Database, keys: KeyManager, fake: FakeAmazon) -> None:
    """Real concurrency: two threads, two connections, committed data. One runs, the other is refused."""
    sessions = make_session_factory(fresh_db.engine)
    fake.generate_orders(150)
    with sessions() as s:
        tenant = create_tenant(s, keys=keys, slug="concurrent", name="C", actor="test")
        s.commit()
        account = add_amazon_account(s, keys, tenant, fake)
        slow, other = make_connector(s, keys, account, fake), make_connector(s, keys, account, fake)
    account_id = account.id
    first_page_done, let_go = threading.Event(), threading.Event()

    def hold(progress: Any) -> None:
        first_page_done.set()
        let_go.wait(10)

    results: dict[str, Any] = {}

    def run() -> None:
        results["first"] = sync_account(sessions, keys=keys, account=account_id, connector=slow, progress=hold)

    worker = threading.Thread(target=run)
    worker.start()
    assert first_page_done.wait(10)
    with pytest.raises(SyncBusy):
        sync_account(sessions, keys=keys, account=account_id, connector=other)
    let_go.set()
    # A run told to wait gets the account once the first one is done.
    results["second"] = sync_account(sessions, keys=keys, account=account_id, connector=other, wait=10)
    worker.join(10)
    assert results["first"].orders_new == 150 and results["second"].orders_new == 0
    with sessions() as s:
        acc = s.get(MarketplaceAccount, account_id)
        assert acc is not None
        assert stored_state(s, keys, acc) == expected_state(fake)
