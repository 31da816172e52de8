"""What the CLI command modules share (kept apart from app/cli.py, which imports them all)."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.models import Tenant


def tenant_by_slug(session: Session, slug: str) -> Tenant:
    """The tenant named ``slug``, or a one-line CLI error that says where to look."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"no tenant with slug {slug!r} (see `flask tenants list`)")
    return tenant
