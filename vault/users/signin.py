"""Sign-in's password step, and how attempts lock an account.

Attempts are counted *before* the password or code is checked, each with one atomic statement, and the
count is committed at once: parallel attempts each see the others, so no more than ``max_failures`` are
ever checked before the lockout engages. A correct password gives its attempt back; a correct second
factor clears the count. Passwords and second factors count together, at two levels:

- per account *and* source address: ``max_failures`` attempts lock that account from that address for
  ``lockout``, so a guesser elsewhere can't lock the real user out;
- per account, from anywhere: ``account_max_failures`` (a slower backstop against guessing from many
  addresses) lock the account everywhere for ``lockout``.

Every attempt is audited. An unknown address costs the same argon2 verification (against a dummy hash) and
gets the same answer as a wrong password; it is audited on the global chain without the address it named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from vault.audit import append_event
from vault.models import SignInAttempts, User, utcnow
from vault.users.accounts import normalise_email
from vault.users.base import AccountLocked, SignInRefused, UserError, actor_of, audit_user
from vault.users.passwords import hash_password, needs_rehash, verify_password


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How many attempts lock an account (from one address, and from anywhere), and for how long."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    account_max_failures: int = 50


DEFAULT_LOGIN_POLICY = LoginPolicy()


def _source(ip: str | None) -> str:
    return (ip or "")[:45]


def _audit_attempt(
    session: Session, user: User, *, outcome: str, ip: str | None, now: datetime, locked: bool = False
) -> None:
    audit_user(
        session,
        user,
        actor=actor_of(user),
        action="user.sign-in",
        outcome=outcome,
        ip=ip,
        details={"locked": locked},
        now=now,
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A counted attempt: its number from its source address, and at the account from anywhere."""

    here: int
    everywhere: int


def claim_attempt(session: Session, user: User, *, policy: LoginPolicy, ip: str | None, now: datetime) -> Claim:
    """Count one attempt at ``user``'s account from ``ip`` and commit it, before anything is checked.

    Raises :class:`AccountLocked` (audited) if the account is locked from that address or everywhere, or
    this attempt is over a limit (which locks it): then nothing may be checked.
    """
    source = _source(ip)
    _lock_row(session, user)
    # Lockouts that ended start a fresh count.
    session.execute(
        update(User)
        .where(User.id == user.id, User.locked_until <= now)
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(SignInAttempts)
        .where(SignInAttempts.user_id == user.id, SignInAttempts.locked_until <= now)
        .values(attempts=0, locked_until=None)
    )
    all_count, all_locked = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins, User.locked_until)
        .execution_options(synchronize_session=False)
    ).one()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    here_count, here_locked = session.execute(
        dialect.insert(SignInAttempts)
        .values(user_id=user.id, source=source, attempts=1)
        .on_conflict_do_update(
            index_elements=[SignInAttempts.user_id, SignInAttempts.source],
            set_={"attempts": SignInAttempts.attempts + 1},
        )
        .returning(SignInAttempts.attempts, SignInAttempts.locked_until)
    ).one()
    until = max((t for t in (here_locked, all_locked) if t is not None and t > now), default=None)
    if until is None and (here_count > policy.max_failures or all_count > policy.account_max_failures):
        here, everywhere = here_count > policy.max_failures, all_count > policy.account_max_failures
        until = _lock(session, user, here=here, everywhere=everywhere, ip=ip, policy=policy, now=now)
    if until is not None:
        _audit_attempt(session, user, outcome="refused:locked", ip=ip, now=now, locked=True)
        session.commit()
        raise AccountLocked(until)
    set_committed_value(user, "failed_logins", all_count)
    session.commit()
    return Claim(here_count, all_count)


def _lock_row(session: Session, user: User) -> None:
    """Lock the user's row first when counting: one order of locks (the user, then the per-address count,
    then the audit chain), so parallel attempts queue instead of deadlocking. ``FOR NO KEY UPDATE``, the
    lock an UPDATE of the row takes, so inserts referring to the user (its sessions) don't conflict."""
    session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))


