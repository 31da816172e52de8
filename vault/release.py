"""Releasing a label: the one way buyer data leaves the vault.

:func:`prepare_release` (order lookup inside the client's tenant → eligibility → unseal → the client's label
profile; reads only) and :func:`record_release` / :func:`record_batch` (reissue count → audit event) are the
domain half of the label API's pipeline, in the caller's transaction. The caller renders in between, commits,
and sends the label only after the commit succeeded: if the audit event can't be written, the transaction
fails and nothing is released.

:func:`release_batch` is the whole batch path (:func:`prepare_batch` → render → :func:`record_batch` →
commit) for every way a wave of labels is printed: the label API's batch route and the dashboard's daily
print run both call it, so a wave is checked, counted and audited the same way whoever prints it; an order
whose label can't be rendered is refused there and the rest printed (:func:`render_isolating`).

:func:`preview_label` shows a label to a dashboard user along the same path (lookup → eligibility → unseal →
profile), audited as a preview and not counted as an issue.

Every refusal event is built here (:func:`_refusal_event`), from the :class:`~vault.errors.RefusalReason` the
refusing error carries: :func:`record_refusal` appends one for a refused request (the HTTP side asks for it
in one place, app/refusals.py), :func:`record_batch` appends a batch's per-order refusals together with its
releases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Engine, Table, bindparam, update
from sqlalchemy.orm import Session

from vault.audit import NewEvent, WrittenEvent, append_event, append_events
from vault.clients import DEFAULT_PROFILE, LabelProfile, Principal
from vault.db import writer_lock
from vault.directsql import DirectStatement
from vault.errors import (
    CarrierLabelOnly,
    DecryptionError,
    KeyServiceUnavailable,
    LabelNotRendered,
    NotEligible,
    NotFound,
    RefusalReason,
    ReissueCapReached,
    ReprintNotGranted,
)
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import Order, utcnow
from vault.orders import OrderSnapshot, snapshot_order, snapshot_orders
from vault.records import WITHHELD_PLATFORM_SHIPPED, LabelRecord, OrderStatus

RELEASE_ACTION = "label.release"
#: The purpose recorded on every label release (Amazon's DPP asks for the purpose of each access).
SHIPPING_LABEL = "shipping-label"
GRANT_REPRINT_ACTION = "label.grant-reprint"
PREVIEW_ACTION = "label.preview"
#: The purpose recorded on every label preview: a person looking at the label, not a label issued.
LABEL_PREVIEW = "label-preview"

#: Per-order refusals a batch reports and carries on from; anything else fails the whole batch closed.
BATCH_REFUSALS = (NotFound, NotEligible, DecryptionError)


def order_ref(marketplace: str, order_id: str) -> str:
    """How the audit chain names an order: ``marketplace:order id`` (no PII)."""
    return f"{marketplace}:{order_id}"[:160]


def client_actor(client: Principal) -> str:
    """How the audit chain names an API client (its public key id)."""
    return f"client:{client.key_id}"


@dataclass(frozen=True, slots=True)
class ReleasedLabel:
    """One released label: the profiled record (PII, never printed) and the facts of its release."""

    marketplace: str
    order_id: str
    label: LabelRecord = field(repr=False)
    released_fields: tuple[str, ...]
    issue: int  # this is the n-th label issued for the order
    audit_seq: int


def check_eligible(order: Order | OrderSnapshot, *, now: datetime) -> None:
    """Raise :class:`NotEligible` unless a label may be issued for ``order`` now (the cap is separate)."""
    _check_live(order, now=now)
    if order.label is None:
        raise NotEligible(RefusalReason.NO_LABEL_DATA)


def _check_live(order: Order | OrderSnapshot, *, now: datetime) -> None:
    """The checks every release makes of the order itself: not erased, cancelled or past retention, and in a
    state a label may be printed in."""
    if order.erased_at is not None:
        raise NotEligible(RefusalReason.ERASED)
    if order.status == OrderStatus.CANCELLED:
        raise NotEligible(RefusalReason.CANCELLED)
    if order.status not in {s.value for s in OrderStatus if s.labels_allowed}:
        raise NotEligible(RefusalReason.STATUS)
    if order.retention_until is not None and order.retention_until <= now:
        raise NotEligible(RefusalReason.RETENTION_EXPIRED)


# Built once (they run on every label request): the reissue count is one conditional UPDATE, for one order
# (run directly, vault/directsql.py) or for every order of a batch. An order's cap is the reissue cap plus
# the reprints an owner granted it (:func:`grant_reprint`).
_ORDERS = cast(Table, Order.__table__)
_UNDER_CAP = _ORDERS.c.labels_issued < bindparam("b_cap") + _ORDERS.c.reprints_granted


class _Issued(NamedTuple):
    """The order's reissue count after counting this issue."""

    labels_issued: int


