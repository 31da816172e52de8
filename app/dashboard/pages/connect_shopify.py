"""Connecting a Shopify shop from the accounts page: a custom app's Admin API token, or the public app's
install flow (Shopify's authorization code grant), both ending in the connector's audited connect.

The install: the form names the shop (and the account); a fresh state nonce goes into the seller's session
and the browser to the shop's install page. Shopify sends it back to the callback with a code, which is
taken only if the query's HMAC is the app's, the state is this session's and the shop is a myshopify
domain (the one the seller named); the code is exchanged once for the offline token, which is sealed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import flash, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages import accounts as accounts_page
from app.dashboard.pages.shared import actor, tenant_id
from app.dashboard.state import client_ip, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.shopify.accounts import INSTALL_SCOPES, connect_shopify_account
from connectors.shopify.endpoints import endpoint_policy, shop_domain
from connectors.shopify.oauth import AppCredentials, authorize_url, exchange_code, new_state, verify_callback
from connectors.shopify.tokens import ShopifyToken
from vault.errors import AccountSetupError

accounts_page.CONNECT_SECTIONS.append("dashboard/connect_shopify.html")

#: The session key of an install in progress (state nonce, shop, account name, endpoint, start time).
INSTALL_KEY = "shopify_install"
#: An install left unfinished this long is forgotten.
INSTALL_TIMEOUT = timedelta(minutes=15)


@bp.context_processor
def _install_offered() -> dict[str, bool]:
    """Whether the accounts page offers the install flow: only where the operator set up the public app."""
    return {"shopify_install": _app_credentials() is not None}


def _app_credentials() -> AppCredentials | None:
    settings = services().settings
    secret = settings.shopify_client_secret.get_secret_value()
    return AppCredentials(settings.shopify_client_id, secret) if settings.shopify_client_id and secret else None


def _refused(error: str, form: MultiDict[str, str]) -> tuple[str, int]:
    safe = MultiDict({k: v for k, v in form.items() if k not in ("access_token", "csrf_token")})
    return accounts_page.page(error, safe), 400


@bp.post("/accounts/shopify")
@require("accounts")
def connect_shopify() -> Response | tuple[str, int]:
    """Connect a shop with a custom app's Admin API access token (the same as `flask accounts add shopify`)."""
    form = request.form
    db = db_session()
    name = form.get("name", "").strip()
    try:
        connect_shopify_account(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            name=name,
            shop=form.get("shop", ""),
            token=ShopifyToken(form.get("access_token", "").strip()),
            api_endpoint=form.get("api_endpoint", ""),
            endpoint_overrides=services().settings.endpoint_overrides,
            actor=actor(),
            ip=client_ip(),
        )
    except AccountSetupError as exc:
        db.rollback()
        return _refused(domain_message(exc), form)
    db.commit()
    flash(_("Account “%(name)s” connected. Start its first sync with “Sync now”.", name=name), "success")
    return redirect(url_for("dashboard.accounts"))


@bp.post("/accounts/shopify/install")
@require("accounts")
def install_shopify() -> Response | tuple[str, int]:
    """Start the install: remember a state nonce in the session, send the browser to the shop's install page."""
    form = request.form
    app = _app_credentials()
    if app is None:
        return _refused(_("The Shopify app is not set up on this vault; connect with a custom app's token."), form)
    name = form.get("name", "").strip()
    try:
        shop = shop_domain(form.get("shop", ""))
        endpoint = form.get("api_endpoint", "").strip().rstrip("/") or None
        if endpoint is not None:
            policy = endpoint_policy(shop, services().settings.endpoint_overrides)
            endpoint = policy.check(endpoint, policy.api_name, policy.api)
        if not name or len(name) > 200:
            raise AccountSetupError("an account name is 1 to 200 characters")
    except AccountSetupError as exc:
        return _refused(domain_message(exc), form)
    state = new_state()
    session[INSTALL_KEY] = {
        "state": state,
        "shop": shop,
        "name": name,
        "endpoint": endpoint,
        "started": datetime.now(UTC).isoformat(),
    }
    url = authorize_url(
        shop,
        client_id=app.client_id,
        redirect_uri=url_for("dashboard.shopify_callback", _external=True),
        state=state,
        scopes=INSTALL_SCOPES,
        api_endpoint=endpoint,
    )
    return redirect(url)


@bp.get("/accounts/shopify/callback")
@require("accounts")
def shopify_callback() -> Response | tuple[str, int]:
    """Shopify's redirect back: verify it, exchange the code once, seal the token, connect (audited)."""
    pending = session.pop(INSTALL_KEY, None)
    app = _app_credentials()
    empty: MultiDict[str, str] = MultiDict()
    if app is None:
        return _refused(_("The Shopify app is not set up on this vault; connect with a custom app's token."), empty)
    if (
        not isinstance(pending, dict)
        or datetime.now(UTC) - datetime.fromisoformat(pending["started"]) > INSTALL_TIMEOUT
    ):
        return _refused(_("This Shopify install was not started here or took too long; start it again."), empty)
    db = db_session()
    try:
        shop, code = verify_callback(request.args.to_dict(), app=app, expected_state=pending["state"])
        if shop != pending["shop"]:
            raise AccountSetupError("the install callback names another shop than the one the install was for")
        installed = exchange_code(shop, code, app=app, api_endpoint=pending["endpoint"])
        token = ShopifyToken.from_grant(
            installed.answer, client_id=app.client_id, client_secret=app.client_secret, now=datetime.now(UTC)
        )
        connect_shopify_account(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            name=pending["name"],
            shop=shop,
            token=token,
            api_endpoint=pending["endpoint"],
            endpoint_overrides=services().settings.endpoint_overrides,
            actor=actor(),
            ip=client_ip(),
        )
    except AccountSetupError as exc:
        db.rollback()
        return _refused(domain_message(exc), MultiDict({"name": pending["name"], "shop": pending["shop"]}))
    db.commit()
    flash(_("Account “%(name)s” connected. Start its first sync with “Sync now”.", name=pending["name"]), "success")
    return redirect(url_for("dashboard.accounts"))
