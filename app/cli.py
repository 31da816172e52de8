"""Operator CLI: ``flask vault ...`` and ``flask tenants ...``. Commands print counts and ids, never PII."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup
from sqlalchemy import func, select

from app import cli_audit, cli_clients, cli_retention, cli_sync, cli_users, cli_worker, create_app
from app.cli_support import tenant_by_slug
from app.services import services
from vault import rotation
from vault.db import migrate
from vault.errors import VaultError
from vault.keyproviders import LocalKeyProvider
from vault.labels import create_tenant, set_return_address
from vault.models import LabelRecordRow, Order, Tenant, TenantKey


@click.group("vault", cls=AppGroup)
def vault_cli() -> None:
    """Keys, status and rotation of the encrypted vault."""


@vault_cli.command("init")
def vault_init() -> None:
    """Create or upgrade the database schema and make sure the root key is reachable.

    Safe to run again: it only applies missing migrations. With the local key provider it creates the
    keyring file (mode 0600) on first run.
    """
    svc = services()
    migrate(svc.engine)
    keys = svc.keys
    click.echo(f"database ready ({svc.engine.url.get_backend_name()})")
    click.echo(f"root key: {keys.provider.name} {keys.provider.current_key_id()}")


@vault_cli.command("status")
def vault_status() -> None:
    """Show key versions, record counts per key version and cache settings (no PII)."""
    svc = services()
    keys = svc.keys
    stats = keys.stats()
    click.echo(f"root key provider: {keys.provider.name}, current root key: {keys.provider.current_key_id()}")
    click.echo(f"key cache: max age {stats.max_age_seconds:g} s, max uses {stats.max_uses}")
    with svc.sessions() as session:
        for tenant in session.scalars(select(Tenant).order_by(Tenant.slug)):
            orders = session.scalar(select(func.count()).where(Order.tenant_id == tenant.id)) or 0
            erased = session.scalar(
                select(func.count()).where(Order.tenant_id == tenant.id, Order.erased_at.is_not(None))
            )
            click.echo(f"tenant {tenant.slug}: {orders} orders, {erased} erased")
            per_version: dict[int, int] = dict(
                session.execute(
                    select(LabelRecordRow.tenant_key_version, func.count())
                    .where(LabelRecordRow.tenant_id == tenant.id)
                    .group_by(LabelRecordRow.tenant_key_version)
                ).all()
            )
            for key in session.scalars(
                select(TenantKey).where(TenantKey.tenant_id == tenant.id).order_by(TenantKey.version)
            ):
                click.echo(
                    f"  key v{key.version} {key.state:9} root {key.root_key_id}  "
                    f"{per_version.get(key.version, 0)} label records"
                )


@vault_cli.command("rotate")
@click.option("--tenant", "tenant_slug", help="Rotate this tenant's key: new version, then rewrap its data keys.")
@click.option("--all-tenants", is_flag=True, help="Rotate every tenant's key.")
@click.option(
    "--root",
    is_flag=True,
    help="Rewrap every tenant key under the current root key (local keyring: a new root key is made first).",
)
@click.option("--batch-size", default=500, show_default=True, help="Rows per transaction.")
@click.option("--resume", is_flag=True, help="Don't make a new key version; finish an interrupted rewrap.")
def vault_rotate(tenant_slug: str | None, all_tenants: bool, root: bool, batch_size: int, resume: bool) -> None:
    """Rotate keys online, in batches, while labels keep being issued.

    \b
    Tenant rotation makes a new tenant key version and rewraps every data key under it; no record is
    re-encrypted. Root rotation rewraps tenant keys under the current root key. Interrupted? Run the same
    command with --resume. Old versions stay until destroyed (see `flask vault destroy-key`).
    """
    if not (tenant_slug or all_tenants or root):
        raise click.UsageError("say what to rotate: --tenant SLUG, --all-tenants or --root")
    svc = services()
    keys = svc.keys
    with svc.sessions() as session:
        try:
            if root:
                if isinstance(keys.provider, LocalKeyProvider) and not resume:
                    click.echo(f"new root key {keys.provider.rotate()}")
                total = session.scalar(select(func.count()).where(TenantKey.wrapped_key.is_not(None))) or 0
                with click.progressbar(length=total, label="rewrapping tenant keys") as bar:
                    n = rotation.rewrap_root(session, keys=keys, batch_size=batch_size, progress=bar.update)
                click.echo(f"{n} tenant key versions now wrapped by {keys.provider.current_key_id()}")
            tenants = (
                list(session.scalars(select(Tenant).where(Tenant.shredded_at.is_(None))))
                if all_tenants
                else [tenant_by_slug(session, tenant_slug)]
                if tenant_slug
                else []
            )
            for tenant in tenants:
                if not resume:
                    row = rotation.rotate_tenant_key(session, keys=keys, tenant_id=tenant.id)
                    click.echo(f"tenant {tenant.slug}: new key version v{row.version}")
                stale = rotation.stale_count(session, keys=keys, tenant_id=tenant.id)
                with click.progressbar(length=stale, label=f"rewrapping {tenant.slug}") as bar:
                    result = rotation.rewrap_tenant(
                        session, keys=keys, tenant_id=tenant.id, batch_size=batch_size, progress=bar.update
                    )
                click.echo(f"tenant {tenant.slug}: {result.rewrapped} data keys rewrapped, {result.skipped} retried")
        except VaultError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


@vault_cli.command("destroy-key")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant whose key version to destroy.")
@click.option("--version", type=int, required=True, help="The retired version to destroy.")
def vault_destroy_key(tenant_slug: str, version: int) -> None:
    """Destroy a retired tenant key version once no live record uses it (after a rotation)."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            rotation.destroy_tenant_key_version(session, keys=svc.keys, tenant_id=tenant.id, version=version)
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"tenant {tenant_slug}: key v{version} destroyed")


