"""Shopify's mandatory privacy webhooks, verified and handled against the vault (no web framework here).

Shopify POSTs ``customers/data_request``, ``customers/redact`` and ``shop/redact`` to the app, signed with
``X-Shopify-Hmac-Sha256`` (base64 of the HMAC-SHA256 of the raw body with the app's client secret), at
least once (a repeat has the same ``X-Shopify-Webhook-Id``). What each does here:

- ``customers/data_request``: an access export (:func:`vault.rights.export_order_data`) of the listed
  orders, per tenant that holds them, sealed for the seller to fetch (:mod:`vault.privacy_exports`); the
  answer to Shopify carries nothing of it.
- ``customers/redact``: each listed order's label data erased (:func:`vault.rights.erase_order`; a legal
  hold wins, and the refusal is audited).
- ``shop/redact``: every order of the shop's accounts erased the same way, then each account removed
  (credentials shredded), unless a hold kept an order.

Every order touched is audited by vault.rights with its purpose; each delivery adds one summary event per
tenant (``shopify.webhook``) with its topic, delivery id and counts. No PII is read from the payload: the
customer's e-mail and phone in it are never looked at, only the shop domain and order ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.shopify.endpoints import is_shop_domain
from connectors.shopify.mapping import MARKETPLACE
from vault.audit import append_event
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.marketplace_accounts import remove_account
from vault.models import MarketplaceAccount, Order, ShopifyWebhook, utcnow
from vault.privacy_exports import store_export
from vault.rights import ACCESS, ERASURE, RightsRequest, erase_order, export_order_data

DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT = "customers/data_request", "customers/redact", "shop/redact"
TOPICS = (DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT)
ACTOR = "shopify-webhook"
VERIFIED_BY = "Shopify (signed privacy webhook)"
MAX_ORDERS = 10_000


class WebhookRejected(ValueError):
    """A delivery that isn't a well-formed privacy webhook (the message says what, never the body)."""


@dataclass(frozen=True, slots=True)
class PrivacyWebhook:
    """A verified delivery's topic, id, shop and the order ids it names (nothing else is kept)."""

    topic: str
    webhook_id: str
    shop: str
    order_ids: tuple[str, ...] = ()
    #: Shopify's data request id (``customers/data_request``), the export's reference.
    request_ref: str | None = None


@dataclass(slots=True)
class Outcome:
    """What handling a delivery did: counts only, safe to log."""

    duplicate: bool = False
    tenants: int = 0
    exported: int = 0
    erased: int = 0
    held: int = 0
    accounts_removed: int = 0
    unknown_orders: int = 0
    exports: list[int] = field(default_factory=list)


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``header`` is Shopify's base64 HMAC-SHA256 of ``body`` under ``secret`` (constant time)."""
    if not header or not secret:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("ascii", "replace"))


def _ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ORDERS:
        raise WebhookRejected("the order list is not a list of order ids")
    out = []
    for item in value:
        text = str(item) if isinstance(item, (int, str)) and not isinstance(item, bool) else ""
        if not text.isdigit() or len(text) > 20:
            raise WebhookRejected("the order list is not a list of order ids")
        out.append(text)
    return tuple(dict.fromkeys(out))


def parse(topic: str | None, webhook_id: str | None, body: bytes) -> PrivacyWebhook:
    """A verified delivery's useful part; :class:`WebhookRejected` when it isn't a privacy webhook."""
    if topic not in TOPICS:
        raise WebhookRejected("not a privacy webhook topic")
    if not webhook_id or len(webhook_id) > 100 or not webhook_id.isprintable():
        raise WebhookRejected("the delivery has no X-Shopify-Webhook-Id")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("the body is not JSON") from None
    if not isinstance(payload, Mapping):
        raise WebhookRejected("the body is not a JSON object")
    shop = payload.get("shop_domain")
    if not isinstance(shop, str) or not is_shop_domain(shop):
        raise WebhookRejected("the body names no shop domain")
    if topic == SHOP_REDACT:
        return PrivacyWebhook(topic, webhook_id, shop)
    if topic == CUSTOMERS_REDACT:
        return PrivacyWebhook(topic, webhook_id, shop, _ids(payload.get("orders_to_redact")))
    request = payload.get("data_request")
    ref = request.get("id") if isinstance(request, Mapping) else None
    return PrivacyWebhook(
        topic,
        webhook_id,
        shop,
        _ids(payload.get("orders_requested")),
        request_ref=str(ref) if isinstance(ref, (int, str)) and not isinstance(ref, bool) else webhook_id,
    )


def shop_accounts(session: Session, shop: str) -> list[MarketplaceAccount]:
    """Every live Shopify account of ``shop``, whichever tenant connected it."""
    rows = session.scalars(
        select(MarketplaceAccount).where(
            MarketplaceAccount.marketplace == MARKETPLACE, MarketplaceAccount.removed_at.is_(None)
        )
    )
    return [a for a in rows if shop in a.marketplace_ids]


