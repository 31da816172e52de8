"""``flask carriers ...``: connect, list, set the options of and remove a seller's carrier accounts (the labels
the vault buys).

There is one ``flask carriers add <carrier>`` per carrier in the registry (``connectors/carriers/registry.py``),
which says what credentials each takes; this module names no carrier. Each credential is read from the
environment (``LABELVAULT_<CARRIER>_<CREDENTIAL>``, e.g. ``LABELVAULT_SHIPPO_API_TOKEN``,
``LABELVAULT_EASYPOST_API_KEY``) or typed at a hidden prompt, never from the command line (argv shows in ``ps``
and shell history), and stored sealed under the tenant's key. A carrier's per-account options (its registry
entry declares them: Amazon Shipping's ``one_click``, ...) are ``--option NAME=VALUE`` on ``add`` and on
``carriers options``; they are flags and numbers, never secrets. Output is ids, names, the carrier and its
options, never a secret.
"""

from __future__ import annotations

import os
from typing import Any

import click
from sqlalchemy import select

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from connectors.carriers.registry import CARRIERS, CarrierPlatform, describe_options
from vault.carrier_accounts import (
    connect_carrier_account,
    live_carrier_accounts,
    remove_carrier_account,
    set_carrier_account_options,
)
from vault.errors import VaultError
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount, Tenant


def credential_env(platform: CarrierPlatform, credential: str) -> str:
    """Where ``flask carriers add <carrier>`` looks for a credential before prompting."""
    return f"LABELVAULT_{platform.code.upper()}_{credential.upper()}"


def _credential_label(platform: CarrierPlatform, credential: str) -> str:
    words = [w.upper() if w in ("api", "id") else w for w in credential.split("_")]
    return f"{platform.name} {' '.join(words)}"


@click.group("carriers", cls=CommandGroup)
def carriers_cli() -> None:
    """Carrier accounts: the carriers the vault buys shipping labels from, per tenant."""


@carriers_cli.group("add")
def carriers_add() -> None:
    """Connect a carrier account to a tenant."""


_SHIP_FROM_OPTIONS = (
    click.option("--from-name", required=True, help="Ship-from: the sender's name printed on labels."),
    click.option("--from-company", help="Ship-from: company."),
    click.option("--from-street", required=True, help="Ship-from: street and number."),
    click.option("--from-street2", help="Ship-from: second street line."),
    click.option("--from-city", required=True, help="Ship-from: city."),
    click.option("--from-state", help="Ship-from: state or region, where the country has them (CA)."),
    click.option("--from-postal-code", required=True, help="Ship-from: postal code."),
    click.option("--from-country", required=True, help="Ship-from: ISO country code (US)."),
    click.option("--from-phone", help="Ship-from: phone, which some carriers require."),
)


def parse_option_args(platform: CarrierPlatform, pairs: tuple[str, ...]) -> dict[str, bool | int]:
    """``--option NAME=VALUE`` pairs checked against the carrier's declared options; a bad one is a one-line
    error naming the option (never its value)."""
    raw: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.ClickException("--option takes NAME=VALUE (see `flask carriers options --help`)")
        raw[name.strip()] = value
    try:
        return platform.parse_options(raw)
    except VaultError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def _options_help(platform: CarrierPlatform) -> str:
    if not platform.options:
        return f"{platform.name} takes no options."
    return "; ".join(f"{o.name} ({o.expected()}, default {str(o.default).lower()})" for o in platform.options)


