"""Label requests made with an ``Idempotency-Key``: remembered for a window, and delivered again on a retry.

A station that lost the answer to a label request (a timeout, a dropped connection) retries it with the same
key and gets the same labels again, without new issues using up the order's reissue cap; the retry is
audited as ``label.redeliver`` (purpose ``logistics``), the same request with a new key as a new release.

What is remembered (:class:`~vault.models.LabelDelivery`) holds no PII: the key's SHA-256, scoped to the
client; a digest of the request, so that a different request with the same key is told apart; the format,
the options and the time printed on the labels; and each order's reference with its outcome (the issue
number released, or the refusal's reason). A retry re-renders the labels from the sealed records. Storing
the rendered document instead would keep a second copy of buyer addresses outside the sealed records
(vault/sealed.py), under a key of its own, outliving an erasure or a retention purge of the record unless
those learnt to shred it too; re-rendering costs an unseal and a render per label, on retries only, and
an order erased or expired meanwhile is refused on the retry, as it must be.

:func:`claim_delivery` writes the entry first in the release's own transaction, before the reissue count:
of two concurrent requests with one key only one can insert it (the unique constraint on client and key);
the other's insert fails, it rolls back its whole release and redelivers the winner's labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vault.audit import NewEvent, append_events
from vault.clients import LabelProfile, Principal
from vault.errors import DecryptionError, NotEligible, NotFound, RefusalReason
from vault.keys import KeyManager
from vault.models import LabelDelivery
from vault.orders import snapshot_orders
from vault.release import (
    PreparedLabel,
    Refused,
    ReleasedLabel,
    check_eligible,
    client_actor,
    order_ref,
    profiled_label,
)

REDELIVER_ACTION = "label.redeliver"
#: The purpose recorded on a redelivery: the same labels handed over again, not a new issue.
LOGISTICS = "logistics"


def key_digest(key: str) -> str:
    """How an idempotency key is stored: its SHA-256 (the key may hold anything its client chose)."""
    return hashlib.sha256(key.encode()).hexdigest()


def request_digest(kind: str, fmt: str, options: dict[str, Any], refs: Sequence[tuple[str, str]]) -> str:
    """A digest of what a label request asks for, to tell a retry from a different request with the same key."""
    canonical = json.dumps([kind, fmt, sorted(options.items()), [list(ref) for ref in refs]], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A remembered label request: what it asked for and, per order in request order, what it got."""

    request_hash: str
    fmt: str
    options: dict[str, Any]
    #: ``(marketplace, order id, issue)`` released, ``(marketplace, order id, reason)`` refused; a malformed
    #: reference is ``(None, None, reason)``.
    orders: tuple[tuple[str | None, str | None, int | str], ...]
    printed_at: datetime


def find_delivery(session: Session, *, client_id: int, key_hash: str, now: datetime) -> Delivery | None:
    """The client's unexpired request made with this key, if any."""
    row = session.scalars(
        select(LabelDelivery).where(
            LabelDelivery.client_id == client_id, LabelDelivery.key_hash == key_hash, LabelDelivery.expires_at > now
        )
    ).one_or_none()
    if row is None:
        return None
    orders = tuple((m, o, outcome) for m, o, outcome in row.orders)
    return Delivery(row.request_hash, row.format, dict(row.options), orders, row.printed_at)


def claim_delivery(
    session: Session,
    *,
    client: Principal,
    key_hash: str,
    request_hash: str,
    fmt: str,
    options: dict[str, Any],
    printed_at: datetime,
    window: timedelta,
) -> LabelDelivery:
    """Claim the key for a release about to be recorded: the first write of the release's transaction.

    The client's expired entries go first, so a key may be used again once its window has passed. Flushes:
    raises :class:`sqlalchemy.exc.IntegrityError` if another request with the same key got there first (on
    PostgreSQL after waiting for that one's commit), and the caller rolls back and redelivers that one's
    labels. Claiming before counting means the loser never burns an issue nor meets the cap the winner used.
    :func:`settle_delivery` then records the outcomes; the caller commits.
    """
    session.execute(
        delete(LabelDelivery).where(LabelDelivery.client_id == client.id, LabelDelivery.expires_at <= printed_at)
    )
    row = LabelDelivery(
        tenant_id=client.tenant_id,
        client_id=client.id,
        key_hash=key_hash,
        request_hash=request_hash,
        format=fmt,
        options=options,
        orders=[],
        printed_at=printed_at,
        created_at=printed_at,
        expires_at=printed_at + window,
    )
    session.add(row)
    session.flush()
    return row


def settle_delivery(row: LabelDelivery, results: Sequence[ReleasedLabel | Refused]) -> None:
    """Record what the claimed request got, per order in request order (written at the caller's commit)."""
    row.orders = [
        [r.marketplace, r.order_id, r.issue if isinstance(r, ReleasedLabel) else str(r.reason)] for r in results
    ]


def prepare_redelivery(
    session: Session, *, keys: KeyManager, client: Principal, delivery: Delivery, profile: LabelProfile, now: datetime
) -> list[PreparedLabel | Refused]:
    """The remembered request's orders again, in order; reads only.

    A released order is looked up, checked (erased, expired, cancelled, status: as for a release, but not
    against the reissue cap: it was issued already) and unsealed under the client's current profile; a
    refused one stays refused with its reason.
    """
    wanted = [
        (m, o) for m, o, outcome in delivery.orders if m is not None and o is not None and isinstance(outcome, int)
    ]
    orders = snapshot_orders(session, tenant_id=client.tenant_id, refs=wanted)
    out: list[PreparedLabel | Refused] = []
    for marketplace, order_id, outcome in delivery.orders:
        if marketplace is None or order_id is None or isinstance(outcome, str):
            out.append(Refused(marketplace, order_id, RefusalReason(str(outcome))))
            continue
        try:
            order = orders.get((marketplace, order_id))
            if order is None:
                raise NotFound("no such order")
            check_eligible(order, now=now)
            out.append(profiled_label(session, keys, order, profile, marketplace, order_id))
        except (NotFound, NotEligible, DecryptionError) as exc:
            out.append(Refused(marketplace, order_id, exc.reason))
    return out


def record_redelivery(
    session: Session,
    *,
    client: Principal,
    delivery: Delivery,
    outcomes: Sequence[PreparedLabel | Refused],
    ip: str,
    now: datetime,
) -> None:
    """Audit a redelivery, in the caller's transaction: ``redelivered`` per label sent again (with its issue
    number), ``refused:<reason>`` per order released the first time and refused now. Nothing is counted."""
    events: list[NewEvent] = []
    actor = client_actor(client)
    for (_, _, first), outcome in zip(delivery.orders, outcomes, strict=True):
        if isinstance(first, str) or outcome.marketplace is None or outcome.order_id is None:
            continue  # refused the first time, and audited then
        ref = order_ref(outcome.marketplace, outcome.order_id)
        details: dict[str, Any] = {"issue": first, "format": delivery.fmt}
        if isinstance(outcome, PreparedLabel):
            details["fields"] = list(outcome.released_fields)
            events.append(NewEvent(actor, REDELIVER_ACTION, "redelivered", ref, ip, LOGISTICS, details))
        else:
            events.append(NewEvent(actor, REDELIVER_ACTION, f"refused:{outcome.reason}", ref, ip, LOGISTICS, details))
    if events:
        append_events(session, tenant_id=client.tenant_id, events=events, now=now)
