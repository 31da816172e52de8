"""Warehouse clients of the label API: create (the key shown once), revoke, label profile, address ranges."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, split_lines, tenant_id
from app.dashboard.state import (
    client_ip,
    current_tenant,
    fresh_second_factor,
    require,
)
from app.dashboard.templating import domain_message
from app.services import db_session
from connectors.carriers.registry import CARRIERS
from vault import reports
from vault.carrier_accounts import live_carrier_accounts
from vault.clients import (
    ADMIN,
    ALL_FIELDS,
    CARRIER_ONLY_PROFILE,
    DEFAULT_PROFILE,
    LABELS_ISSUE,
    REQUIRED_FIELDS,
    SHIPMENTS_BUY,
    LabelProfile,
    allow_cidrs,
    create_client,
    find_client,
    revoke_client,
    set_profile,
)
from vault.errors import ClientSetupError, NotFound

OPTIONAL_FIELDS = sorted(ALL_FIELDS - REQUIRED_FIELDS)


def _clients_page(**extra: Any) -> str:
    db = db_session()
    return render_template(
        "dashboard/clients.html",
        clients=reports.clients_of(db, tenant_id=tenant_id()),
        optional_fields=OPTIONAL_FIELDS,
        default_fields=sorted(DEFAULT_PROFILE.fields),
        profile_of=LabelProfile.from_json,
        carriers=live_carrier_accounts(db, tenant_id=tenant_id()),
        carrier_names={code: platform.name for code, platform in CARRIERS.items()},
        carrier_command="labelvault carriers add " + "|".join(sorted(CARRIERS)),
        **{"new_key": None, "new_client": None, "error": None, "form": MultiDict(), **extra},
    )


@bp.get("/clients")
@require("view")
def clients() -> str:
    return _clients_page()


@bp.post("/clients")
@require("clients")
@fresh_second_factor(back="dashboard.clients")
def create_client_view() -> Response | str | tuple[str, int]:
    form = request.form
    db = db_session()
    tenant = current_tenant()
    carrier_only = form.get("carrier_only") == "on"
    has_carrier = bool(live_carrier_accounts(db, tenant_id=tenant.id))
    scopes = [SHIPMENTS_BUY if carrier_only else LABELS_ISSUE] + ([ADMIN] if form.get("admin") == "on" else [])
    try:
        profile = CARRIER_ONLY_PROFILE if carrier_only else _profile_from(form)
        issued = create_client(
            db,
            tenant=tenant,
            name=form.get("name", ""),
            scopes=scopes,
            cidrs=split_lines(form.get("cidrs", "")),
            # Once the tenant has a carrier, "no profile" means carrier labels only; an address client says so.
            profile=None if profile == DEFAULT_PROFILE and not has_carrier else profile,
            actor=actor(),
            ip=client_ip(),
        )
    except ClientSetupError as exc:
        db.rollback()
        return _clients_page(error=domain_message(exc), form=form), 400
    db.commit()
    # The key exists only in this response (Cache-Control: no-store): shown once, never stored in clear.
    return _clients_page(new_key=issued.key, new_client=issued.client)


def _profile_from(form: MultiDict[str, str]) -> LabelProfile:
    """The label profile a client form asks for (the required fields always included)."""
    fields = set(REQUIRED_FIELDS) | {f for f in form.getlist("fields") if f in OPTIONAL_FIELDS}
    countries = [c.upper() for c in split_lines(form.get("phone_countries", ""))]
    if countries and "phone" not in fields:
        raise ClientSetupError(_("Phone countries are given, but the phone is not released."))
    font = form.get("printer_font", "").strip() or None
    return LabelProfile(frozenset(fields), frozenset(countries) if countries else None, font)


def _client(key_id: str) -> Any:
    try:
        return find_client(db_session(), tenant_id=tenant_id(), ref=key_id)
    except NotFound:
        abort(404)


@bp.post("/clients/<key_id>/revoke")
@require("clients")
def revoke_client_view(key_id: str) -> Response:
    db = db_session()
    client = _client(key_id)
    revoke_client(db, client=client, actor=actor(), ip=client_ip())
    db.commit()
    flash(_("Client “%(name)s” revoked: its key no longer works.", name=client.name), "success")
    return redirect(url_for("dashboard.clients"))


@bp.post("/clients/<key_id>/profile")
@require("clients")
@fresh_second_factor(back="dashboard.clients")
def client_profile(key_id: str) -> Response | tuple[str, int]:
    """Change which buyer fields a client receives: more PII released, so a fresh second factor first."""
    db = db_session()
    client = _client(key_id)
    try:
        changed = set_profile(db, client=client, profile=_profile_from(request.form), actor=actor(), ip=client_ip())
    except ClientSetupError as exc:
        db.rollback()
        return _clients_page(error=domain_message(exc)), 400
    db.commit()
    if changed:
        flash(_("Label profile of “%(name)s” saved.", name=client.name), "success")
    return redirect(url_for("dashboard.clients"))


@bp.post("/clients/<key_id>/cidrs")
@require("clients")
def client_cidrs(key_id: str) -> Response | tuple[str, int]:
    db = db_session()
    client = _client(key_id)
    wanted = split_lines(request.form.get("cidrs", ""))
    try:
        keep = {str(n) for n in _parsed(wanted)}
        stale = [c for c in client.cidrs if c not in keep]
        allow_cidrs(db, client=client, add=wanted, remove=stale, actor=actor(), ip=client_ip())
    except ClientSetupError as exc:
        db.rollback()
        return _clients_page(error=domain_message(exc)), 400
    db.commit()
    flash(_("Address ranges of “%(name)s” saved.", name=client.name), "success")
    return redirect(url_for("dashboard.clients"))


def _parsed(cidrs: list[str]) -> list[Any]:
    from vault.netaddr import parse_network

    out = []
    for c in cidrs:
        try:
            out.append(parse_network(c, allow_broad=True))
        except ValueError:
            continue
    return out
