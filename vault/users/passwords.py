"""Passwords: the policy, argon2id hashes (memory-hard; :data:`HASHER`), and changing one's password.

A check against no stored hash (an unknown or not yet activated user) costs the same hash as a real one,
so timing doesn't tell who exists.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from vault.models import User
from vault.users.base import UserError, audit_user

MIN_PASSWORD = 12
MAX_PASSWORD = 256

#: The password hasher (argon2id, argon2-cffi's RFC 9106 "low memory" defaults: 64 MiB, t=3, p=4).
HASHER = PasswordHasher()
_DUMMY_HASH: list[str] = []


def check_password_policy(password: str, *, email: str = "") -> None:
    """Raise :class:`UserError` unless ``password`` is acceptable (length, not the e-mail address)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"a password has at most {MAX_PASSWORD} characters")
    if email and password.strip().lower() == email.strip().lower():
        raise UserError("the password must not be the e-mail address")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``."""
    return HASHER.hash(password)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with other parameters than :data:`HASHER`'s (rehash it on sign-in)."""
    return HASHER.check_needs_rehash(stored)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash; with none stored, the same work and ``False``."""
    if stored is None:
        # Same work as a real check, so an unknown or not yet activated user can't be told apart by timing.
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(HASHER.hash(secrets.token_urlsafe(16)))
        with contextlib.suppress(VerificationError, InvalidHashError):
            HASHER.verify(_DUMMY_HASH[0], password)
        return False
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(
    session: Session, *, user: User, current: str, new: str, actor: str, now: datetime | None = None
) -> None:
    """Change a user's password (the current one must be right); audited. Other sessions stay."""
    if not verify_password(user.password_hash, current):
        raise UserError("the current password is not right")
    check_password_policy(new, email=user.email)
    user.password_hash = hash_password(new)
    session.flush()
    audit_user(session, user, actor=actor, action="user.password", now=now)
