"""``flask accounts ...``: connect, list and remove a seller's marketplace accounts.

Credentials are read from the environment or typed at a hidden prompt, never from the command line (argv
shows in ``ps`` and shell history). They are stored sealed under the tenant's key. Output is counts, ids
and names of accounts, never PII or secrets.
"""

from __future__ import annotations

import os
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli.accounts_ebay import accounts_add_ebay, accounts_reconsent
from app.cli.accounts_shopify import accounts_add_shopify
from app.cli.accounts_tiktok import accounts_add_tiktok
from app.cli.accounts_walmart import accounts_add_walmart
from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, live_accounts, tenant_by_slug
from app.services import services
from connectors.amazon import API_V0, API_V2026, LwaCredentials
from connectors.amazon.accounts import connect_amazon_account
from connectors.amazon.endpoints import REGIONS
from connectors.amazon.marketplaces import label
from vault.errors import VaultError
from vault.marketplace_accounts import remove_account
from vault.models import MarketplaceAccount, Order, Tenant

#: Where ``flask accounts add amazon`` looks before prompting.
CREDENTIAL_ENV = {
    "client_id": "LABELVAULT_AMAZON_CLIENT_ID",
    "client_secret": "LABELVAULT_AMAZON_CLIENT_SECRET",
    "refresh_token": "LABELVAULT_AMAZON_REFRESH_TOKEN",
}


def _one_account(session: Session, *, tenant: str | None, account: str) -> MarketplaceAccount:
    found = live_accounts(session, tenant=tenant, account=account)
    if not found:
        raise click.ClickException(f"no live account {account!r} (see `flask accounts list`)")
    if len(found) > 1:
        raise click.ClickException(f"{len(found)} accounts are called {account!r}; name one by id or add --tenant")
    return found[0]


@click.group("accounts", cls=CommandGroup)
def accounts_cli() -> None:
    """Marketplace accounts: connect, list and remove a seller's accounts."""


@accounts_cli.group("add")
def accounts_add() -> None:
    """Connect a marketplace account to a tenant."""


@accounts_add.command("amazon")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant (e.g. 'JP store').")
@click.option("--region", type=click.Choice(sorted(REGIONS)), required=True, help="SP-API region: na, eu or fe.")
@click.option(
    "--marketplace-id",
    "marketplace_ids",
    multiple=True,
    required=True,
    help="An Amazon marketplace id of the region to sync (repeat for several), e.g. ATVPDKIKX0DER for Amazon.com "
    "(na), A1PA6795UKMFR9 for Amazon.de (eu), A1VC38T7YXB528 for Amazon.co.jp (fe).",
)
@click.option(
    "--api-version",
    type=click.Choice([API_V2026, API_V0]),
    default=API_V2026,
    show_default=True,
    help="Orders API: 2026-01-01 (addresses without an RDT) or legacy v0 (with a Restricted Data Token).",
)
@click.option("--sandbox", is_flag=True, help="Use Amazon's sandbox hosts.")
@click.option(
    "--sp-api-endpoint",
    help="Override the SP-API base URL: the region's own host, or one on an origin in "
    "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES (e.g. the fake marketplace).",
)
@click.option("--lwa-endpoint", help="Override the Login with Amazon token URL (the same rule).")
def accounts_add_amazon(
    tenant_slug: str,
    name: str,
    region: str,
    marketplace_ids: tuple[str, ...],
    api_version: str,
    sandbox: bool,
    sp_api_endpoint: str | None,
    lwa_endpoint: str | None,
) -> None:
    """Connect an Amazon seller account.

    \b
    The LWA client id, client secret and refresh token are read from
      LABELVAULT_AMAZON_CLIENT_ID, LABELVAULT_AMAZON_CLIENT_SECRET, LABELVAULT_AMAZON_REFRESH_TOKEN
    or asked for at a prompt (secrets hidden) -- never taken from the command line, which other users
    can see in `ps`. They are tried with one Login with Amazon exchange, then stored sealed under the
    tenant's key; nothing is stored when they fail.
    """
    secrets: dict[str, str] = {}
    for field, env in CREDENTIAL_ENV.items():
        what = field.replace("_", " ").replace("id", "ID")
        try:
            value = os.environ.get(env) or click.prompt(what, hide_input=field != "client_id", type=str)
        except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
            raise click.ClickException(f"no {what} given: set {env} or type it at the prompt") from None
        secrets[field] = value.strip()
    credentials = LwaCredentials.from_secrets(secrets)
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_amazon_account(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                name=name,
                region=region,
                api_version=api_version,
                marketplace_ids=marketplace_ids,
                credentials=credentials,
                sandbox=sandbox,
                sp_api_endpoint=sp_api_endpoint,
                lwa_endpoint=lwa_endpoint,
                endpoint_overrides=svc.settings.endpoint_overrides,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        where = f"{tenant_slug}/{account.name}"
        markets = ", ".join(label(m) for m in account.marketplace_ids)
        click.echo(f"account {account.id} ({where}) added: amazon {region}, Orders API {api_version}, {markets}")


accounts_add.add_command(accounts_add_tiktok)
accounts_add.add_command(accounts_add_walmart)
accounts_add.add_command(accounts_add_ebay)
accounts_cli.add_command(accounts_reconsent)


@accounts_cli.command("list")
@click.option("--tenant", "tenant_slug", help="Only this tenant's accounts.")
def accounts_list(tenant_slug: str | None) -> None:
    """List live accounts with their sync cursor and last sync result."""
    with services().sessions() as session:
        slugs: dict[int, str] = dict(session.execute(select(Tenant.id, Tenant.slug)).all())
        for a in live_accounts(session, tenant=tenant_slug, account=None):
            orders = session.scalar(select(func.count()).where(Order.account_id == a.id)) or 0
            cursor = f"{a.sync_cursor:%Y-%m-%d %H:%M:%S}Z" if a.sync_cursor else "never synced"
            last: dict[str, Any] = a.last_sync or {}
            result = "" if not last else ("ok" if last.get("ok") else f"failed: {last.get('error')}")
            markets = ", ".join(label(m) for m in a.marketplace_ids)
            click.echo(
                f"{a.id}\t{slugs.get(a.tenant_id)}/{a.name}\t{a.marketplace} {a.region} {a.api_version}"
                f"{' sandbox' if a.sandbox else ''}\t{markets}\t{orders} orders\t"
                f"synced to {cursor}\t{result}"
            )


@accounts_cli.command("remove")
@click.argument("account")
@click.option("--tenant", "tenant_slug", help="The tenant, if the account name is not unique.")
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def accounts_remove(account: str, tenant_slug: str | None, yes: bool) -> None:
    """Remove an account (by name or id): shred its credentials and every label record of its orders.

    The orders' non-PII stubs stay (marked erased) for the audit trail, which records the removal with the
    count of records shredded. This cannot be undone.
    """
    with services().sessions() as session:
        acc = _one_account(session, tenant=tenant_slug, account=account)
        if not yes:
            click.confirm(f"Shred account {acc.id} ({acc.name}) and all its label records?", abort=True)
        shredded = remove_account(session, account=acc, actor=cli_actor())
        session.commit()
    click.echo(f"account {acc.id} removed: {shredded} label records shredded")


accounts_add.add_command(accounts_add_shopify)
