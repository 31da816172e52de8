"""The label routes: one order's label, and a batch of them, each release audited in its own transaction.

By the time a view runs, the gates have let the request through (``create_app``) and :func:`require_client`
has authenticated it. A view then settles the format, prepares the release (:func:`vault.release.prepare_release`:
order lookup inside the client's tenant → eligibility → reissue cap → unseal → label profile; reads only),
renders, and records it (:func:`vault.release.record_release` / :func:`~vault.release.record_batch`: the
reissue count and the audit append) and commits, so the write locks are held only that long; only a
committed release (its audit event with it) is sent, with ``Cache-Control: no-store``. Any failure before the
commit rolls everything back: nothing is released. A refusal propagates with its reason code to
app/refusals.py, which audits it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import Response, abort, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable

from app.api.auth import current_client, require_client
from app.api.request_checks import SINGLE_LABEL_FORMATS, batch_refs, negotiate_format, well_formed
from app.errors import LabelNotRendered
from app.security import no_store
from app.services import db_session, services
from render import LabelDocument, LabelRenderer, RenderError, ReturnAddress, make_renderer
from vault.clients import LABELS_ISSUE, LabelProfile, Principal
from vault.db import writer_lock
from vault.errors import DecryptionError, NotEligible, NotFound, RefusalReason
from vault.models import utcnow
from vault.orders import snapshot_orders
from vault.release import PreparedLabel, Refused, ReleasedLabel, prepare_release, record_batch, record_release

#: Per-order refusals a batch reports and carries on from; anything else fails the whole batch closed.
BATCH_REFUSALS = (NotFound, NotEligible, DecryptionError)


@require_client(LABELS_ISSUE)
def get_label(marketplace: str, order_id: str) -> Response:
    """Release one order's label in the requested format (JSON by default)."""
    fmt, options = negotiate_format()
    if not well_formed(marketplace, order_id):
        raise NotFound("no such order")  # refused, and audited without the reference: it names no order
    g.label_order = (marketplace, order_id)  # the order a refusal from here on is audited with
    client = current_client()
    session = db_session()
    svc = services()
    cap = svc.settings.label_reissue_cap
    now = utcnow()
    try:
        profile = LabelProfile.from_json(client.profile)
        renderer = _renderer(fmt, profile, options)
        prepared = prepare_release(
            session, keys=svc.keys, client=client, marketplace=marketplace, order_id=order_id,
            reissue_cap=cap, now=now, profile=profile,
        )  # fmt: skip
        # Rendered before the writes: the reissue count and the audit head are locks (on SQLite, the
        # database's write lock), held only from here to the commit.
        body = _render(renderer, [_document(client, prepared, now)])
        with writer_lock(svc.engine):
            record_release(session, client=client, prepared=prepared, ip=g.client_ip, reissue_cap=cap, fmt=fmt, now=now)
            session.commit()
    except SQLAlchemyError:
        session.rollback()
        # Most likely the audit append (or its commit) failed: the label must not go out unrecorded.
        raise ServiceUnavailable("the release could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise
    return no_store(Response(body, mimetype=renderer.media_type))


@require_client(LABELS_ISSUE)
def post_label_batch() -> Response:
    """Release up to 500 orders' labels as one multi-label ZPL stream or one multi-page PDF (or JSON; PNG,
    one image per label, is a 400).

    Each order goes through the same checks and gets its own audit event, released or refused; refused
    orders are reported by reference and reason and don't fail the batch. A key-service outage or an
    audit write that fails releases nothing at all. The orders are looked up together, rendered, then
    counted and audited in one short write (see :func:`vault.release.record_batch`).
    """
    fmt, options = negotiate_format(default="zpl")
    if fmt in SINGLE_LABEL_FORMATS:
        abort(400, f"{fmt} labels are one image each: ask for them one order at a time, or batch as zpl or pdf")
    refs = batch_refs(request.get_json(silent=True))
    client = current_client()
    session = db_session()
    svc = services()
    cap = svc.settings.label_reissue_cap
    now = utcnow()
    try:
        profile = LabelProfile.from_json(client.profile)
        renderer = _renderer(fmt, profile, options)
        good = [well_formed(m, o) for m, o in refs]
        named = [ref for ref, ok in zip(refs, good, strict=True) if ok]
        orders = snapshot_orders(session, tenant_id=client.tenant_id, refs=named)
        outcomes: list[PreparedLabel | Refused] = []
        for (marketplace, order_id), ok in zip(refs, good, strict=True):
            if not ok:
                outcomes.append(Refused(None, None, RefusalReason.NOT_FOUND))  # audited without the reference
                continue
            try:
                order = orders.get((marketplace, order_id))
                if order is None:
                    raise NotFound("no such order")
                label = prepare_release(
                    session, keys=svc.keys, client=client, marketplace=marketplace, order_id=order_id,
                    reissue_cap=cap, now=now, order=order, profile=profile,
                )  # fmt: skip
                outcomes.append(label)
            except BATCH_REFUSALS as exc:
                outcomes.append(Refused(marketplace, order_id, exc.reason))
        prepared = [o for o in outcomes if isinstance(o, PreparedLabel)]
        body = _render(renderer, [_document(client, p, now) for p in prepared]) if prepared else None
        with writer_lock(svc.engine):
            results = record_batch(
                session, client=client, outcomes=outcomes, ip=g.client_ip, reissue_cap=cap, fmt=fmt, now=now
            )
            released = [r for r in results if isinstance(r, ReleasedLabel)]
            if len(released) != len(prepared):  # the cap ran out meanwhile for some: print only what is released
                body = _render(renderer, [_document(client, r, now) for r in released]) if released else None
            session.commit()
    except SQLAlchemyError:
        session.rollback()
        raise ServiceUnavailable("the batch could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise
    document: str | None = None
    encoding = "utf-8" if fmt != "pdf" else "base64"
    if body is not None:
        document = body.decode() if encoding == "utf-8" else base64.b64encode(body).decode()
    return no_store(
        jsonify(
            media_type=renderer.media_type,
            encoding=encoding,
            document=document,
            released=[{"marketplace": r.marketplace, "order_id": r.order_id} for r in released],
            refused=[
                {"marketplace": m, "order_id": o, "reason": r.reason}
                for (m, o), r in zip(refs, results, strict=True)
                if isinstance(r, Refused)
            ],
        )
    )


def _renderer(fmt: str, profile: LabelProfile, options: dict[str, Any]) -> LabelRenderer:
    """The renderer of the request's format and options plus the client's own: for ZPL, its printers' font."""
    if fmt == "zpl" and profile.printer_font is not None:
        options = {**options, "printer_font": profile.printer_font}
    try:
        return make_renderer(fmt, **options)
    except RenderError as exc:  # e.g. no installed font covers the labels' scripts
        raise LabelNotRendered() from exc


def _render(renderer: LabelRenderer, documents: Sequence[LabelDocument]) -> bytes:
    try:
        return renderer.render(documents)
    except RenderError as exc:
        raise LabelNotRendered() from exc


def _document(client: Principal, label: PreparedLabel | ReleasedLabel, now: datetime) -> LabelDocument:
    """What gets printed for one label: the ship-to block plus the seller's return address."""
    sender = client.return_address
    return LabelDocument(
        order_ref=label.order_id,
        marketplace=label.marketplace,
        ship_to=label.label,
        printed_at=now,
        return_address=None
        if sender is None
        else ReturnAddress(sender["name"], tuple(sender["lines"]), sender["country_code"]),
    )
