"""Rights requests as a workflow: a person names themselves, the vault finds their orders on every
marketplace and account of the seller, a person of the seller confirms which are theirs, and the action
(access, correction, erasure) is carried out on exactly the confirmed set.

1. :func:`open_request` records the person's values (sealed under the tenant key: they are PII), the
   identity check and who made it, and a due date from the jurisdiction (:data:`DEFAULT_DUE_DAYS`, or the
   operator's own table). A marketplace's own notice opens one through :func:`open_request_from_marketplace`,
   with the orders it names: Shopify's privacy webhooks (connectors/shopify/webhooks.py), or a notice a
   person of the seller enters by its order ids, id and date (:func:`open_notice`, an Amazon deletion
   notice say).
2. :func:`find_matches` looks the person up in the blind index (vault/blind_index.py), across orders of
   any ``marketplace`` code, and opens only the records the index matched, to re-check them and show them
   masked (vault/masking.py) for confirmation.
3. :func:`confirm` marks the orders that are the person's; :func:`carry_out` acts on those only, through
   vault/rights.py's per-order functions (each order audited with its purpose there). Legal holds win:
   the outcome names the hold that kept each order. With nobody there to hand an access export to (a
   webhook), :func:`carry_out_sealed` seals it for the owner (vault/privacy_exports.py), who fetches it
   later with :func:`fetch_request_export`.

Every step appends an event with its purpose to the tenant's audit chain (``rights.request.*``): ids,
counts, the jurisdiction and the terms given (``name``, ``phone``...), never the values. The caller commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault import rights
from vault.audit import append_event
from vault.blind_index import PersonValues, find_label_records, matches
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.masking import masked_summary
from vault.models import MarketplaceAccount, Order, PrivacyExport, RightsRequestOrder, RightsRequestRow, utcnow
from vault.privacy_exports import fetch_export, store_export
from vault.records import LabelRecord
from vault.reports import Page
from vault.sealed import RIGHTS_REQUEST_VALUES

ACCESS, CORRECTION, ERASURE = "access", "correction", "erasure"
KINDS = (ACCESS, CORRECTION, ERASURE)
OPEN, COMPLETED = "open", "completed"
REQUEST_FORMAT = "labelvault-rights-request-export/1"
_CHUNK = 1000

#: Days to answer, by jurisdiction code; the operator may give their own table (LABELVAULT_RIGHTS_DUE_DAYS).
#: These are working defaults a seller's counsel should check, not legal advice: GDPR and UK GDPR allow
#: one month (30 days here), the CCPA 45 days, Brazil's LGPD 15 days; ``default`` covers any other.
DEFAULT_DUE_DAYS: Mapping[str, int] = {"eu": 30, "uk": 30, "us-ca": 45, "br": 15, "default": 30}
#: Fields of a label record a correction may change.
CORRECTABLE = frozenset(LabelRecord.field_names()) - {"address_type"}


def parse_due_days(text: str) -> dict[str, int]:
    """``eu=30,us-ca=45,default=30`` as a table (what LABELVAULT_RIGHTS_DUE_DAYS holds); needs ``default``."""
    table: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        code, sep, days = part.partition("=")
        if not sep or not code.strip() or not days.strip().isdigit() or int(days) < 1:
            raise ValueError(f"a due-date rule is code=days with days ≥ 1, got {part[:40]!r}")
        table[code.strip().lower()] = int(days)
    if "default" not in table:
        raise ValueError("the due-date table needs a default=<days> rule")
    return table


@dataclass(frozen=True, slots=True)
class RequestValues:
    """What a request seals: the person's identifying values and, for a correction, the new record fields."""

    person: PersonValues = field(repr=False)
    correction: Mapping[str, str | None] = field(default_factory=dict, repr=False)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"person": self.person.as_dict(), "correction": dict(self.correction)}, ensure_ascii=False, sort_keys=True
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RequestValues:
        raw = json.loads(data)
        return cls(PersonValues(**raw["person"]), raw["correction"])


@dataclass(frozen=True, slots=True)
class Match:
    """One order a request found, as the confirming person sees it: masked, with where it came from."""

    order_id: int
    marketplace: str
    account: str
    external_order_id: str
    masked: str
    named: bool
    confirmed: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What carrying out a request did, by order; ``held`` names the holds that kept each order kept."""

    request_id: int
    done: tuple[str, ...]
    held: Mapping[str, str]
    export: dict[str, Any] | None = None
    #: The sealed export's id (vault/privacy_exports.py) when :func:`carry_out_sealed` kept it for the owner.
    sealed_export: int | None = None


class RightsRequestError(rights.RightsError):
    """A request step can't be taken as asked (the message says why; no PII)."""


