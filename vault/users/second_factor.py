"""The second factor every user must enrol before the dashboard opens: TOTP (RFC 6238, 30 s, 6 digits) and
ten single-use recovery codes for a lost phone.

The TOTP secret is sealed under the tenant key like any other secret (:data:`vault.sealed.TOTP_SECRETS`,
so key rotation rewraps it); a code is accepted once (a replayed code, or an older one, is refused).
Recovery codes carry 80 random bits each and are stored as SHA-256 digests.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from vault.keys import KeyManager
from vault.models import RecoveryCode, User, utcnow
from vault.sealed import TOTP_SECRETS
from vault.users.base import SignInRefused, UserError, actor_of, audit_user, digest
from vault.users.sessions import end_sessions
from vault.users.signin import DEFAULT_LOGIN_POLICY, LoginPolicy, claim_attempt, clear_attempts, count_failure

RECOVERY_CODES = 10
TOTP_ISSUER = "labelvault"
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols, no look-alikes (i/l/1, o/0)
_RECOVERY_DOMAIN = b"labelvault-recovery-code-v1\x00"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A TOTP secret being enrolled: show it (as a QR code of ``uri``) to the user, once."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)


def totp_context(user: User) -> bytes:
    """AAD context of the user's sealed TOTP secret."""
    return TOTP_SECRETS.context(user.tenant_id, user.id)


def _seal_secret(session: Session, keys: KeyManager, user: User, secret: str) -> None:
    user.totp_secret, user.totp_key_version = keys.seal(session, user.tenant_id, totp_context(user), secret.encode())


def open_totp_secret(session: Session, *, keys: KeyManager, user: User) -> str:
    """The user's TOTP secret, unsealed; :class:`UserError` if none is enrolled or being enrolled."""
    if user.totp_secret is None:
        raise UserError("no second factor is enrolled")
    return keys.open(session, user.tenant_id, totp_context(user), user.totp_secret).decode()