_COUNT_ISSUE = DirectStatement(
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("b_id"), _UNDER_CAP)
    .values(labels_issued=_ORDERS.c.labels_issued + 1, updated_at=bindparam("b_now"))
    .returning(_ORDERS.c.labels_issued),
    _Issued,
)
_COUNT_ISSUES = (
    update(_ORDERS)
    .where(_ORDERS.c.id.in_(bindparam("b_ids", expanding=True)), _UNDER_CAP)
    .values(labels_issued=_ORDERS.c.labels_issued + 1)
    .returning(_ORDERS.c.id, _ORDERS.c.labels_issued)
)


@dataclass(frozen=True, slots=True)
class PreparedLabel:
    """An order found, eligible and unsealed for a client, not yet counted or audited: nothing is released.

    Preparing only reads, so the label can be rendered before the writes (the reissue count and the audit
    event) take their locks; :func:`record_release` / :func:`record_batch` then make it a release.
    """

    order: OrderSnapshot = field(repr=False)
    marketplace: str
    order_id: str
    label: LabelRecord = field(repr=False)
    released_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """An order reference a batch refused, with its reason code (never PII).

    ``marketplace`` and ``order_id`` are ``None`` for a malformed reference: it names no order and may hold
    anything, so it is audited without them.
    """

    marketplace: str | None
    order_id: str | None
    reason: RefusalReason


def prepare_release(
    session: Session,
    *,
    keys: KeyManager,
    client: Principal,
    marketplace: str,
    order_id: str,
    reissue_cap: int,
    now: datetime,
    order: OrderSnapshot | None = None,
    profile: LabelProfile | None = None,
) -> PreparedLabel:
    """Look up (unless ``order`` is given), check and unseal one order's label for ``client``; reads only.

    Raises :class:`~vault.errors.NotFound` for an order outside the client's tenant exactly as for a
    missing one, :class:`NotEligible` / :class:`ReissueCapReached`, and lets
    :class:`~vault.errors.KeyServiceUnavailable` and :class:`~vault.errors.DecryptionError` through.
    """
    if order is None:
        order = snapshot_order(session, tenant_id=client.tenant_id, marketplace=marketplace, external_order_id=order_id)
    profile = profile or LabelProfile.from_json(client.profile)
    return _prepared(session, keys, order, profile, marketplace, order_id, reissue_cap=reissue_cap, now=now)


def _prepared(
    session: Session,
    keys: KeyManager,
    order: OrderSnapshot,
    profile: LabelProfile,
    marketplace: str,
    order_id: str,
    *,
    reissue_cap: int,
    now: datetime,
) -> PreparedLabel:
    """A found order checked (a carrier-label-only client first, eligibility, then the cap), unsealed and
    profiled."""
    if profile.carrier_only:  # before the order's state, so the answer doesn't depend on it
        raise CarrierLabelOnly()
    check_eligible(order, now=now)
    cap = reissue_cap + order.reprints_granted
    if order.labels_issued >= cap:
        # early answer; the conditional UPDATE of the record step enforces the cap
        raise ReissueCapReached(issued=order.labels_issued, cap=cap)
    return profiled_label(session, keys, order, profile, marketplace, order_id)


