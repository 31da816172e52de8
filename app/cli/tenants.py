"""``flask tenants ...``: seller organisations, each with its own keys, accounts, clients and audit chain."""

from __future__ import annotations

import sys

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


def _ask_return_address() -> tuple[str, list[str], str] | None:
    """The return address typed in at a terminal (an empty name skips it)."""
    name = click.prompt("Return address: sender name (empty to skip)", default="", show_default=False)
    if not name.strip():
        return None
    lines: list[str] = []
    while len(lines) < 4:
        line = click.prompt(f"  address line {len(lines) + 1} (empty to end)", default="", show_default=False)
        if not line.strip():
            break
        lines.append(line)
    return name, lines, click.prompt("  country code (two letters)")


@tenants_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The seller's display name.")
@click.option("--return-name", help="Return address: the sender name printed on labels.")
@click.option("--return-line", "return_lines", multiple=True, help="Return address: a line (repeat, up to 4).")
@click.option("--return-country", help="Return address: two-letter country code, e.g. CN.")
def tenants_create(
    slug: str, name: str, return_name: str | None, return_lines: tuple[str, ...], return_country: str | None
) -> None:
    """Create a tenant and its first key, with the return address printed on its labels.

    Without the --return-* options, a terminal is asked for it; anywhere else the tenant is created without
    one (labels then print an empty FROM block until `tenants return-address` or the dashboard sets it).
    """
    address: tuple[str, list[str], str] | None = None
    if return_name or return_lines or return_country:
        address = (return_name or "", list(return_lines), return_country or "")
    elif sys.stdin.isatty():
        address = _ask_return_address()
    svc = services()
    actor = cli_actor()
    with svc.sessions() as session:
        if session.scalar(select(Tenant).where(Tenant.slug == slug)) is not None:
            raise click.ClickException(f"tenant {slug!r} exists already")
        tenant = create_tenant(session, keys=svc.keys, slug=slug, name=name, actor=actor)
        if address is not None:
            sender, lines, country = address
            try:
                set_return_address(session, tenant=tenant, name=sender, lines=lines, country_code=country, actor=actor)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"tenant {slug} created")
    if address is None:
        click.echo(
            "no return address: labels print with an empty FROM block until one is set "
            f"(labelvault tenants return-address {slug} ..., or the dashboard's settings)",
            err=True,
        )


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
