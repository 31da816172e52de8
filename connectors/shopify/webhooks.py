"""Shopify's mandatory privacy webhooks, verified and turned into rights requests (no web framework here).

Shopify POSTs ``customers/data_request``, ``customers/redact`` and ``shop/redact`` to the app, signed with
``X-Shopify-Hmac-Sha256`` (base64 of the HMAC-SHA256 of the raw body with the app's client secret), at
least once (a repeat has the same ``X-Shopify-Webhook-Id``). Each lands in the rights-request workflow
(vault/rights_requests.py), one request per tenant that connected the shop, opened with
:func:`~vault.rights_requests.open_request_from_marketplace` (Shopify checked who asked, so the orders it
names are confirmed at once) and due in Shopify's 30 days:

- ``customers/data_request``: an access request on the orders Shopify names, and the customer's phone from
  the payload sealed in the request to find their orders elsewhere. If that finds nothing beyond what
  Shopify named it is carried out at once and the JSON export sealed for the owner
  (:func:`~vault.rights_requests.carry_out_sealed`, vault/privacy_exports.py; the dashboard's request page
  downloads it); otherwise it stays open on the dashboard for the owner to confirm the other matches. The
  answer to Shopify carries nothing of it.
- ``customers/redact``: an erasure request on the customer's orders Shopify names, carried out at once (a
  legal hold wins; the request's outcome names the hold). The payload's e-mail and phone are not kept.
- ``shop/redact``: an erasure request on every order of the shop's accounts, carried out at once, then
  each account removed (credentials shredded) unless a hold kept one of its orders.

Every step is audited by the workflow with its purpose (``rights.request.*``, and ``rights.access`` /
``rights.erasure`` per order); each delivery adds one summary event per tenant (``shopify.webhook``) with
its topic, delivery id, the request's id and counts. Nothing of the payload but the shop domain, the order
ids, the request id and (data requests only) the phone is read; the phone never leaves the sealed request.
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
from vault import rights_requests as rr
from vault.audit import append_event
from vault.blind_index import PersonValues
from vault.keys import KeyManager
from vault.marketplace_accounts import remove_account
from vault.models import MarketplaceAccount, Order, RightsRequestRow, ShopifyWebhook, utcnow

DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT = "customers/data_request", "customers/redact", "shop/redact"
TOPICS = (DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT)
ACTOR = "shopify-webhook"
MAX_ORDERS = 10_000
#: Shopify gives an app 30 days to act on a privacy webhook, wherever the customer lives.
DUE_DAYS: Mapping[str, int] = {"default": 30}


class WebhookRejected(ValueError):
    """A delivery that isn't a well-formed privacy webhook (the message says what, never the body)."""


@dataclass(frozen=True, slots=True)
class PrivacyWebhook:
    """A verified delivery's topic, id, shop and the order ids it names (and a data request's phone)."""

    topic: str
    webhook_id: str
    shop: str
    order_ids: tuple[str, ...] = ()
    #: Shopify's data request id (``customers/data_request``), the request's reference.
    request_ref: str | None = None
    #: The customer's phone as Shopify gives it (data requests only): PII, only ever sealed in the request.
    phone: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class Outcome:
    """What handling a delivery did: counts and ids only, safe to log."""

    duplicate: bool = False
    tenants: int = 0
    exported: int = 0
    erased: int = 0
    held: int = 0
    accounts_removed: int = 0
    unknown_orders: int = 0
    #: Access requests left open for the owner to confirm more matches.
    awaiting_owner: int = 0
    requests: list[int] = field(default_factory=list)
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


def _phone(customer: Any) -> str | None:
    """The customer's phone if it is one we can look up (E.164 as Shopify stores it); anything else: none."""
    phone = customer.get("phone") if isinstance(customer, Mapping) else None
    if not isinstance(phone, str) or not phone.strip() or len(phone) > 40:
        return None
    try:
        return phone.strip() if PersonValues(phone=phone.strip()).terms() else None
    except ValueError:
        return None  # unreadable: the orders Shopify names still stand


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
        request_ref=str(ref)[:40] if isinstance(ref, (int, str)) and not isinstance(ref, bool) else None,
        phone=_phone(payload.get("customer")),
    )


