"""A tenant's dashboard user accounts: creating (the first owner, from the CLI), finding, changing roles,
disabling and unlocking users, and their language. A tenant always keeps one active owner."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vault.errors import NotFound
from vault.models import SignInAttempts, Tenant, User, utcnow
from vault.users.base import UserError, audit_user
from vault.users.passwords import check_password_policy, hash_password
from vault.users.roles import OWNER, check_role
from vault.users.sessions import end_sessions

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}")


def normalise_email(email: str) -> str:
    """An e-mail address as stored: trimmed, lower case; :class:`UserError` if it doesn't look like one."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise UserError("that is not an e-mail address")
    return email


def check_new_email(session: Session, email: str) -> str:
    """``email`` as stored, if no user has it yet; :class:`UserError` otherwise."""
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError("a user with that e-mail address exists already")
    return email


def display_name_for(display_name: str, email: str) -> str:
    """The name the dashboard shows: the one given, else the address's local part."""
    return (display_name.strip() or email.split("@")[0])[:200]


def create_user(
    session: Session,
    *,
    tenant: Tenant,
    email: str,
    role: str,
    password: str,
    display_name: str = "",
    actor: str,
    now: datetime | None = None,
) -> User:
    """Create an active user with a password (the first owner, from the CLI); audited as ``user.create``.

    The user enrols a second factor at first sign-in. The caller commits.
    """
    now = now or utcnow()
    email = check_new_email(session, email)
    check_password_policy(password, email=email)
    user = User(
        tenant_id=tenant.id,
        email=email,
        display_name=display_name_for(display_name, email),
        role=check_role(role),
        password_hash=hash_password(password),
        created_by=actor[:100],
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit_user(session, user, actor=actor, action="user.create", details={"role": role}, now=now)
    return user


def users_of(session: Session, *, tenant_id: int) -> list[User]:
    """A tenant's users, by e-mail address."""
    return list(session.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.email)))


def find_user(session: Session, *, tenant_id: int, user_id: int) -> User:
    """One of the tenant's users; :class:`NotFound` otherwise (another tenant's user included)."""
    user = session.get(User, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound("no such user")
    return user


def _owners_left(session: Session, tenant_id: int, without: int) -> int:
    return len(
        session.scalars(
            select(User.id).where(
                User.tenant_id == tenant_id,
                User.role == OWNER,
                User.disabled_at.is_(None),
                User.id != without,
            )
        ).all()
    )


def set_role(session: Session, *, user: User, role: str, actor: str, now: datetime | None = None) -> None:
    """Change a user's role (a tenant always keeps one active owner); audited."""
    check_role(role)
    if user.role == role:
        return
    if user.role == OWNER and not _owners_left(session, user.tenant_id, user.id):
        raise UserError("the last owner can't be given another role; make someone else owner first")
    previous, user.role = user.role, role
    session.flush()
    audit_user(session, user, actor=actor, action="user.role", details={"from": previous, "to": role}, now=now)


def disable_user(session: Session, *, user: User, actor: str, now: datetime | None = None) -> None:
    """Disable a user for good and end their sessions (a tenant always keeps one active owner); audited."""
    now = now or utcnow()
    if user.disabled_at is not None:
        return
    if user.role == OWNER and not _owners_left(session, user.tenant_id, user.id):
        raise UserError("the last owner can't be disabled")
    user.disabled_at = now
    user.invite_token_hash = None
    end_sessions(session, user=user)
    audit_user(session, user, actor=actor, action="user.disable", now=now)


def unlock_user(session: Session, *, user: User, actor: str, now: datetime | None = None) -> None:
    """Lift a lockout now (from every address: the per-address counts go too); audited."""
    session.execute(delete(SignInAttempts).where(SignInAttempts.user_id == user.id))
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    audit_user(session, user, actor=actor, action="user.unlock", now=now)


def set_locale(session: Session, *, user: User, locale: str, actor: str, ip: str | None = None) -> None:
    """Remember the user's dashboard language; audited as ``user.locale`` (the language code only), as every
    change to a user is. Choosing the language the user has already writes nothing."""
    locale = locale[:16]
    if user.locale == locale:
        return
    user.locale = locale
    session.flush()
    audit_user(session, user, actor=actor, action="user.locale", ip=ip, details={"locale": locale})
