"""The seller's own people: a dashboard user sees, corrects and erases their own account data (name,
e-mail), or an owner does it for a departed user. The audit chain keeps only the user's id (``user:<id>``
as actor and subject), never the name or e-mail. Re-authentication is the caller's (the dashboard asks for
a fresh second factor). The caller commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from vault.models import RecoveryCode, User, utcnow
from vault.users.accounts import _owners_left, check_new_email, display_name_for, normalise_email
from vault.users.base import UserError, audit_user
from vault.users.roles import OWNER
from vault.users.sessions import end_sessions

EXPORT_FORMAT = "labelvault-user-export/1"


def _check_may_act(by: User, user: User) -> str:
    if by.tenant_id != user.tenant_id or (by.id != user.id and by.role != OWNER):
        raise UserError("only the user themself or an owner of their seller may do this")
    return f"user:{by.id}"


def export_own_data(session: Session, *, by: User, user: User, now: datetime | None = None) -> dict[str, Any]:
    """Everything labelvault holds about a dashboard user, as JSON-ready data for them; audited."""
    actor = _check_may_act(by, user)
    audit_user(session, user, actor=actor, action="user.data.access", now=now)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": (now or utcnow()).isoformat(),
        "user": {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
            "locale": user.locale,
            "second_factor_enrolled": user.totp_enabled_at is not None,
            "created_at": user.created_at.isoformat(),
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
            "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
        },
    }


def correct_own_data(
    session: Session, *, by: User, user: User, display_name: str | None = None, email: str | None = None
) -> list[str]:
    """Correct a user's name and/or e-mail; returns the fields changed (audited by name, not value)."""
    actor = _check_may_act(by, user)
    changed = []
    if email is not None and normalise_email(email) != user.email:
        user.email = check_new_email(session, email)
        changed.append("email")
    if display_name is not None and display_name.strip() != user.display_name:
        user.display_name = display_name_for(display_name, user.email)
        changed.append("display_name")
    session.flush()
    if changed:
        audit_user(session, user, actor=actor, action="user.data.correct", details={"fields": changed})
    return changed


def erase_own_data(session: Session, *, by: User, user: User, now: datetime | None = None) -> None:
    """Erase a user's account data: name and e-mail replaced by placeholders naming only the id, password,
    second factor and recovery codes gone, sessions ended, the account disabled. The last owner can't."""
    actor = _check_may_act(by, user)
    now = now or utcnow()
    if user.role == OWNER and user.disabled_at is None and not _owners_left(session, user.tenant_id, user.id):
        raise UserError("the last owner can't be erased: make another owner first")
    user.email = f"erased-user-{user.id}@erased.invalid"
    user.display_name = f"erased user {user.id}"
    user.password_hash = user.totp_secret = user.totp_key_version = None
    user.totp_enabled_at = user.invite_token_hash = None
    user.locale = None
    user.disabled_at = user.disabled_at or now
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_sessions(session, user=user)
    session.flush()
    audit_user(session, user, actor=actor, action="user.data.erase", now=now)
