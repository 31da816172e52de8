"""The dashboard's pages: overview, marketplace accounts, orders (masked) and the label preview, warehouse
clients, audit log, retention and legal holds, people's rights requests, users, profile."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.jobs import start_sync
from app.dashboard.preview import label_png
from app.dashboard.state import (
    client_ip,
    current_tenant,
    current_user,
    fresh_second_factor,
    login_required,
    require,
    second_factor_fresh,
)
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.amazon import API_V0, API_V2026, LwaCredentials
from connectors.amazon.endpoints import REGIONS
from vault import reports
from vault.audit import append_event, chain_for, verify_chain
from vault.clients import (
    ADMIN,
    ALL_FIELDS,
    DEFAULT_PROFILE,
    LABELS_ISSUE,
    REQUIRED_FIELDS,
    LabelProfile,
    allow_cidrs,
    create_client,
    find_client,
    revoke_client,
    set_profile,
)
from vault.errors import ClientSetupError, DecryptionError, KeyServiceUnavailable, NotFound
from vault.labels import unseal_label
from vault.marketplace_accounts import seal_credentials, shred_account
from vault.masking import masked_summary
from vault.models import MarketplaceAccount, Order, utcnow
from vault.orders import find_order
from vault.records import LabelRecord, OrderStatus
from vault.release import order_ref
from vault.retention import RetentionError, place_hold, platform_rules, release_hold, set_tenant_policy, tenant_days
from vault.rights import RightsError, RightsRequest, correct_address, erase_order, export_order_data
from vault.users.accounts import disable_user, find_user, set_role, unlock_user, users_of
from vault.users.allowlist import dashboard_cidrs, set_dashboard_cidrs
from vault.users.base import UserError, actor_of
from vault.users.invitations import invite_user
from vault.users.passwords import change_password
from vault.users.roles import ROLES
from vault.users.second_factor import new_recovery_codes, recovery_codes_left, reset_second_factor

PREVIEW_PURPOSE = "label-preview"
#: Amazon marketplaces offered in the connect form, by region (the ids sellers see in Seller Central).
MARKETPLACE_IDS = {
    "fe": ["A1VC38T7YXB528"],
    "na": ["ATVPDKIKX0DER"],
    "eu": ["A1PA6795UKMFR9"],
}
OPTIONAL_FIELDS = sorted(ALL_FIELDS - REQUIRED_FIELDS)


def _actor() -> str:
    return actor_of(current_user())


def _tenant_id() -> int:
    return current_user().tenant_id


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


def _lines(text: str) -> list[str]:
    return [p.strip() for p in text.replace(",", "\n").splitlines() if p.strip()]


# -- overview -------------------------------------------------------------------------------------------


@bp.get("/")
@require("view")
def overview() -> str:
    db = db_session()
    tid = _tenant_id()
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


# -- marketplace accounts -------------------------------------------------------------------------------


@bp.get("/accounts")
@require("view")
def accounts() -> str:
    db = db_session()
    return render_template(
        "dashboard/accounts.html",
        accounts=reports.account_health(db, tenant_id=_tenant_id()),
        regions=sorted(REGIONS),
        api_versions=[API_V2026, API_V0],
        marketplace_ids=MARKETPLACE_IDS,
        form=MultiDict(),
        error=None,
    )


def _endpoint(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(_("An endpoint is a full URL such as https://sellingpartnerapi-fe.amazon.com."))
    if parts.scheme == "http" and services().settings.production:
        raise ValueError(_("Endpoints must use HTTPS."))
    return value.rstrip("/")


@bp.post("/accounts")
@require("accounts")
def connect_account() -> Response | tuple[str, int]:
    """Connect an Amazon account: LWA credentials sealed under the tenant key, like `flask accounts add`."""
    form = request.form
    db = db_session()
    tid = _tenant_id()
    error = None
    try:
        name = form.get("name", "").strip()
        region = form.get("region", "")
        api_version = form.get("api_version", API_V2026)
        ids = _lines(form.get("marketplace_ids", ""))
        if not name or len(name) > 200:
            raise ValueError(_("Give the account a name (up to 200 characters)."))
        if region not in REGIONS or api_version not in (API_V2026, API_V0):
            raise ValueError(_("Choose a region and an Orders API version."))
        if not ids:
            raise ValueError(_("Name at least one marketplace ID, e.g. A1VC38T7YXB528 for Amazon.co.jp."))
        secrets = {k: form.get(k, "").strip() for k in ("client_id", "client_secret", "refresh_token")}
        if not all(secrets.values()):
            raise ValueError(_("The LWA client ID, client secret and refresh token are all needed."))
        sp_api, lwa = _endpoint(form.get("sp_api_endpoint", "")), _endpoint(form.get("lwa_endpoint", ""))
        taken = db.scalar(
            select(MarketplaceAccount.id).where(MarketplaceAccount.tenant_id == tid, MarketplaceAccount.name == name)
        )
        if taken is not None:
            raise ValueError(_("There is an account with that name already."))
    except ValueError as exc:
        error = domain_message(exc)
    if error is None:
        # No connector-side "add account" function exists yet: the same steps as `flask accounts add amazon`.
        account = MarketplaceAccount(
            tenant_id=tid,
            marketplace="amazon",
            name=name,
            region=region,
            api_version=api_version,
            marketplace_ids=ids,
            sandbox=form.get("sandbox") == "on",
            sp_api_endpoint=sp_api,
            lwa_endpoint=lwa,
        )
        db.add(account)
        db.flush()
        seal_credentials(
            db, keys=services().keys, account=account, secrets=LwaCredentials.from_secrets(secrets).as_secrets()
        )
        append_event(
            db,
            tenant_id=tid,
            actor=_actor(),
            action="account.connect",
            ip=client_ip(),
            purpose="administration",
            details={
                "account_id": account.id,
                "marketplace": "amazon",
                "region": region,
                "custom_endpoints": bool(sp_api or lwa),
            },
        )
        db.commit()
        flash(_("Account “%(name)s” connected. Start its first sync with “Sync now”.", name=name), "success")
        return redirect(url_for("dashboard.accounts"))
    safe_form = MultiDict({k: v for k, v in form.items() if k not in ("client_secret", "refresh_token", "csrf_token")})
    page = render_template(
        "dashboard/accounts.html",
        accounts=reports.account_health(db, tenant_id=tid),
        regions=sorted(REGIONS),
        api_versions=[API_V2026, API_V0],
        marketplace_ids=MARKETPLACE_IDS,
        form=safe_form,
        error=error,
    )
    return page, 400


def _account(account_id: int) -> MarketplaceAccount:
    account = db_session().get(MarketplaceAccount, account_id)
    if account is None or account.tenant_id != _tenant_id() or account.removed_at is not None:
        abort(404)
    return account


@bp.post("/accounts/<int:account_id>/sync")
@require("sync")
def sync_now(account_id: int) -> Response:
    account = _account(account_id)
    start_sync(account.id)
    flash(_("Sync of “%(name)s” started. This page shows the result when it is done.", name=account.name), "info")
    return redirect(url_for("dashboard.accounts"))


@bp.post("/accounts/<int:account_id>/remove")
@require("accounts")
@fresh_second_factor(back="dashboard.accounts")
def remove_account(account_id: int) -> Response:
    db = db_session()
    account = _account(account_id)
    if request.form.get("confirm") != account.name:
        flash(_("Type the account's name to confirm removing it."), "error")
        return redirect(url_for("dashboard.accounts"))
    shredded = shred_account(db, account=account)
    append_event(
        db,
        tenant_id=account.tenant_id,
        actor=_actor(),
        action="account.remove",
        ip=client_ip(),
        purpose="administration",
        details={"account_id": account.id, "records_shredded": shredded},
    )
    db.commit()
    flash(_("Account removed; %(n)d label records shredded.", n=shredded), "success")
    return redirect(url_for("dashboard.accounts"))


# -- orders ---------------------------------------------------------------------------------------------


@bp.get("/orders")
@require("view")
def orders() -> str:
    # Every criterion here is non-PII (order ids, statuses, dates), so a GET form is fine.
    args = request.args
    query = reports.OrderQuery(
        order_id=args.get("order_id", "")[:100],
        status=args.get("status", "") if args.get("status", "") in {*OrderStatus, "erased"} else "",
        purchased_from=_date(args.get("from")),
        purchased_to=_date(args.get("to")),
    )
    db = db_session()
    page = reports.search_orders(db, tenant_id=_tenant_id(), query=query, page=_int(args.get("page")))
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
        return find_order(db_session(), tenant_id=_tenant_id(), marketplace=marketplace, external_order_id=order_id)
    except NotFound:
        abort(404)


@bp.get("/orders/<marketplace>/<order_id>")
@require("view")
def order_detail(marketplace: str, order_id: str) -> str:
    db = db_session()
    order = _order(marketplace, order_id)
    summary = ""
    if order.label is not None:
        try:
            summary = masked_summary(unseal_label(db, keys=services().keys, order=order))
        except (DecryptionError, KeyServiceUnavailable):
            summary = "?"
    account = db.get(MarketplaceAccount, order.account_id)
    events = reports.search_audit(
        db, tenant_id=_tenant_id(), query=reports.AuditQuery(order=order_ref(marketplace, order_id)), per_page=20
    )
    return render_template(
        "dashboard/order.html",
        order=order,
        summary=summary,
        account=account,
        events=events.items,
        actor_names=_actor_names(),
    )


@bp.get("/orders/<marketplace>/<order_id>/preview")
@require("label-preview")
@fresh_second_factor()
def label_preview(marketplace: str, order_id: str) -> str:
    order = _order(marketplace, order_id)
    return render_template("dashboard/preview.html", order=order, has_label=order.label is not None)


@bp.get("/orders/<marketplace>/<order_id>/label.png")
@require("label-preview")
def label_image(marketplace: str, order_id: str) -> Response:
    """The label as an image: only with a fresh second factor, and every view is audited (purpose label-preview)."""
    if not second_factor_fresh():
        abort(403, _("Enter a code from your authenticator app again to see labels."))
    db = db_session()
    order = _order(marketplace, order_id)
    if order.label is None:
        abort(404)
    record = unseal_label(db, keys=services().keys, order=order)
    png = label_png(order, record)
    append_event(
        db,
        tenant_id=order.tenant_id,
        actor=_actor(),
        action="label.preview",
        outcome="shown",
        order_ref=order_ref(order.marketplace, order.external_order_id),
        ip=client_ip(),
        purpose=PREVIEW_PURPOSE,
        details={"format": "png", "profile": "default"},
    )
    db.commit()  # audited before anything is sent
    resp = Response(png, mimetype="image/png")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Disposition"] = "inline"
    return resp


# -- warehouse clients ------------------------------------------------------------------------------------


def _clients_page(**extra: Any) -> str:
    db = db_session()
    return render_template(
        "dashboard/clients.html",
        clients=reports.clients_of(db, tenant_id=_tenant_id()),
        optional_fields=OPTIONAL_FIELDS,
        default_fields=sorted(DEFAULT_PROFILE.fields),
        profile_of=LabelProfile.from_json,
        **{"new_key": None, "new_client": None, "error": None, "form": MultiDict(), **extra},
    )


@bp.get("/clients")
@require("view")
def clients() -> str:
    return _clients_page()


@bp.post("/clients")
@require("clients")
@fresh_second_factor(back="dashboard.clients")
def create_client_view() -> Response | str | tuple[str, int]:
    form = request.form
    db = db_session()
    tenant = current_tenant()
    scopes = [LABELS_ISSUE] + ([ADMIN] if form.get("admin") == "on" else [])
    try:
        profile = _profile_from(form)
        issued = create_client(
            db,
            tenant=tenant,
            name=form.get("name", ""),
            scopes=scopes,
            cidrs=_lines(form.get("cidrs", "")),
            profile=None if profile == DEFAULT_PROFILE else profile,
            actor=_actor(),
            ip=client_ip(),
        )
    except ClientSetupError as exc:
        db.rollback()
        return _clients_page(error=domain_message(exc), form=form), 400
    db.commit()
    # The key exists only in this response (Cache-Control: no-store): shown once, never stored in clear.
    return _clients_page(new_key=issued.key, new_client=issued.client)


def _profile_from(form: MultiDict[str, str]) -> LabelProfile:
    """The label profile a client form asks for (the required fields always included)."""
    fields = set(REQUIRED_FIELDS) | {f for f in form.getlist("fields") if f in OPTIONAL_FIELDS}
    countries = [c.upper() for c in _lines(form.get("phone_countries", ""))]
    if countries and "phone" not in fields:
        raise ClientSetupError(_("Phone countries are given, but the phone is not released."))
    font = form.get("printer_font", "").strip() or None
    return LabelProfile(frozenset(fields), frozenset(countries) if countries else None, font)


def _client(key_id: str) -> Any:
    try:
        return find_client(db_session(), tenant_id=_tenant_id(), ref=key_id)
    except NotFound:
        abort(404)


@bp.post("/clients/<key_id>/revoke")
@require("clients")
def revoke_client_view(key_id: str) -> Response:
    db = db_session()
    client = _client(key_id)
    revoke_client(db, client=client, actor=_actor(), ip=client_ip())
    db.commit()
    flash(_("Client “%(name)s” revoked: its key no longer works.", name=client.name), "success")
    return redirect(url_for("dashboard.clients"))


@bp.post("/clients/<key_id>/profile")
@require("clients")
@fresh_second_factor(back="dashboard.clients")
def client_profile(key_id: str) -> Response | tuple[str, int]:
    """Change which buyer fields a client receives: more PII released, so a fresh second factor first."""
    db = db_session()
    client = _client(key_id)
    try:
        changed = set_profile(db, client=client, profile=_profile_from(request.form), actor=_actor(), ip=client_ip())
    except ClientSetupError as exc:
        db.rollback()
        return _clients_page(error=domain_message(exc)), 400
    db.commit()
    if changed:
        flash(_("Label profile of “%(name)s” saved.", name=client.name), "success")
    return redirect(url_for("dashboard.clients"))


@bp.post("/clients/<key_id>/cidrs")
@require("clients")
def client_cidrs(key_id: str) -> Response | tuple[str, int]:
    db = db_session()
    client = _client(key_id)
    wanted = _lines(request.form.get("cidrs", ""))
    try:
        keep = {str(n) for n in _parsed(wanted)}
        stale = [c for c in client.cidrs if c not in keep]
        allow_cidrs(db, client=client, add=wanted, remove=stale, actor=_actor(), ip=client_ip())
    except ClientSetupError as exc:
        db.rollback()
        return _clients_page(error=domain_message(exc)), 400
    db.commit()
    flash(_("Address ranges of “%(name)s” saved.", name=client.name), "success")
    return redirect(url_for("dashboard.clients"))


def _parsed(cidrs: list[str]) -> list[Any]:
    from vault.netaddr import parse_network

    out = []
    for c in cidrs:
        try:
            out.append(parse_network(c, allow_broad=True))
        except ValueError:
            continue
    return out


# -- audit log --------------------------------------------------------------------------------------------


def _actor_names() -> dict[str, str]:
    """How the audit log names its actors for people: users by name, clients by name."""
    db = db_session()
    names = {actor_of(u): u.display_name for u in users_of(db, tenant_id=_tenant_id())}
    names.update({f"client:{c.key_id}": c.name for c in reports.clients_of(db, tenant_id=_tenant_id())})
    return names


def _audit_query() -> reports.AuditQuery:
    a = request.args
    return reports.AuditQuery(
        client=a.get("client", "")[:64],
        order=a.get("order", "")[:160],
        action=a.get("action", "")[:60],
        since=_date(a.get("from")),
        until=_date(a.get("to")),
    )


@bp.get("/audit")
@require("view")
def audit() -> str:
    db = db_session()
    query = _audit_query()
    page = reports.search_audit(db, tenant_id=_tenant_id(), query=query, page=_int(request.args.get("page")))
    params = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "dashboard/audit.html",
        page=page,
        query=query,
        params=params,
        actions=reports.audit_actions(db, tenant_id=_tenant_id()),
        clients=reports.clients_of(db, tenant_id=_tenant_id()),
        report=None,
        actor_names=_actor_names(),
    )


@bp.post("/audit/verify")
@require("view")
def audit_verify() -> str:
    db = db_session()
    report = verify_chain(db, chain=chain_for(_tenant_id()))
    page = reports.search_audit(db, tenant_id=_tenant_id(), query=reports.AuditQuery())
    return render_template(
        "dashboard/audit.html",
        page=page,
        query=reports.AuditQuery(),
        params={},
        actions=reports.audit_actions(db, tenant_id=_tenant_id()),
        clients=reports.clients_of(db, tenant_id=_tenant_id()),
        report=report,
        actor_names=_actor_names(),
    )


@bp.get("/audit/export.csv")
@require("view")
def audit_export() -> Response:
    """The filtered audit log as CSV (references only, no PII), with each event's hash for checking."""
    tid = _tenant_id()
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


