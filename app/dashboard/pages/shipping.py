"""The seller's daily print run: orders to ship today or overdue, by ship-by time in the seller's time zone,
and the print action that releases the selected wave as one PDF or ZPL document.

Printing takes the label API's batch path (:func:`vault.release.release_batch`: each order checked, counted
against the reissue cap and audited as ``label.release`` by the signed-in user), with the default label
profile and the tenant's return address, and needs a fresh second factor like the preview: the labels carry
buyer data in clear. Only a committed release is sent, as a download that is never cached.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Response, abort, flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from app.api.request_checks import well_formed
from app.dashboard import bp
from app.dashboard.pages.shared import actor, tenant_id
from app.dashboard.state import client_ip, current_tenant, fresh_second_factor, require
from app.dashboard.templating import REFUSAL_REASONS
from app.printing import label_document, render, renderer_for
from app.security import no_store
from app.services import db_session, services
from vault import reports
from vault.clients import DEFAULT_PROFILE
from vault.models import utcnow
from vault.release import Refused, ReleasedLabel, release_batch
from vault.tenants import time_zone_of

#: The formats a print run offers: one multi-page PDF (any printer) or one ZPL stream (label printers).
PRINT_FORMATS = ("pdf", "zpl")


def _day_ends(now: datetime) -> datetime:
    """The end of the seller's today (midnight in the tenant's time zone), as a UTC instant."""
    zone = time_zone_of(current_tenant())
    today = now.astimezone(zone).date()
    return datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    now = utcnow()
    queue = reports.ship_queue(db_session(), tenant_id=tenant_id(), now=now, day_ends=_day_ends(now))
    zone = time_zone_of(current_tenant())
    page = render_template(
        "dashboard/shipping.html",
        queue=queue,
        zone=zone,
        today=now.astimezone(zone).date(),
        formats=PRINT_FORMATS,
        error=error,
    )
    return page, status


@bp.get("/shipping")
@require("view")
def shipping() -> tuple[str, int]:
    return _page()


def _refs(values: list[str]) -> list[tuple[str, str] | None]:
    """The selected orders (``marketplace:order id`` each); a malformed one is kept as ``None`` (refused)."""
    refs: list[tuple[str, str] | None] = []
    for value in values:
        marketplace, _sep, order_id = value.partition(":")
        refs.append((marketplace, order_id) if well_formed(marketplace, order_id) else None)
    return refs


@bp.post("/shipping/print")
@require("labels-print")
@fresh_second_factor(back="dashboard.shipping")
def shipping_print() -> Response | tuple[str, int]:
    selected = request.form.getlist("order")[: reports.SHIP_QUEUE_MAX]
    fmt = request.form.get("format", "pdf")
    if fmt not in PRINT_FORMATS:
        abort(400, _("Choose PDF or ZPL."))
    if not selected:
        return _page(_("Select the orders to print first."), 400)
    db = db_session()
    svc = services()
    tenant = current_tenant()
    sender = tenant.return_address
    now = utcnow()
    renderer = renderer_for(fmt, DEFAULT_PROFILE)
    try:
        batch = release_batch(
            db,
            engine=svc.engine,
            keys=svc.keys,
            tenant_id=tenant.id,
            actor=actor(),
            refs=_refs(selected),
            profile=DEFAULT_PROFILE,
            render=lambda labels: render(renderer, [label_document(x, sender, now) for x in labels]),
            ip=client_ip(),
            reissue_cap=svc.settings.label_reissue_cap,
            fmt=fmt,
            now=now,
        )
    except SQLAlchemyError:
        db.rollback()
        abort(503, _("The print run could not be recorded; nothing was released."))
    except BaseException:
        db.rollback()
        raise
    refused = [r for r in batch.results if isinstance(r, Refused)]
    notes = [f"{r.order_id or '?'} ({REFUSAL_REASONS.get(r.reason, r.reason)})" for r in refused]
    if batch.document is None:
        return _page(_("No label was printed: %(orders)s", orders=", ".join(notes)), 409)
    if refused:
        flash(_("Some orders were not printed: %(orders)s", orders=", ".join(notes)), "warning")
    released = sum(isinstance(r, ReleasedLabel) for r in batch.results)
    resp = Response(batch.document, mimetype=renderer.media_type)
    name = f"labels-{now.astimezone(time_zone_of(tenant)):%Y%m%d-%H%M}-{released}.{fmt}"
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return no_store(resp)
