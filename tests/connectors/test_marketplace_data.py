"""Data as marketplaces really serve it: unsealable text, delivery reported in packages, cancellations,
page tokens that expire mid-run, and token expiry reported in an error's ``details``."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.sync import sync_account
from tests.connectors.conftest import add_amazon_account, make_connector
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import Order, Tenant
from vault.records import repair_text


@pytest.mark.parametrize(
    ("served", "stored"),
    [
        ("Ana \ud83d", "Ana \ufffd"),  # half an emoji: the seller sees where a character was lost
        ("Main\x00 St\x7f", "Main St"),
        ("Flat 2\r\nBlock\tB", "Flat 2 Block B"),
        ("Zoë 漢字 a\u00a0b", "Zoë 漢字 a\u00a0b"),  # printable text is left as served
    ],
)
def test_repair_text(served: str, stored: str) -> None:
    assert repair_text(served) == stored
    repair_text(served).encode()  # sealable


@pytest.mark.parametrize("api_version", ["2026-01-01", "v0"])
def test_one_unsealable_name_does_not_block_the_account(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock, api_version: str
) -> None:
    ids = fake.generate_orders(30, statuses=["UNSHIPPED"])
    fake.edit_ship_to(ids[7], name="Ana \ud83d", address_line1="Main\x00 St")
    clock.advance(minutes=3)  # past the two-minute rule: the edit is in the window
    account = add_amazon_account(session, keys, tenant, fake, api_version=api_version)
    connector = make_connector(session, keys, account, fake, page_size=10)
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    assert summary.orders_new == 30
    session.refresh(account)
    assert account.sync_cursor is not None and account.last_sync and account.last_sync["ok"]
    order = session.scalars(select(Order).where(Order.external_order_id == ids[7])).one()
    label = unseal_label(session, keys=keys, order=order)
    assert (label.name, label.address_line1) == ("Ana \ufffd", "Main St")
