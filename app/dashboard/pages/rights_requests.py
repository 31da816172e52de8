"""Rights requests as a workflow (vault/rights_requests.py): the due and overdue list, opening a request
with the person's values or from a marketplace's own notice (its order ids), the masked matches to confirm,
carrying it out, and downloading the sealed access export a marketplace's request left (Shopify's
``customers/data_request``, carried out by the webhook with nobody there). Owner only, fresh second
factor; every step is audited by the workflow functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, page_number, parse_date, split_lines, tenant_id
from app.dashboard.state import client_ip, fresh_second_factor, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors import registry
from vault import rights_requests as rr
from vault.blind_index import PersonValues
from vault.errors import NotFound
from vault.models import RightsRequestRow, utcnow

PERMISSION = "rights-access"  # owner only (vault/users/roles.py)


def source_name(source: str) -> str:
    """Who a request came from, for people: the marketplace's name, or the seller's own team."""
    code = rr.marketplace_of(source)
    return registry.name_of(code) if code else _("Your team")


def _list_page(error: str | None = None, status: int = 200, notice: Any = None) -> tuple[str, int]:
    db = db_session()
    return render_template(
        "dashboard/rights_requests.html",
        requests=rr.open_requests(db, tenant_id=tenant_id()),
        done=rr.completed_requests(db, tenant_id=tenant_id(), page=page_number(request.args.get("page"))),
        kinds=[k for k in rr.KINDS if k != rr.CORRECTION],
        jurisdictions=sorted(services().settings.due_days),
        platforms={code: p.name for code, p in registry.PLATFORMS.items()},
        source_name=source_name,
        notice=notice or {},
        error=error,
    ), status


@bp.get("/rights/requests")
@require(PERMISSION)
@fresh_second_factor()
def rights_requests() -> tuple[str, int]:
    return _list_page()


def _value(name: str) -> str | None:
    return request.form.get(name, "").strip()[:200] or None


@bp.post("/rights/requests")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.rights_requests")
def rights_requests_open() -> Response | tuple[str, int]:
    db = db_session()
    form = request.form
    try:
        person = PersonValues(
            name=_value("name"),
            phone=_value("phone"),
            phone_region=(_value("phone_region") or "").upper() or None,
            postcode=_value("postcode"),
            email=_value("email"),
        )
        if not person.terms():
            raise rr.RightsRequestError(_("Give at least one of the person's name, phone, postcode or e-mail."))
        row = rr.open_request(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            kind=form.get("kind", ""),
            person=person,
            reference=form.get("reference", ""),
            verified_by=form.get("verified_by", ""),
            verification=form.get("verification", ""),
            actor=actor(),
            jurisdiction=form.get("jurisdiction", "default"),
            due_days=services().settings.due_days,
        )
        rr.find_matches(db, keys=services().keys, tenant_id=tenant_id(), request_id=row.id, actor=actor())
    except (rr.RightsRequestError, ValueError) as exc:
        db.rollback()
        return _list_page(domain_message(exc) if isinstance(exc, rr.RightsRequestError) else str(exc), 400)
    db.commit()
    return redirect(url_for("dashboard.rights_request_page", request_id=row.id))


def _notice_date(value: str) -> datetime:
    day = parse_date(value.strip())
    if day is None:
        raise ValueError(_("Give the notice's date as YYYY-MM-DD."))
    when = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if when > utcnow():
        raise ValueError(_("The notice's date is in the future."))
    return when


def _notice_orders(marketplace: str, text: str) -> list[str]:
    try:
        return registry.notice_order_ids(marketplace, split_lines(text))
    except registry.NoticeOrdersRejected as exc:
        if exc.platform is None:
            raise ValueError(_("Choose the marketplace that sent the notice.")) from None
        if not exc.bad:
            raise ValueError(_("Give the %(platform)s order ids the notice names.", platform=exc.platform)) from None
        message = _(
            "%(bad)d of the %(total)d order ids are not %(platform)s order ids (the first is number %(first)d).",
            bad=exc.bad,
            total=exc.total,
            platform=exc.platform,
            first=exc.first,
        )
        raise ValueError(message) from None


@bp.post("/rights/requests/notice")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.rights_requests")
def rights_requests_notice() -> Response | tuple[str, int]:
    """A marketplace's own notice (an Amazon deletion notice, say): its order ids locked in, dated by it."""
    db = db_session()
    form = request.form
    try:
        marketplace = form.get("marketplace", "")
        ids = _notice_orders(marketplace, form.get("order_ids", ""))
        row, named = rr.open_notice(
            db, keys=services().keys, tenant_id=tenant_id(), marketplace=marketplace, kind=form.get("kind", ""),
            notice_id=form.get("notice_id", ""), notice_date=_notice_date(form.get("notice_date", "")),
            order_ids=ids, actor=actor(), jurisdiction=form.get("jurisdiction", "default"),
            due_days=services().settings.due_days,
        )  # fmt: skip
    except (rr.RightsRequestError, ValueError) as exc:
        db.rollback()
        message = domain_message(exc) if isinstance(exc, rr.RightsRequestError) else str(exc)
        return _list_page(message, 400, notice=form)
    db.commit()
    flash(_("%(named)d of the notice's %(total)d orders found.", named=named, total=len(ids)), "success")
    return redirect(url_for("dashboard.rights_request_page", request_id=row.id))


