"""The seller's carrier accounts (the carriers the vault buys labels from): list, add, change options, remove.
Owner only.

The same acts as ``labelvault carriers add <carrier>`` / ``options`` / ``remove`` (app/cli/carriers.py), through
the same
audited domain functions (vault/carrier_accounts.py), so the dashboard and the CLI can't differ. One add form
per carrier in the registry (connectors/carriers/registry.py), built from what it declares: this module names
no carrier. Credentials are password fields, sealed under the tenant's key and never shown again: a refused
form comes back with its name, ship-from address and choices, never a secret. Each account's options (what
its carrier declares, with a translated description) are shown and changed on the same page. Adding, changing
options and removing need a fresh second factor (the credentials buy postage on the seller's bill, and an
option decides how it is bought and what the carrier is told).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.dashboard.pages.shared import actor, tenant_id
from app.dashboard.state import client_ip, fresh_second_factor, require
from app.dashboard.templating import domain_message
from app.services import db_session, services
from connectors.carriers.registry import CARRIERS, CarrierOption, CarrierOptionError, CarrierPlatform
from vault.carrier_accounts import (
    connect_carrier_account,
    find_carrier_account,
    live_carrier_accounts,
    remove_carrier_account,
    set_carrier_account_options,
)
from vault.errors import CarrierSetupError, NotFound
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount

PERMISSION = "carriers"  # owner only (vault/users/roles.py)

#: The ship-from fields of the add form: (form field, the stored ship-from key), in the order shown.
SHIP_FROM_FIELDS = (
    ("from_name", "name"),
    ("from_company", "company"),
    ("from_street", "street1"),
    ("from_street2", "street2"),
    ("from_city", "city"),
    ("from_state", "state"),
    ("from_postal_code", "postal_code"),
    ("from_country", "country_code"),
    ("from_phone", "phone"),
)
#: What a refused form keeps (besides the carrier's choices): nothing secret.
_KEPT = ("carrier", "name", "test_mode", "api_endpoint", *(f for f, _key in SHIP_FROM_FIELDS))


#: Each registered option's label and description as the seller reads them, by (carrier, option); the
#: registry's English description where one is missing (a test checks every option has its entry).
OPTION_TEXTS: dict[tuple[str, str], tuple[Any, Any]] = {
    ("amazonshipping", "ship_to_from_order"): (
        _l("Take the ship-to from the Amazon order"),
        _l(
            "An Amazon order is quoted without the buyer’s address: Amazon uses the order’s own, so none of it "
            "is sent. Off sends the buyer’s address to Amazon Shipping for every order."
        ),
    ),
    ("amazonshipping", "one_click"): (
        _l("Buy with oneClickShipment"),
        _l(
            "An Amazon order quoted without the address is bought in one call that an expired quote cannot "
            "refuse. Trade-off: Amazon takes no idempotency key for it, so if its answer is lost the purchase "
            "cannot be checked again and stays unsettled until you settle it with Amazon. Off by default."
        ),
    ),
    ("amazonshipping", "dpi"): (
        _l("Label resolution (dpi)"),
        _l("Resolution of ZPL and PNG labels: 203 or 300 dots per inch."),
    ),
    ("amazonmfn", "dpi"): (
        _l("Label resolution (dpi)"),
        _l("Resolution of ZPL labels: 203 or 300 dots per inch."),
    ),
}


def option_text(platform: CarrierPlatform, option: CarrierOption) -> tuple[str, str]:
    """An option's label and description, translated."""
    label, description = OPTION_TEXTS.get((platform.code, option.name), (option.name, option.description))
    return str(label), str(description)


def account_options(account: CarrierAccount) -> dict[str, Any]:
    """The account's options with their values (the default where not set), for the page."""
    platform = CARRIERS.get(account.carrier)
    if platform is None or not platform.options:
        return {}
    try:
        return platform.effective_options(account.options or {})
    except CarrierSetupError:  # a value the carrier no longer accepts: the defaults, as the form offers them
        return {o.name: o.default for o in platform.options}


def credential_label(credential: str) -> str:
    """``client_id`` → ``client ID``: a credential as the carrier's own documents name it."""
    words = " ".join(w.upper() if w in ("api", "id") else w for w in credential.split("_"))
    return words[:1].upper() + words[1:]


def secret_credentials(platform: CarrierPlatform) -> list[str]:
    """The credentials of ``platform`` that are secrets (password fields), in the registry's order."""
    return [c for c in platform.credentials if c not in platform.choices]


