"""The label routes: one order's label, and a batch of them, each release audited in its own transaction.

By the time a view runs, the gates have let the request through (``create_app``) and :func:`require_client`
has authenticated it. A view then settles the format, prepares the release (:func:`vault.release.prepare_release`:
order lookup inside the client's tenant → eligibility → reissue cap → unseal → label profile; reads only),
renders (app/printing.py), and records it (:func:`vault.release.record_release`, or for a batch
:func:`~vault.release.release_batch`: the reissue count and the audit append) and commits, so the write
locks are held only that long; only a committed release (its audit event with it) is sent, with
``Cache-Control: no-store``. Any failure before the commit rolls everything back: nothing is released. A
refusal propagates with its reason code to app/refusals.py, which audits it. A retry with the same
``Idempotency-Key`` gets the same labels again (:mod:`vault.redelivery`).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, abort, g, jsonify, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import ServiceUnavailable

from app.api.auth import current_client, require_client
from app.api.request_checks import (
    SINGLE_LABEL_FORMATS,
    batch_refs,
    idempotency_key,
    negotiate_format,
    wants_document,
    well_formed,
)
from app.errors import problem
from app.printing import label_document, render, renderer_for
from app.security import no_store
from app.services import db_session, services
from connectors import registry
from connectors.interfaces import ConnectorError
from connectors.platform import DocumentUnavailable
from render import LabelRenderer
from vault.clients import LABELS_ISSUE, LabelProfile, Principal
from vault.db import writer_lock
from vault.errors import DecryptionError, NotEligible, NotFound, Refusal, RefusalReason
from vault.models import LabelDelivery, MarketplaceAccount, Order, utcnow
from vault.orders import OrderSnapshot, snapshot_order
from vault.redelivery import (
    Delivery,
    claim_delivery,
    find_delivery,
    key_digest,
    prepare_redelivery,
    record_redelivery,
    request_digest,
    settle_delivery,
)
from vault.release import (
    PreparedLabel,
    Refused,
    ReleasedLabel,
    check_document_eligible,
    client_actor,
    platform_shipped,
    prepare_release,
    record_document_release,
    record_release,
    release_batch,
    render_isolating,
)

#: The response headers naming a batch's refused orders: references and reason codes, never PII.
REFUSED_HEADER = "Labelvault-Refused"
REFUSED_COUNT_HEADER = "Labelvault-Refused-Count"
#: Most bytes of entries in ``Labelvault-Refused`` (proxies cap a header at 4 to 8 KiB); the count is complete.
REFUSED_HEADER_MAX = 4000


@dataclass(frozen=True, slots=True)
class _Retry:
    """A request's ``Idempotency-Key`` (hashed, as stored) and the digest of what the request asks for."""

    key_hash: str
    request_hash: str


def _retry(kind: str, fmt: str, options: dict[str, Any], refs: Sequence[tuple[str, str]]) -> _Retry | None:
    key = idempotency_key()
    return None if key is None else _Retry(key_digest(key), request_digest(kind, fmt, options, refs))