def request_context(row: RightsRequestRow) -> bytes:
    """AAD context of a request's sealed values: they open only on their own row."""
    return RIGHTS_REQUEST_VALUES.context(row.tenant_id, row.id)


#: The steps of a request the chain records, each as ``rights.request.<step>``.
STEPS = ("open", "named", "match", "confirm", "complete", "export-sealed")


def _audit(
    session: Session, row: RightsRequestRow, *, actor: str, step: str, outcome: str = "ok", **extra: Any
) -> None:
    assert step in STEPS, step
    append_event(
        session,
        tenant_id=row.tenant_id,
        actor=actor,
        action=f"rights.request.{step}",
        outcome=outcome,
        purpose=f"rights:{row.kind}",
        details={"request": row.id, "reference": row.reference[:100], **extra},
    )


def get_request(session: Session, *, tenant_id: int, request_id: int) -> RightsRequestRow:
    """The tenant's request; another tenant's is NotFound."""
    row = session.get(RightsRequestRow, request_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such rights request")
    return row


def request_values(session: Session, *, keys: KeyManager, row: RightsRequestRow) -> RequestValues:
    """Open the request's sealed values (the person's, and a correction's new ones)."""
    if row.values_envelope is None:
        raise RightsRequestError("the request's values were erased with its completion")
    return RequestValues.from_bytes(keys.open(session, row.tenant_id, request_context(row), row.values_envelope))


def marketplace_of(source: str) -> str | None:
    """The marketplace code a request came from (``marketplace:shopify`` → ``shopify``); ``None`` for the seller's."""
    kind, _sep, code = source.partition(":")
    return code if kind == "marketplace" and code else None


def open_request(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    kind: str,
    person: PersonValues,
    reference: str,
    verified_by: str,
    verification: str,
    actor: str,
    jurisdiction: str = "default",
    received_at: datetime | None = None,
    due_days: Mapping[str, int] = DEFAULT_DUE_DAYS,
    correction: Mapping[str, str | None] | None = None,
    source: str = "seller",
) -> RightsRequestRow:
    """Open a request: seal the person's values, record the identity check, date it by jurisdiction; audited."""
    if kind not in KINDS:
        raise RightsRequestError(f"a rights request is one of {', '.join(KINDS)}")
    if not reference.strip() or not verified_by.strip() or not verification.strip():
        raise RightsRequestError("a rights request needs a reference, who checked the identity and how")
    terms = person.terms()  # unreadable values fail here, before anything is stored
    correction = dict(correction or {})
    unknown = set(correction) - CORRECTABLE
    if unknown:
        raise RightsRequestError(f"a correction can change {', '.join(sorted(CORRECTABLE))}; not {sorted(unknown)}")
    if (kind == CORRECTION) != bool(correction):
        raise RightsRequestError("a correction request, and only one, gives the corrected values")
    code = jurisdiction.strip().lower() or "default"
    days = due_days.get(code, due_days["default"])
    received = received_at or utcnow()
    row = RightsRequestRow(
        tenant_id=tenant_id,
        kind=kind,
        reference=reference.strip()[:100],
        source=source[:40],
        jurisdiction=code[:40],
        received_at=received,
        due_at=received + timedelta(days=days),
        verified_by=verified_by.strip()[:100],
        verification=verification.strip()[:200],
        created_by=actor[:100],
        state=OPEN,
    )
    session.add(row)
    session.flush()
    sealed, version = keys.seal(session, tenant_id, request_context(row), RequestValues(person, correction).to_bytes())
    row.values_envelope, row.values_key_version = sealed, version
    session.flush()
    _audit(
        session,
        row,
        actor=actor,
        step="open",
        source=row.source,
        jurisdiction=row.jurisdiction,
        due_at=row.due_at.isoformat(),
        terms=sorted(terms),
        identity_verified_by=row.verified_by,
        verification=row.verification,
    )
    return row


def open_request_from_marketplace(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    marketplace: str,
    kind: str,
    reference: str,
    actor: str,
    order_ids: Iterable[str] = (),
    values: PersonValues | None = None,
    jurisdiction: str = "default",
    received_at: datetime | None = None,
    due_days: Mapping[str, int] = DEFAULT_DUE_DAYS,
) -> RightsRequestRow:
    """A marketplace's own request (Shopify's ``customers/redact``, ``customers/data_request``, an Amazon
    deletion notice): the marketplace checked who asked, so the orders it names (its own order ids, on any of
    the seller's accounts of that marketplace) are matched and confirmed at once; values it gives (an e-mail,
    a phone) are looked up like a person's and await confirmation. Unknown order ids are counted, not fatal.
    """
    if kind == CORRECTION:
        raise RightsRequestError("a marketplace's notice asks for access or erasure, not a correction")
    wanted = sorted({o.strip() for o in order_ids if o.strip()})
    person = values or PersonValues()
    if not wanted and not person.terms():
        raise RightsRequestError("a marketplace's notice must name orders or give the person's values")
    row = open_request(
        session,
        keys=keys,
        tenant_id=tenant_id,
        kind=kind,
        person=person,
        reference=reference,
        verified_by=f"marketplace:{marketplace}",
        verification="the marketplace's own request",
        actor=actor,
        jurisdiction=jurisdiction,
        received_at=received_at,
        due_days=due_days,
        source=f"marketplace:{marketplace}",
    )
    named: list[int] = []
    for start in range(0, len(wanted), _CHUNK):  # a whole shop's orders stay under the drivers' bind limits
        named += session.scalars(
            select(Order.id).where(
                Order.tenant_id == tenant_id,
                Order.marketplace == marketplace,
                Order.external_order_id.in_(wanted[start : start + _CHUNK]),
            )
        )
    session.add_all(RightsRequestOrder(request_id=row.id, order_id=o, named=True, confirmed=True) for o in named)
    session.flush()
    _audit(session, row, actor=actor, step="named", named=len(named), unknown_order_ids=len(wanted) - len(named))
    if person.terms():
        find_matches(session, keys=keys, tenant_id=tenant_id, request_id=row.id, actor=actor)
    return row


def open_notice(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    marketplace: str,
    kind: str,
    notice_id: str,
    notice_date: datetime,
    order_ids: Sequence[str],
    actor: str,
    jurisdiction: str = "default",
    due_days: Mapping[str, int] = DEFAULT_DUE_DAYS,
    now: datetime | None = None,
) -> tuple[RightsRequestRow, int]:
    """A marketplace's notice a person of the seller enters (an Amazon deletion notice from Seller Central):
    its own id is the reference and its date the day received (the due date counts from it), and the orders
    it names are locked in like a webhook's. Returns the request and how many of the ids the tenant holds."""
    if notice_date > (now or utcnow()):
        raise RightsRequestError("the notice's date is in the future")
    row = open_request_from_marketplace(
        session, keys=keys, tenant_id=tenant_id, marketplace=marketplace, kind=kind, reference=notice_id,
        actor=actor, order_ids=order_ids, jurisdiction=jurisdiction, received_at=notice_date, due_days=due_days,
    )  # fmt: skip
    return row, sum(r.named for r in _rows(session, row).values())


def _rows(session: Session, row: RightsRequestRow) -> dict[int, RightsRequestOrder]:
    return {
        r.order_id: r
        for r in session.scalars(select(RightsRequestOrder).where(RightsRequestOrder.request_id == row.id))
    }


def find_matches(session: Session, *, keys: KeyManager, tenant_id: int, request_id: int, actor: str) -> list[Match]:
    """Look the person up in the blind index and return every match (and named order), masked; audited.

    Only the records the index matched are opened, to re-check the match and mask them.
    """
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    if row.state != OPEN:
        raise RightsRequestError("the request is completed")
    person = request_values(session, keys=keys, row=row).person
    found = (
        find_label_records(session, index_keys=keys.index_keys, tenant_id=tenant_id, person=person)
        if person.terms()
        else []
    )
    existing = _rows(session, row)
    orders = _orders(session, tenant_id, [*found, *existing])
    added = 0
    for order_id in found:
        order = orders[order_id]
        if order_id in existing or order.label is None:
            continue
        if not matches(unseal_label(session, keys=keys, order=order), person):
            continue  # a digest collision (or a stale entry): not this person
        existing[order_id] = RightsRequestOrder(request_id=row.id, order_id=order_id, named=False, confirmed=False)
        session.add(existing[order_id])
        added += 1
    session.flush()
    _audit(session, row, actor=actor, step="match", found=added, total=len(existing))
    return _masked(session, keys, orders, existing)


def _orders(session: Session, tenant_id: int, ids: Sequence[int]) -> dict[int, Order]:
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(Order).where(Order.tenant_id == tenant_id, Order.id.in_(ids)))}


