"""``flask audit ...``: verify the hash-chained audit log and export its heads for outside anchoring."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from app.cli.errors import CommandGroup
from app.services import services
from vault.anchoring import (
    AnchorError,
    ExportedHeads,
    bucket_exports,
    export_heads,
    heads_document,
    read_heads_document,
)
from vault.audit import chain_for, verify_chain
from vault.models import AuditEvent, AuditHead, Tenant


@click.group("audit", cls=CommandGroup)
def audit_cli() -> None:
    """The audit chain: who got which label, and every refusal and admin change (no PII)."""


@audit_cli.command("verify")
@click.option("--tenant", "tenant_slug", help="Verify only this tenant's chain (default: every chain).")
@click.option("--batch-size", default=5000, show_default=True, help="Events read per query.")
@click.option(
    "--heads",
    "heads_file",
    type=click.File("rb"),
    help="Check against this export of the heads (`flask audit export --file`) instead of the bucket's.",
)
@click.option("--heads-bucket", help="Check against every export in this bucket (default: the export bucket).")
def audit_verify(tenant_slug: str | None, batch_size: int, heads_file: Any, heads_bucket: str | None) -> None:
    """Recompute every chain from its first event, check it against the exported heads, report what broke.

    \b
    Finds an edited event, a deleted one, a reordered pair and an inserted one. Against the heads exported
    earlier (every export in LABELVAULT_AUDIT_EXPORT_BUCKET, or --heads-bucket, or --heads FILE), also a
    chain whose newest events were deleted and its head row set back, a chain deleted with its head, and
    one rewritten as a whole. Exits with status 1 if any chain is broken.
    """
    export = _exported_heads(heads_file, heads_bucket)
    anchors = export.heads if export is not None else {}
    broken = 0
    with services().sessions() as session:
        if tenant_slug:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
            if tenant is None:
                raise click.ClickException(f"no tenant with slug {tenant_slug!r} (see `flask tenants list`)")
            chains = [chain_for(tenant.id)]
        else:
            chains = sorted(
                set(session.scalars(select(AuditHead.chain)))
                | set(session.scalars(select(AuditEvent.chain).distinct()))
                | set(anchors)  # a chain deleted with its head row is still named by its export
            )
        for chain in chains:
            chain_anchors = anchors.get(chain, ())
            report = verify_chain(session, chain=chain, batch_size=batch_size, anchors=chain_anchors)
            if report.ok:
                latest = max((a.seq for a in chain_anchors), default=None)
                anchored = "" if latest is None else f", passes through its exported heads (up to {latest})"
                click.echo(f"{chain}: ok, {report.checked} events, head {report.head_seq}{anchored}")
            else:
                broken += 1
                click.echo(
                    f"{chain}: BROKEN at event {report.first_bad_seq}: {report.reason} "
                    f"({report.checked} events verified before it)"
                )
    if not chains:
        click.echo("no audit chains yet")
    if export is None:
        click.echo(
            "no exported heads to check against: a chain cut short with its head row, deleted whole or rewritten "
            "whole is not found (set LABELVAULT_AUDIT_EXPORT_BUCKET, or --heads-bucket / --heads)",
            err=True,
        )
    else:
        click.echo(f"checked against {export.exports} export(s) of the heads, the newest of {export.newest_at}")
    if broken:
        click.echo(f"{broken} of {len(chains)} chains broken", err=True)
        sys.exit(1)


def _exported_heads(heads_file: Any, heads_bucket: str | None) -> ExportedHeads | None:
    """The heads to check against: the file named, else every export in the bucket named or configured."""
    try:
        if heads_file is not None:
            return read_heads_document(heads_file.read())
        s = services().settings
        bucket = heads_bucket or s.audit_export_bucket
        if not bucket:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return bucket_exports(_s3(), bucket=bucket, prefix=s.audit_export_prefix)
        except (BotoCoreError, ClientError) as exc:
            failed = f"reading the exported heads from s3://{bucket} failed: {type(exc).__name__}"
            raise click.ClickException(failed) from None
    except AnchorError as exc:
        raise click.ClickException(str(exc)) from None


def _s3() -> Any:
    import boto3

    s = services().settings
    return boto3.client("s3", region_name=s.s3_region, endpoint_url=s.s3_endpoint_url)


@audit_cli.command("export")
@click.option("--bucket", help="S3 bucket (default: LABELVAULT_AUDIT_EXPORT_BUCKET).")
@click.option("--prefix", help="Object key prefix (default: LABELVAULT_AUDIT_EXPORT_PREFIX).")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    help="Object Lock retention, compliance mode (default: LABELVAULT_AUDIT_EXPORT_RETENTION_DAYS; 0: bucket's).",
)
@click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file instead ('-': stdout)."
)
def audit_export(bucket: str | None, prefix: str | None, retention_days: int | None, path: Path | None) -> None:
    """Export every chain's head (seq and hash) to storage outside the database.

    \b
    Run it periodically (e.g. hourly from cron). In production the bucket has Object Lock enabled, so an
    insider who rewrites the database can't rewrite the exported heads too.
    """
    svc = services()
    s = svc.settings
    with svc.sessions() as session:
        if path is not None:
            doc = heads_document(session)
            if str(path) == "-":
                click.echo(doc.decode())
            else:
                path.write_bytes(doc)
                click.echo(f"chain heads written to {path}")
            return
        bucket = bucket or s.audit_export_bucket
        if not bucket:
            raise click.UsageError("say where to: --bucket (or LABELVAULT_AUDIT_EXPORT_BUCKET), or --file")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result = export_heads(
                session,
                s3=_s3(),
                bucket=bucket,
                prefix=s.audit_export_prefix if prefix is None else prefix,
                retention_days=s.audit_export_retention_days if retention_days is None else retention_days,
            )
        except (BotoCoreError, ClientError) as exc:
            raise click.ClickException(f"export to s3://{bucket} failed: {type(exc).__name__}: {exc}") from None
    lock = f", locked until {result.retain_until:%Y-%m-%d}" if result.retain_until else ""
    click.echo(f"chain heads exported to s3://{result.bucket}/{result.key}{lock}")