def _page(error: str | None = None, form: MultiDict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    """The carriers page. The endpoint field is offered only where the operator allows overrides
    (``LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES``); the connect refuses any other endpoint anyway."""
    return render_template(
        "dashboard/carriers.html",
        accounts=live_carrier_accounts(db_session(), tenant_id=tenant_id()),
        carriers=CARRIERS,
        secret_credentials=secret_credentials,
        credential_label=credential_label,
        carrier_name=carrier_name,
        option_text=option_text,
        account_options=account_options,
        ship_from_fields=SHIP_FROM_FIELDS,
        endpoint_field=bool(services().settings.endpoint_overrides),
        error=error,
        form=form or MultiDict(),
    ), status


@bp.get("/carriers")
@require(PERMISSION)
def carriers() -> tuple[str, int]:
    return _page()


def _platform(code: str) -> CarrierPlatform:
    if code not in CARRIERS:
        raise CarrierSetupError(_("Choose one of the carriers listed."))
    return CARRIERS[code]


def _secrets(platform: CarrierPlatform, form: MultiDict[str, str]) -> dict[str, str]:
    """The carrier's secret credentials from the form, every one given (named by its label when not)."""
    secrets = {c: form.get(c, "").strip() for c in secret_credentials(platform)}
    missing = [credential_label(c) for c, value in secrets.items() if not value]
    if missing:
        names = ", ".join(missing)
        raise CarrierSetupError(_("Enter every %(carrier)s credential: %(names)s.", carrier=platform.name, names=names))
    return secrets


def _choices(platform: CarrierPlatform, form: MultiDict[str, str]) -> dict[str, str]:
    """The carrier's non-secret credentials (a choice among known values), each checked against them."""
    chosen = {}
    for credential, (values, default) in platform.choices.items():
        value = form.get(credential, default)
        if value not in values:
            raise CarrierSetupError(_("Choose a %(what)s from the list.", what=credential_label(credential)))
        chosen[credential] = value
    return chosen


@bp.post("/carriers")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.carriers")
def add_carrier_account() -> Response | tuple[str, int]:
    """Connect a carrier account through the audited domain connect (``carrier.connect``), as the CLI does."""
    form = request.form
    db = db_session()
    try:
        platform = _platform(form.get("carrier", ""))
        secrets = _secrets(platform, form) | _choices(platform, form)
        account = connect_carrier_account(
            db,
            keys=services().keys,
            tenant_id=tenant_id(),
            carrier=platform.code,
            name=form.get("name", ""),
            secrets=secrets,
            ship_from={key: form.get(field, "") for field, key in SHIP_FROM_FIELDS},
            test_mode=form.get("test_mode") == "on",
            api_endpoint=form.get("api_endpoint", "").strip() or None,
            endpoints=EndpointPolicy(
                api=platform.api_hosts,
                overrides=services().settings.endpoint_overrides,
                api_name=f"{platform.name} API",
            ),
            actor=actor(),
            ip=client_ip(),
        )
    except CarrierSetupError as exc:
        db.rollback()
        return _page(domain_message(exc), _safe_form(form), 400)
    db.commit()
    flash(_("Carrier account “%(name)s” (%(carrier)s) added.", name=account.name, carrier=platform.name), "success")
    return redirect(url_for("dashboard.carriers"))


def _safe_form(form: MultiDict[str, str]) -> MultiDict[str, str]:
    """A refused form's values to show again: the name, ship-from, test mode, endpoint and choices; no secret."""
    platform = CARRIERS.get(form.get("carrier", ""))
    choices = tuple(platform.choices) if platform else ()
    return MultiDict({k: v for k, v in form.items() if k in _KEPT or k in choices})


def _account(account_id: int) -> CarrierAccount:
    try:
        return find_carrier_account(db_session(), tenant_id=tenant_id(), account_id=account_id)
    except NotFound:
        abort(404)


@bp.post("/carriers/<int:account_id>/remove")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.carriers")
def remove_carrier_account_view(account_id: int) -> Response:
    """Remove a carrier account (``carrier.remove``): its credentials shredded; bought labels keep their rows."""
    db = db_session()
    account = _account(account_id)
    if request.form.get("confirm", "").strip() != account.name:
        flash(_("Type the carrier account's name to confirm removing it."), "error")
        return redirect(url_for("dashboard.carriers"))
    remove_carrier_account(db, account=account, actor=actor(), ip=client_ip())
    db.commit()
    flash(_("Carrier account “%(name)s” removed: its credentials are shredded.", name=account.name), "success")
    return redirect(url_for("dashboard.carriers"))


def _options_from_form(platform: CarrierPlatform, form: MultiDict[str, str]) -> dict[str, Any]:
    """The carrier's declared options from the form (a flag is a checkbox: absent is off); nothing else of
    the form is read, so no other name can be set."""
    raw: dict[str, object] = {}
    for option in platform.options:
        raw[option.name] = form.get(option.name) == "on" if option.kind == "bool" else form.get(option.name, "")
    return platform.parse_options(raw)


@bp.post("/carriers/<int:account_id>/options")
@require(PERMISSION)
@fresh_second_factor(back="dashboard.carriers")
def carrier_account_options(account_id: int) -> Response | tuple[str, int]:
    """Change a carrier account's options (``carrier.options``, only if one changed), as ``carriers options``."""
    db = db_session()
    account = _account(account_id)
    platform = CARRIERS.get(account.carrier)
    if platform is None or not platform.options:
        flash(_("This carrier account has no options."), "error")
        return redirect(url_for("dashboard.carriers"))
    try:
        wanted = _options_from_form(platform, request.form)
    except CarrierOptionError as exc:
        label = option_text(platform, platform.option(exc.option))[0] if exc.option else exc.expected
        message = _("%(option)s takes %(expected)s.", option=label, expected=exc.expected)
        return _page(message, status=400)
    current = account_options(account)
    changed = set_carrier_account_options(
        db,
        account=account,
        options={k: v for k, v in wanted.items() if current.get(k) != v},
        actor=actor(),
        ip=client_ip(),
    )
    db.commit()
    if changed:
        flash(_("Options of “%(name)s” saved.", name=account.name), "success")
    else:
        flash(_("Options of “%(name)s” unchanged.", name=account.name), "info")
    return redirect(url_for("dashboard.carriers"))


def carrier_name(code: str) -> str:
    """A stored account's carrier as people know it (the code, for a carrier no longer registered)."""
    platform = CARRIERS.get(code)
    return platform.name if platform else code