def _add_command(platform: CarrierPlatform) -> click.Command:
    """``flask carriers add <platform.code>``."""
    envs = ", ".join(credential_env(platform, c) for c in platform.credentials if c not in platform.choices)

    def add(
        tenant_slug: str,
        name: str,
        test_mode: bool,
        api_endpoint: str | None,
        option: tuple[str, ...],
        **origin: str | None,
    ) -> None:
        options = parse_option_args(platform, option)
        secrets = {
            c: str(origin.pop(c)) if c in platform.choices else _credential(platform, c) for c in platform.credentials
        }
        ship_from = {
            "name": origin["from_name"], "company": origin["from_company"], "street1": origin["from_street"],
            "street2": origin["from_street2"], "city": origin["from_city"], "state": origin["from_state"],
            "postal_code": origin["from_postal_code"], "country_code": origin["from_country"],
            "phone": origin["from_phone"],
        }  # fmt: skip
        svc = services()
        policy = EndpointPolicy(
            api=platform.api_hosts, overrides=svc.settings.endpoint_overrides, api_name=f"{platform.name} API"
        )
        with svc.sessions() as session:
            tenant = tenant_by_slug(session, tenant_slug)
            try:
                account = connect_carrier_account(
                    session, keys=svc.keys, tenant_id=tenant.id, carrier=platform.code, name=name,
                    secrets=secrets, ship_from=ship_from, test_mode=test_mode, api_endpoint=api_endpoint,
                    endpoints=policy, options=options, actor=cli_actor(),
                )  # fmt: skip
            except VaultError as exc:
                raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
            session.commit()
            mode = " (test mode)" if test_mode else ""
            click.echo(f"carrier account {account.id} ({tenant_slug}/{account.name}) added: {platform.code}{mode}")

    add.__doc__ = f"""Connect a {platform.name} account.

    \b
    The credentials are read from {envs} or asked for at a hidden prompt -- never taken from the command line.
    They are stored sealed under the tenant's key. Once a tenant has a carrier account, its new API clients are
    carrier-label-only unless created with an explicit profile.
    """
    command: Any = add
    for option in reversed(_SHIP_FROM_OPTIONS):
        command = option(command)
    for credential, (values, default) in platform.choices.items():
        command = click.option(
            f"--{credential.replace('_', '-')}",
            credential,
            type=click.Choice(values),
            default=default,
            show_default=True,
            help=f"{platform.name}: {_credential_label(platform, credential).removeprefix(platform.name + ' ')}.",
        )(command)
    command = click.option(
        "--option",
        "option",
        multiple=True,
        metavar="NAME=VALUE",
        help=f"A {platform.name} option, repeatable: {_options_help(platform)}.",
    )(command)
    command = click.option(
        "--api-endpoint",
        help=f"Override {platform.name}'s API URL with one on an origin in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES "
        f"(e.g. the fake {platform.name}).",
    )(command)
    command = click.option("--test-mode", is_flag=True, help="Test credentials: labels are not charged or shipped.")(
        command
    )
    command = click.option(
        "--name", required=True, help=f"A name for the account, unique within the tenant (e.g. '{platform.name}')."
    )(command)
    command = click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")(
        command
    )
    result: click.Command = carriers_add.command(platform.code)(command)  # in the app context, like the others
    return result


def _credential(platform: CarrierPlatform, credential: str) -> str:
    env = credential_env(platform, credential)
    try:
        value = os.environ.get(env) or click.prompt(_credential_label(platform, credential), hide_input=True, type=str)
    except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
        raise click.ClickException(
            f"no {credential.replace('_', ' ')} given: set {env} or type it at the prompt"
        ) from None
    return str(value)


for _platform in CARRIERS.values():
    _add_command(_platform)


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
                options = _listed_options(a)
                click.echo(
                    f"{a.id}\t{slugs.get(a.tenant_id)}/{a.name}\t{name}{flags}\tfrom {a.ship_from['country_code']}"
                    + (f"\t{options}" if options else "")
                )


def _listed_options(account: CarrierAccount) -> str:
    """Every option of the account's carrier with its value (the default where not set); a stored value the
    carrier no longer accepts is shown as stored."""
    platform = CARRIERS.get(account.carrier)
    if platform is None or not platform.options:
        return ""
    try:
        return describe_options(platform, account.options or {})
    except VaultError:
        return " ".join(f"{k}={v}" for k, v in sorted((account.options or {}).items()))


@carriers_cli.command("options")
@click.argument("account_id", type=int)
@click.option("--option", "option", multiple=True, metavar="NAME=VALUE", help="An option to set, repeatable.")
def carriers_options(account_id: int, option: tuple[str, ...]) -> None:
    """Show or change a carrier account's options (by id); audited as carrier.options.

    \b
    Without --option, shows every option of the account's carrier with its value and what it does.
    Amazon Shipping: one_click (true or false, default false) buys an Amazon order with oneClickShipment;
    Amazon takes no idempotency key for it, so a purchase whose answer is lost stays unsettled for the
    seller. ship_to_from_order (default true) quotes an Amazon order without the buyer's address (false sends
    it for every order). dpi (203 or 300). Amazon Merchant Fulfillment: dpi of ZPL labels.
    """
    with services().sessions() as session:
        account = session.get(CarrierAccount, account_id)
        if account is None or account.removed_at is not None:
            raise click.ClickException(f"no live carrier account {account_id} (see `flask carriers list`)")
        platform = CARRIERS.get(account.carrier)
        if platform is None:
            raise click.ClickException(f"carrier {account.carrier!r} is no longer registered")
        if not option:
            if not platform.options:
                click.echo(f"{platform.name} takes no options")
            values = platform.effective_options(account.options or {})
            for o in platform.options:
                value = values[o.name]
                shown = str(value).lower() if isinstance(value, bool) else str(value)
                default = "" if o.name in (account.options or {}) else " (default)"
                click.echo(f"{o.name}={shown}{default}\t{o.description}")
            return
        options = parse_option_args(platform, option)
        changed = set_carrier_account_options(session, account=account, options=options, actor=cli_actor())
        session.commit()
        if not changed:
            click.echo(f"carrier account {account_id}: options unchanged")
            return
        shown = " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in changed.items())
        click.echo(f"carrier account {account_id} options set: {shown}")


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
