"""``flask vault ...``: the encrypted vault's schema, keys, status and rotation.

The retention and backup commands under ``flask vault`` (purge, backup, restore, epoch, retention-policy)
are in app/cli/retention.py. Commands print counts and ids, never PII.
"""

from __future__ import annotations

import click
from sqlalchemy import func, select

from app.cli.errors import CommandGroup
from app.cli.retention import VAULT_COMMANDS
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from vault import rotation
from vault.db import migrate
from vault.errors import VaultError
from vault.keyproviders import LocalKeyProvider
from vault.models import LabelRecordRow, Order, Tenant, TenantKey


@click.group("vault", cls=CommandGroup, commands=VAULT_COMMANDS)
def vault_cli() -> None:
    """The encrypted vault: schema, keys and their rotation, status, retention purge and backups."""


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
    command with --resume. Old versions stay until destroyed (see `flask vault destroy-key`). A new key
    version (key.rotate) and a root rewrap (key.rotate-root) are audited.
    """
    if not (tenant_slug or all_tenants or root):
        raise click.UsageError("say what to rotate: --tenant SLUG, --all-tenants or --root")
    svc = services()
    keys = svc.keys
    with svc.sessions() as session:
        try:
            if root:
                total = session.scalar(select(func.count()).where(TenantKey.wrapped_key.is_not(None))) or 0
                with click.progressbar(length=total, label="rewrapping tenant keys") as bar:
                    done = rotation.rotate_root(
                        session, keys=keys, actor=cli_actor(), new_key=not resume, batch_size=batch_size,
                        progress=bar.update,
                    )  # fmt: skip
                if done.new_root_key_id:
                    click.echo(f"new root key {done.new_root_key_id}")
                click.echo(f"{done.rewrapped} tenant key versions now wrapped by {keys.provider.current_key_id()}")
            tenants = (
                list(session.scalars(select(Tenant).where(Tenant.shredded_at.is_(None))))
                if all_tenants
                else [tenant_by_slug(session, tenant_slug)]
                if tenant_slug
                else []
            )
            for tenant in tenants:
                if not resume:
                    row = rotation.rotate_tenant_key(session, keys=keys, tenant_id=tenant.id, actor=cli_actor())
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
    """Destroy a retired tenant key version once no live record uses it (after a rotation); audited."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            rotation.destroy_tenant_key_version(
                session, keys=svc.keys, tenant_id=tenant.id, version=version, actor=cli_actor()
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"tenant {tenant_slug}: key v{version} destroyed")


@vault_cli.command("destroy-root")
@click.argument("root_key_id")
def vault_destroy_root(root_key_id: str) -> None:
    """Delete an old root key from the local keyring once no tenant key is wrapped under it.

    Every backup's tenant keys wrapped under it become unreadable: this is what bounds how long an
    erased record survives in backups. (With AWS KMS, schedule the old KMS key's deletion instead.) The
    destruction is audited first; the audit chain itself is sealed under no key and survives it.
    """
    svc = services()
    if not isinstance(svc.keys.provider, LocalKeyProvider):
        raise click.ClickException(
            "only the local keyring's root keys are destroyed here; for KMS use ScheduleKeyDeletion"
        )
    with svc.sessions() as session:
        try:
            rotation.destroy_root_key(session, keys=svc.keys, root_key_id=root_key_id, actor=cli_actor())
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"root key {root_key_id} destroyed")
