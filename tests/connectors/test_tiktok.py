"""The TikTok Shop connector against the fake, through the sync engine, on both databases: connect, full and
incremental syncs, platform-shipped orders, tokens renewed and re-sealed, consent running out, throttling,
faults, tricky recipients, changes while paging and resumption after a crash."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeClock
from connectors.fake_tiktok import FakeTikTok, Recipient
from connectors.fake_tiktok.marketplace import market
from connectors.interfaces import ConnectorStats, ConsentExpired, MarketplaceUnavailable, OrderPage, SyncCursor
from connectors.sync import sync_account
from connectors.tiktok.accounts import connect_tiktok_account
from connectors.tiktok.endpoints import document_url_allowed
from tests.support.tiktok import add_tiktok_account, expected_state, fake_origins, make_connector, stored_state
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import AuditEvent, MarketplaceAccount, Order, SyncState, Tenant


def _sync(session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeTikTok, **options: Any) -> Any:
    connector = make_connector(session, keys, account, fake, **options)
    try:
        return sync_account(session, keys=keys, account=account, connector=connector)
    finally:
        connector.close()


def test_connecting_trades_the_auth_code_for_sealed_tokens_and_lists_the_shops(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok
) -> None:
    account = add_tiktok_account(session, keys, tenant, tiktok)
    assert (account.marketplace, account.region, account.api_version) == ("tiktok", "global", "202309")
    assert account.marketplace_ids == [tiktok.shop().cipher]
    secrets = unseal_credentials(session, keys=keys, account=account)
    assert secrets["app_key"] == tiktok.app.app_key and secrets["refresh_token"].startswith("ROW_")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "account.connect")).all()[-1]
    assert tiktok.app.app_secret not in str(event.details) and secrets["refresh_token"] not in str(event.details)


def test_a_spent_auth_code_stores_nothing_and_says_why_in_one_line(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok
) -> None:
    code = tiktok.authorize()
    kwargs: dict[str, Any] = {
        "keys": keys,
        "tenant_id": tenant.id,
        "app_key": tiktok.app.app_key,
        "app_secret": tiktok.app.app_secret,
        "auth_code": code,
        "api_endpoint": tiktok.base_url,
        "token_endpoint": tiktok.auth_url,
        "endpoint_overrides": fake_origins(tiktok),
        "actor": "test",
    }
    connect_tiktok_account(session, name="first", **kwargs)
    with pytest.raises(AccountSetupError) as refused:
        connect_tiktok_account(session, name="second", **kwargs)
    message = str(refused.value)
    assert "auth code" in message and "\n" not in message and tiktok.app.app_secret not in message
    names = session.scalars(select(MarketplaceAccount.name).where(MarketplaceAccount.tenant_id == tenant.id)).all()
    assert names == ["first"]


def test_an_endpoint_the_operator_does_not_allow_is_refused_before_the_secret_is_sent(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok
) -> None:
    with pytest.raises(AccountSetupError, match="not allowed"):
        connect_tiktok_account(
            session,
            keys=keys,
            tenant_id=tenant.id,
            name="shop",
            app_key=tiktok.app.app_key,
            app_secret=tiktok.app.app_secret,
            auth_code=tiktok.authorize(),
            api_endpoint=tiktok.base_url,
            token_endpoint=tiktok.auth_url,
            actor="test",
        )
    assert sum(tiktok.calls.values()) == 0


def test_a_full_then_incremental_sync_stores_what_tiktok_serves_with_platform_shipped_orders_withheld(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok, clock: FakeClock
) -> None:
    ids = tiktok.generate_orders(230, platform_shipped_every=5)
    account = add_tiktok_account(session, keys, tenant, tiktok)
    clock.advance(seconds=10)
    first = _sync(session, keys, account, tiktok)
    assert first.orders_new == 230
    state = stored_state(session, keys, account)
    assert state == expected_state(tiktok)
    withheld = [oid for oid, (_, why, label) in state.items() if why == "platform-shipped"]
    assert len(withheld) == 46 and all(state[oid][2]["name"] is None for oid in withheld)
    assert not session.scalars(select(Order).where(Order.label_withheld.is_not(None), Order.label.has())).first()
    # Changes after the first sync reach the vault in the next one, and only they are fetched.
    tiktok.update_order(ids[0], status="CANCELLED")
    tiktok.update_order(ids[1], status="IN_TRANSIT")
    tiktok.edit_recipient(ids[2], name="Renamed Recipient")
    clock.advance(minutes=5)
    searches = tiktok.calls["orders.search"]
    second = _sync(session, keys, account, tiktok)
    assert tiktok.calls["orders.search"] - searches == 1
    assert second.orders_updated >= 2
    assert stored_state(session, keys, account) == expected_state(tiktok)


def test_expired_access_tokens_are_renewed_and_the_new_tokens_sealed(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok, clock: FakeClock
) -> None:
    tiktok.generate_orders(120)
    account = add_tiktok_account(session, keys, tenant, tiktok)
    before = unseal_credentials(session, keys=keys, account=account)["refresh_token"]
    tiktok.expire_tokens()
    clock.advance(seconds=10)
    summary = _sync(session, keys, account, tiktok)
    assert summary.orders_new == 120 and tiktok.calls["token.refresh"] == 1
    session.refresh(account)
    after = unseal_credentials(session, keys=keys, account=account)
    assert after["refresh_token"] != before
    # The next run uses the sealed (renewed) access token: no exchange at all.
    clock.advance(minutes=3)
    _sync(session, keys, account, tiktok)
    assert tiktok.calls["token.refresh"] == 1


def test_a_grant_that_ran_out_is_consent_expired(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok, clock: FakeClock
) -> None:
    account = add_tiktok_account(session, keys, tenant, tiktok)
    tiktok.expire_grant()
    clock.advance(seconds=10)
    with pytest.raises(ConsentExpired):
        _sync(session, keys, account, tiktok)


def test_throttling_faults_and_dropped_connections_are_retried(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok, clock: FakeClock
) -> None:
    tiktok.generate_orders(250)
    account = add_tiktok_account(session, keys, tenant, tiktok)
    tiktok.inject(status=429, count=2, operation="orders.search")
    tiktok.inject(status=503, count=1, operation="orders.search")
    tiktok.drop_connections(count=1, operation="orders.search")
    clock.advance(seconds=10)
    summary = _sync(session, keys, account, tiktok)
    assert summary.orders_new == 250 and summary.throttled == 2 and summary.retries >= 4
    assert stored_state(session, keys, account) == expected_state(tiktok)


@pytest.mark.usefixtures("no_pii_in_logs")
def test_tricky_recipients_are_repaired_flagged_and_never_logged(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    tiktok: FakeTikTok,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    us = market("US")
    surrogate = tiktok.add_order(
        recipient=Recipient(
            name="Broken\ud83dEmoji Buyer",
            address_line1="12 Main\x00St\r\nRear",
            region_code="US",
            districts=us.districts,
            postal_code="90012",
        )
    )
    arabic = tiktok.add_order(
        recipient=Recipient(
            name="محمد العتيبي",
            address_line1="200 N Spring St",
            region_code="US",
            districts=us.districts,
            postal_code="90012",
            phone_number=None,
        )
    )
    account = add_tiktok_account(session, keys, tenant, tiktok)
    clock.advance(seconds=10)
    with caplog.at_level(logging.DEBUG):
        _sync(session, keys, account, tiktok)
    state = stored_state(session, keys, account)
    assert state[surrogate][2]["name"] == "Broken\ufffdEmoji Buyer"
    assert state[surrogate][2]["address_line1"] == "12 MainSt Rear"
    assert state[arabic][2]["name"] == "محمد العتيبي" and state[arabic][2]["phone"] is None
    flagged = session.scalars(
        select(Order.external_order_id).where(Order.account_id == account.id, Order.text_repaired.is_(True))
    ).all()
    assert set(flagged) == {surrogate}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in tiktok.buyer_pii_strings() if s in logged]


def test_changes_while_paging_are_caught_by_the_next_window(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok, clock: FakeClock
) -> None:
    tiktok.generate_orders(300)
    tiktok.mutate_while_paging(True)
    account = add_tiktok_account(session, keys, tenant, tiktok)
    clock.advance(seconds=10)
    _sync(session, keys, account, tiktok, page_size=50)
    assert tiktok.mutations
    tiktok.mutate_while_paging(False)
    clock.advance(minutes=3)
    _sync(session, keys, account, tiktok, page_size=50)
    assert stored_state(session, keys, account) == expected_state(tiktok)


class _FailingAfter:
    """Wraps a connector; raises after ``pages`` pages have been handed out (a crash between pages)."""

    marketplace = "tiktok"

    def __init__(self, inner: Any, pages: int) -> None:
        self.inner, self.pages = inner, pages

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        for n, page in enumerate(self.inner.pull(cursor)):
            if n == self.pages:
                raise MarketplaceUnavailable("down")
            yield page

    def stats(self) -> ConnectorStats:
        stats: ConnectorStats = self.inner.stats()
        return stats

    def close(self) -> None:
        self.inner.close()


def test_a_crash_between_pages_resumes_on_the_next_page_and_a_forgotten_token_restarts_the_window(
    session: Session, keys: KeyManager, tenant: Tenant, tiktok: FakeTikTok, clock: FakeClock
) -> None:
    tiktok.generate_orders(240)
    account = add_tiktok_account(session, keys, tenant, tiktok)
    clock.advance(seconds=10)
    connector = make_connector(session, keys, account, tiktok, page_size=50)
    with pytest.raises(MarketplaceUnavailable):
        sync_account(session, keys=keys, account=account, connector=_FailingAfter(connector, 2))
    state = session.get(SyncState, account.id)
    assert state is not None and state.page_token and state.page_token.startswith("0:")
    searches = tiktok.calls["orders.search"]
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    assert summary.orders_new == 140 and tiktok.calls["orders.search"] - searches == 4  # 3 pages + a fresh window
    assert stored_state(session, keys, account) == expected_state(tiktok)
    # A stored page token TikTok has forgotten restarts that shop's window in the same run.
    clock.advance(minutes=3)
    tiktok.generate_orders(120, start=clock() - timedelta(minutes=2))
    clock.advance(seconds=10)
    with pytest.raises(MarketplaceUnavailable):
        sync_account(session, keys=keys, account=account, connector=_FailingAfter(connector, 1))
    tiktok.forget_page_tokens()
    restarted = sync_account(session, keys=keys, account=account, connector=connector)
    assert restarted.orders_unchanged >= 50  # the first page again, from the window's start
    assert stored_state(session, keys, account) == expected_state(tiktok)
    connector.close()


def test_a_document_url_is_followed_only_on_tiktoks_hosts_or_the_allowed_api_origin() -> None:
    api = "https://open-api.tiktokglobalshop.com"
    assert document_url_allowed("https://open-fs-sg.tiktokshop.com/doc/abc.pdf?sig=1", api_base=api)
    assert document_url_allowed("https://p16.tiktokcdn.com/label.pdf", api_base=api)
    assert not document_url_allowed("http://p16.tiktokcdn.com/label.pdf", api_base=api)  # never in clear
    assert not document_url_allowed("https://tiktokshop.com.evil.example/label.pdf", api_base=api)
    assert not document_url_allowed("https://169.254.169.254/latest/meta-data/", api_base=api)
    fake = "http://127.0.0.1:8410"
    assert document_url_allowed(f"{fake}/_docs/x.pdf", api_base=fake, overrides={fake})
    assert not document_url_allowed(f"{fake}/_docs/x.pdf", api_base=fake)  # the operator didn't allow it
    assert not document_url_allowed("http://127.0.0.1:9999/x.pdf", api_base=fake, overrides={fake})
