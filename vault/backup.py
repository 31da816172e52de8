"""Encrypted logical backups of the whole database (``flask vault backup`` / ``flask vault restore``).

A backup is one file: a header line (JSON: backup id, time, schema revisions, the backup's data key wrapped
by the current root key) followed by frames, each ``length (4) | nonce (12) | AES-256-GCM ciphertext`` of a
zlib-compressed JSON chunk of one table's rows. Every frame's AAD binds the header's hash, the frame's
sequence number and whether it is the last one, so a frame edited, reordered, dropped or a truncated file
refuses to restore. The rows are read in one snapshot (``REPEATABLE READ`` on PostgreSQL, one read
transaction on SQLite), so the backup is consistent while the service runs.

The backup's data key is wrapped by the root key of its day, like the tenant keys inside it, so once the
key-epoch job destroys that root (after the backup retention, see :mod:`vault.epochs`) the backup as a whole
is unreadable. The keyring file (or KMS) is never part of a backup. Backups made with other tools
(``pg_dump``, volume snapshots) are bounded the same way, by key destruction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    Numeric,
    Table,
    TypeDecorator,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy import delete as sa_delete
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from vault.audit import append_event
from vault.errors import DecryptionError, VaultError
from vault.keys import KeyManager
from vault.models import Base, utcnow

MAGIC = b"LABELVAULT-BACKUP 1\n"
FORMAT = 1
ROWS_PER_FRAME = 2000
_FRAME_LEN = struct.Struct(">I")
_MAX_FRAME = 256 * 1024 * 1024


class BackupError(VaultError):
    """A backup can't be written or restored (wrong file, damaged, other schema, key destroyed)."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup holds (no data): its id, time, root key, schema revisions and rows per table."""

    backup_id: str
    created_at: datetime
    root_key_id: str
    revisions: tuple[str, ...]
    rows: dict[str, int]


def _context(backup_id: str) -> dict[str, str]:
    return {"labelvault:purpose": "backup", "labelvault:backup": backup_id}


def _aad(header_hash: bytes, seq: int, last: bool) -> bytes:
    return header_hash + seq.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def _revisions(conn: Connection) -> tuple[str, ...]:
    return tuple(sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()))


def _tables(conn: Connection) -> list[Table]:
    present = set(inspect(conn).get_table_names())
    return [t for t in Base.metadata.sorted_tables if t.name in present]


