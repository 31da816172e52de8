"""``flask accounts add shopify``: connect a Shopify shop with a custom app's Admin API access token.

The token is read from ``LABELVAULT_SHOPIFY_TOKEN`` or typed at a hidden prompt, never taken from the
command line (argv shows in ``ps`` and shell history). It is tried with one query (which shop it opens,
which scopes it holds) and stored sealed under the tenant's key; nothing is stored when it fails. A public
app's install flow runs in the dashboard (Accounts, Shopify), where the seller approves it.
"""

from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from connectors.shopify.accounts import connect_shopify_account
from connectors.shopify.tokens import ShopifyToken
from vault.errors import VaultError

TOKEN_ENV = "LABELVAULT_SHOPIFY_TOKEN"  # noqa: S105 - the variable's name


@click.command("shopify")
@with_appcontext
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant (e.g. 'Shopify EU').")
@click.option("--shop", required=True, help="The shop's myshopify domain, e.g. my-shop.myshopify.com.")
@click.option(
    "--api-endpoint",
    help="Override the shop's Admin API origin: only one in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES "
    "(e.g. the fake Shopify).",
)
def accounts_add_shopify(tenant_slug: str, name: str, shop: str, api_endpoint: str | None) -> None:
    """Connect a Shopify shop.

    \b
    The custom app's Admin API access token (shpat_...) is read from
      LABELVAULT_SHOPIFY_TOKEN
    or asked for at a hidden prompt -- never taken from the command line. The app needs the read_orders
    scope; without protected customer data access Shopify withholds names and addresses, which the
    account's sync then reports.
    """
    try:
        token = os.environ.get(TOKEN_ENV) or click.prompt("Admin API access token", hide_input=True, type=str)
    except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
        raise click.ClickException(f"no access token given: set {TOKEN_ENV} or type it at the prompt") from None
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_shopify_account(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                name=name,
                shop=shop,
                token=ShopifyToken(token.strip()),
                api_endpoint=api_endpoint,
                endpoint_overrides=svc.settings.endpoint_overrides,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        click.echo(f"account {account.id} ({tenant_slug}/{account.name}) added: shopify {account.marketplace_ids[0]}")
