"""Dashboard users and the dashboard allowlist: invite, change role, disable, unlock, reset two-step."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, split_lines, tenant_id
from app.dashboard.state import (
    client_ip,
    require,
)
from app.dashboard.templating import domain_message
from app.services import db_session
from vault.errors import NotFound
from vault.models import utcnow
from vault.users.accounts import disable_user, find_user, set_role, unlock_user, users_of
from vault.users.allowlist import dashboard_cidrs, set_dashboard_cidrs
from vault.users.base import UserError
from vault.users.invitations import invite_user
from vault.users.roles import ROLES
from vault.users.second_factor import reset_second_factor


def _users_page(error: str | None = None, **extra: Any) -> str:
    db = db_session()
    tid = tenant_id()
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
            tenant_id=tenant_id(),
            email=request.form.get("email", ""),
            display_name=request.form.get("display_name", ""),
            role=request.form.get("role", ""),
            actor=actor(),
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
        user = find_user(db, tenant_id=tenant_id(), user_id=user_id)
    except NotFound:
        abort(404)
    try:
        if action == "role":
            set_role(db, user=user, role=request.form.get("role", ""), actor=actor())
        elif action == "disable":
            disable_user(db, user=user, actor=actor())
        elif action == "reset-second-factor":
            reset_second_factor(db, user=user, actor=actor())
        elif action == "unlock":
            unlock_user(db, user=user, actor=actor())
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
            tenant_id=tenant_id(),
            cidrs=split_lines(request.form.get("cidrs", "")),
            actor=actor(),
            current_ip=client_ip(),
        )
    except UserError as exc:
        db.rollback()
        return _users_page(domain_message(exc)), 400
    db.commit()
    flash(_("Dashboard address ranges saved."), "success")
    return redirect(url_for("dashboard.users"))