def prepare_batch(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    refs: Sequence[tuple[str, str] | None],
    profile: LabelProfile,
    reissue_cap: int,
    now: datetime,
) -> list[PreparedLabel | Refused]:
    """Prepare each reference of a batch, in order: the orders looked up together, then each one checked.

    A ``None`` reference is malformed (it names no order) and is refused as not found without a name. An
    order refused for itself (:data:`BATCH_REFUSALS`) becomes a :class:`Refused`; anything else (the key
    service down) raises and fails the whole batch.
    """
    orders = snapshot_orders(session, tenant_id=tenant_id, refs=[ref for ref in refs if ref is not None])
    outcomes: list[PreparedLabel | Refused] = []
    for ref in refs:
        if ref is None:
            outcomes.append(Refused(None, None, RefusalReason.NOT_FOUND))
            continue
        marketplace, order_id = ref
        try:
            order = orders.get(ref)
            if order is None:
                raise NotFound("no such order")
            outcomes.append(
                _prepared(session, keys, order, profile, marketplace, order_id, reissue_cap=reissue_cap, now=now)
            )
        except BATCH_REFUSALS as exc:
            outcomes.append(Refused(marketplace, order_id, exc.reason))
    return outcomes


def profiled_label(
    session: Session, keys: KeyManager, order: OrderSnapshot, profile: LabelProfile, marketplace: str, order_id: str
) -> PreparedLabel:
    """The order's label unsealed and cut down to ``profile`` (the last two steps of a release).

    Every path that hands out the address (one label, a batch, a redelivery) comes through here, so a
    carrier-label-only client is refused here (:class:`~vault.errors.CarrierLabelOnly`), before anything opens.
    """
    if profile.carrier_only:
        raise CarrierLabelOnly()
    label = profile.apply(unseal_label(session, keys=keys, order=order))
    released = tuple(sorted(k for k, v in label.as_dict().items() if v is not None))
    return PreparedLabel(order, marketplace, order_id, label, released)


@dataclass(frozen=True, slots=True)
class PreviewedLabel:
    """A label shown to a dashboard user: the profiled record (PII, never printed) and its audit event."""

    marketplace: str
    order_id: str
    label: LabelRecord = field(repr=False)
    released_fields: tuple[str, ...]
    audit_seq: int


def preview_label(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    actor: str,
    marketplace: str,
    order_id: str,
    ip: str | None,
    fmt: str = "png",
    profile: LabelProfile = DEFAULT_PROFILE,
    now: datetime | None = None,
) -> PreviewedLabel:
    """Show one order's label to a dashboard user through the release path; audited as ``label.preview``.

    The order is looked up inside ``tenant_id`` and must be eligible for a label now (as for a release);
    its record is unsealed and cut down to ``profile`` (by default what a client with the default profile
    gets). The event has the purpose ``label-preview``; the order's reissue count neither limits nor
    counts a preview. A refusal is audited too (``refused:<reason>``; an order not found is named in no
    event) and then raised: :class:`~vault.errors.NotFound`, :class:`NotEligible`,
    :class:`~vault.errors.DecryptionError`, :class:`~vault.errors.KeyServiceUnavailable`. The caller
    commits whatever the outcome, renders, and shows the label only once the commit succeeded.
    """
    now = now or utcnow()
    ref: str | None = None
    try:
        order = snapshot_order(session, tenant_id=tenant_id, marketplace=marketplace, external_order_id=order_id)
        ref = order_ref(marketplace, order_id)
        check_eligible(order, now=now)
        prepared = profiled_label(session, keys, order, profile, marketplace, order_id)
    except (NotFound, NotEligible, DecryptionError, KeyServiceUnavailable) as exc:
        refusal = NewEvent(actor, PREVIEW_ACTION, f"refused:{exc.reason}", ref, ip, LABEL_PREVIEW, {"format": fmt})
        append_events(session, tenant_id=tenant_id, events=[refusal], now=now)
        raise
    details = {
        "format": fmt,
        "profile": "default" if profile == DEFAULT_PROFILE else "custom",
        "fields": list(prepared.released_fields),
    }
    shown = NewEvent(actor, PREVIEW_ACTION, "shown", ref, ip, LABEL_PREVIEW, details)
    event = append_events(session, tenant_id=tenant_id, events=[shown], now=now)[0]
    return PreviewedLabel(marketplace, order_id, prepared.label, prepared.released_fields, event.seq)


def _release_event(actor: str, prepared: PreparedLabel, issue: int, ip: str | None, fmt: str) -> NewEvent:
    return NewEvent(
        actor=actor,
        action=RELEASE_ACTION,
        outcome="released",
        order_ref=order_ref(prepared.marketplace, prepared.order_id),
        ip=ip,
        purpose=SHIPPING_LABEL,
        details={"fields": list(prepared.released_fields), "issue": issue, "format": fmt},
    )


