"""The seller dashboard: server-rendered pages (Jinja, no inline script or style), English and Chinese.

Views parse the form, call the domain (vault/, connectors/) and render; domain errors become messages on
the page. Buyer data shows only masked (vault.masking), except in the label preview, which needs a fresh
second factor and is audited. Nothing a page puts in a URL is buyer data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, render_template, request, session
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException

from app import i18n, security
from app.dashboard import jobs, templating
from app.dashboard.state import limits
from app.services import db_session
from app.settings import Settings
from vault.models import Tenant
from vault.users.allowlist import dashboard_allows
from vault.users.roles import may
from vault.users.sessions import end_session, resolve_session

bp = Blueprint("dashboard", __name__, template_folder="templates")


@bp.before_request
def _load_user() -> Response | None:
    """Resolve the session cookie to a signed-in user; check CSRF and the tenant's dashboard allowlist."""
    security.check_csrf()
    g.dashboard_user = g.dashboard_session = None
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    db = db_session()
    found = resolve_session(db, token=token, limits=limits())
    db.commit()
    if found is None:
        session.pop("sid", None)
        return None
    row, user = found
    if not dashboard_allows(db, tenant_id=user.tenant_id, ip=g.get("client_ip")):
        end_session(db, token=token)
        db.commit()
        session.clear()
        return _page_error(403, "network")
    g.dashboard_session, g.dashboard_user = row, user
    return None


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Pages show (masked) order data and the one-time key of a new client: never cached anywhere.
    if not request.path.startswith("/static/"):
        resp.headers["Cache-Control"] = "no-store"
    return resp


def _page_error(code: int, kind: str = "", message: str | None = None) -> Response:
    resp = Response(render_template("dashboard/error.html", code=code, kind=kind, message=message), status=code)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    message = exc.description if exc.code in (400, 403, 409, 429) else None
    return _page_error(exc.code or 500, message=message)


def _template_globals() -> dict[str, Any]:
    user = g.get("dashboard_user")
    locale = str(get_locale() or i18n.DEFAULT)
    tenant = db_session().get(Tenant, user.tenant_id) if user is not None else None
    return {
        "csrf_token": security.csrf_token,
        "current_user": user,
        "current_tenant": tenant,
        "can": (lambda permission: user is not None and may(user.role, permission)),
        "languages": i18n.LANGUAGES,
        "locale": locale,
        "html_lang": i18n.HTML_LANG.get(locale, "en"),
    }


def init_app(app: Flask, settings: Settings) -> None:
    # The session cookie and the security headers are set up by create_app (the headers go on every response).
    i18n.init_app(app)
    from app.dashboard import auth, pages  # noqa: F401  (registers the views on bp)

    app.register_blueprint(bp)
    app.context_processor(_template_globals)
    jobs.init_app(app)
    templating.init_app(app)
