"""What the command modules share: finding a tenant or an account, naming the operator, parsing references."""

from __future__ import annotations

import getpass

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.models import MarketplaceAccount, Tenant


def tenant_by_slug(session: Session, slug: str) -> Tenant:
    """The tenant named ``slug``, or a one-line CLI error that says where to look."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"no tenant with slug {slug!r} (see `flask tenants list`)")
    return tenant


def live_accounts(session: Session, *, tenant: str | None, account: str | None) -> list[MarketplaceAccount]:
    """Live marketplace accounts, narrowed by tenant slug and by account name or id."""
    query = select(MarketplaceAccount).where(MarketplaceAccount.removed_at.is_(None))
    if tenant:
        query = query.where(MarketplaceAccount.tenant_id == tenant_by_slug(session, tenant).id)
    if account:
        query = query.where(
            MarketplaceAccount.id == int(account) if account.isdigit() else MarketplaceAccount.name == account
        )
    return list(session.scalars(query.order_by(MarketplaceAccount.tenant_id, MarketplaceAccount.id)))


def cli_actor() -> str:
    """The audit chain's actor for a command: ``cli:<login name>`` (``cli`` where the login name is unknown)."""
    try:
        return f"cli:{getpass.getuser()}"[:100]
    except (KeyError, OSError):  # no login name: a container's numeric user without a passwd entry
        return "cli"


def order_ref(value: str) -> tuple[str, str]:
    """``MARKETPLACE:ORDER_ID`` as given on the command line, split; a usage error otherwise."""
    marketplace, sep, order_id = value.partition(":")
    if not sep or not marketplace or not order_id:
        raise click.BadParameter("give the order as MARKETPLACE:ORDER_ID, e.g. amazon:503-1234567-1234567")
    return marketplace, order_id
