"""``flask accounts add ebay`` and ``flask accounts reconsent``: an eBay seller connected by its consent.

The app's keyset (App ID, Cert ID, RuName) comes from the environment or a prompt (the Cert ID hidden),
never the command line. The command prints eBay's consent URL with a fresh ``state``; the seller opens it,
agrees, and eBay redirects to the RuName's accept URL. The operator pastes that URL (or just its ``code``)
at a hidden prompt: the state is checked, the code exchanged once, and only then is anything stored.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import parse_qs, urlsplit

import click
from flask.cli import with_appcontext

from app.cli.support import cli_actor, live_accounts, tenant_by_slug
from app.services import services
from connectors.ebay.accounts import (
    EbayApp,
    check_marketplace_ids,
    connect_ebay_account,
    consent_url,
    reconsent_ebay_account,
)
from connectors.ebay.platform import MARKETPLACE_NAMES
from vault.errors import VaultError

#: Where the commands look for the app's keyset and the consent's answer before prompting.
APP_ENV = {
    "client_id": "LABELVAULT_EBAY_CLIENT_ID",
    "client_secret": "LABELVAULT_EBAY_CLIENT_SECRET",
    "ru_name": "LABELVAULT_EBAY_RU_NAME",
}
CONSENT_ENV = "LABELVAULT_EBAY_CONSENT_REDIRECT"
_PROMPTS = {"client_id": "App ID (client ID)", "client_secret": "Cert ID (client secret)", "ru_name": "RuName"}


def _app() -> EbayApp:
    values: dict[str, str] = {}
    for field, env in APP_ENV.items():
        try:
            values[field] = os.environ.get(env) or click.prompt(
                _PROMPTS[field], hide_input=field == "client_secret", type=str
            )
        except click.Abort:  # no terminal and nothing on standard input (or ^C at the prompt)
            raise click.ClickException(f"no {_PROMPTS[field]} given: set {env} or type it at the prompt") from None
    try:
        return EbayApp(values["client_id"].strip(), values["client_secret"].strip(), values["ru_name"].strip())
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None


def _consent_code(url: str, state: str) -> str:
    """Show the consent URL; read the redirect eBay sent the seller to (or its code); check its state."""
    click.echo("Open this URL as the seller, sign in to eBay and agree:")
    click.echo(url)
    try:
        answer = os.environ.get(CONSENT_ENV) or click.prompt(
            "The URL eBay redirected to (or its code)", hide_input=True, type=str
        )
    except click.Abort:
        raise click.ClickException(f"no consent given: set {CONSENT_ENV} or paste the redirect URL") from None
    answer = answer.strip()
    if "?" not in answer:
        return answer
    query = parse_qs(urlsplit(answer).query)
    if query.get("state") != [state]:
        raise click.ClickException("the redirect's state is not this consent's: start again (nothing was stored)")
    codes = query.get("code")
    if not codes:
        raise click.ClickException("the redirect carries no code: the seller did not agree (nothing was stored)")
    return codes[0]


@click.command("ebay")
@with_appcontext
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) that owns the account.")
@click.option("--name", required=True, help="A name for the account, unique within the tenant (e.g. 'eBay US').")
@click.option(
    "--marketplace-id",
    "marketplace_ids",
    multiple=True,
    required=True,
    help=f"An eBay marketplace the seller sells on (repeat for several): {', '.join(MARKETPLACE_NAMES)}.",
)
@click.option("--sandbox", is_flag=True, help="Use eBay's sandbox (api.sandbox.ebay.com, auth.sandbox.ebay.com).")
@click.option(
    "--api-endpoint",
    help="Override the API origin: eBay's own, or one in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES (the fake).",
)
@click.option("--token-endpoint", help="Override the OAuth token URL (the same rule).")
def accounts_add_ebay(
    tenant_slug: str,
    name: str,
    marketplace_ids: tuple[str, ...],
    sandbox: bool,
    api_endpoint: str | None,
    token_endpoint: str | None,
) -> None:
    """Connect an eBay seller account through the seller's consent.

    \b
    The app's App ID, Cert ID and RuName are read from
      LABELVAULT_EBAY_CLIENT_ID, LABELVAULT_EBAY_CLIENT_SECRET, LABELVAULT_EBAY_RU_NAME
    or asked for at a prompt. The command prints eBay's consent URL; paste the URL eBay redirects the
    seller to (or set LABELVAULT_EBAY_CONSENT_REDIRECT). The code in it is exchanged once for the seller's
    refresh token, which is stored sealed under the tenant's key; nothing is stored when that fails.
    """
    svc = services()
    overrides = svc.settings.endpoint_overrides
    with svc.sessions() as session:
        tenant_by_slug(session, tenant_slug)  # an unknown tenant is refused before the seller is sent anywhere
    try:
        check_marketplace_ids(marketplace_ids)
    except VaultError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    app = _app()
    state = secrets.token_urlsafe(16)
    try:
        url = consent_url(
            app.client_id,
            app.ru_name,
            state=state,
            sandbox=sandbox,
            api_endpoint=api_endpoint,
            endpoint_overrides=overrides,
        )
    except VaultError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    code = _consent_code(url, state)
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            account = connect_ebay_account(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                name=name,
                marketplace_ids=marketplace_ids,
                app=app,
                code=code,
                sandbox=sandbox,
                api_endpoint=api_endpoint,
                token_endpoint=token_endpoint,
                endpoint_overrides=overrides,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        markets = ", ".join(MARKETPLACE_NAMES[m] for m in account.marketplace_ids)
        ends = account.grant_expires_at.date().isoformat() if account.grant_expires_at else "never"
        click.echo(f"account {account.id} ({tenant_slug}/{account.name}) added: ebay, {markets}; consent ends {ends}")


@click.command("reconsent")
@with_appcontext
@click.argument("account")
@click.option("--tenant", "tenant_slug", help="The tenant, if the account name is not unique.")
def accounts_reconsent(account: str, tenant_slug: str | None) -> None:
    """Renew an eBay account's consent (its grant ran out or was withdrawn): the same steps as `add ebay`."""
    svc = services()
    with svc.sessions() as session:
        found = [a for a in live_accounts(session, tenant=tenant_slug, account=account) if a.marketplace == "ebay"]
        if len(found) != 1:
            raise click.ClickException(f"{len(found)} live eBay accounts match {account!r} (see `flask accounts list`)")
        target = found[0]
        app = _app()
        state = secrets.token_urlsafe(16)
        try:
            url = consent_url(
                app.client_id,
                app.ru_name,
                state=state,
                api_endpoint=target.api_endpoint,
                endpoint_overrides=svc.settings.endpoint_overrides,
            )
            code = _consent_code(url, state)
            reconsent_ebay_account(
                session,
                keys=svc.keys,
                account=target,
                app=app,
                code=code,
                endpoint_overrides=svc.settings.endpoint_overrides,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        session.commit()
        ends = target.grant_expires_at.date().isoformat() if target.grant_expires_at else "never"
        click.echo(f"account {target.id} ({target.name}) consented again; consent ends {ends}")
