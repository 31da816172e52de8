"""``flask tenants ...``: seller organisations, each with its own keys, accounts, clients and audit chain."""

from __future__ import annotations

import click
from sqlalchemy import select

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from vault.models import Tenant
from vault.tenants import create_tenant, set_return_address


@click.group("tenants", cls=CommandGroup)
def tenants_cli() -> None:
    """Seller organisations (tenants)."""


@tenants_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The seller's display name.")
def tenants_create(slug: str, name: str) -> None:
    """Create a tenant and its first key."""
    svc = services()
    with svc.sessions() as session:
        if session.scalar(select(Tenant).where(Tenant.slug == slug)) is not None:
            raise click.ClickException(f"tenant {slug!r} exists already")
        create_tenant(session, keys=svc.keys, slug=slug, name=name, actor=cli_actor())
        session.commit()
    click.echo(f"tenant {slug} created")


@tenants_cli.command("return-address")
@click.argument("slug")
@click.option("--name", required=True, help="Sender name printed on labels, e.g. the shop or warehouse.")
@click.option("--line", "lines", multiple=True, required=True, help="An address line (repeat, up to 4).")
@click.option("--country", required=True, help="Two-letter country code, e.g. CN.")
def tenants_return_address(slug: str, name: str, lines: tuple[str, ...], country: str) -> None:
    """Set the seller's return address printed on every label (audited)."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, slug)
        try:
            set_return_address(
                session, tenant=tenant, name=name, lines=list(lines), country_code=country, actor=cli_actor()
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"tenant {slug}: return address set")


@tenants_cli.command("list")
def tenants_list() -> None:
    """List tenants."""
    with services().sessions() as session:
        for t in session.scalars(select(Tenant).order_by(Tenant.slug)):
            state = f"shredded {t.shredded_at:%Y-%m-%d}" if t.shredded_at else "active"
            click.echo(f"{t.slug}\t{t.name}\t{state}")
