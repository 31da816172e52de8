"""The signed-in user's profile: password and recovery codes."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor
from app.dashboard.state import (
    client_ip,
    current_user,
    fresh_second_factor,
    login_required,
)
from app.dashboard.templating import domain_message
from app.services import db_session
from vault.users.base import UserError
from vault.users.passwords import change_password
from vault.users.second_factor import recovery_codes_left, replace_recovery_codes


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
            db, user=current_user(), current=form.get("current", ""), new=form.get("new", ""), actor=actor()
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
    codes = replace_recovery_codes(db, user=current_user(), actor=actor(), ip=client_ip())
    db.commit()
    return render_template(
        "dashboard/recovery_codes.html", codes=codes, next_url=url_for("dashboard.profile"), first=False
    )