def _kind(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    return type_.impl_instance if isinstance(type_, TypeDecorator) else type_


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decoder(type_: TypeEngine[Any]) -> Any:
    kind = _kind(type_)
    if isinstance(kind, LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    if isinstance(kind, DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if isinstance(kind, Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(kind, Numeric) and kind.asdecimal:
        return lambda v: None if v is None else Decimal(v)
    return None


class _FrameWriter:
    def __init__(self, out: IO[bytes], key: AESGCM, header_hash: bytes) -> None:
        self.out, self.key, self.header_hash, self.seq = out, key, header_hash, 0

    def write(self, payload: dict[str, Any], *, last: bool = False) -> None:
        nonce = os.urandom(12)
        plain = zlib.compress(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(), 6)
        sealed = nonce + self.key.encrypt(nonce, plain, _aad(self.header_hash, self.seq, last))
        self.out.write(_FRAME_LEN.pack(len(sealed)) + sealed)
        self.seq += 1


def _snapshot(engine: Engine) -> Connection:
    """A connection reading one consistent snapshot of the database."""
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        conn.begin()
        return conn
    conn = engine.connect()
    conn.exec_driver_sql("BEGIN")  # pysqlite opens no transaction for reads by itself (see vault.db)
    return conn


def write_backup(
    engine: Engine, path: str | os.PathLike[str], *, keys: KeyManager, now: datetime | None = None
) -> BackupInfo:
    """Write an encrypted backup of the whole database to ``path`` (mode 0600, replaced atomically)."""
    now = now or utcnow()
    backup_id = uuid.uuid4().hex
    with Session(engine) as session:
        append_event(
            session,
            tenant_id=None,
            actor="system:backup",
            action="backup.create",
            details={"backup_id": backup_id},
            now=now,
        )
        session.commit()
    generated = keys.provider.generate_key(context=_context(backup_id))
    key = AESGCM(generated.plaintext)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{backup_id}.tmp")
    counts: dict[str, int] = {}
    conn = _snapshot(engine)
    try:
        revisions = _revisions(conn)
        tables = _tables(conn)
        header = {
            "format": FORMAT,
            "backup_id": backup_id,
            "created_at": now.isoformat(),
            "root_key_id": generated.root_key_id,
            "wrapped_key": base64.b64encode(generated.wrapped).decode(),
            "revisions": list(revisions),
            "tables": [t.name for t in tables],
            "dialect": engine.dialect.name,
        }
        header_line = json.dumps(header, sort_keys=True).encode() + b"\n"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + header_line)
            frames = _FrameWriter(out, key, hashlib.sha256(header_line).digest())
            for table in tables:
                columns = [c.name for c in table.columns]
                counts[table.name] = 0
                result = conn.execution_options(yield_per=ROWS_PER_FRAME).execute(
                    select(table).order_by(*table.primary_key.columns)
                )
                for part in result.partitions():
                    rows = [[_encode(v) for v in row] for row in part]
                    frames.write({"table": table.name, "columns": columns, "rows": rows})
                    counts[table.name] += len(rows)
            frames.write({"end": True, "rows": counts}, last=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        conn.rollback()
        conn.close()
    return BackupInfo(backup_id, now, generated.root_key_id, revisions, counts)


def _read_header(f: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    if f.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a labelvault backup file")
    line = f.readline(1 << 20)
    try:
        header: dict[str, Any] = json.loads(line)
    except ValueError:
        raise BackupError("the backup's header is damaged") from None
    if header.get("format") != FORMAT:
        raise BackupError("the backup has an unknown format version")
    return header, hashlib.sha256(line).digest()


def read_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The backup's header (no data, no key): id, time, root key id, revisions, tables."""
    with open(path, "rb") as f:
        header, _ = _read_header(f)
    return {k: v for k, v in header.items() if k != "wrapped_key"}


def _frames(f: IO[bytes], key: AESGCM, header_hash: bytes) -> Iterator[dict[str, Any]]:
    seq = 0
    while True:
        raw_len = f.read(_FRAME_LEN.size)
        if len(raw_len) < _FRAME_LEN.size:
            raise BackupError("the backup is truncated (its last frame is missing)")
        (n,) = _FRAME_LEN.unpack(raw_len)
        sealed = f.read(n)
        if n > _MAX_FRAME or len(sealed) != n or n < 28:
            raise BackupError("the backup is truncated or damaged")
        for last in (False, True):
            try:
                plain = key.decrypt(sealed[:12], sealed[12:], _aad(header_hash, seq, last))
            except InvalidTag:
                continue
            payload: dict[str, Any] = json.loads(zlib.decompress(plain))
            yield payload
            if last:
                if f.read(1):
                    raise BackupError("the backup has data after its last frame")
                return
            break
        else:
            raise BackupError("the backup is damaged or was altered (a frame does not authenticate)")
        seq += 1


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite's INTEGER PRIMARY KEY continues from max(id) by itself
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(_kind(pk[0].type), Integer):
            continue
        column = pk[0].name
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX({column}), 1), "  # noqa: S608
                f"MAX({column}) IS NOT NULL) FROM {table.name}"
            ),
            {"t": table.name, "c": column},
        )


def restore_backup(
    engine: Engine, path: str | os.PathLike[str], *, keys: KeyManager, now: datetime | None = None
) -> BackupInfo:
    """Replace the database's contents with a backup's, in one transaction (all or nothing).

    The database must be migrated to the backup's schema revisions. Fails with :class:`BackupError` when the
    backup's root key was destroyed: the backup is past its retention and unreadable by design.
    """
    now = now or utcnow()
    with open(path, "rb") as f:
        header, header_hash = _read_header(f)
        try:
            plaintext = keys.provider.unwrap(
                base64.b64decode(header["wrapped_key"]),
                root_key_id=header["root_key_id"],
                context=_context(header["backup_id"]),
            )
        except DecryptionError:
            raise BackupError(
                "the backup's key can't be unwrapped: its root key was destroyed (the backup is past its "
                "retention) or this is another installation's keyring"
            ) from None
        key = AESGCM(plaintext)
        counts: dict[str, int] = {}
        with engine.begin() as conn:
            revisions = _revisions(conn)
            if revisions != tuple(header["revisions"]):
                raise BackupError(
                    f"schema mismatch: the backup is at {header['revisions']}, the database at {list(revisions)}; "
                    "restore into a database migrated to the same revisions"
                )
            tables = _tables(conn)
            by_name = {t.name: t for t in tables}
            missing = set(header["tables"]) - set(by_name)
            if missing:
                raise BackupError(f"the database lacks tables the backup holds: {sorted(missing)}")
            for table in reversed(tables):
                conn.execute(sa_delete(table))
            for payload in _frames(f, key, header_hash):
                if payload.get("end"):
                    if {k: v for k, v in payload["rows"].items() if v} != counts:
                        raise BackupError("the backup's row counts don't match its frames")
                    break
                table = by_name[payload["table"]]
                names = payload["columns"]
                decoders = [_decoder(table.c[name].type) for name in names]
                rows = [
                    {n: (d(v) if d else v) for n, d, v in zip(names, decoders, row, strict=True)}
                    for row in payload["rows"]
                ]
                if rows:
                    conn.execute(insert(table), rows)
                counts[table.name] = counts.get(table.name, 0) + len(rows)
            _reset_sequences(conn, tables)
    keys.invalidate()
    with Session(engine) as session:
        append_event(
            session,
            tenant_id=None,
            actor="system:backup",
            action="backup.restore",
            details={"backup_id": header["backup_id"], "backup_created_at": header["created_at"]},
            now=now,
        )
        session.commit()
    return BackupInfo(
        header["backup_id"],
        datetime.fromisoformat(header["created_at"]),
        header["root_key_id"],
        tuple(header["revisions"]),
        counts,
    )
