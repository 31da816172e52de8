"""A throwaway PostgreSQL schema for a benchmark run: bench/labels.py and bench/load.py both measure in one."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from sqlalchemy import Engine, text

from vault.db import make_engine, migrate

POSTGRES_URL = os.environ.get("LABELVAULT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_schema(url: str = POSTGRES_URL) -> Iterator[tuple[Engine, str]]:
    """A new PostgreSQL schema of ``url``'s database (migrated, dropped afterwards); yields its engine and a
    URL other processes can use."""
    schema = f"lvbench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(engine)
        sep = "&" if "?" in url else "?"
        yield engine, f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
