"""``labelvault labels ...``: what an operator may do about an order's labels (the label API issues them).

``grant-reprint`` lets one more label than the reissue cap be issued for an order, through the same vault
function as the dashboard's order page (:func:`vault.release.grant_reprint`, audited with the reason).
"""

from __future__ import annotations

import click

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, order_ref, tenant_by_slug
from app.services import services
from vault.errors import VaultError
from vault.release import grant_reprint


@click.group("labels", cls=CommandGroup)
def labels_cli() -> None:
    """An order's labels: grant a reprint beyond the reissue cap. Audited."""


@labels_cli.command("grant-reprint")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller).")
@click.argument("order_spec", metavar="ORDER")
@click.option("--reason", required=True, help="Why another label is needed, e.g. 'printer jam' (no buyer data).")
def labels_grant_reprint(tenant_slug: str, order_spec: str, reason: str) -> None:
    """Let one more label be issued for ORDER (MARKETPLACE:ORDER_ID) than the reissue cap allows."""
    marketplace, order_id = order_ref(order_spec)
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            issued, granted = grant_reprint(
                session,
                tenant_id=tenant.id,
                marketplace=marketplace,
                order_id=order_id,
                actor=cli_actor(),
                reason=reason,
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    cap = svc.settings.label_reissue_cap + granted
    click.echo(f"reprint granted for {marketplace}:{order_id}: {issued} of {cap} labels issued")