@require_client(LABELS_ISSUE)
def get_label(marketplace: str, order_id: str) -> Response:
    """Release one order's label in the requested format (JSON by default); a retry with the same
    ``Idempotency-Key`` gets the same label again (:mod:`vault.redelivery`)."""
    fmt, options = negotiate_format()
    if not well_formed(marketplace, order_id):
        raise NotFound("no such order")  # refused, and audited without the reference: it names no order
    g.label_order = (marketplace, order_id)  # the order a refusal from here on is audited with
    client = current_client()
    retry = _retry("label", fmt, options, [(marketplace, order_id)])
    session = db_session()
    svc = services()
    cap = svc.settings.label_reissue_cap
    now = utcnow()
    profile = LabelProfile.from_json(client.profile)
    if retry is not None and (
        delivery := find_delivery(session, client_id=client.id, key_hash=retry.key_hash, now=now)
    ):
        return _redeliver_label(client, profile, retry, delivery)
    order: OrderSnapshot | None = None
    if registry.get(marketplace).shipping_document is not None:
        # A platform that ships some orders itself (TikTok Shop): those print on its own label.
        order = snapshot_order(session, tenant_id=client.tenant_id, marketplace=marketplace, external_order_id=order_id)
        if platform_shipped(order):
            return _release_platform_document(client, order, fmt, now)
    try:
        renderer = renderer_for(fmt, profile, options)
        try:
            prepared = prepare_release(
                session, keys=svc.keys, client=client, marketplace=marketplace, order_id=order_id,
                reissue_cap=cap, now=now, profile=profile, order=order,
            )  # fmt: skip
        except Refusal:
            # A request with the same key may have been released since the look-up above (and used the cap).
            if retry is not None and (delivery := _delivered(session, client, retry, now)) is not None:
                return _redeliver_label(client, profile, retry, delivery)
            raise
        # Rendered before the writes: the reissue count and the audit head are locks (on SQLite, the
        # database's write lock), held only from here to the commit.
        body = render(renderer, [label_document(prepared, client.return_address, now)])
        with writer_lock(svc.engine):
            claimed = None if retry is None else _claim(session, client, retry, fmt, options, now)
            released = record_release(
                session, client=client, prepared=prepared, ip=g.client_ip, reissue_cap=cap, fmt=fmt, now=now
            )
            if claimed is not None:
                settle_delivery(claimed, [released])
            session.commit()
    except IntegrityError:
        session.rollback()
        if retry is None or (delivery := _delivered(session, client, retry, now)) is None:
            raise ServiceUnavailable("the release could not be recorded; nothing was released") from None
        return _redeliver_label(client, profile, retry, delivery)  # a request with the same key got there first
    except SQLAlchemyError:
        session.rollback()
        # Most likely the audit append (or its commit) failed: the label must not go out unrecorded.
        raise ServiceUnavailable("the release could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise
    return no_store(Response(body, mimetype=renderer.media_type))


def _release_platform_document(client: Principal, order: OrderSnapshot, fmt: str, now: datetime) -> Response:
    """The platform's own label for an order it ships itself (TikTok Shop's, for a TikTok-shipped order).

    The vault holds no address for such an order, so there is nothing to render: the document is fetched
    from the platform with the account's token (:attr:`connectors.platform.Platform.shipping_document`),
    then counted and audited like any release (:func:`vault.release.record_document_release`), committed,
    and only then sent, as PDF, the format the platform issues it in. It is never stored. A client asking
    for another format gets a 406 that says so; an order the platform has no label for now is refused as
    ``no-label-data``; a platform that can't be reached releases nothing (503). An ``Idempotency-Key`` is
    not remembered for such a release (a retry is a reprint, counted against the cap).
    """
    if fmt != "pdf":
        return problem(
            406,
            f"this order ships on {registry.name_of(order.marketplace)}'s own label, released as PDF only: "
            "ask for format=pdf",
            kind="platform-document-pdf-only",
        )
    session = db_session()
    svc = services()
    cap = svc.settings.label_reissue_cap
    check_document_eligible(order, now=now, reissue_cap=cap)
    fetch = registry.get(order.marketplace).shipping_document
    account = session.get(MarketplaceAccount, order.account_id)
    stored = session.get(Order, order.id)
    if fetch is None or account is None or stored is None:
        raise NotEligible(RefusalReason.NO_LABEL_DATA)
    try:
        document = fetch(session, svc.keys, account, stored, endpoint_overrides=svc.settings.endpoint_overrides)
    except DocumentUnavailable:
        session.rollback()
        raise NotEligible(RefusalReason.NO_LABEL_DATA) from None
    except ConnectorError:
        session.rollback()
        raise ServiceUnavailable(
            f"{registry.name_of(order.marketplace)}'s shipping label could not be fetched; nothing was released"
        ) from None
    with _rolled_back_unless_committed(session, "the release"), writer_lock(svc.engine):
        record_document_release(session, client=client, order=order, ip=g.client_ip, reissue_cap=cap, now=now)
        session.commit()
    return no_store(Response(document, mimetype="application/pdf"))


@require_client(LABELS_ISSUE)
def post_label_batch() -> Response:
    """Release up to 500 orders' labels as one multi-label ZPL stream or one multi-page PDF (or JSON; PNG,
    one image per label, is a 400).

    Each order goes through the same checks and gets its own audit event, released or refused; refused
    orders (a label that can't be rendered included) are reported by reference and reason and don't fail
    the batch. A key-service outage or an audit write that fails releases nothing at all. The batch path
    itself is :func:`vault.release.release_batch` (looked up together, rendered, then counted and audited in
    one short write), the same one the dashboard's print run takes; the ``Idempotency-Key`` claim is made
    inside its write. A retry with the same key gets the same labels.
    """
    fmt, options = negotiate_format(default="zpl")
    if fmt in SINGLE_LABEL_FORMATS:
        abort(400, f"{fmt} labels are one image each: ask for them one order at a time, or batch as zpl or pdf")
    refs = batch_refs(request.get_json(silent=True))
    client = current_client()
    retry = _retry("batch", fmt, options, refs)
    session = db_session()
    svc = services()
    now = utcnow()
    profile = LabelProfile.from_json(client.profile)
    if retry is not None and (
        delivery := find_delivery(session, client_id=client.id, key_hash=retry.key_hash, now=now)
    ):
        return _redeliver_batch(client, profile, retry, delivery, refs)
    try:
        renderer = renderer_for(fmt, profile, options)
        batch = release_batch(
            session,
            engine=svc.engine,
            keys=svc.keys,
            tenant_id=client.tenant_id,
            actor=client_actor(client),
            # A malformed reference names no order: refused, and audited without it.
            refs=[ref if well_formed(*ref) else None for ref in refs],
            profile=profile,
            render=lambda labels: render(renderer, [label_document(x, client.return_address, now) for x in labels]),
            ip=g.client_ip,
            reissue_cap=svc.settings.label_reissue_cap,
            fmt=fmt,
            now=now,
            claim=None if retry is None else _batch_claim(session, client, retry, fmt, options, now),
        )
    except IntegrityError:
        session.rollback()
        if retry is None or (delivery := _delivered(session, client, retry, now)) is None:
            raise ServiceUnavailable("the batch could not be recorded; nothing was released") from None
        return _redeliver_batch(client, profile, retry, delivery, refs)  # the same key got there first
    except SQLAlchemyError:
        session.rollback()
        raise ServiceUnavailable("the batch could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise
    return no_store(_batch_response(fmt, renderer, batch.document, refs, batch.results))


def _batch_response(
    fmt: str,
    renderer: LabelRenderer,
    body: bytes | None,
    refs: Sequence[tuple[str, str]],
    results: Sequence[ReleasedLabel | PreparedLabel | Refused],
) -> Response:
    """The batch's answer: its document itself if ``Accept`` asks for it, else the JSON envelope (README)."""
    entries = _refused_entries(results)
    if wants_document(fmt):
        return _document_response(body, renderer.media_type, entries)
    document: str | None = None
    encoding = "utf-8" if fmt != "pdf" else "base64"
    if body is not None:
        document = body.decode() if encoding == "utf-8" else base64.b64encode(body).decode()
    resp = jsonify(
        media_type=renderer.media_type,
        encoding=encoding,
        document=document,
        released=[
            {"marketplace": r.marketplace, "order_id": r.order_id} for r in results if not isinstance(r, Refused)
        ],
        refused=[
            {"marketplace": m, "order_id": o, "reason": r.reason}
            for (m, o), r in zip(refs, results, strict=True)
            if isinstance(r, Refused)
        ],
    )
    return _with_refused_headers(resp, entries)


# --- Idempotency-Key: the same labels again -------------------------------------------------------------


def _claim(
    session: Session, client: Principal, retry: _Retry, fmt: str, options: dict[str, Any], now: datetime
) -> LabelDelivery:
    window = timedelta(hours=services().settings.label_idempotency_hours)
    return claim_delivery(
        session, client=client, key_hash=retry.key_hash, request_hash=retry.request_hash, fmt=fmt,
        options=options, printed_at=now, window=window,
    )  # fmt: skip


def _delivered(session: Session, client: Principal, retry: _Retry, now: datetime) -> Delivery | None:
    """The delivery a concurrent request with the same key committed, looked up in a fresh transaction."""
    session.rollback()
    return find_delivery(session, client_id=client.id, key_hash=retry.key_hash, now=now)


def _key_reused() -> Response:
    return problem(
        422, "this Idempotency-Key was used for a different request; use a new key", kind="idempotency-key-reused"
    )


def _replayed(resp: Response) -> Response:
    resp.headers["Idempotent-Replayed"] = "true"
    return no_store(resp)


def _refusal(reason: RefusalReason) -> Refusal:
    """The error a single label's redelivery is refused with (audited by app/refusals.py, like any refusal)."""
    if reason == RefusalReason.NOT_FOUND:
        return NotFound("no such order")
    if reason == RefusalReason.UNREADABLE:
        return DecryptionError()
    return NotEligible(reason)


@contextlib.contextmanager
def _rolled_back_unless_committed(session: Session, what: str) -> Iterator[None]:
    """Roll back on any failure; a database failure (most likely the audit append or its commit) is a 503,
    so nothing goes out unrecorded."""
    try:
        yield
    except SQLAlchemyError:
        session.rollback()
        raise ServiceUnavailable(f"{what} could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise


def _redeliver_label(client: Principal, profile: LabelProfile, retry: _Retry, delivery: Delivery) -> Response:
    """The remembered label again, re-rendered from its sealed record, audited as ``label.redeliver``."""
    if delivery.request_hash != retry.request_hash:
        return _key_reused()
    session = db_session()
    svc = services()
    now = utcnow()
    with _rolled_back_unless_committed(session, "the redelivery"):
        (outcome,) = prepare_redelivery(
            session, keys=svc.keys, client=client, delivery=delivery, profile=profile, now=now
        )
        if isinstance(outcome, Refused):
            raise _refusal(outcome.reason)
        renderer = renderer_for(delivery.fmt, profile, delivery.options)
        body = render(renderer, [label_document(outcome, client.return_address, delivery.printed_at)])
        with writer_lock(svc.engine):
            record_redelivery(session, client=client, delivery=delivery, outcomes=[outcome], ip=g.client_ip, now=now)
            session.commit()
    return _replayed(Response(body, mimetype=renderer.media_type))


def _redeliver_batch(
    client: Principal, profile: LabelProfile, retry: _Retry, delivery: Delivery, refs: Sequence[tuple[str, str]]
) -> Response:
    """The remembered batch again: its released orders re-rendered, its refused ones reported as before."""
    if delivery.request_hash != retry.request_hash:
        return _key_reused()
    session = db_session()
    svc = services()
    now = utcnow()
    with _rolled_back_unless_committed(session, "the redelivery"):
        outcomes = prepare_redelivery(
            session, keys=svc.keys, client=client, delivery=delivery, profile=profile, now=now
        )
        renderer = renderer_for(delivery.fmt, profile, delivery.options)
        body, outcomes = _batch_document(renderer, client, outcomes, delivery.printed_at)
        with writer_lock(svc.engine):
            record_redelivery(session, client=client, delivery=delivery, outcomes=outcomes, ip=g.client_ip, now=now)
            session.commit()
    return _replayed(_batch_response(delivery.fmt, renderer, body, refs, outcomes))


def _batch_claim(
    session: Session, client: Principal, retry: _Retry, fmt: str, options: dict[str, Any], now: datetime
) -> Callable[[], Callable[[Sequence[ReleasedLabel | Refused]], None]]:
    """The batch's key claim for :func:`~vault.release.release_batch`: claimed under its write lock, settled
    with the batch's results before its commit."""

    def claim() -> Callable[[Sequence[ReleasedLabel | Refused]], None]:
        row = _claim(session, client, retry, fmt, options, now)
        return lambda results: settle_delivery(row, results)

    return claim


def _refused_entries(results: Sequence[ReleasedLabel | PreparedLabel | Refused]) -> list[str]:
    """A batch's refused orders as ``Labelvault-Refused`` entries, in request order.

    ``<marketplace>:<order id>=<reason>``; a malformed reference (which may hold anything) is named by its
    0-based position in the request's ``orders`` instead, ``#<position>=<reason>``. Well-formed references
    are letters, digits and ``.:_-`` only, so neither needs quoting.
    """
    return [
        f"#{i}={r.reason}" if r.marketplace is None else f"{r.marketplace}:{r.order_id}={r.reason}"
        for i, r in enumerate(results)
        if isinstance(r, Refused)
    ]


def _with_refused_headers(resp: Response, entries: Sequence[str]) -> Response:
    """``Labelvault-Refused-Count`` (every refused order) and ``Labelvault-Refused`` (as many as fit)."""
    listed: list[str] = []
    size = 0
    for entry in entries:
        size += len(entry) + 2
        if size > REFUSED_HEADER_MAX:
            break
        listed.append(entry)
    resp.headers[REFUSED_COUNT_HEADER] = str(len(entries))
    resp.headers[REFUSED_HEADER] = ", ".join(listed)
    return resp


def _document_response(body: bytes | None, media_type: str, entries: Sequence[str]) -> Response:
    """The batch's document itself, or a 409 problem when no order of it was released (there is no document)."""
    if body is None:
        resp = problem(409, "no order of the batch was released; Labelvault-Refused says why", kind="nothing-released")
    else:
        resp = Response(body, mimetype=media_type)
    return _with_refused_headers(resp, entries)


def _batch_document(
    renderer: LabelRenderer, client: Principal, outcomes: Sequence[PreparedLabel | Refused], printed_at: datetime
) -> tuple[bytes | None, list[PreparedLabel | Refused]]:
    """A redelivered batch's document, an order whose label can't be rendered refused as in a release."""
    return render_isolating(
        lambda labels: render(renderer, [label_document(x, client.return_address, printed_at) for x in labels]),
        outcomes,
    )