@vault_cli.command("destroy-root")
@click.argument("root_key_id")
def vault_destroy_root(root_key_id: str) -> None:
    """Delete an old root key from the local keyring once no tenant key is wrapped under it.

    Every backup's tenant keys wrapped under it become unreadable: this is what bounds how long an
    erased record survives in backups. (With AWS KMS, schedule the old KMS key's deletion instead.)
    """
    svc = services()
    provider = svc.keys.provider
    if not isinstance(provider, LocalKeyProvider):
        raise click.ClickException(
            "only the local keyring's root keys are destroyed here; for KMS use ScheduleKeyDeletion"
        )
    with svc.sessions() as session:
        in_use = rotation.root_key_in_use(session, root_key_id=root_key_id)
    if in_use:
        raise click.ClickException(
            f"{in_use} tenant key versions still use that root key; run `flask vault rotate --root`"
        )
    try:
        provider.destroy(root_key_id)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"root key {root_key_id} destroyed")


@click.group("tenants", cls=AppGroup)
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
        create_tenant(session, keys=svc.keys, slug=slug, name=name)
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
            set_return_address(session, tenant=tenant, name=name, lines=list(lines), country_code=country, actor="cli")
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


def init_app(app: Flask) -> None:
    app.cli.add_command(vault_cli)
    app.cli.add_command(tenants_cli)
    app.cli.add_command(cli_clients.clients_cli)
    app.cli.add_command(cli_audit.audit_cli)
    app.cli.add_command(cli_sync.sync_cli)
    app.cli.add_command(cli_sync.accounts_cli)
    app.cli.add_command(cli_worker.worker_cli)
    cli_retention.init_app(app)
    app.cli.add_command(cli_users.users_cli)


def main() -> None:
    """``labelvault``, the console script: the ``flask`` commands, runnable from any directory.

    The app comes from ``create_app`` and the ``LABELVAULT_*`` settings (instance folder included), never
    from a ``wsgi.py`` in the current directory; for the same reason no ``.env`` file is picked up from it
    (``-e FILE`` loads one on purpose).
    """
    group = FlaskGroup(
        name="labelvault",
        create_app=create_app,
        load_dotenv=False,
        help="labelvault's operator commands, configured by LABELVAULT_* environment variables (README.md).",
    )
    # --app names another application, which makes no sense here: labelvault is the application.
    group.params = [param for param in group.params if param.name != "app"]
    group.main()
