"""Retention, erasure and people's rights on the command line (no PII is printed, except an access export).

``flask vault purge | backup | restore | epoch | retention-policy``, ``flask holds add | list | release`` and
``flask rights access | correct | erase``. The domain is in vault/retention.py, vault/epochs.py,
vault/backup.py and vault/rights.py; these commands only parse, call and print.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from app.cli_support import tenant_by_slug
from app.services import services
from vault import retention, rights
from vault.backup import BackupError, read_info, restore_backup, write_backup
from vault.epochs import erasure_bound, grace_period, run_key_epoch
from vault.errors import VaultError
from vault.models import LegalHold, Tenant, utcnow
from vault.orders import find_order
from vault.records import LabelRecord


def _actor() -> str:
    return f"cli:{getpass.getuser()}"[:100]


def _order_ref(value: str) -> tuple[str, str]:
    marketplace, sep, order_id = value.partition(":")
    if not sep or not marketplace or not order_id:
        raise click.BadParameter("give the order as MARKETPLACE:ORDER_ID, e.g. amazon:503-1234567-1234567")
    return marketplace, order_id


def _end_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("give a date (2027-06-30) or a time with offset (2027-06-30T17:00+08:00)") from None
    if parsed.tzinfo is None:  # a bare date ends at the end of that day, UTC
        parsed = datetime.combine(parsed.date(), time(23, 59, 59), tzinfo=UTC)
    return parsed


# -- flask vault ... --------------------------------------------------------------------------------------


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
                session, tenant_id=tenant.id, marketplace=marketplace, days_after_delivery=days, actor=_actor()
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    rule = "the platform rule" if reset else f"{days} days after delivery"
    click.echo(f"tenant {tenant_slug}: {marketplace} label data kept {rule}; {n} orders re-dated")


# -- flask holds ... ------------------------------------------------------------------------------------


@click.group("holds", cls=AppGroup)
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
            marketplace, order_id = _order_ref(order_spec)
            try:
                order = find_order(session, tenant_id=tenant.id, marketplace=marketplace, external_order_id=order_id)
            except VaultError as exc:
                raise click.ClickException(str(exc)) from None
        try:
            hold = retention.place_hold(
                session, tenant_id=tenant.id, order=order, reason=reason, owner=owner, ends_at=ends_at, actor=_actor()
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
            retention.release_hold(session, tenant_id=tenant.id, hold_id=hold_id, actor=_actor())
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"hold {hold_id} released")


# -- flask rights ... ------------------------------------------------------------------------------------


def _request_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--tenant", "tenant_slug", required=True, help="The seller the buyer ordered from."),
            click.option("--order", "order_spec", required=True, help="MARKETPLACE:ORDER_ID, e.g. amazon:503-…"),
            click.option("--request-id", required=True, help="The seller's reference for the buyer's request."),
            click.option(
                "--verified-by", required=True, help="Who at the seller checked the buyer's identity (name or role)."
            ),
        ]
    ):
        f = option(f)
    return f


def _request(request_id: str, verified_by: str) -> rights.RightsRequest:
    try:
        return rights.RightsRequest(actor=_actor(), request_id=request_id, verified_by=verified_by)
    except VaultError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group("rights", cls=AppGroup)
def rights_cli() -> None:
    """Buyers' requests the seller handles: access, correction, erasure. Each is audited with its purpose.

    \b
    The seller checks the buyer's identity first (the seller's owner, with a second factor once the
    dashboard offers it) and names who did with --verified-by.
    """


@rights_cli.command("access")
@_request_options
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True), help="File for the JSON export, or -."
)
def rights_access(tenant_slug: str, order_spec: str, request_id: str, verified_by: str, output: str) -> None:
    """Export everything held about one order's buyer, as JSON for the buyer (the file is mode 0600)."""
    marketplace, order_id = _order_ref(order_spec)
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            export = rights.export_order_data(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                marketplace=marketplace,
                external_order_id=order_id,
                request=_request(request_id, verified_by),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        text = json.dumps(export, ensure_ascii=False, indent=2) + "\n"
        if output == "-":
            click.echo(text, nl=False)
        else:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        session.commit()  # the access is audited once the export exists
    if output != "-":
        click.echo(f"access export for {order_spec} written to {output}")


@rights_cli.command("correct")
@_request_options
@click.option(
    "--address",
    "address_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="JSON file with the corrected address (- for stdin); never on the command line.",
)
def rights_correct(tenant_slug: str, order_spec: str, request_id: str, verified_by: str, address_file: Any) -> None:
    """Replace an order's address with a corrected one: a new sealed version; the old one is shredded.

    \b
    The JSON object has the label record's fields: name, address_line1, city, country_code (required),
    and postal_code, state_or_region, address_line2, address_line3, district_or_county, municipality,
    company, phone, address_type.
    """
    marketplace, order_id = _order_ref(order_spec)
    try:
        data = json.load(address_file)
        if not isinstance(data, dict):
            raise TypeError
        label = LabelRecord(**data)
    except (ValueError, TypeError):
        fields = ", ".join(LabelRecord.field_names())
        raise click.ClickException(f"the corrected address must be a JSON object with the fields {fields}") from None
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            version = rights.correct_address(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                marketplace=marketplace,
                external_order_id=order_id,
                label=label,
                request=_request(request_id, verified_by),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"{order_spec}: address corrected (record version {version}; the previous version is shredded)")


@rights_cli.command("erase")
@_request_options
def rights_erase(tenant_slug: str, order_spec: str, request_id: str, verified_by: str) -> None:
    """Erase one order's label data now, whatever its retention deadline, unless a legal hold applies."""
    marketplace, order_id = _order_ref(order_spec)
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            outcome = rights.erase_order(
                session,
                tenant_id=tenant.id,
                marketplace=marketplace,
                external_order_id=order_id,
                request=_request(request_id, verified_by),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()  # a refusal is audited too
    if outcome.hold_ids:
        raise click.ClickException(f"{order_spec} is under a legal hold and was not erased: {outcome.hold_summary}")
    if outcome.already_erased:
        click.echo(f"{order_spec}: already erased")
    else:
        click.echo(f"{order_spec}: label data erased")


def init_app(app: Flask) -> None:
    """Add the commands to ``flask vault``, ``flask holds`` and ``flask rights``; apply the retention settings."""
    from app.cli import vault_cli  # app.cli imports this module: attach at app set-up, not at import

    for command in (vault_purge, vault_backup, vault_restore, vault_epoch, vault_retention_policy):
        vault_cli.add_command(command)
    app.cli.add_command(holds_cli)
    app.cli.add_command(rights_cli)
    retention.configure(delivery_allowance_days=services(app).settings.retention_delivery_allowance_days)
