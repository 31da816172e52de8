"""What the dashboard-user modules share: their errors, how the audit chain names a user, and the audit
event of a user change."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import VaultError
from vault.models import User

#: Digest domain of the random tokens of invitation links and dashboard sessions.
TOKEN_DOMAIN = b"labelvault-dashboard-token-v1\x00"


class UserError(VaultError):
    """A user setting or request was refused; the message says why (no secret, no address)."""


class SignInRefused(UserError):
    """Sign-in failed: unknown e-mail, wrong password, wrong code or a disabled user. One error for all."""

    def __init__(self) -> None:
        super().__init__("sign-in failed")


class AccountLocked(UserError):
    """Too many failures: the account is locked until ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__("account locked after repeated failures")
        self.until = until


def actor_of(user: User) -> str:
    """How the audit chain names a dashboard user."""
    return f"user:{user.id}"


def digest(domain: bytes, value: str) -> str:
    """The stored form of a token or code: its SHA-256 under a domain, never the value itself."""
    return hashlib.sha256(domain + value.encode()).hexdigest()


def audit_user(
    session: Session,
    user: User,
    *,
    actor: str,
    action: str,
    outcome: str = "ok",
    ip: str | None = None,
    details: dict[str, object] | None = None,
    now: datetime | None = None,
) -> None:
    """Append a change of ``user`` to their tenant's chain (an administration act; the user by id only)."""
    append_event(
        session,
        tenant_id=user.tenant_id,
        actor=actor,
        action=action,
        outcome=outcome,
        ip=ip,
        purpose="administration",
        details={"user": user.id, **(details or {})},
        now=now,
    )
