"""``flask holds ...``: legal holds keep a tenant's orders (or one order) from erasure until an end date.

Every change is audited (vault/retention.py); output is hold ids, dates and the hold's own words, never PII.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

import click
from sqlalchemy import select

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, order_ref, tenant_by_slug
from app.services import services
from vault import retention
from vault.errors import VaultError
from vault.models import LegalHold, Tenant, utcnow
from vault.orders import find_order


def _end_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("give a date (2027-06-30) or a time with offset (2027-06-30T17:00+08:00)") from None
    if parsed.tzinfo is None:  # a bare date ends at the end of that day, UTC
        parsed = datetime.combine(parsed.date(), time(23, 59, 59), tzinfo=UTC)
    return parsed


@click.group("holds", cls=CommandGroup)
def holds_cli() -> None:
    """Legal holds: keep a tenant's orders (or one order) from erasure until an end date. Audited."""


@holds_cli.command("add")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller).")
@click.option("--order", "order_spec", help="Hold one order, as MARKETPLACE:ORDER_ID (default: every order).")
@click.option("--reason", required=True, help="The matter, e.g. a case or authority reference (no buyer data).")
@click.option("--owner", required=True, help="Who answers for the hold (a person or role at the seller).")
@click.option("--until", "until", required=True, help="End date, e.g. 2027-06-30 (end of that day, UTC).")
def holds_add(tenant_slug: str, order_spec: str | None, reason: str, owner: str, until: str) -> None:
    """Place a legal hold."""
    ends_at = _end_date(until)
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        order = None
        if order_spec:
            marketplace, order_id = order_ref(order_spec)
            try:
                order = find_order(session, tenant_id=tenant.id, marketplace=marketplace, external_order_id=order_id)
            except VaultError as exc:
                raise click.ClickException(str(exc)) from None
        try:
            hold = retention.place_hold(
                session,
                tenant_id=tenant.id,
                order=order,
                reason=reason,
                owner=owner,
                ends_at=ends_at,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"hold {hold.id} placed on {order_spec or 'every order of ' + tenant_slug} until {ends_at:%Y-%m-%d}")


@holds_cli.command("list")
@click.option("--tenant", "tenant_slug", help="Only this tenant's holds.")
@click.option("--all", "show_all", is_flag=True, help="Also ended and released holds.")
def holds_list(tenant_slug: str | None, show_all: bool) -> None:
    """List legal holds in force (or all)."""
    now = utcnow()
    with services().sessions() as session:
        query = select(LegalHold, Tenant.slug).join(Tenant, Tenant.id == LegalHold.tenant_id).order_by(LegalHold.id)
        if tenant_slug:
            query = query.where(LegalHold.tenant_id == tenant_by_slug(session, tenant_slug).id)
        for hold, slug in session.execute(query):
            active = hold.released_at is None and hold.ends_at > now
            if not (active or show_all):
                continue
            state = "in force" if active else ("released" if hold.released_at else "ended")
            scope = f"order #{hold.order_id}" if hold.order_id else "every order"
            click.echo(
                f"{hold.id}\t{slug}\t{scope}\tuntil {hold.ends_at:%Y-%m-%d}\t{state}\towner: {hold.owner}\t"
                f"reason: {hold.reason}"
            )


@holds_cli.command("release")
@click.argument("hold_id", type=int)
@click.option("--tenant", "tenant_slug", required=True, help="The tenant the hold belongs to.")
def holds_release(hold_id: int, tenant_slug: str) -> None:
    """End a legal hold early (orders past their deadline are erased at the next purge)."""
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            retention.release_hold(session, tenant_id=tenant.id, hold_id=hold_id, actor=cli_actor())
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"hold {hold_id} released")
