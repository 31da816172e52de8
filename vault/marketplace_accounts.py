"""A seller's marketplace accounts: connecting one (its API credentials sealed under the tenant key), opening
the credentials for a sync, and removing one (credentials and every label record of its orders shredded).

Connecting and removing are administration acts, each audited here (``account.connect``,
``account.remove``) in the caller's transaction, so the CLI and the dashboard can't differ. What a
marketplace's credentials and regions must look like is the connector's business (e.g.
:func:`connectors.amazon.accounts.connect_amazon_account`); this module stores them.

Where the vault sends an account's credentials is not the tenant's choice: the vault POSTs them (and
fetches buyer data) from inside the platform's network, so a free endpoint is a request forgery aimed at
whatever that network reaches. An endpoint is therefore one of the marketplace's own, or on an origin the
operator allows (``LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES``: fakes, sandboxes, test rigs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.db import rowcount
from vault.errors import AccountSetupError, NotFound
from vault.keys import KeyManager
from vault.models import LabelRecordRow, MarketplaceAccount, Order, utcnow
from vault.sealed import ACCOUNT_CREDENTIALS

MAX_NAME = 200


def credentials_context(account: MarketplaceAccount) -> bytes:
    """AAD context of an account's sealed credentials."""
    return ACCOUNT_CREDENTIALS.context(account.tenant_id, account.id, account.marketplace)


def seal_credentials(
    session: Session, *, keys: KeyManager, account: MarketplaceAccount, secrets: Mapping[str, str]
) -> None:
    """Seal an account's API credentials (e.g. LWA client id/secret and refresh token)."""
    if account.id is None:
        session.flush()
    plaintext = json.dumps(dict(secrets), sort_keys=True).encode()
    account.credentials_envelope, account.credentials_key_version = keys.seal(
        session, account.tenant_id, credentials_context(account), plaintext
    )
    session.flush()


def reseal_credentials(
    session: Session, *, keys: KeyManager, account: MarketplaceAccount, secrets: Mapping[str, str]
) -> None:
    """Seal an account's credentials again after the platform rotated one (a refresh token that changes at
    every renewal, as eBay's consent or TikTok Shop's do), in the caller's transaction.

    Not audited: the seller connected the account and the platform renewed its grant; nothing about who may
    reach what changed. The caller commits promptly, so a crash can't leave the vault with a token the
    platform has already invalidated.
    """
    if account.credentials_envelope is None:
        raise NotFound("account has no stored credentials")
    seal_credentials(session, keys=keys, account=account, secrets=secrets)


def unseal_credentials(session: Session, *, keys: KeyManager, account: MarketplaceAccount) -> dict[str, str]:
    """Open an account's sealed credentials."""
    if account.credentials_envelope is None:
        raise NotFound("account has no stored credentials")
    data: dict[str, str] = json.loads(
        keys.open(session, account.tenant_id, credentials_context(account), account.credentials_envelope)
    )
    return data


