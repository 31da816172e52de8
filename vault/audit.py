"""The audit chain: append-only events, hash-chained per tenant, holding who/what/which order/IP/purpose/outcome.

``hash = SHA-256(prev_hash || canonical event)``; the chain's head (last seq and hash) is kept in
``audit_heads`` and exported outside the database periodically (vault/anchoring.py), so editing, deleting or
reordering any event is found by :func:`verify_chain`, and, against an exported head, deleting the newest
events, a whole chain, or rewriting one consistently. Nothing here may ever hold PII: callers
pass order references (marketplace + order id), client ids, IPs of clients, counts and digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.directsql import DirectStatement
from vault.models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64
PLATFORM_CHAIN = "platform"


def chain_for(tenant_id: int | None) -> str:
    """The chain an event of this tenant belongs to (``platform`` for events before a tenant is known)."""
    return PLATFORM_CHAIN if tenant_id is None else f"tenant:{tenant_id}"


def canonical_event(fields: dict[str, Any]) -> bytes:
    """The byte string an event's hash covers: sorted-key compact JSON, ASCII-escaped, UTC microseconds."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def _event_fields(ev: AuditEvent | dict[str, Any]) -> dict[str, Any]:
    get = ev.get if isinstance(ev, dict) else lambda k: getattr(ev, k)
    occurred = cast(datetime, get("occurred_at"))
    return {
        "chain": get("chain"),
        "seq": get("seq"),
        "tenant_id": get("tenant_id"),
        "occurred_at": occurred.isoformat(timespec="microseconds"),
        "actor": get("actor"),
        "action": get("action"),
        "outcome": get("outcome"),
        "order_ref": get("order_ref"),
        "ip": get("ip"),
        "purpose": get("purpose"),
        "details": get("details"),
    }


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """``SHA-256(prev_hash || canonical event)`` as hex."""
    return hashlib.sha256(prev_hash.encode() + canonical_event(fields)).hexdigest()


# Prebuilt statements, run directly (vault/directsql.py): an append runs on every label release, so it skips
# the ORM's unit of work, the per-call statement construction and SQLAlchemy's per-execution machinery.
_HEADS = cast(Table, AuditHead.__table__)
_EVENTS = cast(Table, AuditEvent.__table__)


class _Head(NamedTuple):
    """A chain's head after reserving sequence numbers: the last one reserved and the hash before them."""

    seq: int
    hash: str


_BUMP_HEAD = DirectStatement(
    update(_HEADS)
    .where(_HEADS.c.chain == bindparam("b_chain"))
    .values(seq=_HEADS.c.seq + bindparam("b_count"), updated_at=bindparam("b_now"))
    .returning(_HEADS.c.seq, _HEADS.c.hash),
    _Head,
)
_SET_HEAD_HASH = DirectStatement(
    update(_HEADS)
    .where(_HEADS.c.chain == bindparam("b_chain"))
    .values(hash=bindparam("b_hash"), updated_at=bindparam("b_now"))
)
_CREATE_HEAD = insert(_HEADS)
#: Every column but the id, by its own name.
_EVENT_COLUMNS = [c.name for c in _EVENTS.columns if c.name != "id"]
_INSERT_EVENTS = DirectStatement(insert(_EVENTS).values({name: bindparam(name) for name in _EVENT_COLUMNS}))


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event to append with :func:`append_events` (the chain, sequence number and hashes are added)."""

    actor: str
    action: str
    outcome: str = "ok"
    order_ref: str | None = None
    ip: str | None = None
    purpose: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    """What :func:`append_events` wrote for one event: its place in the chain and its hashes."""

    chain: str
    seq: int
    occurred_at: datetime
    action: str
    outcome: str
    prev_hash: str
    hash: str


def append_event(
    session: Session,
    *,
    tenant_id: int | None,
    actor: str,
    action: str,
    outcome: str = "ok",
    order_ref: str | None = None,
    ip: str | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> WrittenEvent:
    """Append one event to the tenant's chain inside the caller's transaction.

    The head row is locked first (an UPDATE), so concurrent appends to one chain serialise and each gets
    the next sequence number. If this raises, the caller must not release anything (fail closed).
    """
    event = NewEvent(actor, action, outcome, order_ref, ip, purpose, details)
    return append_events(session, tenant_id=tenant_id, events=[event], now=now)[0]


def append_events(
    session: Session, *, tenant_id: int | None, events: Sequence[NewEvent], now: datetime | None = None
) -> list[WrittenEvent]:
    """Append ``events``, in order, to the tenant's chain with one head lock and one multi-row insert.

    Same guarantees as :func:`append_event` (a batch of label releases audits each order on its own, in
    three statements instead of three per order). Pending ORM changes are flushed first, so the events
    are written after whatever they record.
    """
    if not events:
        return []
    session.flush()
    chain = chain_for(tenant_id)
    occurred = now or utcnow()
    params = {"b_chain": chain, "b_count": len(events), "b_now": occurred}
    while True:
        head = _BUMP_HEAD.first(session, params)
        if head is not None:
            break
        try:
            with session.begin_nested():
                session.execute(_CREATE_HEAD, {"chain": chain, "seq": 0, "hash": GENESIS})
        except IntegrityError:
            pass  # another transaction created it first; take the lock on theirs
    last_seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for seq, ev in enumerate(events, start=last_seq - len(events) + 1):
        fields: dict[str, Any] = {
            "chain": chain,
            "seq": seq,
            "tenant_id": tenant_id,
            "occurred_at": occurred,
            "actor": ev.actor,
            "action": ev.action,
            "outcome": ev.outcome,
            "order_ref": ev.order_ref,
            "ip": ev.ip,
            "purpose": ev.purpose,
            "details": ev.details,
        }
        digest = event_hash(prev, _event_fields(fields))
        rows.append({**fields, "prev_hash": prev, "hash": digest})
        prev = digest
    _INSERT_EVENTS.execute_many(session, rows)
    _SET_HEAD_HASH.execute(session, {"b_chain": chain, "b_hash": prev, "b_now": occurred})
    return [WrittenEvent(chain, r["seq"], occurred, r["action"], r["outcome"], r["prev_hash"], r["hash"]) for r in rows]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of verifying one chain: ``ok``, events checked, and the first broken link if any."""

    chain: str
    ok: bool
    checked: int
    head_seq: int
    first_bad_seq: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AnchoredHead:
    """A chain's head as exported outside the database earlier (vault/anchoring.py): it must still be there."""

    seq: int
    hash: str


