"""``flask sync ...``: pull orders from marketplaces into the vault, now, with a progress bar and a summary.

Output is counts, ids and names of accounts, never PII or secrets.
"""

from __future__ import annotations

from typing import Any

import click

from app.cli.errors import CommandGroup
from app.cli.support import live_accounts
from app.services import services
from connectors.interfaces import ConnectorError
from connectors.registry import connector_for_account
from connectors.sync import SyncProgress, SyncSummary, sync_account
from vault.errors import VaultError
from vault.models import MarketplaceAccount


@click.group("sync", cls=CommandGroup)
def sync_cli() -> None:
    """Pull orders from marketplaces into the vault."""


def _print_summary(label: str, s: SyncSummary) -> None:
    click.echo(f"{label}:")
    click.echo(f"  orders   {s.orders_new} new, {s.orders_updated} updated, {s.orders_unchanged} unchanged")
    click.echo(f"  calls    {s.calls} made, {s.throttled} throttled, {s.retries} retried")
    click.echo(f"  time     {s.seconds:.1f} s, {s.pages} pages")
    cursor = f"{s.cursor:%Y-%m-%d %H:%M:%S}Z" if s.cursor else "-"
    click.echo(f"  cursor   changes up to {cursor} are in")


@sync_cli.command("run")
@click.option("--account", help="Sync only this account (name or id); default: every live account.")
@click.option("--tenant", "tenant_slug", help="Sync only this tenant's accounts.")
@click.option("--wait", default=0.0, show_default=True, help="Seconds to wait for an account another run is syncing.")
@click.option(
    "--speedup",
    default=1.0,
    show_default=True,
    envvar="LABELVAULT_SYNC_SPEEDUP",
    help="Multiply Amazon's documented rate limits (only for the fake marketplace, which runs faster).",
)
def sync_run(account: str | None, tenant_slug: str | None, wait: float, speedup: float) -> None:
    """Sync marketplace accounts now, one after another, and print what changed.

    Safe to interrupt: work is committed page by page and the next run picks up where this one stopped.
    An account that another run is syncing is skipped (or waited for, with --wait).
    """
    svc = services()
    with svc.sessions() as session:
        targets = [
            (a.id, f"{a.name} (account {a.id})") for a in live_accounts(session, tenant=tenant_slug, account=account)
        ]
    if not targets:
        raise click.ClickException("no live account matches (see `flask accounts list`)")
    failed = 0
    for account_id, label in targets:
        try:
            with svc.sessions() as session:
                acc = session.get(MarketplaceAccount, account_id)
                assert acc is not None
                connector = connector_for_account(
                    session,
                    keys=svc.keys,
                    account=acc,
                    speedup=speedup,
                    endpoint_overrides=svc.settings.endpoint_overrides,
                    shared_buckets=svc.rate_buckets,
                )
            try:
                with click.progressbar(length=1000, label=f"syncing {label}") as bar:
                    done = 0

                    def advance(p: SyncProgress, bar: Any = bar) -> None:
                        nonlocal done
                        target = int(1000 * (p.fraction or 0.0))
                        if target > done:
                            bar.update(target - done)
                            done = target

                    summary = sync_account(
                        svc.sessions,
                        keys=svc.keys,
                        account=account_id,
                        connector=connector,
                        wait=wait,
                        progress=advance,
                    )
            finally:
                connector.close()
        except (ConnectorError, VaultError) as exc:
            failed += 1
            click.echo(f"{label}: failed: {type(exc).__name__}: {exc}", err=True)
            continue
        _print_summary(label, summary)
    if failed:
        raise click.ClickException(f"{failed} of {len(targets)} accounts failed to sync")
