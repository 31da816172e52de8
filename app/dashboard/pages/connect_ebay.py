"""Connecting an eBay account from the dashboard: the seller's consent on eBay, then the code exchange.

Step 1 (``POST /accounts/ebay``): the account's name, markets, the app's App ID and RuName (neither is a
secret) are checked, a ``state`` nonce is kept in the signed session with them, and the browser goes to
eBay's consent page. Step 2 (``GET /accounts/ebay/callback``): eBay sends the seller back (the RuName's
accept URL must point here) with ``code`` and ``state``; the state must be the session's, and the page asks
for the app's Cert ID, which never sits in the session cookie. Step 3 (``POST /accounts/ebay/callback``): the
code is exchanged once through the connector's audited connect (``connect_ebay_account``), or, for a
re-consent, the account's new grant is sealed in place (``reconsent_ebay_account``, which needs no Cert ID:
the account holds it sealed).
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.accounts import CONNECT_SECTIONS, RECONSENT_ENDPOINTS
from app.dashboard.pages.shared import actor, split_lines, tenant_id
from app.dashboard.state import client_ip, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.ebay.accounts import (
    EbayApp,
    check_marketplace_ids,
    connect_ebay_account,
    consent_url,
    reconsent_ebay_account,
)
from connectors.ebay.client import EbayCredentials
from vault.errors import AccountSetupError, NotFound
from vault.marketplace_accounts import find_account, unseal_credentials

CONNECT_SECTIONS.append("dashboard/connect_ebay.html")
RECONSENT_ENDPOINTS["ebay"] = "dashboard.ebay_reconsent"

#: The session key of the consent under way, and how long it may take (eBay's codes live five minutes).
PENDING = "ebay_consent"
PENDING_SECONDS = 15 * 60


def _start(pending: dict[str, Any], *, sandbox: bool, api_endpoint: str | None) -> Response:
    state = secrets.token_urlsafe(24)
    url = consent_url(
        pending["client_id"],
        pending["ru_name"],
        state=state,
        sandbox=sandbox,
        api_endpoint=api_endpoint,
        endpoint_overrides=services().settings.endpoint_overrides,
    )
    session[PENDING] = {**pending, "state": state, "tenant_id": tenant_id(), "at": int(time.time())}
    return redirect(url)


@bp.post("/accounts/ebay")
@require("accounts")
def ebay_connect() -> Response:
    """Check what the form says, keep it with a state nonce, and send the seller to eBay's consent page."""
    form = request.form
    try:
        name = form.get("name", "").strip()
        if not name:
            raise AccountSetupError("an account name is 1 to 200 characters")
        pending: dict[str, Any] = {
            "name": name,
            "marketplace_ids": check_marketplace_ids(split_lines(form.get("marketplace_ids", ""))),
            "client_id": form.get("client_id", "").strip(),
            "ru_name": form.get("ru_name", "").strip(),
            "sandbox": form.get("sandbox") == "on",
            "api_endpoint": form.get("api_endpoint", "").strip() or None,
            "token_endpoint": form.get("token_endpoint", "").strip() or None,
        }
        if not pending["marketplace_ids"]:
            raise AccountSetupError("name at least one marketplace id")
        return _start(pending, sandbox=bool(pending["sandbox"]), api_endpoint=pending["api_endpoint"])
    except AccountSetupError as exc:
        flash(domain_message(exc), "error")
        return redirect(url_for("dashboard.accounts"))


@bp.post("/accounts/<int:account_id>/ebay/reconsent")
@require("accounts")
def ebay_reconsent(account_id: int) -> Response:
    """Send the seller to eBay's consent page again for an account whose grant ran out (or soon will)."""
    db = db_session()
    try:
        account = find_account(db, tenant_id=tenant_id(), account_id=account_id)
    except NotFound:
        abort(404)
    if account.marketplace != "ebay":
        abort(404)
    stored = EbayCredentials.from_secrets(unseal_credentials(db, keys=services().keys, account=account))
    pending = {"account_id": account.id, "client_id": stored.client_id, "ru_name": stored.ru_name}
    try:
        return _start(pending, sandbox=False, api_endpoint=account.api_endpoint)
    except AccountSetupError as exc:
        flash(domain_message(exc), "error")
        return redirect(url_for("dashboard.accounts"))


def _pending(state: str) -> dict[str, Any]:
    """The consent under way in this session, if ``state`` is its nonce and it is recent; else 400."""
    pending = session.get(PENDING)
    if (
        isinstance(pending, dict)
        and time.time() - pending.get("at", 0) < PENDING_SECONDS
        and pending.get("tenant_id") == tenant_id()
        and hmac.compare_digest(str(pending.get("state", "")), state)
    ):
        return pending
    abort(400, description=_("This consent is not the one started here, or it took too long; start again."))


@bp.get("/accounts/ebay/callback")
@require("accounts")
def ebay_callback() -> Response | str:
    """Where eBay sends the seller back: the state checked, then a page to finish (the Cert ID asked for)."""
    pending = _pending(request.args.get("state", ""))
    code = request.args.get("code", "")
    if not code:
        session.pop(PENDING, None)
        flash(_("eBay did not grant access, so nothing was connected."), "error")
        return redirect(url_for("dashboard.accounts"))
    return render_template(
        "dashboard/ebay_callback.html", pending=pending, code=code, state=request.args.get("state", "")
    )


@bp.post("/accounts/ebay/callback")
@require("accounts")
def ebay_finish() -> Response | tuple[str, int]:
    """Exchange the code once: a new account through the audited connect, or the account's new grant."""
    form = request.form
    pending = _pending(form.get("state", ""))
    session.pop(PENDING, None)  # one use, whatever happens next
    db = db_session()
    svc = services()
    try:
        if "account_id" in pending:
            account = find_account(db, tenant_id=tenant_id(), account_id=int(pending["account_id"]))
            stored = EbayCredentials.from_secrets(unseal_credentials(db, keys=svc.keys, account=account))
            app = EbayApp(stored.client_id, stored.client_secret, stored.ru_name)
            reconsent_ebay_account(
                db, keys=svc.keys, account=account, app=app, code=form.get("code", ""),
                endpoint_overrides=svc.settings.endpoint_overrides, actor=actor(), ip=client_ip(),
            )  # fmt: skip
            message = _("eBay consent renewed for “%(name)s”.", name=account.name)
        else:
            app = EbayApp(pending["client_id"], form.get("client_secret", ""), pending["ru_name"])
            account = connect_ebay_account(
                db, keys=svc.keys, tenant_id=tenant_id(), name=pending["name"],
                marketplace_ids=pending["marketplace_ids"], app=app, code=form.get("code", ""),
                sandbox=bool(pending["sandbox"]), api_endpoint=pending["api_endpoint"],
                token_endpoint=pending["token_endpoint"], endpoint_overrides=svc.settings.endpoint_overrides,
                actor=actor(), ip=client_ip(),
            )  # fmt: skip
            message = _("Account “%(name)s” connected. Start its first sync with “Sync now”.", name=account.name)
    except (AccountSetupError, NotFound) as exc:
        db.rollback()
        flash(domain_message(exc), "error")
        return redirect(url_for("dashboard.accounts"))
    db.commit()
    flash(message, "success")
    return redirect(url_for("dashboard.accounts"))