def endpoint_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a full http(s) URL, lower-cased (the port only when given); else ``None``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # an IPv6 literal keeps its brackets
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def parse_endpoint_overrides(text: str) -> frozenset[str]:
    """The operator's allowed endpoint origins from a comma-separated list; :class:`ValueError` names a bad one.

    Each entry is an origin only (``http://127.0.0.1:8400``): no path, query or credentials, so an entry
    cannot be read as more (or less) than the one server it names. A bad entry is named by its position,
    never quoted (it may carry a password).
    """
    out: set[str] = set()
    for n, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        origin = endpoint_origin(entry)
        parts = urlsplit(entry)
        if origin is None or parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"entry {n} is not an origin (scheme://host[:port]) such as https://sandbox.example:8443")
        out.add(origin)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Where an account's endpoints may point: the marketplace's own URLs, or an origin the operator allows."""

    #: The marketplace's own API base URLs for this account (its region's host and sandbox host).
    api: frozenset[str] = frozenset()
    #: The marketplace's own token URLs.
    token: frozenset[str] = frozenset()
    #: Origins the operator allows on top (:func:`parse_endpoint_overrides`); never a tenant's input.
    overrides: frozenset[str] = frozenset()
    #: How errors name the API endpoint ("SP-API" for Amazon).
    api_name: str = "API"

    def check(self, value: str | None, what: str, own: frozenset[str]) -> str | None:
        """An endpoint as stored: ``None`` for none, else an allowed URL without a trailing slash."""
        value = (value or "").strip().rstrip("/")
        if not value:
            return None
        origin = endpoint_origin(value)
        if origin is None:
            raise AccountSetupError(f"the {what} endpoint must be a full URL such as https://host.example")
        if value in own or origin in self.overrides:
            return value
        allowed = ", ".join(sorted(own)) or "none"
        raise AccountSetupError(
            f"the {what} endpoint is not allowed: use the marketplace's own ({allowed}) or an origin the "
            "operator allows in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES"
        )


def connect_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    marketplace: str,
    name: str,
    region: str,
    api_version: str,
    marketplace_ids: Iterable[str],
    secrets: Mapping[str, str],
    sandbox: bool = False,
    api_endpoint: str | None = None,
    token_endpoint: str | None = None,
    endpoints: EndpointPolicy | None = None,
    probe: Callable[[MarketplaceAccount, Mapping[str, str]], None] | None = None,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect a marketplace account, its credentials sealed under the tenant key; audited as ``account.connect``.

    Refuses (:class:`AccountSetupError`, nothing stored) a name that is empty, longer than 200 characters or
    taken in the tenant (by a removed account too), no marketplace id, an empty secret and an endpoint
    that ``endpoints`` does not allow (without a policy, any endpoint at all). Once every check has passed,
    ``probe`` (if given) is called with the account, not yet stored, and the trimmed secrets: the connector
    tries them against the marketplace and raises :class:`AccountSetupError` when they fail, so credentials
    that cannot work are never stored. The audit event names the account, never a secret. The caller commits.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise AccountSetupError(f"an account name is 1 to {MAX_NAME} characters")
    ids = list(dict.fromkeys(i.strip() for i in marketplace_ids if i.strip()))
    if not ids:
        raise AccountSetupError("name at least one marketplace id")
    if not secrets or not all(v.strip() for v in secrets.values()):
        raise AccountSetupError(f"every credential is needed: {', '.join(sorted(secrets)) or 'none given'}")
    policy = endpoints or EndpointPolicy()
    api = policy.check(api_endpoint, policy.api_name, policy.api)
    token = policy.check(token_endpoint, "token", policy.token)
    taken = session.scalar(
        select(MarketplaceAccount.id).where(MarketplaceAccount.tenant_id == tenant_id, MarketplaceAccount.name == name)
    )
    if taken is not None:
        raise AccountSetupError(f"the tenant has an account named {name!r} already")
    account = MarketplaceAccount(
        tenant_id=tenant_id,
        marketplace=marketplace,
        name=name,
        region=region,
        api_version=api_version,
        marketplace_ids=ids,
        sandbox=sandbox,
        api_endpoint=api,
        token_endpoint=token,
    )
    trimmed = {k: v.strip() for k, v in secrets.items()}
    if probe is not None:
        probe(account, trimmed)
    session.add(account)
    session.flush()
    seal_credentials(session, keys=keys, account=account, secrets=trimmed)
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="account.connect",
        ip=ip,
        purpose="administration",
        details={
            "account_id": account.id,
            "marketplace": marketplace,
            "region": region,
            "custom_endpoints": bool(api or token),
        },
        now=now,
    )
    return account


def find_account(session: Session, *, tenant_id: int, account_id: int) -> MarketplaceAccount:
    """One of the tenant's live accounts; :class:`NotFound` for a removed one or another tenant's."""
    account = session.get(MarketplaceAccount, account_id)
    if account is None or account.tenant_id != tenant_id or account.removed_at is not None:
        raise NotFound("no such account")
    return account


def shred_account(session: Session, *, account: MarketplaceAccount, now: datetime | None = None) -> int:
    """Shred an account's credentials and every label record of its orders, unaudited; returns records shredded.

    The audited action is :func:`remove_account`; this is its storage half.
    """
    now = now or utcnow()
    order_ids = select(Order.id).where(Order.account_id == account.id)
    n = rowcount(session.execute(delete(LabelRecordRow).where(LabelRecordRow.order_id.in_(order_ids))))
    session.execute(
        update(Order).where(Order.account_id == account.id, Order.erased_at.is_(None)).values(erased_at=now)
    )
    account.credentials_envelope = None
    account.credentials_key_version = None
    account.removed_at = now
    session.flush()
    return n


def remove_account(
    session: Session,
    *,
    account: MarketplaceAccount,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> int:
    """Remove an account: shred its credentials and every label record of its orders; audited as
    ``account.remove`` with the count. Returns the records shredded. The caller commits.

    The orders' non-PII stubs stay, marked erased, for the audit trail. An account removed already is
    :class:`NotFound` (nothing is written).
    """
    if account.removed_at is not None:
        raise NotFound("no such account")
    now = now or utcnow()
    shredded = shred_account(session, account=account, now=now)
    append_event(
        session,
        tenant_id=account.tenant_id,
        actor=actor,
        action="account.remove",
        ip=ip,
        purpose="administration",
        details={"account_id": account.id, "records_shredded": shredded},
        now=now,
    )
    return shredded
