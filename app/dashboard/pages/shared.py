"""What the page modules share: who is acting for which tenant, form and query values, actor names."""

from __future__ import annotations

from datetime import date

from app.dashboard.state import (
    current_user,
)
from app.services import db_session
from vault import reports
from vault.users.accounts import users_of
from vault.users.base import actor_of


def actor() -> str:
    """The signed-in user as the audit chain names them."""
    return actor_of(current_user())


def tenant_id() -> int:
    """The signed-in user's tenant: every page shows and changes only this tenant's data."""
    return current_user().tenant_id


def parse_date(value: str | None) -> date | None:
    """A form's or query's ``YYYY-MM-DD``; ``None`` when empty or not a date (a filter then doesn't apply)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def page_number(value: str | None, default: int = 1) -> int:
    """A ``page`` query value: a whole number from 1, else ``default``."""
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


def split_lines(text: str) -> list[str]:
    """A textarea's entries, one per line or comma-separated, trimmed, empty ones dropped."""
    return [p.strip() for p in text.replace(",", "\n").splitlines() if p.strip()]


def actor_names() -> dict[str, str]:
    """How the audit log names its actors for people: users by name, clients by name."""
    db = db_session()
    names = {actor_of(u): u.display_name for u in users_of(db, tenant_id=tenant_id())}
    names.update({f"client:{c.key_id}": c.name for c in reports.clients_of(db, tenant_id=tenant_id())})
    return names