def _masked(
    session: Session, keys: KeyManager, orders: Mapping[int, Order], rows: Mapping[int, RightsRequestOrder]
) -> list[Match]:
    names = dict(
        session.execute(
            select(MarketplaceAccount.id, MarketplaceAccount.name).where(
                MarketplaceAccount.id.in_({o.account_id for o in orders.values()})
            )
        ).all()
    )
    out = []
    for order_id in sorted(rows):
        order, r = orders[order_id], rows[order_id]
        masked = "" if order.label is None else masked_summary(unseal_label(session, keys=keys, order=order))
        out.append(
            Match(order_id, order.marketplace, names.get(order.account_id, ""), order.external_order_id,
                  masked or "(no label data)", r.named, r.confirmed)
        )  # fmt: skip
    return out


def matches_of(session: Session, *, keys: KeyManager, tenant_id: int, request_id: int) -> list[Match]:
    """The request's matches as they stand (masked), for the page that confirms them."""
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    rows = _rows(session, row)
    return _masked(session, keys, _orders(session, tenant_id, list(rows)), rows)


def confirm(session: Session, *, tenant_id: int, request_id: int, order_ids: Iterable[int], actor: str) -> int:
    """Confirm which matched orders are the person's (the others are unconfirmed); returns how many. Audited."""
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    if row.state != OPEN:
        raise RightsRequestError("the request is completed")
    chosen = set(order_ids)
    rows = _rows(session, row)
    if chosen - set(rows):
        raise RightsRequestError("only orders the request found can be confirmed")
    for order_id, r in rows.items():
        r.confirmed = r.named or order_id in chosen  # a marketplace's named orders stay confirmed
    session.flush()
    count = sum(r.confirmed for r in rows.values())
    _audit(session, row, actor=actor, step="confirm", confirmed=count, unconfirmed=len(rows) - count)
    return count


