"""``flask clients ...``: API clients of the label API (warehouse stations, printing services).

Every change is recorded in the tenant's audit chain. Keys are shown once, at creation, and never again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from vault.clients import (
    ALL_FIELDS,
    LABELS_ISSUE,
    SCOPES,
    LabelProfile,
    allow_cidrs,
    create_client,
    find_client,
    revoke_client,
)
from vault.errors import ClientSetupError, NotFound
from vault.models import ApiClient, Tenant, utcnow


def _client(session: Session, tenant: Tenant, ref: str) -> ApiClient:
    try:
        return find_client(session, tenant_id=tenant.id, ref=ref)
    except NotFound:
        raise click.ClickException(f"tenant {tenant.slug} has no client {ref!r} (see `flask clients list`)") from None


def _csv(value: str | None) -> list[str]:
    return [] if not value else [v.strip() for v in value.split(",") if v.strip()]


@click.group("clients", cls=CommandGroup)
def clients_cli() -> None:
    """API clients of the label API: keys, scopes, allowed networks, label profiles."""


@clients_cli.command("create")
@click.argument("tenant_slug")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(sorted(SCOPES)),
    default=[LABELS_ISSUE],
    show_default=True,
    help="Repeat for several.",
)
@click.option("--cidr", "cidrs", multiple=True, help="A network the client calls from, e.g. 203.0.113.0/28. Repeat.")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), help="Expiry date (UTC midnight).")
@click.option("--expires-in-days", type=click.IntRange(min=1), help="Expiry, in days from now.")
@click.option(
    "--fields",
    help="Label fields the client receives, comma-separated (default: all but phone). "
    f"Known: {', '.join(sorted(ALL_FIELDS))}.",
)
@click.option("--with-phone", is_flag=True, help="Also release the buyer's phone (default profile plus phone).")
@click.option("--phone-countries", help="Release the phone only for these destination countries, e.g. JP,CN.")
@click.option(
    "--printer-font",
    help="ZPL: a font stored on the client's printers (E:ANMDJ.TTF, or a ^CW alias like J), used for all "
    "text; default: the resident font, with scripts it lacks sent as graphics.",
)
@click.option("--accept-broad-cidr", is_flag=True, help="Allow ranges broader than /16 (IPv4) or /48 (IPv6).")
def clients_create(
    tenant_slug: str,
    name: str,
    scopes: tuple[str, ...],
    cidrs: tuple[str, ...],
    expires: datetime | None,
    expires_in_days: int | None,
    fields: str | None,
    with_phone: bool,
    phone_countries: str | None,
    printer_font: str | None,
    accept_broad_cidr: bool,
) -> None:
    """Create an API client of TENANT_SLUG called NAME and print its key (shown this once only).

    \b
    Example: a printing service that needs the phone for Japanese destinations only:
      flask clients create acme "Osaka printer" --cidr 203.0.113.0/28 --with-phone --phone-countries JP
    A client without --cidr is refused everywhere until `flask clients allow` gives it a network.
    """
    if expires and expires_in_days:
        raise click.UsageError("give --expires or --expires-in-days, not both")
    now = utcnow()
    expires_at = (
        expires.replace(tzinfo=UTC) if expires else now + timedelta(days=expires_in_days) if expires_in_days else None
    )
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            profile = None
            if fields or with_phone or phone_countries or printer_font:
                chosen = set(_csv(fields)) if fields else set(ALL_FIELDS - {"phone"})
                if with_phone or phone_countries:
                    chosen.add("phone")
                countries = frozenset(c.upper() for c in _csv(phone_countries)) if phone_countries else None
                profile = LabelProfile(frozenset(chosen), countries, printer_font or None)
            issued = create_client(
                session,
                tenant=tenant,
                name=name,
                scopes=scopes,
                cidrs=cidrs,
                profile=profile,
                expires_at=expires_at,
                allow_broad=accept_broad_cidr or svc.settings.accept_broad_cidr_risk,
                actor=cli_actor(),
                now=now,
            )
        except ClientSetupError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        client = issued.client
    click.echo(f"client {client.key_id} ({client.name}) created for tenant {tenant_slug}")
    if not client.cidrs:
        click.echo("warning: no --cidr given; the client is refused until `flask clients allow` adds one", err=True)
    click.echo("API key (shown once; store it in the client's secret store now):")
    click.echo(issued.key)


@clients_cli.command("list")
@click.option("--tenant", "tenant_slug", help="Only this tenant's clients.")
def clients_list(tenant_slug: str | None) -> None:
    """List API clients: key id, name, state, scopes, networks, expiry, last use (never keys)."""
    now = utcnow()
    with services().sessions() as session:
        query = select(ApiClient, Tenant.slug).join(Tenant, Tenant.id == ApiClient.tenant_id)
        if tenant_slug:
            query = query.where(ApiClient.tenant_id == tenant_by_slug(session, tenant_slug).id)
        rows = session.execute(query.order_by(Tenant.slug, ApiClient.name)).all()
        for client, slug in rows:
            if client.revoked_at:
                state = f"revoked {client.revoked_at:%Y-%m-%d}"
            elif client.expires_at and client.expires_at <= now:
                state = f"expired {client.expires_at:%Y-%m-%d}"
            else:
                state = "active" + (f" until {client.expires_at:%Y-%m-%d}" if client.expires_at else "")
            used = (
                f"{client.last_used_at:%Y-%m-%d %H:%M} from {client.last_used_ip}" if client.last_used_at else "never"
            )
            fields = "default" if client.profile is None else ",".join(client.profile["fields"])
            click.echo(
                f"{client.key_id}\t{slug}\t{client.name}\t{state}\tscopes={','.join(client.scopes)}\t"
                f"cidrs={','.join(client.cidrs) or '-'}\tprofile={fields}\tlast used {used}"
            )
        if not rows:
            click.echo("no API clients")


@clients_cli.command("revoke")
@click.argument("tenant_slug")
@click.argument("client_ref")
def clients_revoke(tenant_slug: str, client_ref: str) -> None:
    """Revoke a client's key now and for good (CLIENT_REF: its key id or name). Its next request gets 401."""
    with services().sessions() as session:
        client = _client(session, tenant_by_slug(session, tenant_slug), client_ref)
        changed = revoke_client(session, client=client, actor=cli_actor())
        session.commit()
    click.echo(f"client {client.key_id} {'revoked' if changed else 'was revoked already'}")


