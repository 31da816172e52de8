"""Signing in and out: password, then TOTP (or a recovery code); enrolment; invitations; fresh second factor."""

from __future__ import annotations

import segno
from flask import flash, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

from app import i18n, security
from app.dashboard import bp
from app.dashboard.state import (
    client_ip,
    current_session,
    current_user,
    limits,
    login_policy,
    login_required,
    pending_user,
    safe_next,
    set_pending,
)
from app.limits import throttle
from app.services import db_session, services
from vault.errors import NotFound
from vault.models import Tenant, User
from vault.users.accounts import set_locale
from vault.users.allowlist import dashboard_allows
from vault.users.base import AccountLocked, SignInRefused, UserError, actor_of
from vault.users.invitations import accept_invitation, find_invitation
from vault.users.roles import may
from vault.users.second_factor import (
    check_second_factor,
    confirm_enrolment,
    pending_enrolment,
    recovery_codes_left,
    start_enrolment,
)
from vault.users.sessions import end_session, mark_reauthenticated, sign_out, start_session
from vault.users.signin import check_password

#: Sign-in attempts (password or code) per client address per minute, across workers.
ATTEMPTS_PER_MINUTE = 10


def _too_many() -> bool:
    return not throttle(f"dashboard-sign-in:{client_ip()}", 60, ATTEMPTS_PER_MINUTE)


def _locked_message(exc: AccountLocked) -> str:
    return str(
        _(
            "Too many failed attempts: this account is locked until %(time)s UTC. An owner can unlock it sooner.",
            time=format_datetime(exc.until, "HH:mm"),
        )
    )


def _sign_in(user: User) -> str:
    """Both factors passed: a fresh server-side session and a new CSRF token; returns where to go next."""
    db = db_session()
    token = start_session(db, user=user, ip=client_ip(), limits=limits())
    chosen = request.cookies.get(i18n.LANG_COOKIE)
    if user.locale is None and chosen in i18n.LANGUAGES:
        # The language picked before signing in is kept.
        set_locale(db, user=user, locale=chosen, actor=actor_of(user), ip=client_ip())
    db.commit()
    target = session.get("next")
    flashes = session.get("_flashes")
    session.clear()
    session["sid"] = token
    if flashes:
        session["_flashes"] = flashes
    security.rotate_csrf_token()
    g.dashboard_user = user
    return safe_next(target if isinstance(target, str) else None)


def _with_language(resp: Response, user: User) -> Response:
    if user.locale in i18n.LANGUAGES:
        i18n.remember_language(resp, str(user.locale), secure=security.cookie_secure(services().settings))
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    if g.get("dashboard_user") is not None:
        return redirect(url_for("dashboard.overview"))
    error = None
    if request.method == "POST":
        if _too_many():
            error = _("Too many attempts from your network. Wait a minute and try again.")
        else:
            db = db_session()
            try:
                user = check_password(
                    db,
                    email=request.form.get("email", ""),
                    password=request.form.get("password", ""),
                    ip=client_ip(),
                    policy=login_policy(),
                )
            except AccountLocked as exc:
                db.commit()
                error = _locked_message(exc)
            except SignInRefused:
                db.commit()
                error = _("Sign-in failed. Check the e-mail address and password.")
            else:
                db.commit()
                if not dashboard_allows(db, tenant_id=user.tenant_id, ip=client_ip()):
                    error = _("Your organisation does not allow signing in from this network.")
                else:
                    nxt = request.args.get("next")
                    set_pending(user)
                    if nxt:
                        session["next"] = nxt
                    if user.totp_enabled_at is None:
                        return redirect(url_for("dashboard.enrol"))
                    return redirect(url_for("dashboard.login_code"))
    return render_template("dashboard/login.html", error=error, email=request.form.get("email", ""))


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Response | str:
    user = pending_user()
    if user is None or user.totp_enabled_at is None:
        return redirect(url_for("dashboard.login"))
    error = None
    if request.method == "POST":
        if _too_many():
            error = _("Too many attempts from your network. Wait a minute and try again.")
        else:
            db = db_session()
            try:
                kind = check_second_factor(
                    db,
                    keys=services().keys,
                    user=user,
                    code=request.form.get("code", ""),
                    ip=client_ip(),
                    policy=login_policy(),
                )
            except AccountLocked as exc:
                db.commit()
                session.clear()
                flash(_locked_message(exc), "error")
                return redirect(url_for("dashboard.login"))
            except SignInRefused:
                db.commit()
                error = _("That code is not right. Enter the current code from your authenticator app.")
            else:
                db.commit()
                if kind == "recovery-code":
                    left = recovery_codes_left(db, user=user)
                    flash(
                        _(
                            "You signed in with a recovery code; %(n)d left. Make new ones on your profile page.",
                            n=left,
                        ),
                        "warning",
                    )
                return _with_language(redirect(_sign_in(user)), user)
    return render_template("dashboard/login_code.html", error=error)


