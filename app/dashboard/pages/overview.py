"""The overview: two weeks of orders, labels and refusals, account health, keys and retention at a glance."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _

from app.dashboard import bp
from app.dashboard.pages.shared import tenant_id
from app.dashboard.state import (
    current_tenant,
    require,
)
from app.services import db_session
from vault import reports


@bp.get("/")
@require("view")
def overview() -> str:
    db = db_session()
    tid = tenant_id()
    activity = reports.daily_activity(db, tenant_id=tid, days=14)
    chart = {
        "days": [d.day.isoformat() for d in activity],
        "series": [
            {"key": "orders", "label": _("Orders synced"), "values": [d.orders for d in activity]},
            {"key": "labels", "label": _("Labels issued"), "values": [d.labels for d in activity]},
            {"key": "refusals", "label": _("Refusals"), "values": [d.refusals for d in activity]},
        ],
    }
    return render_template(
        "dashboard/overview.html",
        tenant=current_tenant(),
        chart=chart,
        activity=activity,
        accounts=reports.account_health(db, tenant_id=tid),
        keys=reports.key_status(db, tenant_id=tid),
        retention=reports.retention_status(db, tenant_id=tid),
        totals={k: sum(getattr(d, k) for d in activity) for k in ("orders", "labels", "refusals")},
    )
