"""A seller's carrier accounts: connecting one (its API credentials sealed under the tenant key), opening the
credentials to buy a label, changing its options, and removing one (credentials shredded).

Like marketplace accounts (vault/marketplace_accounts.py), connecting, changing options and removing are
administration acts audited here (``carrier.connect``, ``carrier.options``, ``carrier.remove``), so the CLI and
the dashboard can't differ; and where the
vault sends the credentials is never the tenant's choice: the carrier's own host, or an origin the operator
allows (``LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES``, which names fakes and test rigs for every platform).
What a carrier's credentials look like, and which options it takes, is the carrier's business
(``connectors/carriers/registry.py``): its callers check options there and hand this module flags and numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import AccountSetupError, CarrierSetupError, NotFound
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount, utcnow
from vault.records import ShipFrom
from vault.sealed import CARRIER_CREDENTIALS

MAX_NAME = 200
#: The ship-from fields a carrier needs, and the most characters each may have.
SHIP_FROM_REQUIRED = ("name", "street1", "city", "postal_code", "country_code")
_SHIP_FROM_FIELDS = (*SHIP_FROM_REQUIRED, "state", "street2", "company", "phone", "email")
_SHIP_FROM_MAX = 200


def credentials_context(account: CarrierAccount) -> bytes:
    """AAD context of a carrier account's sealed credentials."""
    return CARRIER_CREDENTIALS.context(account.tenant_id, account.id, account.carrier)


def parse_ship_from(values: Mapping[str, Any]) -> ShipFrom:
    """The seller's dispatch address from a form, a CLI's options or the stored JSON; :class:`CarrierSetupError`
    names the first field that is missing or too long (never its value)."""
    clean: dict[str, str | None] = {}
    for name in _SHIP_FROM_FIELDS:
        raw = values.get(name)
        value = raw.strip() if isinstance(raw, str) else None
        if name in SHIP_FROM_REQUIRED and not value:
            raise CarrierSetupError(f"the ship-from address needs {name.replace('_', ' ')}")
        if value and len(value) > _SHIP_FROM_MAX:
            raise CarrierSetupError(
                f"the ship-from {name.replace('_', ' ')} is longer than {_SHIP_FROM_MAX} characters"
            )
        clean[name] = value or None
    country = (clean["country_code"] or "").upper()
    if len(country) != 2 or not country.isalpha():
        raise CarrierSetupError("the ship-from country code is two letters (ISO 3166-1), such as US or DE")
    clean["country_code"] = country
    return ShipFrom(**clean)  # type: ignore[arg-type]  # the required ones are checked non-empty above


def ship_from_of(account: CarrierAccount) -> ShipFrom:
    """The account's dispatch address as the carrier client takes it."""
    return parse_ship_from(account.ship_from)


def unseal_carrier_credentials(session: Session, *, keys: KeyManager, account: CarrierAccount) -> dict[str, str]:
    """Open a carrier account's sealed credentials."""
    if account.credentials_envelope is None:
        raise NotFound("carrier account has no stored credentials")
    data: dict[str, str] = json.loads(
        keys.open(session, account.tenant_id, credentials_context(account), account.credentials_envelope)
    )
    return data


