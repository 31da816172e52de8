"""Connecting a TikTok Shop seller from the dashboard: the app's key and secret and the seller's auth code,
through the connector's audited connect, the same as ``flask accounts add tiktok``."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.accounts import CONNECT_SECTIONS
from app.dashboard.pages.shared import actor, tenant_id
from app.dashboard.state import client_ip, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.tiktok.accounts import connect_tiktok_account
from vault.errors import AccountSetupError

#: Form fields never sent back to the page after a refusal.
_SECRET_FIELDS = ("app_secret", "auth_code", "csrf_token")


CONNECT_SECTIONS.append("dashboard/connect_tiktok_section.html")


def _page(error: str | None, form: MultiDict[str, str]) -> str:
    """The form; endpoint fields only where the operator allows overrides (the connect refuses others anyway)."""
    endpoint_fields = bool(services().settings.endpoint_overrides)
    return render_template("dashboard/connect_tiktok.html", form=form, error=error, endpoint_fields=endpoint_fields)


@bp.get("/accounts/tiktok")
@require("accounts")
def connect_tiktok_form() -> str:
    return _page(None, MultiDict())


@bp.post("/accounts/tiktok")
@require("accounts")
def connect_tiktok() -> Response | tuple[str, int]:
    """Trade the seller's auth code for sealed tokens and list its shops; nothing is stored on a refusal."""
    form = request.form
    db = db_session()
    name = form.get("name", "").strip()
    try:
        account = connect_tiktok_account(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            name=name,
            app_key=form.get("app_key", ""),
            app_secret=form.get("app_secret", ""),
            auth_code=form.get("auth_code", ""),
            api_endpoint=form.get("api_endpoint", ""),
            token_endpoint=form.get("token_endpoint", ""),
            endpoint_overrides=services().settings.endpoint_overrides,
            actor=actor(),
            ip=client_ip(),
        )
    except AccountSetupError as exc:
        db.rollback()
        safe_form = MultiDict({k: v for k, v in form.items() if k not in _SECRET_FIELDS})
        return _page(domain_message(exc), safe_form), 400
    shops = len(account.marketplace_ids)
    db.commit()
    flash(
        _("TikTok Shop account “%(name)s” connected with %(n)d shop(s). Start its first sync with “Sync now”.",
          name=name, n=shops),
        "success",
    )  # fmt: skip
    return redirect(url_for("dashboard.accounts"))
