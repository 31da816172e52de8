"""Dashboard sessions, kept server side: the browser holds a random token, the vault only its digest, so
signing out, disabling a user or resetting their second factor ends their sessions at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vault.models import DashboardSession, User, utcnow
from vault.users.base import TOKEN_DOMAIN, actor_of, audit_user, digest

#: ``last_seen_at`` is written at most this often per session, not on every request.
SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long a dashboard session lasts: at most ``lifetime``, and ``idle`` without a request."""

    lifetime: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)


def start_session(
    session: Session,
    *,
    user: User,
    ip: str | None,
    limits: SessionLimits = SessionLimits(),
    now: datetime | None = None,
) -> str:
    """Sign ``user`` in (both factors checked by the caller): a new session; returns its token. Audited."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        DashboardSession(
            user_id=user.id,
            token_hash=digest(TOKEN_DOMAIN, token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + limits.lifetime,
            reauth_at=now,
            ip=ip,
        )
    )
    user.last_login_at = now
    session.flush()
    audit_user(session, user, actor=actor_of(user), action="user.sign-in", ip=ip, now=now)
    return token


def resolve_session(
    session: Session, *, token: str, limits: SessionLimits = SessionLimits(), now: datetime | None = None
) -> tuple[DashboardSession, User] | None:
    """The live session of ``token`` and its user, or None (unknown, expired, idle too long, user disabled)."""
    now = now or utcnow()
    row = session.scalar(select(DashboardSession).where(DashboardSession.token_hash == digest(TOKEN_DOMAIN, token)))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if (
        user is None
        or user.disabled_at is not None
        or user.totp_enabled_at is None
        or row.expires_at <= now
        or row.last_seen_at + limits.idle <= now
    ):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at >= SEEN_RESOLUTION:
        row.last_seen_at = now
        session.flush()
    return row, user


def mark_reauthenticated(
    session: Session, *, row: DashboardSession, user: User, ip: str | None = None, now: datetime | None = None
) -> None:
    """Record a fresh second-factor check on this session (for actions that need one); audited as
    ``user.reauth``, since it opens the label preview, rights requests and new keys for a while."""
    now = now or utcnow()
    row.reauth_at = now
    session.flush()
    audit_user(session, user, actor=actor_of(user), action="user.reauth", ip=ip, now=now)


def end_session(session: Session, *, token: str) -> None:
    """Sign out: forget the session of ``token``."""
    session.execute(delete(DashboardSession).where(DashboardSession.token_hash == digest(TOKEN_DOMAIN, token)))
    session.flush()


def sign_out(session: Session, *, user: User, token: str, ip: str | None = None, now: datetime | None = None) -> None:
    """The user signs out: their session of ``token`` ends; audited as ``user.sign-out``."""
    end_session(session, token=token)
    audit_user(session, user, actor=actor_of(user), action="user.sign-out", ip=ip, now=now)


def end_sessions(session: Session, *, user: User) -> int:
    """End every session of ``user``; returns how many there were."""
    rows = session.scalars(select(DashboardSession.id).where(DashboardSession.user_id == user.id)).all()
    session.execute(delete(DashboardSession).where(DashboardSession.user_id == user.id))
    session.flush()
    return len(rows)
