"""The narrow label API (``/v1``): the only way buyer data leaves labelvault.

The pipeline of DESIGN.md, each step able to refuse:

1. client IP (trusted-proxy rule) and the global allowlist — app/allowlist.py, before routing;
2. the IP rate limit — app/limits.py (flask-limiter's limiter), right after;
3. API key → the client's own CIDRs → the client's rate limit → scope — app/auth.py;
4. the label format (Accept or ``?format=``) is settled before anything is counted or unsealed;
5. order lookup inside the client's tenant → eligibility → reissue cap → unseal → label profile —
   :func:`vault.release.prepare_release`, reads only;
6. render; then the reissue count and the audit append — :func:`vault.release.record_release` — and the
   commit, so the write locks are held only that long; only a committed release (its audit event with it)
   is sent, with ``Cache-Control: no-store``. Any failure before the commit rolls everything back: nothing
   is released.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, abort, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotAcceptable, ServiceUnavailable

from app.allowlist import audit_refusal
from app.auth import current_client, require_client
from app.services import db_session, services
from render import FORMATS, LabelDocument, RenderError, ReturnAddress, make_renderer
from vault.audit import chain_for
from vault.clients import ADMIN, LABELS_ISSUE, LabelProfile, Principal
from vault.db import writer_lock
from vault.errors import DecryptionError, KeyServiceUnavailable, NotEligible, NotFound, ReissueCapReached
from vault.models import AuditHead, utcnow
from vault.orders import snapshot_orders
from vault.release import PreparedLabel, Refused, ReleasedLabel, prepare_release, record_batch, record_release

bp = Blueprint("api", __name__, url_prefix="/v1")

#: Response media type of each format, for content negotiation (the renderers report the same).
MEDIA_TYPES = {"json": "application/json", "zpl": "application/zpl", "pdf": "application/pdf"}
#: What a marketplace name and an order id may look like; anything else is a 404 like a missing order.
_MARKETPLACE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Renderer options a client may pass as query parameters, per format: accepted spellings → values.
_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "zpl": {"dpi": {"203": 203, "300": 300}},
    "pdf": {"size": {"4x6": "4x6", "100x150mm": "100x150mm"}},
}


def _well_formed(marketplace: str, order_id: str) -> bool:
    """Whether a reference can name an order at all (anything else is a 404, audited without it)."""
    return bool(_MARKETPLACE.fullmatch(marketplace) and _ORDER_ID.fullmatch(order_id))


def no_store(resp: Response) -> Response:
    """Mark a response that carries (or might carry) label data as never to be cached anywhere."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def negotiate_format(default: str = "json") -> tuple[str, dict[str, Any]]:
    """The requested label format and its renderer options; ``?format=`` wins over ``Accept``."""
    fmt = request.args.get("format")
    if fmt is None:
        # No Accept, or the */* most HTTP clients send, is no preference: answered without parsing.
        if request.headers.get("Accept", "*/*") == "*/*" or not request.accept_mimetypes:
            fmt = default
        else:
            best = request.accept_mimetypes.best_match([MEDIA_TYPES[f] for f in FORMATS])
            if best is None:
                raise NotAcceptable(f"available label formats: {', '.join(MEDIA_TYPES.values())}")
            fmt = next(f for f, mt in MEDIA_TYPES.items() if mt == best)
    elif fmt not in FORMATS:
        abort(400, f"format must be one of {', '.join(FORMATS)}")
    options: dict[str, Any] = {}
    for name, allowed in _OPTIONS.get(fmt, {}).items():
        value = request.args.get(name)
        if value is not None:
            if value not in allowed:
                abort(400, f"{name} must be one of {', '.join(allowed)} for {fmt} labels")
            options[name] = allowed[value]
    return fmt, options


@bp.get("/labels/<marketplace>/<order_id>")
@require_client(LABELS_ISSUE)
def get_label(marketplace: str, order_id: str) -> Response:
    """Release one order's label in the requested format (JSON by default)."""
    fmt, options = negotiate_format()
    if not _well_formed(marketplace, order_id):
        audit_refusal("not-found", throttled=False)
        raise NotFound("no such order")
    client = current_client()
    session = db_session()
    svc = services()
    cap = svc.settings.label_reissue_cap
    now = utcnow()
    try:
        profile = LabelProfile.from_json(client.profile)
        renderer = make_renderer(fmt, **_profile_options(profile, fmt, options))
        prepared = prepare_release(
            session, keys=svc.keys, client=client, marketplace=marketplace, order_id=order_id,
            reissue_cap=cap, now=now, profile=profile,
        )  # fmt: skip
        # Rendered before the writes: the reissue count and the audit head are locks (on SQLite, the
        # database's write lock), held only from here to the commit.
        body = renderer.render([_document(client, prepared, now)])
        with writer_lock(svc.engine):
            record_release(session, client=client, prepared=prepared, ip=g.client_ip, reissue_cap=cap, fmt=fmt, now=now)
            session.commit()
    except (NotFound, NotEligible, KeyServiceUnavailable, RenderError) as exc:
        session.rollback()
        audit_refusal(_refusal_reason(exc), throttled=False, marketplace=marketplace, order_id=order_id)
        raise
    except SQLAlchemyError:
        session.rollback()
        # Most likely the audit append (or its commit) failed: the label must not go out unrecorded.
        raise ServiceUnavailable("the release could not be recorded; nothing was released") from None
    except BaseException:
        session.rollback()
        raise
    return no_store(Response(body, mimetype=renderer.media_type))