# -- retention and legal holds ----------------------------------------------------------------------------


def _retention_page(error: str | None = None) -> str:
    db = db_session()
    tid = _tenant_id()
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
        n = set_tenant_policy(
            db, tenant_id=_tenant_id(), marketplace="amazon", days_after_delivery=days, actor=_actor()
        )
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
    ends = _date(form.get("ends_on"))
    order = None
    try:
        if form.get("order_id", "").strip():
            order = find_order(
                db, tenant_id=_tenant_id(), marketplace="amazon", external_order_id=form["order_id"].strip()
            )
        if ends is None:
            raise RetentionError(_("Give the hold an end date."))
        place_hold(
            db,
            tenant_id=_tenant_id(),
            reason=form.get("reason", ""),
            owner=form.get("owner", ""),
            ends_at=datetime.combine(ends, time(23, 59, 59), tzinfo=UTC),
            actor=_actor(),
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
        release_hold(db, tenant_id=_tenant_id(), hold_id=hold_id, actor=_actor())
    except NotFound:
        abort(404)
    db.commit()
    flash(_("Legal hold released."), "success")
    return redirect(url_for("dashboard.retention"))


# -- people's rights requests -----------------------------------------------------------------------------


def _rights_page(error: str | None = None, status: int = 200, **extra: Any) -> tuple[str, int]:
    values = {"order_id": request.values.get("order_id", "")[:100], **extra}
    return render_template(
        "dashboard/rights.html", error=error, values=values, fields=LabelRecord.field_names()
    ), status


def _rights_request() -> RightsRequest:
    return RightsRequest(
        actor=_actor(),
        request_id=request.form.get("request_id", "").strip()[:100],
        verified_by=request.form.get("verified_by", "").strip()[:100],
    )


@bp.get("/rights")
@require("rights")
@fresh_second_factor()
def rights() -> tuple[str, int]:
    return _rights_page()


@bp.post("/rights/<kind>")
@require("rights")
@fresh_second_factor(back="dashboard.rights")
def rights_request(kind: str) -> Response | tuple[str, int]:
    if kind not in ("access", "correction", "erasure"):
        abort(404)
    db = db_session()
    order_id = request.form.get("order_id", "").strip()
    try:
        req = _rights_request()
        if kind == "access":
            data = export_order_data(
                db,
                keys=services().keys,
                tenant_id=_tenant_id(),
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
                tenant_id=_tenant_id(),
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
        outcome = erase_order(db, tenant_id=_tenant_id(), marketplace="amazon", external_order_id=order_id, request=req)
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


# -- users and the dashboard allowlist --------------------------------------------------------------------


def _users_page(error: str | None = None, **extra: Any) -> str:
    db = db_session()
    tid = _tenant_id()
    return render_template(
        "dashboard/users.html",
        users=users_of(db, tenant_id=tid),
        roles=ROLES,
        cidrs=dashboard_cidrs(db, tenant_id=tid),
        now=utcnow(),
        error=error,
        **{"invite_url": None, **extra},
    )


@bp.get("/users")
@require("users")
def users() -> str:
    return _users_page()


@bp.post("/users/invite")
@require("users")
def users_invite() -> str | tuple[str, int]:
    db = db_session()
    try:
        invitation = invite_user(
            db,
            tenant_id=_tenant_id(),
            email=request.form.get("email", ""),
            display_name=request.form.get("display_name", ""),
            role=request.form.get("role", ""),
            actor=_actor(),
        )
    except UserError as exc:
        db.rollback()
        return _users_page(domain_message(exc)), 400
    db.commit()
    url = url_for("dashboard.invitation", token=invitation.token, _external=True)
    return _users_page(invite_url=url, invited=invitation.user)


@bp.post("/users/<int:user_id>/<action>")
@require("users")
def users_action(user_id: int, action: str) -> Response | tuple[str, int]:
    db = db_session()
    try:
        user = find_user(db, tenant_id=_tenant_id(), user_id=user_id)
    except NotFound:
        abort(404)
    try:
        if action == "role":
            set_role(db, user=user, role=request.form.get("role", ""), actor=_actor())
        elif action == "disable":
            disable_user(db, user=user, actor=_actor())
        elif action == "reset-second-factor":
            reset_second_factor(db, user=user, actor=_actor())
        elif action == "unlock":
            unlock_user(db, user=user, actor=_actor())
        else:
            abort(404)
    except UserError as exc:
        db.rollback()
        return _users_page(domain_message(exc)), 400
    db.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("dashboard.users"))


@bp.post("/users/allowlist")
@require("users")
def users_allowlist() -> Response | tuple[str, int]:
    db = db_session()
    try:
        set_dashboard_cidrs(
            db,
            tenant_id=_tenant_id(),
            cidrs=_lines(request.form.get("cidrs", "")),
            actor=_actor(),
            current_ip=client_ip(),
        )
    except UserError as exc:
        db.rollback()
        return _users_page(domain_message(exc)), 400
    db.commit()
    flash(_("Dashboard address ranges saved."), "success")
    return redirect(url_for("dashboard.users"))


# -- profile --------------------------------------------------------------------------------------------


@bp.get("/profile")
@login_required
def profile() -> str:
    db = db_session()
    return render_template(
        "dashboard/profile.html", codes_left=recovery_codes_left(db, user=current_user()), error=None
    )


@bp.post("/profile/password")
@login_required
def profile_password() -> Response | tuple[str, int]:
    db = db_session()
    form = request.form
    try:
        if form.get("new", "") != form.get("new2", ""):
            raise UserError(_("The two new passwords are not the same."))
        change_password(
            db, user=current_user(), current=form.get("current", ""), new=form.get("new", ""), actor=_actor()
        )
    except UserError as exc:
        db.rollback()
        page = render_template(
            "dashboard/profile.html", codes_left=recovery_codes_left(db, user=current_user()), error=domain_message(exc)
        )
        return page, 400
    db.commit()
    flash(_("Password changed."), "success")
    return redirect(url_for("dashboard.profile"))


@bp.post("/profile/recovery-codes")
@login_required
@fresh_second_factor(back="dashboard.profile")
def profile_recovery_codes() -> str:
    db = db_session()
    codes = new_recovery_codes(db, user=current_user())
    append_event(
        db,
        tenant_id=_tenant_id(),
        actor=_actor(),
        action="user.recovery-codes",
        outcome="replaced",
        ip=client_ip(),
        purpose="administration",
        details={"user": current_user().id},
    )
    db.commit()
    return render_template(
        "dashboard/recovery_codes.html", codes=codes, next_url=url_for("dashboard.profile"), first=False
    )
