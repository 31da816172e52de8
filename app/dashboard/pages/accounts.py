"""Marketplace accounts of every platform: their health, sync now, remove (label records shredded), and the
connect section of each platform (Amazon's form here; each other platform's in its own
``connect_<code>`` page module, which lists its section in :data:`CONNECT_SECTIONS`)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.jobs import start_sync
from app.dashboard.pages.shared import actor, split_lines, tenant_id
from app.dashboard.state import client_ip, fresh_second_factor, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.amazon import API_V0, API_V2026, LwaCredentials
from connectors.amazon.accounts import connect_amazon_account
from connectors.amazon.endpoints import REGIONS
from connectors.amazon.marketplaces import in_region, label
from vault import reports
from vault.errors import AccountSetupError, NotFound
from vault.marketplace_accounts import find_account
from vault.marketplace_accounts import remove_account as remove_marketplace_account
from vault.models import MarketplaceAccount

#: The accounts page's connect sections, one template per platform, in the order they are shown.
CONNECT_SECTIONS: list[str] = ["dashboard/connect_amazon.html"]
#: Platforms whose grant can run out, and the view that sends the seller to consent again (a POST).
RECONSENT_ENDPOINTS: dict[str, str] = {}


def _page(error: str | None, form: MultiDict[str, str]) -> str:
    """The accounts page. The endpoint fields are offered only where the operator allows overrides
    (``LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES``); the connect refuses any other endpoint anyway."""
    context: dict[str, Any] = {
        "accounts": reports.account_health(db_session(), tenant_id=tenant_id()),
        "regions": sorted(REGIONS),
        "api_versions": [API_V2026, API_V0],
        "marketplaces": {region: in_region(region) for region in sorted(REGIONS)},
        "marketplace_label": label,
        "endpoint_fields": bool(services().settings.endpoint_overrides),
        "connect_sections": CONNECT_SECTIONS,
        "reconsent_endpoints": RECONSENT_ENDPOINTS,
    }
    return render_template("dashboard/accounts.html", form=form, error=error, **context)


def page(error: str | None, form: MultiDict[str, str]) -> str:
    """The accounts page showing ``error`` with the submitted ``form`` (the other platforms' connect modules
    answer a refused connect with it)."""
    return _page(error, form)


@bp.get("/accounts")
@require("view")
def accounts() -> str:
    return _page(None, MultiDict())


@bp.post("/accounts")
@require("accounts")
def connect_account() -> Response | tuple[str, int]:
    """Connect an Amazon account through the connector's audited connect, the same as `flask accounts add`."""
    form = request.form
    db = db_session()
    tid = tenant_id()
    name = form.get("name", "").strip()
    secrets = {k: form.get(k, "").strip() for k in ("client_id", "client_secret", "refresh_token")}
    try:
        connect_amazon_account(
            db,
            keys=services().keys,
            tenant_id=tid,
            name=name,
            region=form.get("region", ""),
            api_version=form.get("api_version", API_V2026),
            marketplace_ids=split_lines(form.get("marketplace_ids", "")),
            credentials=LwaCredentials.from_secrets(secrets),
            sandbox=form.get("sandbox") == "on",
            sp_api_endpoint=form.get("sp_api_endpoint", ""),
            lwa_endpoint=form.get("lwa_endpoint", ""),
            endpoint_overrides=services().settings.endpoint_overrides,
            actor=actor(),
            ip=client_ip(),
        )
    except AccountSetupError as exc:
        db.rollback()
        error = domain_message(exc)
    else:
        db.commit()
        flash(_("Account “%(name)s” connected. Start its first sync with “Sync now”.", name=name), "success")
        return redirect(url_for("dashboard.accounts"))
    safe_form = MultiDict({k: v for k, v in form.items() if k not in ("client_secret", "refresh_token", "csrf_token")})
    return _page(error, safe_form), 400


def _account(account_id: int) -> MarketplaceAccount:
    try:
        return find_account(db_session(), tenant_id=tenant_id(), account_id=account_id)
    except NotFound:
        abort(404)


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
    shredded = remove_marketplace_account(db, account=account, actor=actor(), ip=client_ip())
    db.commit()
    flash(_("Account removed; %(n)d label records shredded.", n=shredded), "success")
    return redirect(url_for("dashboard.accounts"))