def _profile_options(profile: LabelProfile, fmt: str, options: dict[str, Any]) -> dict[str, Any]:
    """The renderer options of the request plus the client's own: for ZPL, the font its printers hold."""
    if fmt == "zpl" and profile.printer_font is not None:
        return {**options, "printer_font": profile.printer_font}
    return options


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


#: Most order references one batch request may carry (a wave of picking, not a data export).
BATCH_MAX = 500
#: Per-order refusals a batch reports and carries on from; anything else fails the whole batch closed.
_BATCH_REFUSALS = (NotFound, NotEligible, ReissueCapReached, DecryptionError)


@bp.post("/labels/batch")
@require_client(LABELS_ISSUE)
def post_label_batch() -> Response:
    """Release up to 500 orders' labels as one multi-label ZPL stream or one multi-page PDF (or JSON).

    Each order goes through the same checks and gets its own audit event, released or refused; refused
    orders are reported by reference and reason and don't fail the batch. A key-service outage or an
    audit write that fails releases nothing at all. The orders are looked up together, rendered, then
    counted and audited in one short write (see :func:`vault.release.record_batch`).
    """
    fmt, options = negotiate_format(default="zpl")
    refs = _batch_refs(request.get_json(silent=True))
    client = current_client()
    session = db_session()
    svc = services()
    cap = svc.settings.label_reissue_cap
    now = utcnow()
    profile = LabelProfile.from_json(client.profile)
    renderer = make_renderer(fmt, **_profile_options(profile, fmt, options))
    try:
        good = [_well_formed(m, o) for m, o in refs]
        named = [ref for ref, ok in zip(refs, good, strict=True) if ok]
        orders = snapshot_orders(session, tenant_id=client.tenant_id, refs=named)
        outcomes: list[PreparedLabel | Refused] = []
        for (marketplace, order_id), ok in zip(refs, good, strict=True):
            if not ok:
                outcomes.append(Refused(None, None, "not-found"))  # audited without the reference
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
            except _BATCH_REFUSALS as exc:
                reason = "unreadable" if isinstance(exc, DecryptionError) else _refusal_reason(exc)
                outcomes.append(Refused(marketplace, order_id, reason))
        prepared = [o for o in outcomes if isinstance(o, PreparedLabel)]
        body = renderer.render([_document(client, p, now) for p in prepared]) if prepared else None
        with writer_lock(svc.engine):
            results = record_batch(
                session, client=client, outcomes=outcomes, ip=g.client_ip, reissue_cap=cap, fmt=fmt, now=now
            )
            released = [r for r in results if isinstance(r, ReleasedLabel)]
            if len(released) != len(prepared):  # the cap ran out meanwhile for some: print only what is released
                body = renderer.render([_document(client, r, now) for r in released]) if released else None
            session.commit()
    except (KeyServiceUnavailable, RenderError) as exc:
        session.rollback()
        audit_refusal(_refusal_reason(exc), throttled=False)
        raise
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


def _batch_refs(payload: Any) -> list[tuple[str, str]]:
    """The ``orders`` of a batch request body, validated: 1 to 500 ``{marketplace, order_id}`` objects."""
    orders = payload.get("orders") if isinstance(payload, dict) else None
    if not isinstance(orders, list) or not 1 <= len(orders) <= BATCH_MAX:
        abort(400, f'the body must be {{"orders": [...]}} with 1 to {BATCH_MAX} order references')
    refs: list[tuple[str, str]] = []
    for item in orders:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("marketplace"), str)
            and isinstance(item.get("order_id"), str)
        ):
            abort(400, "each order reference is an object with string fields marketplace and order_id")
        refs.append((item["marketplace"], item["order_id"]))
    return refs


def _refusal_reason(exc: Exception) -> str:
    if isinstance(exc, NotEligible):
        return exc.reason
    if isinstance(exc, NotFound):
        return "not-found"
    if isinstance(exc, KeyServiceUnavailable):
        return "key-service-unavailable"
    return "render-failed"


@bp.get("/audit/head")
@require_client(ADMIN)
def audit_head() -> Response:
    """The head of the client's tenant audit chain (seq and hash), to anchor it outside labelvault."""
    chain = chain_for(current_client().tenant_id)
    head = db_session().get(AuditHead, chain)
    body = {
        "chain": chain,
        "seq": 0 if head is None else head.seq,
        "hash": "0" * 64 if head is None else head.hash,
        "updated_at": None if head is None else head.updated_at.isoformat(),
    }
    return no_store(jsonify(body))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