def _released(prepared: PreparedLabel, issue: int, event: WrittenEvent) -> ReleasedLabel:
    p = prepared
    return ReleasedLabel(p.marketplace, p.order_id, p.label, p.released_fields, issue, event.seq)


def record_release(
    session: Session, *, client: Principal, prepared: PreparedLabel, ip: str, reissue_cap: int, fmt: str, now: datetime
) -> ReleasedLabel:
    """Count and audit one prepared label, in the caller's transaction; the caller commits, then sends.

    Raises :class:`ReissueCapReached` (nothing written) if concurrent releases used up the cap meanwhile.
    If the audit append fails, the caller rolls back: nothing was released (fail closed).
    """
    row = _COUNT_ISSUE.first(session, {"b_id": prepared.order.id, "b_cap": reissue_cap, "b_now": now})
    if row is None:  # the UPDATE found the count at the cap (it never passes it)
        cap = reissue_cap + prepared.order.reprints_granted
        raise ReissueCapReached(issued=cap, cap=cap)
    issued = row.labels_issued
    events = append_events(
        session,
        tenant_id=client.tenant_id,
        events=[_release_event(client_actor(client), prepared, issued, ip, fmt)],
        now=now,
    )
    return _released(prepared, issued, events[0])


#: What a platform-document release names as released: the platform's own label, none of the vault's fields.
PLATFORM_DOCUMENT = "platform-document"


def platform_shipped(order: OrderSnapshot) -> bool:
    """Whether the order's label is its platform's own document (it was stored without an address because
    the platform ships it), not a record of the vault's."""
    return order.label is None and order.label_withheld == WITHHELD_PLATFORM_SHIPPED


def check_document_eligible(order: OrderSnapshot, *, now: datetime, reissue_cap: int) -> None:
    """Raise unless the platform's own label may be released for ``order`` now: the checks of a label
    (:func:`check_eligible`, the cap included) with the platform's document standing in for the record."""
    _check_live(order, now=now)
    if not platform_shipped(order):
        raise NotEligible(RefusalReason.NO_LABEL_DATA)
    cap = reissue_cap + order.reprints_granted
    if order.labels_issued >= cap:
        raise ReissueCapReached(issued=order.labels_issued, cap=cap)


def record_document_release(
    session: Session, *, client: Principal, order: OrderSnapshot, ip: str, reissue_cap: int, now: datetime
) -> int:
    """Count and audit the release of a platform's own label for ``order``, in the caller's transaction; the
    caller commits, then sends the document. Returns the issue number.

    Audited as any release (``label.release``, purpose ``shipping-label``, the issue, the format ``pdf``);
    its fields are ``["platform-document"]``: no field of the vault's was released, the platform's label
    was passed through. Raises :class:`ReissueCapReached` (nothing written) if the cap ran out meanwhile.
    """
    row = _COUNT_ISSUE.first(session, {"b_id": order.id, "b_cap": reissue_cap, "b_now": now})
    if row is None:
        cap = reissue_cap + order.reprints_granted
        raise ReissueCapReached(issued=cap, cap=cap)
    event = NewEvent(
        actor=client_actor(client),
        action=RELEASE_ACTION,
        outcome="released",
        order_ref=order_ref(order.marketplace, order.external_order_id),
        ip=ip,
        purpose=SHIPPING_LABEL,
        details={"fields": [PLATFORM_DOCUMENT], "issue": row.labels_issued, "format": "pdf"},
    )
    append_events(session, tenant_id=client.tenant_id, events=[event], now=now)
    return int(row.labels_issued)


