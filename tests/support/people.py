"""A person with orders on three marketplaces and two accounts of one, among other buyers: the world of the
rights tests (a person is found by what they say about themselves, not by an order id)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from tests.support.buyers import SHANGHAI, sample_label
from tests.support.vault import T0
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import LabelRecord, OrderFacts, OrderStatus

#: 王小明 (Wang Xiaoming) as each marketplace spells the name: other cases, widths and spacing.
WANG_SPELLINGS = ("Wang Xiaoming", "WANG XIAOMING", "Ｗａｎｇ\u3000Ｘｉａｏｍｉｎｇ", " wang   xiaoming ")
WANG_PHONES = ("+86 138 0013 8000", "138-0013-8000", "+8613800138000", "(+86) 13800138000")
#: Another Wang Xiaoming (a common name) elsewhere in Shanghai, with another phone.
NAMESAKE = dataclasses.replace(SHANGHAI, name="Wang Xiaoming", phone="+86 139 0000 1111", postal_code="200030")


@dataclass(frozen=True, slots=True)
class PersonWorld:
    """The tenant's accounts and orders: the person's (by account) and everyone else's."""

    accounts: tuple[MarketplaceAccount, ...]
    wang: tuple[Order, ...]
    namesake: Order
    others: tuple[Order, ...]


def add_account(session: Session, tenant: Tenant, marketplace: str, name: str) -> MarketplaceAccount:
    """An account of any marketplace code (no connector needed: the vault takes any string)."""
    account = MarketplaceAccount(
        tenant_id=tenant.id,
        marketplace=marketplace,
        name=name,
        region="global",
        api_version="test",
        marketplace_ids=[name],
    )
    session.add(account)
    session.flush()
    return account


def add_order(
    session: Session, keys: KeyManager, account: MarketplaceAccount, order_id: str, label: LabelRecord | None
) -> Order:
    """One unshipped order of ``account`` stored through the sync's upsert (so it is sealed and indexed)."""
    facts = OrderFacts(
        marketplace=account.marketplace,
        external_order_id=order_id,
        status=OrderStatus.UNSHIPPED,
        purchased_at=T0,
        last_updated_at=T0,
        ship_by=T0 + timedelta(days=2),
    )
    return store_order(session, keys=keys, account=account, facts=facts, label=label).order


def person_world(session: Session, keys: KeyManager, tenant: Tenant) -> PersonWorld:
    """王小明's four orders (Amazon JP store, Amazon CN store, Shopify, TikTok), a namesake's, and ten others."""
    accounts = (
        add_account(session, tenant, "amazon", "JP store"),
        add_account(session, tenant, "amazon", "CN store"),
        add_account(session, tenant, "shopify", "shop.example"),
        add_account(session, tenant, "tiktok", "TikTok CN"),
    )
    wang = tuple(
        add_order(
            session,
            keys,
            account,
            f"W-{i}",
            dataclasses.replace(SHANGHAI, name=WANG_SPELLINGS[i], phone=WANG_PHONES[i]),
        )
        for i, account in enumerate(accounts)
    )
    namesake = add_order(session, keys, accounts[2], "N-1", NAMESAKE)
    others = tuple(add_order(session, keys, accounts[i % 4], f"O-{i}", sample_label(i)) for i in range(10))
    session.commit()
    return PersonWorld(accounts, wang, namesake, others)