def totp_uri(secret: str, *, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the enrolment QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def start_enrolment(session: Session, *, keys: KeyManager, user: User) -> Enrolment:
    """Begin TOTP enrolment: a new secret, sealed on the user, to show once. Replaces any earlier attempt.

    Refused while a second factor is enrolled (reset it first, see :func:`reset_second_factor`).
    """
    if user.totp_enabled_at is not None:
        raise UserError("a second factor is enrolled already")
    secret = pyotp.random_base32()
    _seal_secret(session, keys, user, secret)
    user.totp_last_step = None
    session.flush()
    return Enrolment(secret, totp_uri(secret, email=user.email))


def pending_enrolment(session: Session, *, keys: KeyManager, user: User) -> Enrolment | None:
    """The enrolment in progress (its secret again, e.g. after a wrong code), if there is one."""
    if user.totp_enabled_at is not None or user.totp_secret is None:
        return None
    secret = open_totp_secret(session, keys=keys, user=user)
    return Enrolment(secret, totp_uri(secret, email=user.email))


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (±1 for clock drift) whose code is ``code``, compared in constant time."""
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    found = None
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.at(candidate * totp.interval), code):
            found = candidate
    return found


def _normalise_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def confirm_enrolment(
    session: Session, *, keys: KeyManager, user: User, code: str, ip: str | None = None, now: datetime | None = None
) -> list[str]:
    """Finish enrolment with a first code from the app; returns the new recovery codes (show them once).

    Audited as ``user.second-factor`` (enrolled). Raises :class:`UserError` for a wrong code (the
    enrolment stays open for another try).
    """
    now = now or utcnow()
    if user.totp_enabled_at is not None:
        raise UserError("a second factor is enrolled already")
    secret = open_totp_secret(session, keys=keys, user=user)
    step = _matching_step(secret, _normalise_code(code), now)
    if step is None:
        raise UserError("that code is not right; check the time on your phone and try the next code")
    user.totp_enabled_at, user.totp_last_step = now, step
    codes = new_recovery_codes(session, user=user, now=now)
    audit_user(session, user, actor=actor_of(user), action="user.second-factor", outcome="enrolled", ip=ip, now=now)
    return codes


def new_recovery_codes(session: Session, *, user: User, now: datetime | None = None) -> list[str]:
    """Replace the user's recovery codes with :data:`RECOVERY_CODES` new ones; returns them (show them once).

    Writes no audit event: enrolment audits itself, and a user replacing their codes is
    :func:`replace_recovery_codes`.
    """
    now = now or utcnow()
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
        session.add(RecoveryCode(user_id=user.id, code_hash=digest(_RECOVERY_DOMAIN, raw), created_at=now))
    session.flush()
    return codes


def replace_recovery_codes(
    session: Session, *, user: User, actor: str, ip: str | None = None, now: datetime | None = None
) -> list[str]:
    """Replace an enrolled user's recovery codes (the old ones stop working); audited as
    ``user.recovery-codes`` (replaced). Returns the new codes, to show once. The caller commits.

    The dashboard asks for a fresh second factor first.
    """
    if user.totp_enabled_at is None:
        raise UserError("no second factor is enrolled")
    codes = new_recovery_codes(session, user=user, now=now)
    audit_user(session, user, actor=actor, action="user.recovery-codes", outcome="replaced", ip=ip, now=now)
    return codes


def recovery_codes_left(session: Session, *, user: User) -> int:
    """How many unused recovery codes the user has."""
    return len(
        session.scalars(
            select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        ).all()
    )


def check_second_factor(
    session: Session,
    *,
    keys: KeyManager,
    user: User,
    code: str,
    ip: str | None = None,
    policy: LoginPolicy = DEFAULT_LOGIN_POLICY,
    now: datetime | None = None,
) -> str:
    """Check a TOTP code (6 digits) or a recovery code; returns ``"totp"`` or ``"recovery-code"``.

    A TOTP code is good once, even when submissions race: its time step is claimed with a conditional
    UPDATE (:func:`_claim_step`). A recovery code is spent the same way (audited). The attempt is counted
    and committed before the code is checked (:func:`vault.users.signin.claim_attempt`); failures are
    audited. The caller commits, whatever the outcome.
    """
    now = now or utcnow()
    if user.disabled_at is not None or user.totp_enabled_at is None:
        raise SignInRefused()
    claim = claim_attempt(session, user, policy=policy, ip=ip, now=now)  # committed before any check
    entered = _normalise_code(code)
    if re.fullmatch(r"\d{6}", entered):
        secret = open_totp_secret(session, keys=keys, user=user)
        step = _matching_step(secret, entered, now)
        if step is None or not _claim_step(session, user, step):
            raise count_failure(session, user, claim=claim, policy=policy, reason="second-factor", ip=ip, now=now)
        if user.totp_key_version != keys.active_version(session, user.tenant_id):
            _seal_secret(session, keys, user, secret)  # moves to the current tenant key version on use
        kind = "totp"
    else:
        spent = session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == digest(_RECOVERY_DOMAIN, entered),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .returning(RecoveryCode.id)
        ).first()
        if spent is None:
            raise count_failure(session, user, claim=claim, policy=policy, reason="second-factor", ip=ip, now=now)
        kind = "recovery-code"
        audit_user(session, user, actor=actor_of(user), action="user.recovery-code", outcome="used", ip=ip, now=now)
    clear_attempts(session, user)
    session.flush()
    return kind


def _claim_step(session: Session, user: User, step: int) -> bool:
    """Record ``step`` as the user's last used TOTP step if it is later than the last one: one conditional
    UPDATE, so of parallel submissions of one code exactly one gets the row (the others match none)."""
    claimed = session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def reset_second_factor(session: Session, *, user: User, actor: str, now: datetime | None = None) -> None:
    """Forget the user's second factor and recovery codes and end their sessions (they enrol again); audited."""
    user.totp_secret = user.totp_key_version = user.totp_enabled_at = user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_sessions(session, user=user)
    audit_user(session, user, actor=actor, action="user.second-factor", outcome="reset", now=now)
