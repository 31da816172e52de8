"""Jinja filters of the dashboard: times (UTC or the seller's zone), order statuses, sync errors, audit
actions and outcomes in the reader's language, marketplaces by name."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from markupsafe import Markup

from connectors import registry
from connectors.amazon.endpoints import MARKETPLACE_NAMES
from vault.errors import RefusalReason

STATUSES = {
    "pending": _l("Pending"),
    "unshipped": _l("Unshipped"),
    "partially_shipped": _l("Partially shipped"),
    "shipped": _l("Shipped"),
    "cancelled": _l("Cancelled"),
    "unfulfillable": _l("Unfulfillable"),
    "erased": _l("Erased"),
}

ROLES = {"owner": _l("Owner"), "operator": _l("Operator"), "viewer": _l("Viewer")}

#: What went wrong in a sync, in plain words, by the error's type (app/worker.py stores the type name).
#: The platform's name fills ``%(platform)s``.
SYNC_ERRORS = {
    "AuthRefused": _l(
        "%(platform)s refused the account's credentials. Check them, or authorise the app again in your "
        "%(platform)s seller settings."
    ),
    "ConsentExpired": _l(
        "Your consent for labelvault on %(platform)s has run out or was withdrawn. Connect the account again to "
        "give it; nothing syncs until then."
    ),
    "ThrottledOut": _l("%(platform)s kept asking us to slow down. The next sync carries on where this one stopped."),
    "MarketplaceUnavailable": _l(
        "%(platform)s could not be reached or kept failing. The next sync carries on where this one stopped."
    ),
    "BadResponse": _l(
        "%(platform)s answered with data labelvault could not use. If this happens again, contact support."
    ),
    "SyncBusy": _l("Another sync of this account was already running."),
    "LeaseLost": _l("Another process took this sync over; it carries on there."),
    "KeyServiceUnavailable": _l("The key service was unavailable, so nothing could be stored. The sync resumes later."),
}

#: What a connector's notices (connectors.interfaces.ConnectorStats.notices) mean for the seller.
SYNC_NOTICES = {
    "protected-data-redacted": _l(
        "%(platform)s withheld the buyer's name, address or phone of some orders because the app is not approved "
        "for protected customer data. Those orders are stored without an address and get no label until it is."
    ),
    "protected-phone-withheld": _l(
        "%(platform)s withheld buyers' phone numbers because the app is not approved for them; labels are printed "
        "without a phone."
    ),
}


#: What each audit action records, by the code the chain stores (app/, vault/, connectors/ write them).
AUDIT_ACTIONS = {
    "account.connect": _l("Marketplace account connected"),
    "account.reconsent": _l("Marketplace account consented again"),
    "account.remove": _l("Marketplace account removed"),
    "backup.create": _l("Backup made"),
    "carrier.connect": _l("Carrier account connected"),
    "carrier.options": _l("Carrier account options changed"),
    "carrier.remove": _l("Carrier account removed"),
    "backup.restore": _l("Backup restored"),
    "client.allow": _l("Client address ranges changed"),
    "client.create": _l("Warehouse client created"),
    "client.profile": _l("Client label profile changed"),
    "client.revoke": _l("Warehouse client revoked"),
    "dashboard.allowlist": _l("Dashboard networks changed"),
    "hold.place": _l("Legal hold placed"),
    "hold.release": _l("Legal hold released"),
    "index_key.reindex": _l("Search index rebuilt under a new key"),
    "index_key.rotate": _l("Search index key rotated"),
    "key.destroy": _l("Tenant key version destroyed"),
    "key.destroy-root": _l("Root key destroyed"),
    "key.rotate": _l("Tenant key rotated"),
    "key.rotate-root": _l("Root key rotated"),
    "keys.epoch": _l("Key epoch"),
    "label.grant-reprint": _l("Reprint allowed"),
    "label.preview": _l("Label previewed"),
    "label.redeliver": _l("Label delivered again (retried request)"),
    "label.release": _l("Label released"),
    "retention.policy": _l("Retention period changed"),
    "shipment.confirm": _l("Marketplace told the order shipped"),
    "shipment.label": _l("Carrier label printed"),
    "shipment.purchase": _l("Carrier label bought (address sent to the carrier)"),
    "shipment.void": _l("Carrier label voided"),
    "retention.purge": _l("Due label data erased"),
    "rights.access": _l("Access request"),
    "rights.correction": _l("Correction request"),
    "rights.erasure": _l("Erasure request"),
    "rights.export-fetched": _l("Access export fetched"),
    "rights.request.complete": _l("Rights request carried out"),
    "rights.request.confirm": _l("Rights request's orders confirmed"),
    "rights.request.export-sealed": _l("Access export sealed"),
    "rights.request.match": _l("Orders found for a rights request"),
    "rights.request.named": _l("Orders named by the marketplace's request"),
    "rights.request.open": _l("Rights request opened"),
    "shopify.webhook": _l("Shopify privacy webhook"),
    "tenant.create": _l("Organisation created"),
    "tenant.return_address": _l("Return address changed"),
    "tenant.time_zone": _l("Time zone changed"),
    "user.accept-invitation": _l("Invitation accepted"),
    "user.create": _l("User created"),
    "user.data.access": _l("User's own data viewed"),
    "user.data.correct": _l("User's own data corrected"),
    "user.data.erase": _l("User's data erased"),
    "user.disable": _l("User disabled"),
    "user.invite": _l("User invited"),
    "user.locale": _l("Language changed"),
    "user.password": _l("Password changed"),
    "user.reauth": _l("Second factor entered again"),
    "user.recovery-code": _l("Recovery code used"),
    "user.recovery-codes": _l("New recovery codes"),
    "user.role": _l("Role changed"),
    "user.second-factor": _l("Two-step verification changed"),
    "user.sign-in": _l("Sign-in"),
    "user.sign-out": _l("Sign-out"),
    "user.unlock": _l("User unlocked"),
}

#: How an audited action ended, by the outcome the chain stores (refusals: see :data:`REFUSAL_REASONS`).
AUDIT_OUTCOMES = {
    "ok": _l("done"),
    "failed": _l("failed"),
    "released": _l("released"),
    "shown": _l("shown"),
    "erased": _l("erased"),
    "already-erased": _l("already erased"),
    "corrected": _l("corrected"),
    "exported": _l("exported"),
    "enrolled": _l("enrolled"),
    "replaced": _l("replaced"),
    "reset": _l("reset"),
    "used": _l("used"),
    "raised": _l("raised"),
}

#: Why something was refused, by :class:`~vault.errors.RefusalReason` code (plus a legal hold's).
REFUSAL_REASONS = {
    RefusalReason.MALFORMED_ADDRESS: _l("malformed address"),
    RefusalReason.NOT_ALLOWLISTED: _l("network not allowed"),
    RefusalReason.RATE_LIMITED: _l("rate limited"),
    RefusalReason.RATE_LIMIT_UNAVAILABLE: _l("rate limit unavailable"),
    RefusalReason.INVALID_API_KEY: _l("invalid API key"),
    RefusalReason.CLIENT_CIDR: _l("client address not allowed"),
    RefusalReason.SCOPE: _l("not in the client's scope"),
    RefusalReason.NOT_FOUND: _l("order not found"),
    RefusalReason.STATUS: _l("order status allows no label"),
    RefusalReason.CANCELLED: _l("order cancelled"),
    RefusalReason.ERASED: _l("label data erased"),
    RefusalReason.RETENTION_EXPIRED: _l("retention period over"),
    RefusalReason.NO_LABEL_DATA: _l("no label data"),
    RefusalReason.REISSUE_CAP: _l("reissue limit reached"),
    RefusalReason.KEY_SERVICE_UNAVAILABLE: _l("key service unavailable"),
    RefusalReason.UNREADABLE: _l("record unreadable"),
    RefusalReason.RENDER_FAILED: _l("label could not be rendered"),
    RefusalReason.CARRIER_LABEL_ONLY: _l("client receives carrier labels only"),
    RefusalReason.BODY_TOO_LARGE: _l("request body too large"),
    "legal-hold": _l("under a legal hold"),
}


#: Label record fields, as the forms name them.
FIELDS = {
    "name": _l("Name"),
    "company": _l("Company"),
    "address_line1": _l("Address line 1"),
    "address_line2": _l("Address line 2"),
    "address_line3": _l("Address line 3"),
    "city": _l("City"),
    "district_or_county": _l("District or county"),
    "state_or_region": _l("State or region"),
    "municipality": _l("Municipality"),
    "postal_code": _l("Postal code"),
    "country_code": _l("Country code"),
    "phone": _l("Phone"),
    "address_type": _l("Address type"),
}

#: The domain's fixed messages (vault/*: English, for logs and the CLI) in the reader's language.
DOMAIN_MESSAGES = {
    "a user with that e-mail address exists already": _l("A user with that e-mail address exists already."),
    "that is not an e-mail address": _l("That is not an e-mail address."),
    "the current password is not right": _l("The current password is not right."),
    "the last owner can't be given another role; make someone else owner first": _l(
        "The last owner can't be given another role; make someone else owner first."
    ),
    "the last owner can't be disabled": _l("The last owner can't be disabled."),
    "these ranges would shut out the address you are using now; include it": _l(
        "These ranges would shut out the address you are using now; include it."
    ),
    "a client name is 1 to 200 characters": _l("A client name has 1 to 200 characters."),
    "a printer font is a stored font like E:ANMDJ.TTF or a one-character alias": _l(
        "A printer font is a font stored on the printer, like E:ANMDJ.TTF, or a one-character alias."
    ),
    "a legal hold needs a reason (the matter it serves)": _l("A legal hold needs a reason (the matter it serves)."),
    "a legal hold needs an owner (who answers for it)": _l("A legal hold needs an owner (who answers for it)."),
    "a legal hold needs an end date in the future": _l("A legal hold needs an end date in the future."),
    "a rights request needs the seller's request reference": _l("Give your request reference."),
    "a rights request needs the person who checked the buyer's identity": _l("Say who checked the buyer's identity."),
    "the order holds no label data (erased or never synced): there is nothing to correct": _l(
        "The order holds no label data (erased, or never synced): there is nothing to correct."
    ),
    "an account name is 1 to 200 characters": _l("Give the account a name (up to 200 characters)."),
    "a return address needs a name, 1 to 4 lines and a two-letter country code": _l(
        "A return address needs a name, 1 to 4 address lines and a two-letter country code such as CN."
    ),
    "a time zone is an IANA name such as Asia/Tokyo or UTC": _l("Choose a time zone from the list."),
    "name at least one marketplace id": _l("Name at least one marketplace ID, e.g. A1VC38T7YXB528 for Amazon.co.jp."),
}

#: The domain's messages that end in a detail (a name, a list of choices), by how they start.
DOMAIN_MESSAGE_PREFIXES = {
    "the tenant has a client named": _l("There is a client with that name already."),
    "the tenant has an account named": _l("There is an account with that name already."),
    "every credential is needed": _l("The LWA client ID, client secret and refresh token are all needed."),
    "an Amazon region is one of": _l("Choose a region and an Orders API version."),
    "an Orders API version is one of": _l("Choose a region and an Orders API version."),
    "the SP-API endpoint must be": _l("An endpoint is a full URL such as https://sellingpartnerapi-fe.amazon.com."),
    "the token endpoint must be": _l("An endpoint is a full URL such as https://sellingpartnerapi-fe.amazon.com."),
    "the SP-API endpoint is not allowed": _l(
        "That endpoint is not allowed: use Amazon's own, or one your operator allows."
    ),
    "the token endpoint is not allowed": _l(
        "That endpoint is not allowed: use Amazon's own, or one your operator allows."
    ),
    "not an Amazon marketplace id": _l("That is not an Amazon marketplace ID; the IDs by region are listed below it."),
    "a marketplace of another region": _l(
        "Every marketplace ID must belong to the chosen region; connect another region as an account of its own."
    ),
    "the LWA credentials do not work": _l("Login with Amazon refused these credentials; nothing was stored."),
    "the LWA credentials could not be checked": _l(
        "Login with Amazon could not be reached to check the credentials; nothing was stored. Try again later."
    ),
}


def domain_message(exc: Exception) -> str:
    """A domain error's message for the page: translated where known, else as the domain wrote it."""
    text = str(exc)
    if text.startswith("a user with that e-mail") or text in DOMAIN_MESSAGES:
        return str(DOMAIN_MESSAGES.get(text, text))
    if text.startswith("a password needs at least"):
        return str(_l("A password needs at least %(n)d characters.", n=12))
    for prefix, message in DOMAIN_MESSAGE_PREFIXES.items():
        if text.startswith(prefix):
            return str(message)
    if text.startswith("range ") or text.startswith("CIDR "):
        return str(_l("An address range is not valid: %(detail)s", detail=text))
    return text