def qr_svg(uri: str) -> Markup:
    """The enrolment QR code as inline SVG (drawn here: no third party sees the secret)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, border=2, dark="#111827", light="#ffffff", svgclass="qr", lineclass=None, omitsize=True
    )
    return Markup(svg)  # noqa: S704 - segno's own SVG of a URI we built; no user text in it


@bp.route("/enrol", methods=["GET", "POST"])
def enrol() -> Response | str:
    """Second-factor enrolment, required before the dashboard opens: QR code, first code, recovery codes."""
    user = pending_user()
    if user is None:
        return redirect(url_for("dashboard.login"))
    if user.totp_enabled_at is not None:
        return redirect(url_for("dashboard.login_code"))
    db = db_session()
    keys = services().keys
    error = None
    if request.method == "POST":
        try:
            codes = confirm_enrolment(db, keys=keys, user=user, code=request.form.get("code", ""), ip=client_ip())
        except UserError:
            db.rollback()
            error = _("That code is not right. Check that your phone's clock is set automatically and try again.")
        else:
            db.commit()
            target = _onboarding(user, _sign_in(user))
            # The recovery codes are shown once, here, straight from this response (never stored in clear).
            page = make_response(
                render_template("dashboard/recovery_codes.html", codes=codes, next_url=target, first=True)
            )
            return _with_language(page, user)
    enrolment = pending_enrolment(db, keys=keys, user=user) or start_enrolment(db, keys=keys, user=user)
    db.commit()
    secret = " ".join(enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4))
    return render_template("dashboard/enrol.html", qr=qr_svg(enrolment.uri), secret=secret, error=error, user=user)


def _onboarding(user: User, target: str) -> str:
    """Where an enrolled user goes first: an owner of an organisation without a return address is asked for it."""
    tenant = db_session().get(Tenant, user.tenant_id)
    if may(user.role, "settings") and tenant is not None and tenant.return_address is None:
        return url_for("dashboard.welcome_return_address", next=target)
    return target


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def invitation(token: str) -> Response | str:
    """An invited user sets a password, then enrols a second factor."""
    db = db_session()
    try:
        user = find_invitation(db, token=token)
    except NotFound:
        return render_template("dashboard/invitation.html", invalid=True, error=None, user=None)
    error = None
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password2", ""):
            error = _("The two passwords are not the same.")
        else:
            try:
                accept_invitation(db, token=token, password=password)
            except UserError as exc:
                db.rollback()
                error = _password_error(str(exc))
            else:
                if g.get("client_ip") and not dashboard_allows(db, tenant_id=user.tenant_id, ip=client_ip()):
                    db.commit()
                    flash(_("Your password is set, but your organisation does not allow this network."), "error")
                    return redirect(url_for("dashboard.login"))
                db.commit()
                set_pending(user)
                return redirect(url_for("dashboard.enrol"))
    return render_template("dashboard/invitation.html", invalid=False, error=error, user=user)


def _password_error(message: str) -> str:
    if "at least" in message:
        return str(_("A password needs at least %(n)d characters.", n=12))
    if "at most" in message:
        return str(_("A password has at most %(n)d characters.", n=256))
    if "e-mail" in message:
        return str(_("The password must not be your e-mail address."))
    return str(_("That password can't be used."))


@bp.route("/reauth", methods=["GET", "POST"])
@login_required
def reauth() -> Response | str:
    """Enter the second factor again before a sensitive action (label preview, rights requests, new keys)."""
    nxt = request.args.get("next")
    error = None
    if request.method == "POST":
        db = db_session()
        try:
            check_second_factor(
                db,
                keys=services().keys,
                user=current_user(),
                code=request.form.get("code", ""),
                ip=client_ip(),
                policy=login_policy(),
            )
        except AccountLocked as exc:
            db.commit()
            end_session(db, token=session.get("sid", ""))
            db.commit()
            session.clear()
            flash(_locked_message(exc), "error")
            return redirect(url_for("dashboard.login"))
        except SignInRefused:
            db.commit()
            error = _("That code is not right. Enter the current code from your authenticator app.")
        else:
            mark_reauthenticated(db, row=current_session(), user=current_user(), ip=client_ip())
            db.commit()
            return redirect(safe_next(nxt))
    return render_template("dashboard/reauth.html", error=error, next=nxt)


@bp.post("/logout")
def logout() -> Response:
    token = session.get("sid")
    user = g.get("dashboard_user")
    if isinstance(token, str) and user is not None:  # no user: the session had ended already
        db = db_session()
        sign_out(db, user=user, token=token, ip=client_ip())
        db.commit()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("dashboard.login"))


@bp.post("/language")
def language() -> Response:
    """Switch the language: remembered on the user when signed in, and in a cookie either way."""
    locale = request.form.get("locale", "")
    target = safe_next(request.form.get("next"))
    resp = redirect(target)
    if locale in i18n.LANGUAGES:
        user = g.get("dashboard_user")
        if user is not None:
            db = db_session()
            set_locale(db, user=user, locale=locale, actor=actor_of(user), ip=client_ip())
            db.commit()
        i18n.remember_language(resp, locale, secure=security.cookie_secure(services().settings))
    return resp
