"""``flask accounts add tiktok``: connect a TikTok Shop seller from the auth code of its authorisation.

The app key, the app secret and the seller's one-time auth code are read from the environment or typed at
a prompt (the secret and the code hidden), never from the command line, which other users can see in `ps`.
"""

from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from connectors.tiktok.accounts import connect_tiktok_account
from vault.errors import VaultError

#: Where ``flask accounts add tiktok`` looks before prompting, and whether the prompt hides what is typed.
CREDENTIAL_ENV = {
    "app_key": ("LABELVAULT_TIKTOK_APP_KEY", False),
    "app_secret": ("LABELVAULT_TIKTOK_APP_SECRET", True),
    "auth_code": ("LABELVAULT_TIKTOK_AUTH_CODE", True),
}


@click.command("tiktok")
@with_appcontext
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant (e.g. 'TikTok US').")
@click.option(
    "--api-endpoint",
    help="Override the Open API base URL: TikTok's own, or one on an origin in "
    "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES (e.g. the fake TikTok Shop).",
)
@click.option("--token-endpoint", help="Override the token service's base URL (the same rule).")
def accounts_add_tiktok(tenant_slug: str, name: str, api_endpoint: str | None, token_endpoint: str | None) -> None:
    """Connect a TikTok Shop seller (every shop its authorisation covers).

    \b
    The app key, app secret and the seller's auth code (from TikTok's redirect after the seller
    authorised the app; one use, ten minutes) are read from
      LABELVAULT_TIKTOK_APP_KEY, LABELVAULT_TIKTOK_APP_SECRET, LABELVAULT_TIKTOK_AUTH_CODE
    or asked for at a prompt. The code is traded for tokens and the shops are listed; then the account
    is stored, its credentials sealed under the tenant's key. Nothing is stored when TikTok refuses.
    """
    values: dict[str, str] = {}
    for field, (env, hidden) in CREDENTIAL_ENV.items():
        what = field.replace("_", " ")
        try:
            values[field] = (os.environ.get(env) or click.prompt(what, hide_input=hidden, type=str)).strip()
        except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
            raise click.ClickException(f"no {what} given: set {env} or type it at the prompt") from None
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_tiktok_account(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                name=name,
                app_key=values["app_key"],
                app_secret=values["app_secret"],
                auth_code=values["auth_code"],
                api_endpoint=api_endpoint,
                token_endpoint=token_endpoint,
                endpoint_overrides=svc.settings.endpoint_overrides,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        shops = len(account.marketplace_ids)
        click.echo(f"account {account.id} ({tenant_slug}/{account.name}) added: tiktok, {shops} shop(s)")
