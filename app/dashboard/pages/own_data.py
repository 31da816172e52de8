"""The seller's own people (vault/users/own_data.py): "My data" for the signed-in user, and the same page of
any user of the seller for an owner (a departed colleague's, typically). Each page shows what labelvault holds
about the user, downloads it as JSON, corrects the name and e-mail address, and erases the account after the
user's e-mail address is typed again. Everything needs a fresh second factor; the pages of other users need
the ``users`` permission (owner). Erasing oneself signs one out.

The audit chain names only ``user:<id>`` (the domain's rule); flashes and errors here never repeat an address.
"""

from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.state import current_user, fresh_second_factor, login_required, require
from app.dashboard.templating import domain_message
from app.services import db_session
from vault.errors import NotFound
from vault.models import User
from vault.users.accounts import find_user
from vault.users.base import UserError
from vault.users.own_data import correct_own_data, erase_own_data, export_own_data

#: Domain messages of own_data that app/dashboard/templating.py doesn't know yet.
MESSAGES = {
    "the last owner can't be erased: make another owner first": _l(
        "The last owner can't be erased: make another owner first."
    ),
    "only the user themself or an owner of their seller may do this": _l(
        "Only the user themself or an owner of the organisation may do this."
    ),
}

#: The rows of the page, in the export's order, with their labels.
FIELDS = {
    "id": _l("User ID"),
    "email": _l("E-mail address"),
    "display_name": _l("Name"),
    "role": _l("Role"),
    "locale": _l("Language"),
    "second_factor_enrolled": _l("Two-step verification set up"),
    "created_at": _l("Created"),
    "last_login_at": _l("Last sign-in"),
    "disabled_at": _l("Disabled"),
}


def _message(exc: UserError) -> str:
    text = str(exc)
    return str(MESSAGES[text]) if text in MESSAGES else domain_message(exc)


def _subject(user_id: int | None) -> User:
    """The user whose data the page is about: the signed-in one, or one of their seller's (else 404)."""
    if user_id is None:
        return current_user()
    try:
        return find_user(db_session(), tenant_id=current_user().tenant_id, user_id=user_id)
    except NotFound:
        abort(404)


def _urls(user_id: int | None) -> dict[str, str]:
    if user_id is None:
        names = {"page": "own_data", "export": "own_data_export", "correct": "own_data_correct"}
        names["erase"] = "own_data_erase"
        return {k: url_for(f"dashboard.{v}") for k, v in names.items()}
    names = {"page": "user_data", "export": "user_data_export", "correct": "user_data_correct"}
    names["erase"] = "user_data_erase"
    return {k: url_for(f"dashboard.{v}", user_id=user_id) for k, v in names.items()}


def _page(user_id: int | None, error: str | None = None, status: int = 200, **form: str) -> tuple[str, int]:
    """The data page; showing it is an access to the user's data, audited like the download."""
    db = db_session()
    subject = _subject(user_id)
    export = export_own_data(db, by=current_user(), user=subject)
    db.commit()
    return render_template(
        "dashboard/own_data.html",
        subject=subject,
        own=subject.id == current_user().id,
        held=[(k, FIELDS.get(k, k), v) for k, v in export["user"].items()],
        urls=_urls(user_id),
        error=error,
        form=form,
    ), status


def _export(user_id: int | None) -> Response:
    db = db_session()
    subject = _subject(user_id)
    export = export_own_data(db, by=current_user(), user=subject)
    db.commit()
    resp = Response(json.dumps(export, ensure_ascii=False, indent=2), mimetype="application/json")
    resp.headers["Content-Disposition"] = f'attachment; filename="labelvault-user-{subject.id}.json"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _correct(user_id: int | None) -> Response | tuple[str, int]:
    db = db_session()
    subject = _subject(user_id)
    name, email = request.form.get("display_name", ""), request.form.get("email", "")
    try:
        changed = correct_own_data(db, by=current_user(), user=subject, display_name=name[:200], email=email)
    except UserError as exc:
        db.rollback()
        return _page(user_id, _message(exc), 400, display_name=name, email=email)
    db.commit()
    if changed:
        labels = ", ".join(str(FIELDS[f]) for f in changed)
        flash(_("Corrected: %(fields)s.", fields=labels), "success")
    else:
        flash(_("Nothing to correct: the name and e-mail address are the same."), "info")
    return redirect(_urls(user_id)["page"])


def _erase(user_id: int | None) -> Response | tuple[str, int]:
    db = db_session()
    subject = _subject(user_id)
    if request.form.get("confirm", "").strip().lower() != subject.email:
        msg = _("Type the e-mail address of the account exactly to erase it.")
        return _page(user_id, msg, 400)
    myself = subject.id == current_user().id
    try:
        erase_own_data(db, by=current_user(), user=subject)
    except UserError as exc:
        db.rollback()
        return _page(user_id, _message(exc), 400)
    db.commit()
    if myself:  # the domain ended every session of the user, this one included
        session.clear()
        flash(_("Your account data is erased and you are signed out."), "info")
        return redirect(url_for("dashboard.login"))
    flash(_("The user's account data is erased; the account is disabled."), "success")
    return redirect(url_for("dashboard.users"))


# -- My data: the signed-in user ---------------------------------------------------------------------------


@bp.get("/profile/data")
@login_required
@fresh_second_factor()
def own_data() -> tuple[str, int]:
    return _page(None)


@bp.get("/profile/data/export.json")
@login_required
@fresh_second_factor()
def own_data_export() -> Response:
    return _export(None)


@bp.post("/profile/data/correct")
@login_required
@fresh_second_factor(back="dashboard.own_data")
def own_data_correct() -> Response | tuple[str, int]:
    return _correct(None)


@bp.post("/profile/data/erase")
@login_required
@fresh_second_factor(back="dashboard.own_data")
def own_data_erase() -> Response | tuple[str, int]:
    return _erase(None)


# -- an owner, for any user of the seller -------------------------------------------------------------------


@bp.get("/users/<int:user_id>/data")
@require("users")
@fresh_second_factor()
def user_data(user_id: int) -> tuple[str, int]:
    return _page(user_id)


@bp.get("/users/<int:user_id>/data/export.json")
@require("users")
@fresh_second_factor()
def user_data_export(user_id: int) -> Response:
    return _export(user_id)


@bp.post("/users/<int:user_id>/data/correct")
@require("users")
@fresh_second_factor(back="dashboard.user_data")
def user_data_correct(user_id: int) -> Response | tuple[str, int]:
    return _correct(user_id)


@bp.post("/users/<int:user_id>/data/erase")
@require("users")
@fresh_second_factor(back="dashboard.user_data")
def user_data_erase(user_id: int) -> Response | tuple[str, int]:
    return _erase(user_id)
