"""The audit log: search, verify the tenant's chain, export as CSV (references only, no PII)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from flask import render_template, request
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor_names, page_number, parse_date, tenant_id
from app.dashboard.state import (
    require,
)
from app.services import db_session, services
from vault import reports
from vault.audit import chain_for, verify_chain
from vault.models import utcnow


def _audit_query() -> reports.AuditQuery:
    a = request.args
    return reports.AuditQuery(
        client=a.get("client", "")[:64],
        order=a.get("order", "")[:160],
        action=a.get("action", "")[:60],
        since=parse_date(a.get("from")),
        until=parse_date(a.get("to")),
    )


@bp.get("/audit")
@require("view")
def audit() -> str:
    db = db_session()
    query = _audit_query()
    page = reports.search_audit(db, tenant_id=tenant_id(), query=query, page=page_number(request.args.get("page")))
    params = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "dashboard/audit.html",
        page=page,
        query=query,
        params=params,
        actions=reports.audit_actions(db, tenant_id=tenant_id()),
        clients=reports.clients_of(db, tenant_id=tenant_id()),
        report=None,
        actor_names=actor_names(),
    )


@bp.post("/audit/verify")
@require("view")
def audit_verify() -> str:
    db = db_session()
    report = verify_chain(db, chain=chain_for(tenant_id()))
    page = reports.search_audit(db, tenant_id=tenant_id(), query=reports.AuditQuery())
    return render_template(
        "dashboard/audit.html",
        page=page,
        query=reports.AuditQuery(),
        params={},
        actions=reports.audit_actions(db, tenant_id=tenant_id()),
        clients=reports.clients_of(db, tenant_id=tenant_id()),
        report=report,
        actor_names=actor_names(),
    )


@bp.get("/audit/export.csv")
@require("view")
def audit_export() -> Response:
    """The filtered audit log as CSV (references only, no PII), with each event's hash for checking."""
    tid = tenant_id()
    query = _audit_query()
    sessions = services().sessions
    columns = [
        "seq",
        "occurred_at",
        "actor",
        "action",
        "outcome",
        "order_ref",
        "ip",
        "purpose",
        "details",
        "prev_hash",
        "hash",
    ]

    def rows() -> Iterator[str]:
        # Its own session, closed when the download ends or is abandoned (the request's is gone by then).
        with sessions() as db:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(columns)
            for ev in reports.iter_audit(db, tenant_id=tid, query=query):
                values = [getattr(ev, c) for c in columns]
                values[1] = ev.occurred_at.isoformat()
                values[8] = "" if ev.details is None else json.dumps(ev.details, sort_keys=True, ensure_ascii=False)
                writer.writerow(values)
                if buf.tell() > 64_000:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

    resp = Response(rows(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="audit-{utcnow():%Y%m%d-%H%M%S}.csv"'
    return resp
