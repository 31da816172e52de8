"""Engines, sessions and migrations. SQLite (embedded default) and PostgreSQL (production) alike."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings each backend needs (WAL and foreign keys on SQLite)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is kept (it BEGINs before the first write): with an
            # explicit BEGIN on every transaction, a request's read would hold the database against the
            # second session that audits a refusal in the same thread. A read-only snapshot that must be
            # consistent (the backup) issues its own BEGIN.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class WriterLock:
    """One writing transaction at a time across the processes and threads sharing a SQLite file.

    SQLite lets one transaction write at a time and makes the others wait in its busy handler, which
    polls with sleeps of 1, 2, 5, 10... ms. With several gunicorn workers, a label release that wants to
    write while another commits (its fsync included, a fraction of a millisecond) slept a millisecond or
    more, and the CPU idled meanwhile. Held around a write transaction (an ``flock`` on a file beside the
    database, and a thread lock for the threads of one process), it wakes the next writer in the kernel the
    moment the previous one has committed. Reads never take it (WAL readers don't wait for writers).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()
        self._pid = -1
        self._fd = -1
        self._threads = threading.Lock()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the block (a write transaction, from its first write to its commit)."""
        fd, threads = self._open()
        with threads:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> tuple[int, threading.Lock]:
        if self._pid != os.getpid():  # first use in this process (a gunicorn worker forks after import)
            with self._guard:
                if self._pid != os.getpid():
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self._threads = threading.Lock()
                    self._pid = os.getpid()
        return self._fd, self._threads


def writer_lock(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """The :class:`WriterLock` of ``engine``'s SQLite file; a no-op for other databases (rows lock there)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return contextlib.nullcontext()
    return _writer_lock_of(url.database).hold()


@functools.cache
def _writer_lock_of(database: str) -> WriterLock:
    # One per database file in this process, whatever the spelling of its path (resolved once).
    return _writer_lock_at(str(Path(database).resolve()) + ".writelock")


@functools.cache
def _writer_lock_at(path: str) -> WriterLock:
    return WriterLock(Path(path))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the services commit per batch)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with the Alembic migrations (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE."""
    return int(cast(CursorResult[Any], result).rowcount or 0)