# Filters that translate take the context: Jinja would otherwise fold ``'erased' | status`` into the
# template at compile time, in whatever language the first request had.


@pass_context
def _field(_ctx: Any, name: str) -> str:
    return str(FIELDS.get(name, name))


def _dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:  # None, "" and Jinja's Undefined
        return "—"
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).strftime(fmt)
        except ValueError:
            return value
    return str(value.strftime(fmt))


def _dt_in(value: datetime | None, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time in the seller's time zone."""
    return "—" if value is None else value.astimezone(zone).strftime(fmt)


def _marketplace_name(marketplace_id: str | None) -> str:
    return MARKETPLACE_NAMES.get(marketplace_id or "", marketplace_id or "Amazon")


@pass_context
def _audit_action(_ctx: Any, action: str) -> str:
    return str(AUDIT_ACTIONS.get(action, action))


@pass_context
def _audit_outcome(_ctx: Any, outcome: str) -> str:
    refused, _, reason = outcome.partition(":")
    if refused == "refused" and reason:
        return str(_l("refused: %(reason)s", reason=str(REFUSAL_REASONS.get(reason, reason))))
    return str(AUDIT_OUTCOMES.get(outcome, outcome))


@pass_context
def _refusal(_ctx: Any, reason: str) -> str:
    return str(REFUSAL_REASONS.get(reason, reason))


@pass_context
def _status(_ctx: Any, value: str | None) -> str:
    return str(STATUSES.get(value or "", value or "—"))


@pass_context
def _role(_ctx: Any, value: str) -> str:
    return str(ROLES.get(value, value))


@pass_context
def _sync_error(_ctx: Any, last: dict[str, Any], marketplace: str = "amazon") -> str:
    kind = str(last.get("error") or "")
    if kind in SYNC_ERRORS:
        return str(SYNC_ERRORS[kind]) % {"platform": registry.name_of(marketplace)}
    return str(_l("The sync failed (%(kind)s). The next sync tries again.", kind=kind or "?"))


@pass_context
def _sync_notices(_ctx: Any, last: dict[str, Any] | None, marketplace: str) -> list[str]:
    """The seller-facing text of each notice the last sync reported (codes no text is known for: skipped)."""
    codes = (last or {}).get("notices") or []
    name = registry.name_of(marketplace)
    return [str(SYNC_NOTICES[c]) % {"platform": name} for c in codes if c in SYNC_NOTICES]


def _markets(account: Any) -> str:
    """An account's markets as its platform names them (``Amazon.co.jp (JP, A1VC38T7YXB528)``, a shop domain)."""
    platform = registry.PLATFORMS.get(account.marketplace)
    return platform.markets(account) if platform is not None else ", ".join(account.marketplace_ids)


def _details(value: Any) -> str:
    """An audit event's details as ``key: value · key: value`` (lists joined), for reading, not parsing."""
    if not isinstance(value, dict):
        return _compact_json(value)
    parts = []
    for key, item in sorted(value.items()):
        if isinstance(item, list):
            text = ", ".join(str(i) for i in item) or "—"
        elif isinstance(item, dict):
            text = _compact_json(item)
        else:
            text = "—" if item is None else str(item)
        parts.append(f"{key}: {text}")
    return " · ".join(parts)


def _compact_json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def _nl2br(value: str) -> Markup:
    return Markup("<br>").join(value.splitlines())


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        dt=_dt,
        dt_in=_dt_in,
        marketplace_name=_marketplace_name,
        audit_action=_audit_action,
        audit_outcome=_audit_outcome,
        refusal=_refusal,
        field_label=_field,
        status=_status,
        role=_role,
        sync_error=_sync_error,
        sync_notices=_sync_notices,
        platform_name=registry.name_of,
        markets=_markets,
        compact_json=_compact_json,
        details=_details,
        nl2br=_nl2br,
    )
