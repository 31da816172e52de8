"""Marketplace accounts: connect an Amazon account, sync it now, remove it (its label records shredded)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.jobs import start_sync
from app.dashboard.pages.shared import actor, split_lines, tenant_id
from app.dashboard.state import (
    client_ip,
    fresh_second_factor,
    require,
)
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.amazon import API_V0, API_V2026, LwaCredentials
from connectors.amazon.endpoints import REGIONS
from vault import reports
from vault.audit import append_event
from vault.marketplace_accounts import seal_credentials, shred_account
from vault.models import MarketplaceAccount

#: Amazon marketplaces offered in the connect form, by region (the ids sellers see in Seller Central).
MARKETPLACE_IDS = {
    "fe": ["A1VC38T7YXB528"],
    "na": ["ATVPDKIKX0DER"],
    "eu": ["A1PA6795UKMFR9"],
}


@bp.get("/accounts")
@require("view")
def accounts() -> str:
    db = db_session()
    return render_template(
        "dashboard/accounts.html",
        accounts=reports.account_health(db, tenant_id=tenant_id()),
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
    tid = tenant_id()
    error = None
    try:
        name = form.get("name", "").strip()
        region = form.get("region", "")
        api_version = form.get("api_version", API_V2026)
        ids = split_lines(form.get("marketplace_ids", ""))
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
            actor=actor(),
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
    if account is None or account.tenant_id != tenant_id() or account.removed_at is not None:
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
        actor=actor(),
        action="account.remove",
        ip=client_ip(),
        purpose="administration",
        details={"account_id": account.id, "records_shredded": shredded},
    )
    db.commit()
    flash(_("Account removed; %(n)d label records shredded.", n=shredded), "success")
    return redirect(url_for("dashboard.accounts"))
