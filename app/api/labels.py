"""The label routes: one order's label, and a batch of them, each release audited in its own transaction.

By the time a view runs, the gates have let the request through (``create_app``) and :func:`require_client`
has authenticated it. A view then settles the format, prepares the release (:func:`vault.release.prepare_release`:
order lookup inside the client's tenant → eligibility → reissue cap → unseal → label profile; reads only),
renders (app/printing.py), and records it (:func:`vault.release.record_release`, or for a batch
:func:`~vault.release.release_batch`: the reissue count and the audit append) and commits, so the write
locks are held only that long; only a committed release (its audit event with it) is sent, with
``Cache-Control: no-store``. Any failure before the commit rolls everything back: nothing is released. A
refusal propagates with its reason code to app/refusals.py, which audits it.
"""

from __future__ import annotations

import base64

from flask import Response, abort, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable

from app.api.auth import current_client, require_client
from app.api.request_checks import SINGLE_LABEL_FORMATS, batch_refs, negotiate_format, well_formed
from app.printing import label_document, render, renderer_for
from app.security import no_store
from app.services import db_session, services
from vault.clients import LABELS_ISSUE, LabelProfile
from vault.db import writer_lock
from vault.errors import NotFound
from vault.models import utcnow
from vault.release import Refused, ReleasedLabel, client_actor, prepare_release, record_release, release_batch


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
        renderer = renderer_for(fmt, profile, options)
        prepared = prepare_release(
            session, keys=svc.keys, client=client, marketplace=marketplace, order_id=order_id,
            reissue_cap=cap, now=now, profile=profile,
        )  # fmt: skip
        # Rendered before the writes: the reissue count and the audit head are locks (on SQLite, the
        # database's write lock), held only from here to the commit.
        body = render(renderer, [label_document(prepared, client.return_address, now)])
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
    audit write that fails releases nothing at all. The batch path itself is
    :func:`vault.release.release_batch` (looked up together, rendered, then counted and audited in one
    short write), the same one the dashboard's print run takes.
    """
    fmt, options = negotiate_format(default="zpl")
    if fmt in SINGLE_LABEL_FORMATS:
        abort(400, f"{fmt} labels are one image each: ask for them one order at a time, or batch as zpl or pdf")
    refs = batch_refs(request.get_json(silent=True))
    client = current_client()
    session = db_session()
    svc = services()
    now = utcnow()
    try:
        profile = LabelProfile.from_json(client.profile)
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
        )
    except SQLAlchemyError:
        session.rollback()
        raise ServiceUnavailable("the batch could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise
    results, body = batch.results, batch.document
    released = [r for r in results if isinstance(r, ReleasedLabel)]
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
