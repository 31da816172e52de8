"""Anchoring the audit chains outside the database: the chain heads, exported to S3 (Object Lock).

An insider with write access to the database could rewrite a whole chain consistently, recomputing every
hash, delete its newest events and set its head row back, or delete a chain with its head. A head exported
earlier to write-once storage stops that: :func:`vault.audit.verify_chain` with the exported (seq, hash)
as its anchor finds a chain that no longer passes through it, is shorter, or is gone. The export is a small
JSON document, one object per export, never overwritten; with Object Lock in compliance mode not even the
bucket owner can delete it before the retention date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from vault.audit import AnchoredHead, chain_heads
from vault.errors import VaultError
from vault.models import utcnow

EXPORT_FORMAT = "labelvault-audit-heads-v1"


class AnchorError(VaultError):
    """Exported heads can't be read: not an export of this format, or none found where named (no PII)."""


@dataclass(frozen=True, slots=True)
class ExportedHeads:
    """Exports read back: how many, the newest's time, and every head each chain had in any of them."""

    exports: int
    newest_at: str
    heads: dict[str, tuple[AnchoredHead, ...]]


def read_heads_document(body: bytes) -> ExportedHeads:
    """Parse a document :func:`heads_document` wrote; :class:`AnchorError` if it is anything else."""
    try:
        doc = json.loads(body)
        if doc["format"] != EXPORT_FORMAT:
            raise AnchorError(f"not an audit heads export ({EXPORT_FORMAT} expected)")
        heads: dict[str, tuple[AnchoredHead, ...]] = {
            str(h["chain"]): (AnchoredHead(int(h["seq"]), str(h["hash"])),) for h in doc["heads"]
        }
        return ExportedHeads(1, str(doc["exported_at"]), heads)
    except (ValueError, TypeError, KeyError) as exc:
        raise AnchorError(f"not an audit heads export ({type(exc).__name__})") from None


def bucket_exports(s3: Any, *, bucket: str, prefix: str = "audit-heads/") -> ExportedHeads:
    """Every export under ``s3://bucket/prefix``, merged: a chain must pass through each head it ever had.

    All of them, not only the newest: whoever can add an object to the bucket (the app's own role can) could
    add a newer export that matches a cut-short or rewritten chain, but not remove the older ones (Object Lock).
    """
    keys = sorted(
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".json")
    )
    if not keys:
        raise AnchorError(f"no audit heads export under s3://{bucket}/{prefix}")
    merged: dict[str, set[AnchoredHead]] = {}
    newest_at = ""
    for key in keys:
        export = read_heads_document(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        newest_at = max(newest_at, export.newest_at)
        for chain, heads in export.heads.items():
            merged.setdefault(chain, set()).update(heads)
    return ExportedHeads(len(keys), newest_at, {c: tuple(sorted(h, key=lambda a: a.seq)) for c, h in merged.items()})


def heads_document(session: Session, *, now: datetime | None = None) -> bytes:
    """Every chain's head as a canonical JSON document (no PII: chain names, sequence numbers, hashes)."""
    now = now or utcnow()
    doc = {"format": EXPORT_FORMAT, "exported_at": now.isoformat(), "heads": chain_heads(session)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Where the heads went: bucket, object key, version id (if versioned) and the retention applied."""

    bucket: str
    key: str
    version_id: str | None
    retain_until: datetime | None


def export_heads(
    session: Session,
    *,
    s3: Any,
    bucket: str,
    prefix: str = "audit-heads/",
    retention_days: int = 0,
    now: datetime | None = None,
) -> ExportResult:
    """Write the chain heads to ``s3://bucket/prefix<timestamp>.json`` with boto3's S3 client ``s3``.

    ``retention_days > 0`` puts a compliance-mode Object Lock retention on the object (the bucket must have
    Object Lock enabled); ``0`` leaves it to the bucket's default retention, if any.
    """
    now = now or utcnow()
    body = heads_document(session, now=now)
    key = f"{prefix}{now:%Y%m%dT%H%M%S.%fZ}.json"
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "Body": body,
        "ContentType": "application/json",
        "ChecksumAlgorithm": "SHA256",
    }
    retain_until = None
    if retention_days > 0:
        retain_until = now + timedelta(days=retention_days)
        params.update(ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=retain_until)
    response = s3.put_object(**params)
    return ExportResult(bucket, key, response.get("VersionId"), retain_until)
