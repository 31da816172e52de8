"""The organisation's settings, for owners: the return address printed on every label and the time zone the
dashboard's dates and daily print run use; and the return-address step of an owner's first sign-in.

Both changes go through vault.tenants (validated and audited there); the return address is the seller's own,
not buyer data.
"""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor
from app.dashboard.state import current_tenant, require, safe_next
from app.dashboard.templating import domain_message
from app.services import db_session
from vault.tenants import set_return_address, set_time_zone

#: The zones offered, sorted; the form accepts only these (vault.tenants checks again).
TIME_ZONES = sorted(available_timezones())


def _address_form() -> MultiDict[str, str]:
    """The stored return address as the form's values (a name, up to four lines, the country)."""
    stored = current_tenant().return_address or {}
    form: MultiDict[str, str] = MultiDict({"name": stored.get("name", ""), "country": stored.get("country_code", "")})
    for line in stored.get("lines", []):
        form.add("line", line)
    return form


def _page(error: str | None = None, form: MultiDict[str, str] | None = None) -> str:
    return render_template("dashboard/settings.html", error=error, form=form or _address_form(), time_zones=TIME_ZONES)


@bp.get("/settings")
@require("settings")
def settings() -> str:
    return _page()


@bp.get("/welcome/return-address")
@require("settings")
def welcome_return_address() -> Response | str:
    """After an owner's first sign-in, while the organisation has no return address: ask for it (skippable)."""
    target = safe_next(request.args.get("next"))
    if current_tenant().return_address is not None:
        return redirect(target)
    return render_template("dashboard/welcome_return_address.html", error=None, form=MultiDict(), next_url=target)


@bp.post("/settings/return-address")
@require("settings")
def settings_return_address() -> Response | tuple[str, int]:
    form = request.form
    db = db_session()
    try:
        set_return_address(
            db,
            tenant=current_tenant(),
            name=form.get("name", ""),
            lines=form.getlist("line"),
            country_code=form.get("country", "").strip(),
            actor=actor(),
        )
    except ValueError as exc:
        db.rollback()
        if form.get("next"):
            page = render_template(
                "dashboard/welcome_return_address.html",
                error=domain_message(exc),
                form=form,
                next_url=safe_next(form.get("next")),
            )
            return page, 400
        return _page(domain_message(exc), MultiDict(form)), 400
    db.commit()
    flash(_("Return address saved: it is printed on every label from now on."), "success")
    return redirect(safe_next(form.get("next"), default="dashboard.settings"))


@bp.post("/settings/time-zone")
@require("settings")
def settings_time_zone() -> Response | tuple[str, int]:
    db = db_session()
    try:
        set_time_zone(db, tenant=current_tenant(), time_zone=request.form.get("time_zone", ""), actor=actor())
    except ValueError as exc:
        db.rollback()
        return _page(domain_message(exc)), 400
    db.commit()
    flash(_("Time zone saved."), "success")
    return redirect(url_for("dashboard.settings"))
