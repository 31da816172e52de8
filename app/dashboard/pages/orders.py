"""Orders, masked, with their audit trail, and the label preview (a fresh second factor, every view audited)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, actor_names, page_number, parse_date, tenant_id
from app.dashboard.preview import label_png
from app.dashboard.state import (
    client_ip,
    current_tenant,
    fresh_second_factor,
    require,
    second_factor_fresh,
)
from app.services import db_session, services
from connectors.confirmations import confirmation_of_order
from vault import reports
from vault.errors import DecryptionError, KeyServiceUnavailable, NotEligible, NotFound, ReprintNotGranted
from vault.models import MarketplaceAccount, Order
from vault.orders import find_order
from vault.records import OrderStatus
from vault.release import grant_reprint, order_ref, preview_label


@bp.get("/orders")
@require("view")
def orders() -> str:
    # Every criterion here is non-PII (order ids, statuses, dates), so a GET form is fine.
    args = request.args
    query = reports.OrderQuery(
        order_id=args.get("order_id", "")[:100],
        status=args.get("status", "") if args.get("status", "") in {*OrderStatus, "erased"} else "",
        purchased_from=parse_date(args.get("from")),
        purchased_to=parse_date(args.get("to")),
    )
    db = db_session()
    page = reports.search_orders(db, tenant_id=tenant_id(), query=query, page=page_number(args.get("page")))
    rows = reports.masked_orders(db, keys=services().keys, orders=page.items)
    params = {k: v for k, v in args.items() if k != "page" and v}
    return render_template(
        "dashboard/orders.html",
        rows=rows,
        page=page,
        query=query,
        statuses=[s.value for s in OrderStatus] + ["erased"],
        params=params,
    )


def _order(marketplace: str, order_id: str) -> Order:
    try:
        return find_order(db_session(), tenant_id=tenant_id(), marketplace=marketplace, external_order_id=order_id)
    except NotFound:
        abort(404)


@bp.get("/orders/<marketplace>/<order_id>")
@require("view")
def order_detail(marketplace: str, order_id: str) -> str:
    db = db_session()
    order = _order(marketplace, order_id)
    summary = reports.masked_orders(db, keys=services().keys, orders=[order])[0].summary
    account = db.get(MarketplaceAccount, order.account_id)
    events = reports.search_audit(
        db, tenant_id=tenant_id(), query=reports.AuditQuery(order=order_ref(marketplace, order_id)), per_page=20
    )
    return render_template(
        "dashboard/order.html",
        order=order,
        summary=summary,
        account=account,
        events=events.items,
        actor_names=actor_names(),
        reissue_cap=services().settings.label_reissue_cap,
        confirmation=confirmation_of_order(db, tenant_id=order.tenant_id, order_id=order.id),
    )


@bp.post("/orders/<marketplace>/<order_id>/reprint")
@require("reprints")
def order_reprint(marketplace: str, order_id: str) -> Response:
    """Grant the order one more label than the reissue cap (owners only; the reason is audited with it)."""
    db = db_session()
    try:
        issued, granted = grant_reprint(
            db,
            tenant_id=tenant_id(),
            marketplace=marketplace,
            order_id=order_id,
            actor=actor(),
            reason=request.form.get("reason", ""),
            ip=client_ip(),
        )
    except NotFound:
        abort(404)
    except ReprintNotGranted:
        db.rollback()
        flash(_("Say why the warehouse needs another label."), "error")
    else:
        db.commit()
        cap = services().settings.label_reissue_cap + granted
        flash(_("Reprint granted: %(issued)d of %(cap)d labels issued.", issued=issued, cap=cap), "success")
    return redirect(url_for("dashboard.order_detail", marketplace=marketplace, order_id=order_id))


@bp.get("/orders/<marketplace>/<order_id>/preview")
@require("label-preview")
@fresh_second_factor()
def label_preview(marketplace: str, order_id: str) -> str:
    order = _order(marketplace, order_id)
    return render_template("dashboard/preview.html", order=order, has_label=order.label is not None)


@bp.get("/orders/<marketplace>/<order_id>/label.png", head=False)  # HEAD would audit a view nobody saw
@require("label-preview")
def label_image(marketplace: str, order_id: str) -> Response:
    """The label as an image, through the vault's preview (eligibility, unseal, audit as ``label.preview``).

    Only with a fresh second factor. A refused preview is audited too, and answered 404 (nothing to show).
    """
    if not second_factor_fresh():
        abort(403, _("Enter a code from your authenticator app again to see labels."))
    db = db_session()
    try:
        shown = preview_label(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            actor=actor(),
            marketplace=marketplace,
            order_id=order_id,
            ip=client_ip(),
        )
    except (NotFound, NotEligible):
        db.commit()  # the refusal is audited
        abort(404)
    except (DecryptionError, KeyServiceUnavailable):
        db.commit()
        raise
    db.commit()  # audited before anything is sent
    png = label_png(shown, current_tenant().return_address)
    resp = Response(png, mimetype="image/png")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Disposition"] = "inline"
    return resp
