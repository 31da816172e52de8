"""Erasure on the command line: ``flask vault purge | backup | restore | epoch | retention-policy``.

Retention erases label data when it is due (vault/retention.py); backups are bounded by key lifetime
(vault/backup.py, vault/epochs.py). These commands only parse, call and print counts, never PII. They are
subcommands of ``flask vault`` (see app/cli/vault.py).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from vault import retention
from vault.backup import BackupError, read_info, restore_backup, write_backup
from vault.epochs import erasure_bound, grace_period, run_key_epoch
from vault.errors import VaultError
from vault.models import Tenant


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only show what is due (per tenant, and how much a legal hold keeps).")
@click.option("--batch-size", default=1000, show_default=True, help="Orders erased per transaction.")
@click.option("--tenant", "tenant_slug", help="Purge only this tenant (default: every tenant).")
@with_appcontext
def vault_purge(dry_run: bool, batch_size: int, tenant_slug: str | None) -> None:
    """Erase (crypto-shred) the label data of every order past its retention deadline.

    \b
    Keeps each order's non-PII stub with its erase time and writes one audit event per tenant and batch
    with the count and a digest of the order references (the shred receipt). Safe to run again, from a
    timer and from several workers at once; an interrupted run is finished by the next one. Orders under
    a legal hold are kept until the hold ends. See docs/privacy-controls.md.
    """
    svc = services()
    with svc.sessions() as session:
        tenant_id = tenant_by_slug(session, tenant_slug).id if tenant_slug else None
        slugs: dict[int, str] = dict(session.execute(select(Tenant.id, Tenant.slug)).all())
        if dry_run:
            summary = retention.due_summary(session, tenant_id=tenant_id)
            for row in summary:
                click.echo(f"tenant {slugs.get(row.tenant_id, row.tenant_id)}: {row.due} due, {row.held} held")
            total = sum(r.due for r in summary)
            click.echo(f"{total} orders due for erasure, {sum(r.held for r in summary)} kept by legal holds")
            return
        total = sum(r.due for r in retention.due_summary(session, tenant_id=tenant_id))
        try:
            with click.progressbar(length=total, label="erasing", file=sys.stderr) as bar:
                result = retention.purge_due(session, batch_size=batch_size, tenant_id=tenant_id, progress=bar.update)
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
    for receipt in result.receipts:
        click.echo(
            f"tenant {slugs.get(receipt.tenant_id, receipt.tenant_id)}: {receipt.count} erased at "
            f"{receipt.erased_at.isoformat()} receipt {receipt.digest}"
        )
    click.echo(f"{result.erased} orders erased in {result.batches} batches")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def vault_backup(path: Path) -> None:
    """Write an encrypted backup of the whole database to PATH (mode 0600).

    \b
    The backup is read in one consistent snapshot while the service runs. Its key is wrapped by the
    current root key, which is not in the backup: keep the keyring (or KMS access) to restore. Once the
    key-epoch job destroys that root key (LABELVAULT_BACKUP_RETENTION_DAYS after it was retired), the
    backup can no longer be read: delete backups older than the backup retention.
    """
    svc = services()
    try:
        info = write_backup(svc.engine, path, keys=svc.keys)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    rows = sum(info.rows.values())
    click.echo(f"backup {info.backup_id} written to {path}: {rows} rows, schema {', '.join(info.revisions)}")
    click.echo(f"root key {info.root_key_id}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
@with_appcontext
def vault_restore(path: Path, yes: bool) -> None:
    """Replace the database's contents with the backup at PATH (all or nothing).

    \b
    Stop the app and workers first. The database must be migrated to the backup's schema (`flask vault
    init`). Everything written after the backup is lost; orders erased before the backup stay erased,
    and orders erased after it come back only as long as their keys live (see the stated bound in
    docs/privacy-controls.md): run `flask vault purge` right after a restore.
    """
    try:
        info = read_info(path)
    except (BackupError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup {info['backup_id']} of {info['created_at']}, schema {', '.join(info['revisions'])}")
    if not yes:
        click.confirm("Replace every row of the database with this backup?", abort=True)
    svc = services()
    try:
        restored = restore_backup(svc.engine, path, keys=svc.keys)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {sum(restored.rows.values())} rows; now run `flask vault purge`")


@click.command("epoch")
@with_appcontext
def vault_epoch() -> None:
    """Run the key-epoch schedule: rotate and destroy keys so erased data leaves every backup in time.

    \b
    Run it from a timer (hourly). Each run does only what is due: every LABELVAULT_KEY_EPOCH_DAYS it
    gives every tenant a new key version and rewraps the data keys; after a short grace period it
    destroys the old versions and rotates the root key; root keys retired more than
    LABELVAULT_BACKUP_RETENTION_DAYS ago are destroyed (with AWS KMS: it names the KMS keys to schedule
    for deletion). Prints the erasure bound this configuration gives.
    """
    svc = services()
    s = svc.settings
    epoch, kept = timedelta(days=s.key_epoch_days), timedelta(days=s.backup_retention_days)
    with svc.sessions() as session:
        try:
            report = run_key_epoch(session, keys=svc.keys, epoch_length=epoch, backup_retention=kept)
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
    if report.started_epoch:
        click.echo(f"new epoch: {report.tenants_rotated} tenant keys rotated, {report.data_keys_rewrapped} rewrapped")
    if report.tenant_versions_destroyed:
        click.echo(f"{report.tenant_versions_destroyed} retired tenant key versions destroyed")
    if report.root_rotated_to:
        click.echo(f"root key rotated to {report.root_rotated_to} ({report.tenant_keys_rewrapped} tenant keys)")
    for root in report.roots_destroyed:
        click.echo(f"root key {root} destroyed")
    for root in report.roots_to_delete_in_kms:
        click.echo(f"schedule deletion of KMS key {root}: no backup inside its retention needs it")
    for note in report.notes:
        click.echo(f"note: {note}")
    bound = erasure_bound(
        epoch_length=epoch,
        backup_retention=kept,
        timer_interval=timedelta(seconds=s.key_epoch_interval_seconds),
        grace=grace_period(svc.keys),
    )
    click.echo(f"erased data leaves every backup within {bound.days} days {bound.seconds // 3600} h of erasure")


@click.command("retention-policy")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller).")
@click.option("--marketplace", default="amazon", show_default=True)
@click.option("--days", type=int, help="Days after delivery to keep label data (at most the platform rule).")
@click.option("--reset", is_flag=True, help="Back to the platform rule.")
@with_appcontext
def vault_retention_policy(tenant_slug: str, marketplace: str, days: int | None, reset: bool) -> None:
    """Shorten a tenant's retention for one marketplace (never lengthen it: that takes a legal hold)."""
    if (days is None) == (not reset):
        raise click.UsageError("give --days N or --reset")
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            n = retention.set_tenant_policy(
                session, tenant_id=tenant.id, marketplace=marketplace, days_after_delivery=days, actor=cli_actor()
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    rule = "the platform rule" if reset else f"{days} days after delivery"
    click.echo(f"tenant {tenant_slug}: {marketplace} label data kept {rule}; {n} orders re-dated")


#: The commands this module adds to ``flask vault``.
VAULT_COMMANDS = (vault_purge, vault_backup, vault_restore, vault_epoch, vault_retention_policy)
