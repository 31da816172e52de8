"""``flask shipments ...``: the loop back to the marketplaces for the labels the vault bought.

``confirm-due`` runs now what the worker runs every minute (tell each marketplace the orders shipped whose
confirmations are due, connectors/confirmations.py); ``confirm-retry`` puts failed confirmations back in the
queue once their cause is fixed; ``confirmations`` counts them by state. Output is counts and short error
codes, never PII.
"""

from __future__ import annotations

import click
from sqlalchemy import func, select

from app.cli.errors import CommandGroup
from app.cli.support import tenant_by_slug
from app.services import services
from connectors.confirmations import confirm_due, retry_failed
from vault.models import ShipmentConfirmation


@click.group("shipments", cls=CommandGroup)
def shipments_cli() -> None:
    """Shipments bought in the vault: their confirmations to the marketplaces."""


@shipments_cli.command("confirm-due")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000), help="Most to confirm.")
@click.option("--tenant", "tenant_slug", help="Only this tenant's confirmations (default: every tenant's).")
def confirm_due_command(limit: int, tenant_slug: str | None) -> None:
    """Tell the marketplaces now that the orders whose confirmations are due shipped.

    \b
    Safe beside a running worker: each confirmation is leased by one run. A transient failure is tried again
    later with backoff; a permanent one is left failed (see `flask shipments confirmations`).
    """
    svc = services()
    s = svc.settings
    with svc.sessions() as session:
        tenant_id = tenant_by_slug(session, tenant_slug).id if tenant_slug else None
        summary = confirm_due(
            session,
            svc.keys,
            endpoint_overrides=s.endpoint_overrides,
            speedup=s.sync_speedup,
            limit=limit,
            tenant_id=tenant_id,
        )
    click.echo(
        f"{summary.confirmed} confirmed, {summary.retried} to retry, {summary.failed} failed, "
        f"{summary.skipped} taken by another run"
    )
    for code, count in sorted(summary.errors.items()):
        click.echo(f"  {code}: {count}")


@shipments_cli.command("confirm-retry")
@click.option("--tenant", "tenant_slug", help="Only this tenant's (default: every tenant's).")
def confirm_retry_command(tenant_slug: str | None) -> None:
    """Queue the failed confirmations again, due now (after fixing their cause: a consent, a scope)."""
    svc = services()
    with svc.sessions() as session:
        tenant_id = tenant_by_slug(session, tenant_slug).id if tenant_slug else None
        count = retry_failed(session, tenant_id=tenant_id)
    click.echo(f"{count} failed confirmations queued again")


@shipments_cli.command("confirmations")
@click.option("--tenant", "tenant_slug", help="Only this tenant's (default: every tenant's).")
def confirmations_command(tenant_slug: str | None) -> None:
    """Count the confirmations by marketplace, state and last error."""
    svc = services()
    with svc.sessions() as session:
        query = select(
            ShipmentConfirmation.marketplace,
            ShipmentConfirmation.status,
            ShipmentConfirmation.last_error,
            func.count(),
        ).group_by(ShipmentConfirmation.marketplace, ShipmentConfirmation.status, ShipmentConfirmation.last_error)
        if tenant_slug:
            query = query.where(ShipmentConfirmation.tenant_id == tenant_by_slug(session, tenant_slug).id)
        rows = session.execute(query.order_by(ShipmentConfirmation.marketplace, ShipmentConfirmation.status)).all()
    if not rows:
        click.echo("no shipment confirmations")
    for marketplace, status, error, count in rows:
        click.echo(f"{marketplace}\t{status}\t{error or '-'}\t{count}")
