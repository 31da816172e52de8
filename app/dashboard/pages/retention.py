"""Retention and legal holds: shorten the tenant's retention, place and release holds."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, parse_date, tenant_id
from app.dashboard.state import (
    require,
)
from app.dashboard.templating import domain_message
from app.services import db_session
from vault import reports
from vault.errors import NotFound
from vault.models import utcnow
from vault.orders import find_order
from vault.retention import RetentionError, place_hold, platform_rules, release_hold, set_tenant_policy, tenant_days


def _retention_page(error: str | None = None) -> str:
    db = db_session()
    tid = tenant_id()
    rule = platform_rules().for_marketplace("amazon")
    return render_template(
        "dashboard/retention.html",
        status=reports.retention_status(db, tenant_id=tid),
        platform_days=rule.days_after_delivery,
        allowance_days=rule.delivery_allowance_days,
        tenant_days=tenant_days(db, tenant_id=tid, marketplace="amazon"),
        holds=reports.holds_of(db, tenant_id=tid),
        now=utcnow(),
        error=error,
    )


@bp.get("/retention")
@require("view")
def retention() -> str:
    return _retention_page()


@bp.post("/retention/policy")
@require("retention")
def retention_policy() -> Response | tuple[str, int]:
    db = db_session()
    raw = request.form.get("days", "").strip()
    try:
        days = None if raw == "" else int(raw)
        n = set_tenant_policy(db, tenant_id=tenant_id(), marketplace="amazon", days_after_delivery=days, actor=actor())
    except ValueError:
        return _retention_page(_("Enter a whole number of days, or leave it empty for the platform rule.")), 400
    except RetentionError:
        db.rollback()
        return _retention_page(
            _("A seller may shorten retention, never lengthen it; a legal hold keeps data longer.")
        ), 400
    db.commit()
    flash(_("Retention saved; %(n)d orders re-dated.", n=n), "success")
    return redirect(url_for("dashboard.retention"))


@bp.post("/retention/holds")
@require("retention")
def retention_hold() -> Response | tuple[str, int]:
    db = db_session()
    form = request.form
    ends = parse_date(form.get("ends_on"))
    order = None
    try:
        if form.get("order_id", "").strip():
            order = find_order(
                db, tenant_id=tenant_id(), marketplace="amazon", external_order_id=form["order_id"].strip()
            )
        if ends is None:
            raise RetentionError(_("Give the hold an end date."))
        place_hold(
            db,
            tenant_id=tenant_id(),
            reason=form.get("reason", ""),
            owner=form.get("owner", ""),
            ends_at=datetime.combine(ends, time(23, 59, 59), tzinfo=UTC),
            actor=actor(),
            order=order,
        )
    except NotFound:
        db.rollback()
        return _retention_page(_("No order with that ID.")), 400
    except RetentionError as exc:
        db.rollback()
        return _retention_page(domain_message(exc)), 400
    db.commit()
    flash(_("Legal hold placed."), "success")
    return redirect(url_for("dashboard.retention"))


@bp.post("/retention/holds/<int:hold_id>/release")
@require("retention")
def retention_release(hold_id: int) -> Response:
    db = db_session()
    try:
        release_hold(db, tenant_id=tenant_id(), hold_id=hold_id, actor=actor())
    except NotFound:
        abort(404)
    db.commit()
    flash(_("Legal hold released."), "success")
    return redirect(url_for("dashboard.retention"))