def carry_out(
    session: Session, *, keys: KeyManager, tenant_id: int, request_id: int, actor: str, now: datetime | None = None
) -> Outcome:
    """Carry the request out on its confirmed orders only, then close it (its sealed values are shredded).

    Each order is handled and audited by vault/rights.py; a legal hold keeps an order and the outcome says
    which hold. An access request returns one machine-readable JSON export of every confirmed order.
    """
    now = now or utcnow()
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    if row.state != OPEN:
        raise RightsRequestError("the request is completed")
    values = request_values(session, keys=keys, row=row)
    rows = {k: r for k, r in _rows(session, row).items() if r.confirmed}
    orders = _orders(session, tenant_id, list(rows))
    per_order = rights.RightsRequest(actor=actor, request_id=row.reference, verified_by=row.verified_by)
    done: list[str] = []
    held: dict[str, str] = {}
    exports = []
    for order_id in sorted(rows):
        order, r = orders[order_id], rows[order_id]
        ref = {"marketplace": order.marketplace, "external_order_id": order.external_order_id}
        name = f"{order.marketplace}:{order.external_order_id}"
        if row.kind == ACCESS:
            exports.append(
                rights.export_order_data(session, keys=keys, tenant_id=tenant_id, **ref, request=per_order, now=now)
            )
            r.outcome = "exported"
        elif row.kind == ERASURE:
            erased = rights.erase_order(session, tenant_id=tenant_id, **ref, request=per_order, now=now)
            r.outcome = "held" if erased.hold_ids else ("already-erased" if erased.already_erased else "erased")
            if erased.hold_ids:
                r.hold_ids = list(erased.hold_ids)
                held[name] = erased.hold_summary
        else:
            if order.label is None:
                r.outcome = "no-label-data"
                continue
            current = unseal_label(session, keys=keys, order=order)
            corrected = replace(current, **cast(dict[str, Any], dict(values.correction)))
            rights.correct_address(session, keys=keys, tenant_id=tenant_id, **ref, label=corrected, request=per_order)
            r.outcome = "corrected"
        done.append(name)
    row.state, row.completed_at = COMPLETED, now
    row.values_envelope = row.values_key_version = None  # the person's values are kept no longer than needed
    counts = {o: sum(r.outcome == o for r in rows.values()) for o in {r.outcome for r in rows.values()} if o}
    row.outcome = {"counts": counts, "hold_ids": sorted({h for r in rows.values() for h in (r.hold_ids or [])})}
    session.flush()
    _audit(session, row, actor=actor, step="complete", outcome="completed", **row.outcome)
    export = None
    if row.kind == ACCESS:
        export = {
            "format": REQUEST_FORMAT,
            "request_reference": row.reference,
            "exported_at": now.isoformat(),
            "orders": exports,
        }
    return Outcome(row.id, tuple(done), held, export)


