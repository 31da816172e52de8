"""``flask carriers ...``: connect, list and remove a seller's carrier accounts (the labels the vault buys):
``add shippo`` (an API token) and ``add amazonshipping`` (a selling partner's Login with Amazon grant).

The carrier's credentials are read from the environment or typed at a (hidden) prompt, never from the command
line (argv shows in ``ps`` and shell history), and stored sealed under the tenant's key. Output is ids,
names and the carrier, never a secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy import select

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from connectors.carriers.amazon_shipping.client import BUSINESSES
from connectors.carriers.registry import AMAZON_SHIPPING, CARRIERS, SHIPPO
from vault.carrier_accounts import connect_carrier_account, live_carrier_accounts, remove_carrier_account
from vault.errors import VaultError
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount, Tenant

#: Where ``flask carriers add shippo`` looks for the API token before prompting.
SHIPPO_TOKEN_ENV = "LABELVAULT_SHIPPO_API_TOKEN"  # noqa: S105 - the variable's name, not a token
#: Where ``flask carriers add amazonshipping`` looks for the LWA credentials before prompting (name, hidden).
AMAZON_SHIPPING_ENV: dict[str, tuple[str, str, bool]] = {
    "client_id": ("LABELVAULT_AMAZON_SHIPPING_CLIENT_ID", "LWA client id", False),
    "client_secret": ("LABELVAULT_AMAZON_SHIPPING_CLIENT_SECRET", "LWA client secret", True),
    "refresh_token": ("LABELVAULT_AMAZON_SHIPPING_REFRESH_TOKEN", "LWA refresh token", True),
}


@click.group("carriers", cls=CommandGroup)
def carriers_cli() -> None:
    """Carrier accounts: the carriers the vault buys shipping labels from, per tenant."""


@carriers_cli.group("add")
def carriers_add() -> None:
    """Connect a carrier account to a tenant."""


@carriers_add.command("shippo")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant (e.g. 'Shippo').")
@click.option("--from-name", required=True, help="Ship-from: the sender's name printed on labels.")
@click.option("--from-company", help="Ship-from: company.")
@click.option("--from-street", required=True, help="Ship-from: street and number.")
@click.option("--from-street2", help="Ship-from: second street line.")
@click.option("--from-city", required=True, help="Ship-from: city.")
@click.option("--from-state", help="Ship-from: state or region, where the country has them (CA).")
@click.option("--from-postal-code", required=True, help="Ship-from: postal code.")
@click.option("--from-country", required=True, help="Ship-from: ISO country code (US).")
@click.option("--from-phone", help="Ship-from: phone, which some carriers require.")
@click.option("--test-mode", is_flag=True, help="A shippo_test_ token: labels are not charged or shipped.")
@click.option(
    "--api-endpoint",
    help="Override Shippo's API URL with one on an origin in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES "
    "(e.g. the fake Shippo).",
)
def carriers_add_shippo(
    tenant_slug: str,
    name: str,
    from_name: str,
    from_company: str | None,
    from_street: str,
    from_street2: str | None,
    from_city: str,
    from_state: str | None,
    from_postal_code: str,
    from_country: str,
    from_phone: str | None,
    test_mode: bool,
    api_endpoint: str | None,
) -> None:
    """Connect a Shippo account.

    \b
    The API token is read from LABELVAULT_SHIPPO_API_TOKEN or asked for at a hidden prompt -- never taken
    from the command line. It is stored sealed under the tenant's key. Once a tenant has a carrier account,
    its new API clients are carrier-label-only unless created with an explicit profile.
    """
    try:
        token = os.environ.get(SHIPPO_TOKEN_ENV) or click.prompt("Shippo API token", hide_input=True, type=str)
    except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
        raise click.ClickException(f"no API token given: set {SHIPPO_TOKEN_ENV} or type it at the prompt") from None
    ship_from = {
        "name": from_name, "company": from_company, "street1": from_street, "street2": from_street2,
        "city": from_city, "state": from_state, "postal_code": from_postal_code, "country_code": from_country,
        "phone": from_phone,
    }  # fmt: skip
    svc = services()
    policy = EndpointPolicy(api=SHIPPO.api_hosts, overrides=svc.settings.endpoint_overrides, api_name="Shippo API")
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_carrier_account(
                session, keys=svc.keys, tenant_id=tenant.id, carrier=SHIPPO.code, name=name,
                secrets={"api_token": token}, ship_from=ship_from, test_mode=test_mode, api_endpoint=api_endpoint,
                endpoints=policy, actor=cli_actor(),
            )  # fmt: skip
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        mode = " (test mode)" if test_mode else ""
        click.echo(f"carrier account {account.id} ({tenant_slug}/{account.name}) added: shippo{mode}")


def _ship_from_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ship-from options every ``carriers add`` command takes (the seller's dispatch address)."""
    options = [
        click.option("--from-name", required=True, help="Ship-from: the sender's name printed on labels."),
        click.option("--from-company", help="Ship-from: company."),
        click.option("--from-street", required=True, help="Ship-from: street and number."),
        click.option("--from-street2", help="Ship-from: second street line."),
        click.option("--from-city", required=True, help="Ship-from: city."),
        click.option("--from-state", help="Ship-from: state or region, where the country has them (CA)."),
        click.option("--from-postal-code", required=True, help="Ship-from: postal code."),
        click.option("--from-country", required=True, help="Ship-from: ISO country code (US)."),
        click.option("--from-phone", help="Ship-from: phone, which some carriers require."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@carriers_add.command("amazonshipping")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant.")
@click.option(
    "--business",
    "business_id",
    type=click.Choice(sorted(BUSINESSES)),
    default="AmazonShipping_US",
    show_default=True,
    help="The Amazon Shipping business the labels are bought from (it picks the SP-API region).",
)
@_ship_from_options
@click.option("--test-mode", is_flag=True, help="An SP-API sandbox grant: labels are not charged or shipped.")
@click.option(
    "--api-endpoint",
    help="Override the SP-API URL with one on an origin in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES "
    "(Amazon's sandbox host, or the fake Amazon Shipping).",
)
def carriers_add_amazon_shipping(
    tenant_slug: str, name: str, business_id: str, test_mode: bool, api_endpoint: str | None, **from_: str | None
) -> None:
    """Connect an Amazon Shipping (v2) account: a selling partner's Login with Amazon grant.

    \b
    The LWA client id, client secret and refresh token are read from LABELVAULT_AMAZON_SHIPPING_CLIENT_ID,
    LABELVAULT_AMAZON_SHIPPING_CLIENT_SECRET and LABELVAULT_AMAZON_SHIPPING_REFRESH_TOKEN, or asked for at a
    prompt (the secret and the token hidden) -- never taken from the command line. They are stored sealed
    under the tenant's key.
    """
    secrets = {"business_id": business_id}
    for key, (env, label, hidden) in AMAZON_SHIPPING_ENV.items():
        try:
            secrets[key] = os.environ.get(env) or click.prompt(label, hide_input=hidden, type=str)
        except click.Abort:
            raise click.ClickException(f"no {label} given: set {env} or type it at the prompt") from None
    ship_from = {
        "name": from_["from_name"], "company": from_["from_company"], "street1": from_["from_street"],
        "street2": from_["from_street2"], "city": from_["from_city"], "state": from_["from_state"],
        "postal_code": from_["from_postal_code"], "country_code": from_["from_country"], "phone": from_["from_phone"],
    }  # fmt: skip
    svc = services()
    policy = EndpointPolicy(
        api=AMAZON_SHIPPING.api_hosts, overrides=svc.settings.endpoint_overrides, api_name="Amazon Shipping API"
    )
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_carrier_account(
                session, keys=svc.keys, tenant_id=tenant.id, carrier=AMAZON_SHIPPING.code, name=name,
                secrets=secrets, ship_from=ship_from, test_mode=test_mode, api_endpoint=api_endpoint,
                endpoints=policy, actor=cli_actor(),
            )  # fmt: skip
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        mode = " (test mode)" if test_mode else ""
        click.echo(
            f"carrier account {account.id} ({tenant_slug}/{account.name}) added: {AMAZON_SHIPPING.code}"
            f" {business_id}{mode}"
        )


@carriers_cli.command("list")
@click.option("--tenant", "tenant_slug", help="Only this tenant's carrier accounts.")
def carriers_list(tenant_slug: str | None) -> None:
    """List live carrier accounts."""
    with services().sessions() as session:
        slugs: dict[int, str] = dict(session.execute(select(Tenant.id, Tenant.slug)).all())
        tenants = [tenant_by_slug(session, tenant_slug).id] if tenant_slug else sorted(slugs)
        for tenant_id in tenants:
            for a in live_carrier_accounts(session, tenant_id=tenant_id):
                name = CARRIERS[a.carrier].name if a.carrier in CARRIERS else a.carrier
                flags = (" test mode" if a.test_mode else "") + (" custom endpoint" if a.api_endpoint else "")
                click.echo(
                    f"{a.id}\t{slugs.get(a.tenant_id)}/{a.name}\t{name}{flags}\tfrom {a.ship_from['country_code']}"
                )


@carriers_cli.command("remove")
@click.argument("account_id", type=int)
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def carriers_remove(account_id: int, yes: bool) -> None:
    """Remove a carrier account (by id): its credentials are shredded; bought labels keep their records."""
    with services().sessions() as session:
        account = session.get(CarrierAccount, account_id)
        if account is None or account.removed_at is not None:
            raise click.ClickException(f"no live carrier account {account_id} (see `flask carriers list`)")
        if not yes:
            click.confirm(
                f"Remove carrier account {account.id} ({account.name}) and shred its credentials?", abort=True
            )
        remove_carrier_account(session, account=account, actor=cli_actor())
        session.commit()
    click.echo(f"carrier account {account_id} removed")