def _of_accounts(session: Session, accounts: list[MarketplaceAccount], order_ids: tuple[str, ...]) -> list[str]:
    """The ids among ``order_ids`` that are orders of ``accounts`` (a shop's webhook reaches only its orders),
    in the order given."""
    held = set(
        session.scalars(
            select(Order.external_order_id).where(
                Order.account_id.in_([a.id for a in accounts]), Order.external_order_id.in_(order_ids)
            )
        )
    )
    return [i for i in order_ids if i in held]


def already_handled(session: Session, webhook_id: str) -> bool:
    """Whether a delivery with this id was handled already."""
    return session.get(ShopifyWebhook, webhook_id) is not None


def handle(session: Session, *, keys: KeyManager, webhook: PrivacyWebhook, now: datetime | None = None) -> Outcome:
    """Carry out a verified privacy webhook, in the caller's transaction, and remember its id.

    A repeat delivery does nothing (``Outcome.duplicate``). The caller commits; a concurrent repeat that
    commits first makes this commit fail on the id's primary key, which the caller answers as a repeat.
    """
    now = now or utcnow()
    if already_handled(session, webhook.webhook_id):
        return Outcome(duplicate=True)
    session.add(ShopifyWebhook(webhook_id=webhook.webhook_id, topic=webhook.topic, shop=webhook.shop, received_at=now))
    session.flush()
    outcome = Outcome()
    by_tenant: dict[int, list[MarketplaceAccount]] = {}
    for account in shop_accounts(session, webhook.shop):
        by_tenant.setdefault(account.tenant_id, []).append(account)
    for tenant_id, accounts in sorted(by_tenant.items()):
        outcome.tenants += 1
        request = RightsRequest(
            actor=ACTOR, request_id=f"shopify:{webhook.request_ref or webhook.webhook_id}", verified_by=VERIFIED_BY
        )
        before = (outcome.exported, outcome.erased, outcome.held, outcome.unknown_orders)
        if webhook.topic == DATA_REQUEST:
            _export(
                session,
                keys=keys,
                tenant_id=tenant_id,
                accounts=accounts,
                webhook=webhook,
                request=request,
                outcome=outcome,
                now=now,
            )
        elif webhook.topic == CUSTOMERS_REDACT:
            ids = _of_accounts(session, accounts, webhook.order_ids)
            outcome.unknown_orders += len(webhook.order_ids) - len(ids)
            _erase(session, tenant_id=tenant_id, order_ids=ids, request=request, outcome=outcome, now=now)
        else:
            for account in accounts:
                ids = list(
                    session.scalars(
                        select(Order.external_order_id).where(Order.account_id == account.id).order_by(Order.id)
                    )
                )
                held_before = outcome.held
                _erase(session, tenant_id=tenant_id, order_ids=ids, request=request, outcome=outcome, now=now)
                if outcome.held == held_before:
                    remove_account(session, account=account, actor=ACTOR, now=now)
                    outcome.accounts_removed += 1
        exported, erased, held, unknown = (
            a - b
            for a, b in zip(
                (outcome.exported, outcome.erased, outcome.held, outcome.unknown_orders), before, strict=True
            )
        )
        append_event(
            session,
            tenant_id=tenant_id,
            actor=ACTOR,
            action="shopify.webhook",
            purpose=ACCESS if webhook.topic == DATA_REQUEST else ERASURE,
            details={
                "topic": webhook.topic,
                "webhook_id": webhook.webhook_id,
                "shop": webhook.shop,
                "orders_named": len(webhook.order_ids),
                "exported": exported,
                "erased": erased,
                "held": held,
                "not_held_here": unknown,
            },
            now=now,
        )
    return outcome


def _export(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    accounts: list[MarketplaceAccount],
    webhook: PrivacyWebhook,
    request: RightsRequest,
    outcome: Outcome,
    now: datetime,
) -> None:
    exports: list[dict[str, Any]] = []
    found: list[str] = []
    ids = _of_accounts(session, accounts, webhook.order_ids)
    outcome.unknown_orders += len(webhook.order_ids) - len(ids)
    for order_id in ids:
        try:
            exports.append(
                export_order_data(
                    session,
                    keys=keys,
                    tenant_id=tenant_id,
                    marketplace=MARKETPLACE,
                    external_order_id=order_id,
                    request=request,
                    now=now,
                )
            )
        except NotFound:
            outcome.unknown_orders += 1
            continue
        found.append(order_id)
    outcome.exported += len(found)
    export = store_export(
        session,
        keys=keys,
        tenant_id=tenant_id,
        account_id=accounts[0].id,
        source=f"shopify:{DATA_REQUEST}",
        reference=webhook.request_ref or webhook.webhook_id,
        orders=found,
        content={"shop": webhook.shop, "request": webhook.request_ref, "orders": exports},
    )
    outcome.exports.append(export.id)


def _erase(
    session: Session,
    *,
    tenant_id: int,
    order_ids: Any,
    request: RightsRequest,
    outcome: Outcome,
    now: datetime,
) -> None:
    for order_id in order_ids:
        try:
            result = erase_order(
                session,
                tenant_id=tenant_id,
                marketplace=MARKETPLACE,
                external_order_id=order_id,
                request=request,
                now=now,
            )
        except NotFound:
            outcome.unknown_orders += 1
            continue
        if result.hold_ids:
            outcome.held += 1
        elif result.erased:
            outcome.erased += 1