def awaiting_confirmation(session: Session, *, tenant_id: int, request_id: int) -> int:
    """How many of the request's matches nobody has confirmed (a marketplace's values found more than it named)."""
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    return sum(not r.confirmed for r in _rows(session, row).values())


def carry_out_sealed(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    request_id: int,
    actor: str,
    account_id: int,
    source: str,
    now: datetime | None = None,
) -> Outcome:
    """:func:`carry_out` with nobody there to hand the export to (a marketplace's webhook): an access request's
    JSON export is sealed for the owner (vault/privacy_exports.py, fetched with :func:`fetch_request_export`)
    rather than returned, and the request's outcome names it (``export_id``); audited as ``export-sealed``."""
    outcome = carry_out(session, keys=keys, tenant_id=tenant_id, request_id=request_id, actor=actor, now=now)
    if outcome.export is None:
        return outcome
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    orders = [name.partition(":")[2] for name in outcome.done]
    export = store_export(
        session, keys=keys, tenant_id=tenant_id, account_id=account_id, source=source, reference=row.reference,
        orders=orders, content=outcome.export,
    )  # fmt: skip
    row.outcome = {**(row.outcome or {}), "export_id": export.id}  # a new dict: the JSON column sees the change
    session.flush()
    _audit(session, row, actor=actor, step="export-sealed", export_id=export.id, orders=len(orders))
    return replace(outcome, export=None, sealed_export=export.id)


def export_id_of(row: RightsRequestRow) -> int | None:
    """The sealed export a completed access request left for the owner, if it left one."""
    value = (row.outcome or {}).get("export_id")
    return value if isinstance(value, int) else None


def fetch_request_export(
    session: Session, *, keys: KeyManager, tenant_id: int, request_id: int, actor: str, ip: str | None = None
) -> dict[str, Any]:
    """Open the sealed export of one of the tenant's requests for the owner to pass on (audited by
    :func:`vault.privacy_exports.fetch_export` as ``rights.export-fetched``); NotFound when it has none."""
    row = get_request(session, tenant_id=tenant_id, request_id=request_id)
    export_id = export_id_of(row)
    if export_id is None:
        raise NotFound("the request has no sealed export")
    return fetch_export(session, keys=keys, tenant_id=tenant_id, export_id=export_id, actor=actor, ip=ip)


@dataclass(frozen=True, slots=True)
class DoneRequest:
    """A completed request (for the dashboard's list of recent ones): when it was done, and its sealed export."""

    id: int
    kind: str
    reference: str
    source: str
    due_at: datetime
    completed_at: datetime
    export_id: int | None
    export_fetched: bool


def completed_requests(session: Session, *, tenant_id: int, page: int = 1, per_page: int = 20) -> Page[DoneRequest]:
    """The tenant's completed requests, newest first, a page at a time, with whether their export was fetched."""
    done_here = (RightsRequestRow.tenant_id == tenant_id, RightsRequestRow.state == COMPLETED)
    total = session.scalar(select(func.count()).select_from(RightsRequestRow).where(*done_here)) or 0
    rows = list(
        session.scalars(
            select(RightsRequestRow)
            .where(*done_here)
            .order_by(RightsRequestRow.completed_at.desc(), RightsRequestRow.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    ids = [i for i in map(export_id_of, rows) if i is not None]
    done = select(PrivacyExport.id).where(PrivacyExport.id.in_(ids), PrivacyExport.fetched_at.is_not(None))
    fetched = set(session.scalars(done)) if ids else set()
    items = [
        DoneRequest(r.id, r.kind, r.reference, r.source, r.due_at, r.completed_at or r.received_at, export_id_of(r),
                    export_id_of(r) in fetched)
        for r in rows
    ]  # fmt: skip
    return Page(items, int(total), page, per_page)


@dataclass(frozen=True, slots=True)
class DueRequest:
    """An open request and when it is due (for the dashboard's due and overdue lists)."""

    id: int
    kind: str
    reference: str
    source: str
    jurisdiction: str
    due_at: datetime
    overdue: bool


def open_requests(session: Session, *, tenant_id: int, now: datetime | None = None) -> list[DueRequest]:
    """The tenant's open requests, soonest due first, each saying whether it is overdue."""
    now = now or utcnow()
    rows = session.scalars(
        select(RightsRequestRow)
        .where(RightsRequestRow.tenant_id == tenant_id, RightsRequestRow.state == OPEN)
        .order_by(RightsRequestRow.due_at, RightsRequestRow.id)
    )
    return [DueRequest(r.id, r.kind, r.reference, r.source, r.jurisdiction, r.due_at, r.due_at < now) for r in rows]