def _request_or_404(request_id: int) -> RightsRequestRow:
    try:
        return rr.get_request(db_session(), tenant_id=tenant_id(), request_id=request_id)
    except NotFound:
        abort(404)


@bp.get("/rights/requests/<int:request_id>")
@require(PERMISSION)
@fresh_second_factor()
def rights_request_page(request_id: int) -> str:
    db = db_session()
    row = _request_or_404(request_id)
    found = rr.matches_of(db, keys=services().keys, tenant_id=tenant_id(), request_id=row.id)
    db.commit()
    return render_template(
        "dashboard/rights_request.html",
        row=row,
        matches=found,
        source_name=source_name,
        export_id=rr.export_id_of(row),
        error=None,
    )


@bp.post("/rights/requests/<int:request_id>/export")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.rights_request_page")
def rights_request_export(request_id: int) -> Response:
    """Download the sealed access export a marketplace's request left; audited as ``rights.export-fetched``."""
    db = db_session()
    row = _request_or_404(request_id)
    try:
        content = rr.fetch_request_export(
            db, keys=services().keys, tenant_id=tenant_id(), request_id=row.id, actor=actor(), ip=client_ip()
        )
    except NotFound:
        abort(404)
    db.commit()  # audited before anything leaves
    resp = Response(json.dumps(content, ensure_ascii=False, indent=2), mimetype="application/json")
    resp.headers["Content-Disposition"] = f'attachment; filename="rights-request-{row.id}-export.json"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/rights/requests/<int:request_id>/confirm")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.rights_request_page")
def rights_request_confirm(request_id: int) -> Response:
    db = db_session()
    row = _request_or_404(request_id)
    try:
        chosen = [int(v) for v in request.form.getlist("order") if v.isdigit()]
        count = rr.confirm(db, tenant_id=tenant_id(), request_id=row.id, order_ids=chosen, actor=actor())
    except rr.RightsRequestError as exc:
        db.rollback()
        flash(domain_message(exc), "error")
        return redirect(url_for("dashboard.rights_request_page", request_id=request_id))
    db.commit()
    flash(_("%(n)d orders confirmed.", n=count), "success")
    return redirect(url_for("dashboard.rights_request_page", request_id=request_id))


@bp.post("/rights/requests/<int:request_id>/carry-out")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.rights_request_page")
def rights_request_carry_out(request_id: int) -> Response:
    db = db_session()
    row = _request_or_404(request_id)
    try:
        outcome = rr.carry_out(db, keys=services().keys, tenant_id=tenant_id(), request_id=row.id, actor=actor())
    except rr.RightsRequestError as exc:
        db.rollback()
        flash(domain_message(exc), "error")
        return redirect(url_for("dashboard.rights_request_page", request_id=request_id))
    db.commit()
    if outcome.export is not None:
        resp = Response(json.dumps(outcome.export, ensure_ascii=False, indent=2), mimetype="application/json")
        resp.headers["Content-Disposition"] = f'attachment; filename="rights-request-{row.id}.json"'
        resp.headers["Cache-Control"] = "no-store"
        return resp
    flash(_("Request carried out on %(n)d orders.", n=len(outcome.done)), "success")
    for order, hold in sorted(outcome.held.items()):
        flash(_("Order %(order)s kept by a legal hold: %(hold)s", order=order, hold=hold), "error")
    return redirect(url_for("dashboard.rights_request_page", request_id=request_id))
