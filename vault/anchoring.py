"""Anchoring the audit chains outside the database: the chain heads, exported to S3 (Object Lock).

An insider with write access to the database could rewrite a whole chain consistently, recomputing every
hash. A head exported earlier to write-once storage stops that: the rewritten chain no longer passes
through the exported (seq, hash). The export is a small JSON document, one object per export, never
overwritten; with Object Lock in compliance mode not even the bucket owner can delete it before the
retention date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from vault.audit import chain_heads
from vault.models import utcnow

EXPORT_FORMAT = "labelvault-audit-heads-v1"


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
