"""Sign-in's password step, and how failures lock an account.

Failed passwords and failed second factors count together; after ``max_failures`` the account is locked
for ``lockout``. A successful sign-in resets the count. Every counted failure is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.models import User, utcnow
from vault.users.accounts import normalise_email
from vault.users.base import AccountLocked, SignInRefused, UserError, actor_of, audit_user
from vault.users.passwords import hash_password, needs_rehash, verify_password


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How many failures lock an account, and for how long."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)


DEFAULT_LOGIN_POLICY = LoginPolicy()


def count_failure(
    session: Session, user: User, *, policy: LoginPolicy, reason: str, ip: str | None, now: datetime
) -> SignInRefused | AccountLocked:
    """Count a failed step of sign-in (locking the account at the limit), audit it; returns the error to raise."""
    user.failed_logins += 1
    locked = user.failed_logins >= policy.max_failures
    if locked:
        user.failed_logins = 0
        user.locked_until = now + policy.lockout
    session.flush()
    audit_user(
        session,
        user,
        actor=actor_of(user),
        action="user.sign-in",
        outcome=f"refused:{reason}",
        ip=ip,
        details={"locked": locked},
        now=now,
    )
    if locked:
        assert user.locked_until is not None
        return AccountLocked(user.locked_until)
    return SignInRefused()


def check_password(
    session: Session,
    *,
    email: str,
    password: str,
    ip: str | None = None,
    policy: LoginPolicy = DEFAULT_LOGIN_POLICY,
    now: datetime | None = None,
) -> User:
    """First step of sign-in: the user whose password this is. The caller commits, whatever the outcome.

    Raises :class:`SignInRefused` (unknown address, wrong password, disabled or not yet activated user:
    alike) or :class:`AccountLocked`. Failures count towards the lockout and are audited.
    """
    now = now or utcnow()
    try:
        address = normalise_email(email)
    except UserError:
        verify_password(None, password)
        raise SignInRefused() from None
    user = session.scalar(select(User).where(User.email == address))
    if user is None or user.disabled_at is not None or user.password_hash is None:
        verify_password(None, password)
        raise SignInRefused()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(user.locked_until)  # not audited: the lockout was, and retries would flood the chain
    if not verify_password(user.password_hash, password):
        raise count_failure(session, user, policy=policy, reason="password", ip=ip, now=now)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return user
