"""Alembic environment: the engine comes from vault.db.alembic_config (or LABELVAULT_DATABASE_URL)."""

from __future__ import annotations

import os

from alembic import context

from vault.db import make_engine
from vault.models import Base

config = context.config
engine = config.attributes.get("engine") or make_engine(
    os.environ.get("LABELVAULT_DATABASE_URL", "sqlite:///instance/labelvault.db")
)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
