"""``flask accounts add walmart``: connect a Walmart Marketplace (US) seller account with its API key.

The key (client ID and client secret) is read from the environment or typed at a hidden prompt, never from
the command line (argv shows in ``ps`` and shell history), tried with one token request and stored sealed
under the tenant's key. Registered on ``accounts add`` by ``app/cli/accounts.py``.
"""

from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from connectors.walmart import WalmartCredentials
from connectors.walmart.accounts import connect_walmart_account
from connectors.walmart.platform import PLATFORM
from vault.errors import VaultError


@click.command("walmart")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant (e.g. 'Walmart US').")
@click.option("--sandbox", is_flag=True, help="Use Walmart's sandbox host (sandbox.walmartapis.com).")
@click.option(
    "--api-endpoint",
    help="Override the API base URL: Walmart's own host, or one on an origin in "
    "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES (e.g. the fake Walmart).",
)
@click.option("--token-endpoint", help="Override the token URL (the same rule; default: the API host's /v3/token).")
@with_appcontext  # what AppGroup.command adds; this command joins its group by add_command
def accounts_add_walmart(
    tenant_slug: str, name: str, sandbox: bool, api_endpoint: str | None, token_endpoint: str | None
) -> None:
    """Connect a Walmart Marketplace (US) seller account.

    \b
    The API key's client ID and client secret (Seller Center, Developer Portal) are read from
      LABELVAULT_WALMART_CLIENT_ID, LABELVAULT_WALMART_CLIENT_SECRET
    or asked for at a prompt (the secret hidden) -- never taken from the command line, which other users
    can see in `ps`. They are tried with one token request, then stored sealed under the tenant's key;
    nothing is stored when they fail.
    """
    secrets: dict[str, str] = {}
    for credential in PLATFORM.credentials:
        env = credential.env or ""
        try:
            value = os.environ.get(env) or click.prompt(
                credential.label, hide_input=credential.name != "client_id", type=str
            )
        except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
            raise click.ClickException(f"no {credential.label} given: set {env} or type it at the prompt") from None
        secrets[credential.name] = value.strip()
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_walmart_account(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                name=name,
                credentials=WalmartCredentials.from_secrets(secrets),
                sandbox=sandbox,
                api_endpoint=api_endpoint,
                token_endpoint=token_endpoint,
                endpoint_overrides=svc.settings.endpoint_overrides,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        click.echo(
            f"account {account.id} ({tenant_slug}/{account.name}) added: walmart{' sandbox' if sandbox else ''}, "
            f"{PLATFORM.markets(account)}"
        )