def connect_carrier_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    carrier: str,
    name: str,
    secrets: Mapping[str, str],
    ship_from: Mapping[str, Any],
    test_mode: bool = False,
    api_endpoint: str | None = None,
    endpoints: EndpointPolicy | None = None,
    options: Mapping[str, bool | int] | None = None,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> CarrierAccount:
    """Connect a carrier account, its credentials sealed under the tenant key; audited as ``carrier.connect``.

    ``options`` are the carrier's per-account options, already checked against its registry entry
    (:meth:`connectors.carriers.registry.CarrierPlatform.parse_options`); the event records any given.

    Refuses (:class:`CarrierSetupError`, nothing stored) a name that is empty, too long or taken in the
    tenant (by a removed account too), an empty secret, an incomplete ship-from address and an endpoint that
    ``endpoints`` does not allow. The audit event names the carrier and the account, never a secret. The
    caller commits.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise CarrierSetupError(f"a carrier account name is 1 to {MAX_NAME} characters")
    if not secrets or not all(v.strip() for v in secrets.values()):
        raise CarrierSetupError(f"every credential is needed: {', '.join(sorted(secrets)) or 'none given'}")
    origin = asdict(parse_ship_from(ship_from))
    chosen = _option_values(options or {})
    policy = endpoints or EndpointPolicy()
    try:
        api = policy.check(api_endpoint, policy.api_name, policy.api)
    except AccountSetupError as exc:  # the same words, under the carrier's error type
        raise CarrierSetupError(str(exc)) from None
    taken = session.scalar(
        select(CarrierAccount.id).where(CarrierAccount.tenant_id == tenant_id, CarrierAccount.name == name)
    )
    if taken is not None:
        raise CarrierSetupError(f"the tenant has a carrier account named {name!r} already")
    account = CarrierAccount(
        tenant_id=tenant_id,
        carrier=carrier,
        name=name,
        test_mode=test_mode,
        api_endpoint=api,
        ship_from={k: v for k, v in origin.items() if v is not None},
        options=chosen,
    )
    session.add(account)
    session.flush()
    plaintext = json.dumps({k: v.strip() for k, v in secrets.items()}, sort_keys=True).encode()
    account.credentials_envelope, account.credentials_key_version = keys.seal(
        session, tenant_id, credentials_context(account), plaintext
    )
    session.flush()
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="carrier.connect",
        ip=ip,
        purpose="administration",
        details={
            "carrier_account_id": account.id,
            "carrier": carrier,
            "test_mode": test_mode,
            "custom_endpoint": bool(api),
            **({"options": chosen} if chosen else {}),
        },
        now=now,
    )
    return account


def _option_values(options: Mapping[str, Any]) -> dict[str, bool | int]:
    """Options as stored: flags and numbers only (the registry parsed them); anything else is refused, so no
    free text (and so no PII or secret) reaches the row or the audit chain."""
    for name, value in options.items():
        if not isinstance(name, str) or not isinstance(value, bool | int):
            raise CarrierSetupError(f"the option {name!r} is not a flag or a number")
    return dict(options)


def set_carrier_account_options(
    session: Session,
    *,
    account: CarrierAccount,
    options: Mapping[str, bool | int],
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> dict[str, bool | int]:
    """Set some of a live carrier account's options (checked by the caller against the carrier's registry
    entry); the others keep their values. Audited as ``carrier.options`` with the options that changed and
    their new values (flags and numbers, no PII), and only if one did. Returns what changed. The caller commits.
    """
    if account.removed_at is not None:
        raise NotFound("no such carrier account")
    values = _option_values(options)
    stored = dict(account.options or {})
    changed = {k: v for k, v in values.items() if k not in stored or stored[k] != v}
    if not changed:
        return {}
    account.options = stored | changed  # a new dict: the JSON column is not mutation-tracked
    session.flush()
    append_event(
        session,
        tenant_id=account.tenant_id,
        actor=actor,
        action="carrier.options",
        ip=ip,
        purpose="administration",
        details={"carrier_account_id": account.id, "carrier": account.carrier, "options": changed},
        now=now,
    )
    return changed


def live_carrier_accounts(session: Session, *, tenant_id: int) -> list[CarrierAccount]:
    """The tenant's carrier accounts not removed, oldest first."""
    return list(
        session.scalars(
            select(CarrierAccount)
            .where(CarrierAccount.tenant_id == tenant_id, CarrierAccount.removed_at.is_(None))
            .order_by(CarrierAccount.id)
        )
    )


def find_carrier_account(session: Session, *, tenant_id: int, account_id: int | None = None) -> CarrierAccount:
    """One of the tenant's live carrier accounts, or (without an id) its first; :class:`NotFound` otherwise."""
    if account_id is None:
        accounts = live_carrier_accounts(session, tenant_id=tenant_id)
        if not accounts:
            raise NotFound("no carrier account is configured")
        return accounts[0]
    account = session.get(CarrierAccount, account_id)
    if account is None or account.tenant_id != tenant_id or account.removed_at is not None:
        raise NotFound("no such carrier account")
    return account


def remove_carrier_account(
    session: Session, *, account: CarrierAccount, actor: str, ip: str | None = None, now: datetime | None = None
) -> None:
    """Remove a carrier account: its credentials are shredded; audited as ``carrier.remove``. The caller commits.

    Labels bought through it keep their non-PII rows (and can still be looked up), but no new label, reprint
    or void goes through it. An account removed already is :class:`NotFound`.
    """
    if account.removed_at is not None:
        raise NotFound("no such carrier account")
    now = now or utcnow()
    account.credentials_envelope = None
    account.credentials_key_version = None
    account.removed_at = now
    session.flush()
    append_event(
        session,
        tenant_id=account.tenant_id,
        actor=actor,
        action="carrier.remove",
        ip=ip,
        purpose="administration",
        details={"carrier_account_id": account.id, "carrier": account.carrier},
        now=now,
    )