def verify_chain(
    session: Session, *, chain: str, batch_size: int = 5000, anchors: Sequence[AnchoredHead] = ()
) -> ChainReport:
    """Recompute the chain from genesis and report the first event that breaks it.

    Finds an edited event (its hash no longer matches), a deleted one (a gap in ``seq``, or a head ahead of
    the last event), a reordered pair (hashes cover ``seq`` and the previous hash) and an inserted one.
    With the heads exported earlier (``anchors``), also a chain that shrank (its newest events deleted and
    its head row set back to match), one deleted with its head row (no events, no head: zero events checked)
    and one rewritten as a whole: the chain must still pass through every anchor.
    """
    head = session.get(AuditHead, chain)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    wanted = {a.seq for a in anchors}
    seen: dict[int, str] = {}
    prev, expected, checked = GENESIS, 1, 0
    for ev in _events(session, chain, batch_size):
        if ev.seq != expected:
            return ChainReport(chain, False, checked, head_seq, expected, f"event {expected} is missing")
        if ev.prev_hash != prev:
            return ChainReport(chain, False, checked, head_seq, ev.seq, "link to the previous event is broken")
        if event_hash(prev, _event_fields(ev)) != ev.hash:
            return ChainReport(chain, False, checked, head_seq, ev.seq, "event content does not match its hash")
        if ev.seq in wanted:
            seen[ev.seq] = ev.hash
        prev, expected, checked = ev.hash, expected + 1, checked + 1
    if checked != head_seq or prev != head_hash:
        return ChainReport(chain, False, checked, head_seq, checked + 1, "events after the last one were removed")
    longest = max((a.seq for a in anchors), default=0)
    if checked < longest:
        gone = "the chain is gone" if checked == 0 else f"the chain shrank to {checked} events"
        reason = f"{gone}: an exported head had {longest} (events after the last one were removed)"
        return ChainReport(chain, False, checked, head_seq, checked + 1, reason)
    for anchor in sorted(anchors, key=lambda a: a.seq):
        if anchor.seq > 0 and seen.get(anchor.seq) != anchor.hash:
            reason = "the chain no longer passes through an exported head (rewritten up to there)"
            return ChainReport(chain, False, checked, head_seq, anchor.seq, reason)
    return ChainReport(chain, True, checked, head_seq)


def _events(session: Session, chain: str, batch_size: int) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.seq > last)
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def chain_heads(session: Session) -> list[dict[str, Any]]:
    """Every chain's head (chain, seq, hash, updated_at) for export to storage outside the database."""
    return [
        {"chain": h.chain, "seq": h.seq, "hash": h.hash, "updated_at": h.updated_at.isoformat()}
        for h in session.scalars(select(AuditHead).order_by(AuditHead.chain))
    ]