def record_batch(
    session: Session,
    *,
    tenant_id: int,
    actor: str,
    outcomes: Sequence[PreparedLabel | Refused],
    ip: str | None,
    reissue_cap: int,
    fmt: str,
    now: datetime,
) -> list[ReleasedLabel | Refused]:
    """Count and audit a batch, in order: each prepared order released or refused, each refusal audited.

    ``actor`` is who prints (an API client, :func:`client_actor`, or a dashboard user). One UPDATE counts
    every distinct order (a repeated one is counted again on its own), and one append writes every event.
    An order the cap was reached for meanwhile becomes a ``reissue-cap`` refusal.
    """
    prepared = [o for o in outcomes if isinstance(o, PreparedLabel)]
    distinct = list(dict.fromkeys(p.order.id for p in prepared))
    counted: dict[int, int] = {}
    if distinct:
        rows = session.execute(_COUNT_ISSUES, {"b_ids": distinct, "b_cap": reissue_cap})
        counted = {int(row.id): int(row.labels_issued) for row in rows}
    results: list[ReleasedLabel | Refused | tuple[PreparedLabel, int]] = []
    events: list[NewEvent] = []
    seen: set[int] = set()
    for outcome in outcomes:
        if isinstance(outcome, PreparedLabel):
            order_id = outcome.order.id
            issued: int | None = counted.get(order_id)
            if order_id in seen and issued is not None:  # the same order again in this batch: another issue
                row = _COUNT_ISSUE.first(session, {"b_id": order_id, "b_cap": reissue_cap, "b_now": now})
                issued = None if row is None else row.labels_issued
                if issued is not None:
                    counted[order_id] = issued
            seen.add(order_id)
            if issued is not None:
                events.append(_release_event(actor, outcome, issued, ip, fmt))
                results.append((outcome, issued))
                continue
            outcome = Refused(outcome.marketplace, outcome.order_id, RefusalReason.REISSUE_CAP)
        m, o, batch = outcome.marketplace, outcome.order_id, {"batch": len(outcomes)}
        events.append(_refusal_event(actor, outcome.reason, ip, RELEASE_ACTION, m, o, batch))
        results.append(outcome)
    appended = append_events(session, tenant_id=tenant_id, events=events, now=now)
    return [
        _released(*result, event) if isinstance(result, tuple) else result
        for result, event in zip(results, appended, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class ReleasedBatch:
    """A committed batch: each reference's outcome, in order, and the released labels' document."""

    results: list[ReleasedLabel | Refused]
    #: The released labels rendered, in order; ``None`` when nothing was released.
    document: bytes | None


#: Turns labels into one document; raises :class:`~vault.errors.LabelNotRendered` if they can't be rendered.
RenderLabels = Callable[[Sequence[PreparedLabel | ReleasedLabel]], bytes]
#: Run under the write lock before anything is counted (the label API's ``Idempotency-Key`` claim, whose
#: error fails the batch); what it returns is called with the batch's results just before the commit.
ClaimBatch = Callable[[], Callable[[Sequence[ReleasedLabel | Refused]], None]]


def render_isolating(
    render: RenderLabels, outcomes: Sequence[PreparedLabel | Refused]
) -> tuple[bytes | None, list[PreparedLabel | Refused]]:
    """The prepared labels' document, and ``outcomes`` with every order whose label can't be rendered refused
    (``render-failed``): one order's label failing (a script no font covers, say) must not cost the wave the
    others.

    The whole batch is rendered at once; only if that fails is each label rendered alone, to find the ones that
    fail, and the rest rendered again, so the common case pays for one render. A batch whose labels all render
    alone but not together fails as a whole (the first :class:`~vault.errors.LabelNotRendered` is raised): no
    order is to blame. Refused here, an order is counted for nothing: it is only audited as refused.
    """
    prepared = [o for o in outcomes if isinstance(o, PreparedLabel)]
    if not prepared:
        return None, list(outcomes)
    try:
        return render(prepared), list(outcomes)
    except LabelNotRendered as exc:
        whole = exc
    failed: set[int] = set()
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, PreparedLabel):
            try:
                render([outcome])
            except LabelNotRendered:
                failed.add(i)
    if not failed:
        raise whole
    isolated = [
        Refused(o.marketplace, o.order_id, RefusalReason.RENDER_FAILED) if i in failed else o
        for i, o in enumerate(outcomes)
    ]
    rest = [o for o in isolated if isinstance(o, PreparedLabel)]
    return (render(rest) if rest else None), isolated


def release_batch(
    session: Session,
    *,
    engine: Engine,
    keys: KeyManager,
    tenant_id: int,
    actor: str,
    refs: Sequence[tuple[str, str] | None],
    profile: LabelProfile,
    render: RenderLabels,
    ip: str | None,
    reissue_cap: int,
    fmt: str,
    now: datetime,
    claim: ClaimBatch | None = None,
) -> ReleasedBatch:
    """Release a wave of labels for ``actor``: prepare every reference, render, count and audit, commit.

    Rendered before the writes (:func:`record_batch`), so the reissue count and the audit head (on SQLite,
    the database's write lock, ``engine``'s :func:`~vault.db.writer_lock`) are held only from the render's
    end to the commit; if the cap ran out meanwhile for some orders, only the released ones are rendered
    again. An order whose label can't be rendered is refused (``render-failed``, :func:`render_isolating`)
    and the rest printed; any other error of ``render`` propagates (nothing is committed). ``claim`` runs
    first under the lock (:data:`ClaimBatch`). The caller rolls back on any exception and sends the document
    only once this returned.
    """
    outcomes = prepare_batch(
        session, keys=keys, tenant_id=tenant_id, refs=refs, profile=profile, reissue_cap=reissue_cap, now=now
    )
    document, outcomes = render_isolating(render, outcomes)
    prepared = [o for o in outcomes if isinstance(o, PreparedLabel)]
    with writer_lock(engine):
        settle = None if claim is None else claim()
        results = record_batch(
            session,
            tenant_id=tenant_id,
            actor=actor,
            outcomes=outcomes,
            ip=ip,
            reissue_cap=reissue_cap,
            fmt=fmt,
            now=now,
        )
        released = [r for r in results if isinstance(r, ReleasedLabel)]
        if len(released) != len(prepared):
            document = render(released) if released else None
        if settle is not None:
            settle(results)
        session.commit()
    return ReleasedBatch(results, document)


def _refusal_event(
    actor: str,
    reason: RefusalReason,
    ip: str | None,
    action: str,
    marketplace: str | None,
    order_id: str | None,
    details: dict[str, Any] | None,
) -> NewEvent:
    ref = order_ref(marketplace, order_id) if marketplace is not None and order_id is not None else None
    return NewEvent(
        actor=actor,
        action=action,
        outcome=f"refused:{reason}"[:60],
        order_ref=ref,
        ip=ip,
        purpose=SHIPPING_LABEL if action == RELEASE_ACTION else None,
        details=details,
    )


def record_refusal(
    session: Session,
    *,
    tenant_id: int | None,
    actor: str,
    reason: RefusalReason,
    ip: str | None,
    action: str = RELEASE_ACTION,
    marketplace: str | None = None,
    order_id: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> WrittenEvent:
    """Append a refusal (``outcome = refused:<reason>``) to the tenant's chain, or the platform's if unknown.

    The caller commits, in a transaction of its own: the refused request released nothing to commit with.
    """
    event = _refusal_event(actor, reason, ip, action, marketplace, order_id, details)
    return append_events(session, tenant_id=tenant_id, events=[event], now=now)[0]


def grant_reprint(
    session: Session,
    *,
    tenant_id: int,
    marketplace: str,
    order_id: str,
    actor: str,
    reason: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Let one more label than its cap be issued for a tenant's order; audited with the reason. The caller commits.

    The one way a reprint is granted (the dashboard's order page and ``labelvault labels grant-reprint`` both
    call it), for an owner: the order's ``reprints_granted`` grows by one in a single UPDATE, so concurrent
    grants each count, and a ``label.grant-reprint`` event records who granted it and why. The reason says
    why the warehouse needs another label (a jammed printer, a damaged parcel) and may name no buyer.
    Raises :class:`~vault.errors.NotFound` for an order outside the tenant, :class:`ReprintNotGranted`
    without a reason. Returns the order's ``(labels_issued, reprints_granted)`` after the grant.
    """
    reason = reason.strip()
    if len(reason) < 3:
        raise ReprintNotGranted("a reprint needs a reason (why the warehouse needs another label)")
    order = snapshot_order(session, tenant_id=tenant_id, marketplace=marketplace, external_order_id=order_id)
    row = session.execute(
        update(_ORDERS)
        .where(_ORDERS.c.id == order.id)
        .values(reprints_granted=_ORDERS.c.reprints_granted + 1)
        .returning(_ORDERS.c.labels_issued, _ORDERS.c.reprints_granted)
    ).one()
    issued, granted = int(row.labels_issued), int(row.reprints_granted)
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=GRANT_REPRINT_ACTION,
        order_ref=order_ref(marketplace, order_id),
        ip=ip,
        details={
            "reason": reason[:500],
            "labels_issued": issued,
            "reprints_granted": granted,
        },
        now=now,
    )
    return issued, granted
