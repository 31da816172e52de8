"""Connect a Walmart Marketplace (US) account: the API key, checked once, through the connector's audited
connect, the same as `flask accounts add walmart`.

The form is the accounts page's Walmart section (``dashboard/connect_walmart.html``, listed in
``accounts.CONNECT_SECTIONS``); a refused connect answers with that section on a page of its own, its
error beside it and the secret never put back.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.accounts import CONNECT_SECTIONS
from app.dashboard.pages.shared import actor, tenant_id
from app.dashboard.state import client_ip, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.walmart import WalmartCredentials
from connectors.walmart.accounts import connect_walmart_account
from vault.errors import AccountSetupError

CONNECT_SECTIONS.append("dashboard/connect_walmart.html")

#: The connect's refusals that differ from Amazon's, by how they start (the rest: domain_message).
_MESSAGES = {
    "every credential is needed": _l("The client ID and the client secret are both needed."),
    "the Walmart API endpoint must be": _l("An endpoint is a full URL such as https://marketplace.walmartapis.com."),
    "the token endpoint must be": _l("An endpoint is a full URL such as https://marketplace.walmartapis.com."),
    "the Walmart API endpoint is not allowed": _l(
        "That endpoint is not allowed: use Walmart's own, or one your operator allows."
    ),
    "the token endpoint is not allowed": _l(
        "That endpoint is not allowed: use Walmart's own, or one your operator allows."
    ),
    "the Walmart API key does not work": _l("Walmart refused this API key; nothing was stored."),
    "the Walmart API key could not be checked": _l(
        "Walmart could not be reached to check the API key; nothing was stored. Try again later."
    ),
}


def _message(exc: AccountSetupError) -> str:
    text = str(exc)
    return next((str(m) for prefix, m in _MESSAGES.items() if text.startswith(prefix)), None) or domain_message(exc)


def _page(error: str | None, form: MultiDict[str, str]) -> str:
    """The section on its own page. The endpoint fields are offered only where the operator allows overrides."""
    return render_template(
        "dashboard/connect_walmart_page.html",
        walmart_form=form,
        walmart_error=error,
        endpoint_fields=bool(services().settings.endpoint_overrides),
    )


@bp.get("/accounts/connect/walmart")
@require("accounts")
def connect_walmart_form() -> str:
    return _page(None, MultiDict())


@bp.post("/accounts/connect/walmart")
@require("accounts")
def connect_walmart() -> Response | tuple[str, int]:
    """Connect a Walmart account; the secret is never put back into the page."""
    form = request.form
    db = db_session()
    name = form.get("name", "").strip()
    try:
        connect_walmart_account(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            name=name,
            credentials=WalmartCredentials(form.get("client_id", "").strip(), form.get("client_secret", "").strip()),
            sandbox=form.get("sandbox") == "on",
            api_endpoint=form.get("api_endpoint", ""),
            token_endpoint=form.get("token_endpoint", ""),
            endpoint_overrides=services().settings.endpoint_overrides,
            actor=actor(),
            ip=client_ip(),
        )
    except AccountSetupError as exc:
        db.rollback()
        error = _message(exc)
    else:
        db.commit()
        flash(_("Account “%(name)s” connected. Start its first sync with “Sync now”.", name=name), "success")
        return redirect(url_for("dashboard.accounts"))
    safe_form = MultiDict({k: v for k, v in form.items() if k not in ("client_secret", "csrf_token")})
    return _page(error, safe_form), 400
