"""Invitations: an owner invites a user by e-mail address; the one-time link's token sets their password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.errors import NotFound
from vault.models import User, utcnow
from vault.users.accounts import check_new_email, display_name_for
from vault.users.base import TOKEN_DOMAIN, actor_of, audit_user, digest
from vault.users.passwords import check_password_policy, hash_password
from vault.users.roles import check_role

INVITE_LIFETIME = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invited user and the one-time token of their invitation link (shown once, then dropped)."""

    user: User
    token: str = field(repr=False)


def invite_user(
    session: Session,
    *,
    tenant_id: int,
    email: str,
    role: str,
    display_name: str = "",
    actor: str,
    now: datetime | None = None,
    lifetime: timedelta = INVITE_LIFETIME,
) -> Invitation:
    """Invite a user: a user without a password, and a one-time token for their invitation link. Audited."""
    now = now or utcnow()
    email = check_new_email(session, email)
    token = secrets.token_urlsafe(32)
    user = User(
        tenant_id=tenant_id,
        email=email,
        display_name=display_name_for(display_name, email),
        role=check_role(role),
        invite_token_hash=digest(TOKEN_DOMAIN, token),
        invite_expires_at=now + lifetime,
        created_by=actor[:100],
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit_user(session, user, actor=actor, action="user.invite", details={"role": role}, now=now)
    return Invitation(user, token)


def find_invitation(session: Session, *, token: str, now: datetime | None = None) -> User:
    """The invited user of a live invitation token; :class:`NotFound` for an unknown, used or expired one."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.invite_token_hash == digest(TOKEN_DOMAIN, token)))
    if user is None or user.disabled_at is not None or user.invite_expires_at is None or user.invite_expires_at <= now:
        raise NotFound("no such invitation")
    return user


def accept_invitation(session: Session, *, token: str, password: str, now: datetime | None = None) -> User:
    """Set the invited user's password and spend the invitation; they enrol a second factor next."""
    now = now or utcnow()
    user = find_invitation(session, token=token, now=now)
    check_password_policy(password, email=user.email)
    user.password_hash = hash_password(password)
    user.invite_token_hash = None
    user.invite_expires_at = None
    session.flush()
    audit_user(session, user, actor=actor_of(user), action="user.accept-invitation", now=now)
    return user