def reference(webhook: PrivacyWebhook) -> str:
    """The rights request's reference: Shopify's data request id, or the topic and delivery id (no PII)."""
    if webhook.topic == DATA_REQUEST and webhook.request_ref:
        return f"shopify:data_request:{webhook.request_ref}"
    return f"shopify:{webhook.topic}:{webhook.webhook_id}"[:100]


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
    held: set[str] = set()
    for start in range(0, len(order_ids), 1000):
        held.update(
            session.scalars(
                select(Order.external_order_id).where(
                    Order.account_id.in_([a.id for a in accounts]),
                    Order.external_order_id.in_(order_ids[start : start + 1000]),
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
        before = (outcome.exported, outcome.erased, outcome.held, outcome.unknown_orders)
        if webhook.topic == SHOP_REDACT:
            row = _shop_redact(
                session, keys=keys, tenant_id=tenant_id, accounts=accounts, webhook=webhook, outcome=outcome, now=now
            )
        else:
            row = _customer_request(
                session, keys=keys, tenant_id=tenant_id, accounts=accounts, webhook=webhook, outcome=outcome, now=now
            )
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
            purpose=rr.ACCESS if webhook.topic == DATA_REQUEST else rr.ERASURE,
            details={
                "topic": webhook.topic,
                "webhook_id": webhook.webhook_id,
                "shop": webhook.shop,
                "rights_request": row.id if row is not None else None,
                "state": row.state if row is not None else None,
                "orders_named": len(webhook.order_ids),
                "exported": exported,
                "erased": erased,
                "held": held,
                "not_held_here": unknown,
            },
            now=now,
        )
    return outcome


def _open(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    kind: str,
    ref: str,
    order_ids: list[str],
    phone: str | None,
    outcome: Outcome,
    now: datetime,
) -> RightsRequestRow | None:
    """The tenant's request for what Shopify asked, or None when it names nothing this tenant holds."""
    if not order_ids and not phone:
        return None
    row = rr.open_request_from_marketplace(
        session, keys=keys, tenant_id=tenant_id, marketplace=MARKETPLACE, kind=kind, reference=ref, actor=ACTOR,
        order_ids=order_ids, values=PersonValues(phone=phone) if phone else None, received_at=now, due_days=DUE_DAYS,
    )  # fmt: skip
    outcome.requests.append(row.id)
    return row


def _count(row: RightsRequestRow, *states: str) -> int:
    counts = (row.outcome or {}).get("counts", {})
    return sum(int(counts.get(s, 0)) for s in states)


def _customer_request(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    accounts: list[MarketplaceAccount],
    webhook: PrivacyWebhook,
    outcome: Outcome,
    now: datetime,
) -> RightsRequestRow | None:
    ids = _of_accounts(session, accounts, webhook.order_ids)
    outcome.unknown_orders += len(webhook.order_ids) - len(ids)
    access = webhook.topic == DATA_REQUEST
    row = _open(
        session, keys=keys, tenant_id=tenant_id, kind=rr.ACCESS if access else rr.ERASURE, ref=reference(webhook),
        order_ids=ids, phone=webhook.phone if access else None, outcome=outcome, now=now,
    )  # fmt: skip
    if row is None:
        return None
    if access and rr.awaiting_confirmation(session, tenant_id=tenant_id, request_id=row.id):
        outcome.awaiting_owner += 1  # the phone found orders Shopify didn't name: the owner confirms them
        return row
    done = rr.carry_out_sealed(
        session, keys=keys, tenant_id=tenant_id, request_id=row.id, actor=ACTOR, account_id=accounts[0].id,
        source=f"shopify:{DATA_REQUEST}", now=now,
    )  # fmt: skip
    if done.sealed_export is not None:
        outcome.exports.append(done.sealed_export)
    _tally(row, outcome)
    return row


def _tally(row: RightsRequestRow, outcome: Outcome) -> None:
    outcome.exported += _count(row, "exported")
    outcome.erased += _count(row, "erased")
    outcome.held += _count(row, "held")


def _shop_redact(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    accounts: list[MarketplaceAccount],
    webhook: PrivacyWebhook,
    outcome: Outcome,
    now: datetime,
) -> RightsRequestRow | None:
    """Erase every order of the shop's accounts through one erasure request, then remove each account no
    hold kept an order of (an account with nothing left to erase is removed all the same)."""
    query = select(Order.external_order_id, Order.account_id).where(Order.account_id.in_([a.id for a in accounts]))
    account_of: dict[str, int] = {row.external_order_id: row.account_id for row in session.execute(query)}
    row = _open(
        session, keys=keys, tenant_id=tenant_id, kind=rr.ERASURE, ref=reference(webhook),
        order_ids=list(account_of), phone=None, outcome=outcome, now=now,
    )  # fmt: skip
    kept: set[int] = set()
    if row is not None:
        done = rr.carry_out(session, keys=keys, tenant_id=tenant_id, request_id=row.id, actor=ACTOR, now=now)
        kept = {account_of[name.partition(":")[2]] for name in done.held}
        _tally(row, outcome)
    for account in accounts:
        if account.id not in kept:
            remove_account(session, account=account, actor=ACTOR, now=now)
            outcome.accounts_removed += 1
    return row