@clients_cli.command("allow")
@click.argument("tenant_slug")
@click.argument("client_ref")
@click.argument("cidrs", nargs=-1)
@click.option("--remove", "removed", multiple=True, help="A network to take away. Repeat.")
@click.option("--accept-broad-cidr", is_flag=True, help="Allow ranges broader than /16 (IPv4) or /48 (IPv6).")
def clients_allow(
    tenant_slug: str, client_ref: str, cidrs: tuple[str, ...], removed: tuple[str, ...], accept_broad_cidr: bool
) -> None:
    """Add networks (CIDRS) to a client's own allowlist, or take them away with --remove.

    \b
    The client's address must be in both the global allowlist (LABELVAULT_GLOBAL_ALLOWLIST) and its own.
    Example: flask clients allow acme "Osaka printer" 198.51.100.16/29 --remove 203.0.113.0/28
    """
    if not cidrs and not removed:
        raise click.UsageError("give networks to add, or --remove NETWORK")
    svc = services()
    with svc.sessions() as session:
        client = _client(session, tenant_by_slug(session, tenant_slug), client_ref)
        try:
            now_allowed = allow_cidrs(
                session,
                client=client,
                add=cidrs,
                remove=removed,
                allow_broad=accept_broad_cidr or svc.settings.accept_broad_cidr_risk,
                actor=cli_actor(),
            )
        except ClientSetupError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"client {client.key_id} allowed from: {', '.join(now_allowed) or 'nowhere'}")