def _lock(
    session: Session, user: User, *, here: bool, everywhere: bool, ip: str | None, policy: LoginPolicy, now: datetime
) -> datetime:
    """Lock the account from ``ip`` (``here``) and/or everywhere, unless locked already; the lock's end."""
    until = now + policy.lockout
    if everywhere:
        session.execute(
            update(User)
            .where(User.id == user.id, or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(locked_until=until)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(user, "locked_until", until)
    if here:
        session.execute(
            update(SignInAttempts)
            .where(SignInAttempts.user_id == user.id, SignInAttempts.source == _source(ip))
            .where(or_(SignInAttempts.locked_until.is_(None), SignInAttempts.locked_until <= now))
            .values(locked_until=until)
        )
    return until


def count_failure(
    session: Session, user: User, *, claim: Claim, policy: LoginPolicy, reason: str, ip: str | None, now: datetime
) -> SignInRefused | AccountLocked:
    """A claimed attempt failed: audit it, and lock the account from ``ip`` if it was the last one allowed
    there (or everywhere, at the account's limit); returns the error to raise. The caller commits."""
    here, everywhere = claim.here >= policy.max_failures, claim.everywhere >= policy.account_max_failures
    locks = here or everywhere
    until = _lock(session, user, here=here, everywhere=everywhere, ip=ip, policy=policy, now=now) if locks else None
    _audit_attempt(session, user, outcome=f"refused:{reason}", ip=ip, now=now, locked=until is not None)
    if until is not None:
        return AccountLocked(until)
    return SignInRefused()


def give_back_attempt(session: Session, user: User, *, ip: str | None) -> None:
    """A correct password: its attempt no longer counts (earlier failures still do, until a second factor)."""
    session.execute(
        update(User)
        .where(User.id == user.id, User.failed_logins > 0)
        .values(failed_logins=User.failed_logins - 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(SignInAttempts)
        .where(SignInAttempts.user_id == user.id, SignInAttempts.source == _source(ip), SignInAttempts.attempts > 0)
        .values(attempts=SignInAttempts.attempts - 1)
    )
    session.refresh(user, ["failed_logins"])


def clear_attempts(session: Session, user: User) -> None:
    """Both factors passed (or an owner unlocked the account): every count and lockout of the account ends."""
    session.execute(delete(SignInAttempts).where(SignInAttempts.user_id == user.id))
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(user, "failed_logins", 0)
    set_committed_value(user, "locked_until", None)


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

    The attempt is counted and committed (:func:`claim_attempt`) before the password is checked. Raises
    :class:`SignInRefused` (unknown address, wrong password, disabled or not yet activated user: alike, at
    the same cost) or :class:`AccountLocked`. Every attempt is audited.
    """
    now = now or utcnow()
    try:
        address = normalise_email(email)
    except UserError:
        address = None
    user = session.scalar(select(User).where(User.email == address)) if address else None
    if user is None or user.disabled_at is not None or user.password_hash is None:
        verify_password(None, password)
        if user is None:  # the global chain, and not the address it named: no PII, no list of guesses
            append_event(
                session,
                tenant_id=None,
                actor="anonymous",
                action="user.sign-in",
                outcome="refused:unknown-account",
                ip=ip,
                purpose="administration",
                now=now,
            )
        else:
            _audit_attempt(session, user, outcome="refused:inactive", ip=ip, now=now)
        raise SignInRefused()
    claim = claim_attempt(session, user, policy=policy, ip=ip, now=now)
    if not verify_password(user.password_hash, password):
        raise count_failure(session, user, claim=claim, policy=policy, reason="password", ip=ip, now=now)
    give_back_attempt(session, user, ip=ip)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    _audit_attempt(session, user, outcome="ok:password", ip=ip, now=now)
    return user
