"""People's rights requests, after a fresh second factor: access export and address correction (owner only),
erasure (operator and owner)."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, tenant_id
from app.dashboard.state import current_user, fresh_second_factor, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from vault.errors import NotFound
from vault.records import LabelRecord
from vault.rights import RightsError, RightsRequest, correct_address, erase_order, export_order_data
from vault.users.roles import may


def _rights_page(error: str | None = None, status: int = 200, **extra: Any) -> tuple[str, int]:
    values = {"order_id": request.values.get("order_id", "")[:100], **extra}
    return render_template(
        "dashboard/rights.html", error=error, values=values, fields=LabelRecord.field_names()
    ), status


def _rights_request() -> RightsRequest:
    return RightsRequest(
        actor=actor(),
        request_id=request.form.get("request_id", "").strip()[:100],
        verified_by=request.form.get("verified_by", "").strip()[:100],
    )


@bp.get("/rights")
@require("rights-erasure")  # the least of the three; the page offers what the user's role allows
@fresh_second_factor()
def rights() -> tuple[str, int]:
    return _rights_page()


@bp.post("/rights/<kind>")
@require("rights-erasure")
@fresh_second_factor(back="dashboard.rights")
def rights_request(kind: str) -> Response | tuple[str, int]:
    """Access and correction show or change a buyer's data: the owner only (vault/users/roles.py)."""
    if kind not in ("access", "correction", "erasure"):
        abort(404)
    if not may(current_user().role, f"rights-{kind}"):
        abort(403, _("Your role does not allow this. Ask an owner of your organisation."))
    db = db_session()
    order_id = request.form.get("order_id", "").strip()
    try:
        req = _rights_request()
        if kind == "access":
            data = export_order_data(
                db,
                keys=services().keys,
                tenant_id=tenant_id(),
                marketplace="amazon",
                external_order_id=order_id,
                request=req,
            )
            db.commit()
            resp = Response(json.dumps(data, ensure_ascii=False, indent=2), mimetype="application/json")
            resp.headers["Content-Disposition"] = f'attachment; filename="access-{order_id[:60]}.json"'
            return resp
        if kind == "correction":
            values = {f: request.form.get(f, "").strip() or None for f in LabelRecord.field_names()}
            if not (values["name"] and values["address_line1"] and values["city"] and values["country_code"]):
                raise RightsError(_("A corrected address needs at least a name, a street, a city and a country code."))
            values["country_code"] = str(values["country_code"]).upper()
            version = correct_address(
                db,
                keys=services().keys,
                tenant_id=tenant_id(),
                marketplace="amazon",
                external_order_id=order_id,
                label=LabelRecord(**values),  # type: ignore[arg-type]
                request=req,
            )
            db.commit()
            flash(
                _("Address of order %(order)s corrected (record version %(v)d).", order=order_id, v=version), "success"
            )
            return redirect(url_for("dashboard.order_detail", marketplace="amazon", order_id=order_id))
        outcome = erase_order(db, tenant_id=tenant_id(), marketplace="amazon", external_order_id=order_id, request=req)
        db.commit()
        if outcome.erased:
            flash(_("Order %(order)s erased: its label data is gone for good.", order=order_id), "success")
        elif outcome.already_erased:
            flash(_("Order %(order)s was erased already.", order=order_id), "info")
        else:
            flash(
                _(
                    "Order %(order)s is under a legal hold and was not erased: %(holds)s",
                    order=order_id,
                    holds=outcome.hold_summary,
                ),
                "error",
            )
        return redirect(url_for("dashboard.order_detail", marketplace="amazon", order_id=order_id))
    except NotFound:
        db.rollback()
        return _rights_page(_("No order with that ID."), 400)
    except RightsError as exc:
        db.rollback()
        return _rights_page(domain_message(exc), 400)
