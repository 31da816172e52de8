"""The Alembic migrations and the SQLAlchemy models describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.support.servers import Database
from vault.db import alembic_config, migrate
from vault.models import Base


def test_models_and_migrations_agree(fresh_db: Database) -> None:
    with fresh_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_migrations_downgrade_and_upgrade_again(fresh_db: Database) -> None:
    from alembic import command

    cfg = alembic_config(fresh_db.engine)
    command.downgrade(cfg, "base")
    migrate(fresh_db.engine)
    migrate(fresh_db.engine)  # idempotent
    with fresh_db.engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    assert heads == set(ScriptDirectory.from_config(cfg).get_heads())
