"""Dashboard users of a seller: roles, passwords, the TOTP second factor, recovery codes, lockout, sessions.

- Passwords are hashed with argon2id (memory-hard; :data:`HASHER`), rehashed on sign-in when the parameters
  change. An unknown e-mail address costs the same hash as a known one, so timing doesn't tell who exists.
- Every user must enrol a TOTP second factor (RFC 6238, 30 s, 6 digits) before the dashboard opens. The TOTP
  secret is sealed under the tenant key like any other secret; a code is accepted once (a replayed code, or
  an older one, is refused). Ten single-use recovery codes (80 random bits each; stored as SHA-256 digests)
  stand in for a lost phone.
- Failed passwords and failed second factors count together; after ``max_failures`` the account is locked
  for ``lockout``. A successful sign-in resets the count.
- A dashboard session lives server side: the browser holds a random token, this module only its digest, so
  signing out, disabling a user or resetting their second factor ends their sessions at once.

Nothing here logs or audits an e-mail address or a secret: the audit chain names users as ``user:<id>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.envelope import encode_context
from vault.errors import NotFound, VaultError
from vault.keys import KeyManager
from vault.models import DashboardAllowlist, DashboardSession, RecoveryCode, Tenant, User, utcnow
from vault.netaddr import AddressError, IPAddress, in_any, parse_ip, parse_network

OWNER: Final = "owner"
OPERATOR: Final = "operator"
VIEWER: Final = "viewer"
ROLES: Final = (OWNER, OPERATOR, VIEWER)
_RANK: Final = {VIEWER: 0, OPERATOR: 1, OWNER: 2}

#: What each role may do: the least role a permission needs.
PERMISSIONS: Final = {
    "view": VIEWER,  # overview, accounts, masked orders, clients, audit log, retention status
    "sync": OPERATOR,  # start a sync
    "label-preview": OPERATOR,  # see a label (buyer data in clear), after a fresh second factor
    "clients": OPERATOR,  # create and revoke warehouse clients, change their ranges and profiles
    "rights": OPERATOR,  # people's access, correction and erasure requests
    "accounts": OWNER,  # connect and remove marketplace accounts
    "retention": OWNER,  # retention policy and legal holds
    "users": OWNER,  # invite users, change roles, disable; the dashboard allowlist
}

MIN_PASSWORD = 12
MAX_PASSWORD = 256
RECOVERY_CODES = 10
TOTP_ISSUER = "labelvault"
INVITE_LIFETIME = timedelta(hours=72)
#: ``last_seen_at`` is written at most this often per session, not on every request.
SEEN_RESOLUTION = timedelta(minutes=1)

#: The password hasher (argon2id, argon2-cffi's RFC 9106 "low memory" defaults: 64 MiB, t=3, p=4).
HASHER = PasswordHasher()
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}")
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols, no look-alikes (i/l/1, o/0)
_RECOVERY_DOMAIN = b"labelvault-recovery-code-v1\x00"
_TOKEN_DOMAIN = b"labelvault-dashboard-token-v1\x00"


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


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How many failures lock an account, and for how long."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invited user and the one-time token of their invitation link (shown once, then dropped)."""

    user: User
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A TOTP secret being enrolled: show it (as a QR code of ``uri``) to the user, once."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)


def may(role: str, permission: str) -> bool:
    """Whether a user with ``role`` may do ``permission`` (see :data:`PERMISSIONS`)."""
    need = PERMISSIONS.get(permission)
    return need is not None and _RANK.get(role, -1) >= _RANK[need]


def actor_of(user: User) -> str:
    """How the audit chain names a dashboard user."""
    return f"user:{user.id}"


def _digest(domain: bytes, value: str) -> str:
    return hashlib.sha256(domain + value.encode()).hexdigest()


# -- passwords --------------------------------------------------------------------------------------------


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


_DUMMY_HASH: list[str] = []


def _verify_password(stored: str | None, password: str) -> bool:
    if stored is None:
        # Same work as a real check, so an unknown or not yet activated user can't be told apart by timing.
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(HASHER.hash(secrets.token_urlsafe(16)))
        stored = _DUMMY_HASH[0]
        with contextlib.suppress(VerificationError, InvalidHashError):
            HASHER.verify(stored, password)
        return False
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    """An e-mail address as stored: trimmed, lower case; :class:`UserError` if it doesn't look like one."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise UserError("that is not an e-mail address")
    return email


# -- users ------------------------------------------------------------------------------------------------


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"a role is one of {', '.join(ROLES)}")
    return role


def _check_new_email(session: Session, email: str) -> str:
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError("a user with that e-mail address exists already")
    return email


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
    email = _check_new_email(session, email)
    check_password_policy(password, email=email)
    user = User(
        tenant_id=tenant.id,
        email=email,
        display_name=(display_name.strip() or email.split("@")[0])[:200],
        role=_check_role(role),
        password_hash=hash_password(password),
        created_by=actor[:100],
        created_at=now,
    )
    session.add(user)
    session.flush()
    _audit(session, user, actor=actor, action="user.create", details={"role": role}, now=now)
    return user


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
    email = _check_new_email(session, email)
    token = secrets.token_urlsafe(32)
    user = User(
        tenant_id=tenant_id,
        email=email,
        display_name=(display_name.strip() or email.split("@")[0])[:200],
        role=_check_role(role),
        invite_token_hash=_digest(_TOKEN_DOMAIN, token),
        invite_expires_at=now + lifetime,
        created_by=actor[:100],
        created_at=now,
    )
    session.add(user)
    session.flush()
    _audit(session, user, actor=actor, action="user.invite", details={"role": role}, now=now)
    return Invitation(user, token)


def find_invitation(session: Session, *, token: str, now: datetime | None = None) -> User:
    """The invited user of a live invitation token; :class:`NotFound` for an unknown, used or expired one."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.invite_token_hash == _digest(_TOKEN_DOMAIN, token)))
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
    _audit(session, user, actor=actor_of(user), action="user.accept-invitation", now=now)
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
    _check_role(role)
    if user.role == role:
        return
    if user.role == OWNER and not _owners_left(session, user.tenant_id, user.id):
        raise UserError("the last owner can't be given another role; make someone else owner first")
    previous, user.role = user.role, role
    session.flush()
    _audit(session, user, actor=actor, action="user.role", details={"from": previous, "to": role}, now=now)


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
    _audit(session, user, actor=actor, action="user.disable", now=now)


def unlock_user(session: Session, *, user: User, actor: str, now: datetime | None = None) -> None:
    """Lift a lockout now; audited."""
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    _audit(session, user, actor=actor, action="user.unlock", now=now)


def set_locale(session: Session, *, user: User, locale: str) -> None:
    """Remember the user's dashboard language."""
    user.locale = locale[:16]
    session.flush()


def _audit(
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


# -- sign-in: password, lockout ---------------------------------------------------------------------------


def _refuse(
    session: Session, user: User, *, policy: LoginPolicy, reason: str, ip: str | None, now: datetime
) -> SignInRefused | AccountLocked:
    """Count a failure (locking the account at the limit), audit it, and return the error to raise."""
    user.failed_logins += 1
    locked = user.failed_logins >= policy.max_failures
    if locked:
        user.failed_logins = 0
        user.locked_until = now + policy.lockout
    session.flush()
    _audit(
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
    policy: LoginPolicy = LoginPolicy(),
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
        _verify_password(None, password)
        raise SignInRefused() from None
    user = session.scalar(select(User).where(User.email == address))
    if user is None or user.disabled_at is not None or user.password_hash is None:
        _verify_password(None, password)
        raise SignInRefused()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(user.locked_until)  # not audited: the lockout was, and retries would flood the chain
    if not _verify_password(user.password_hash, password):
        raise _refuse(session, user, policy=policy, reason="password", ip=ip, now=now)
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return user


def change_password(
    session: Session, *, user: User, current: str, new: str, actor: str, now: datetime | None = None
) -> None:
    """Change a user's password (the current one must be right); audited. Other sessions stay."""
    if not _verify_password(user.password_hash, current):
        raise UserError("the current password is not right")
    check_password_policy(new, email=user.email)
    user.password_hash = hash_password(new)
    session.flush()
    _audit(session, user, actor=actor, action="user.password", now=now)


# -- the second factor ------------------------------------------------------------------------------------


def _totp_context(user: User) -> bytes:
    return encode_context("totp", user.tenant_id, user.id)


def _seal_secret(session: Session, keys: KeyManager, user: User, secret: str) -> None:
    user.totp_secret, user.totp_key_version = keys.seal(session, user.tenant_id, _totp_context(user), secret.encode())


def _open_secret(session: Session, keys: KeyManager, user: User) -> str:
    if user.totp_secret is None:
        raise UserError("no second factor is enrolled")
    return keys.open(session, user.tenant_id, _totp_context(user), user.totp_secret).decode()


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
    secret = _open_secret(session, keys, user)
    return Enrolment(secret, totp_uri(secret, email=user.email))


def totp_uri(secret: str, *, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the enrolment QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


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

    Raises :class:`UserError` for a wrong code (the enrolment stays open for another try).
    """
    now = now or utcnow()
    if user.totp_enabled_at is not None:
        raise UserError("a second factor is enrolled already")
    secret = _open_secret(session, keys, user)
    step = _matching_step(secret, _normalise_code(code), now)
    if step is None:
        raise UserError("that code is not right; check the time on your phone and try the next code")
    user.totp_enabled_at, user.totp_last_step = now, step
    codes = new_recovery_codes(session, user=user, now=now)
    _audit(session, user, actor=actor_of(user), action="user.second-factor", outcome="enrolled", ip=ip, now=now)
    return codes


def new_recovery_codes(session: Session, *, user: User, now: datetime | None = None) -> list[str]:
    """Replace the user's recovery codes with :data:`RECOVERY_CODES` new ones; returns them (show them once)."""
    now = now or utcnow()
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
        session.add(RecoveryCode(user_id=user.id, code_hash=_digest(_RECOVERY_DOMAIN, raw), created_at=now))
    session.flush()
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
    policy: LoginPolicy = LoginPolicy(),
    now: datetime | None = None,
) -> str:
    """Check a TOTP code (6 digits) or a recovery code; returns ``"totp"`` or ``"recovery-code"``.

    A TOTP code is good once: a replayed or older code is refused. A recovery code is spent. Failures count
    towards the lockout and are audited. The caller commits, whatever the outcome.
    """
    now = now or utcnow()
    if user.disabled_at is not None or user.totp_enabled_at is None:
        raise SignInRefused()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(user.locked_until)
    entered = _normalise_code(code)
    if re.fullmatch(r"\d{6}", entered):
        secret = _open_secret(session, keys, user)
        step = _matching_step(secret, entered, now)
        if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
            raise _refuse(session, user, policy=policy, reason="second-factor", ip=ip, now=now)
        user.totp_last_step = step
        if user.totp_key_version != keys.active_version(session, user.tenant_id):
            _seal_secret(session, keys, user, secret)  # moves to the current tenant key version on use
        kind = "totp"
    else:
        digest = _digest(_RECOVERY_DOMAIN, entered)
        spent = session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == digest, RecoveryCode.used_at.is_(None))
            .values(used_at=now)
            .returning(RecoveryCode.id)
        ).first()
        if spent is None:
            raise _refuse(session, user, policy=policy, reason="second-factor", ip=ip, now=now)
        kind = "recovery-code"
        _audit(session, user, actor=actor_of(user), action="user.recovery-code", outcome="used", ip=ip, now=now)
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    return kind


def reset_second_factor(session: Session, *, user: User, actor: str, now: datetime | None = None) -> None:
    """Forget the user's second factor and recovery codes and end their sessions (they enrol again); audited."""
    user.totp_secret = user.totp_key_version = user.totp_enabled_at = user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    end_sessions(session, user=user)
    _audit(session, user, actor=actor, action="user.second-factor", outcome="reset", now=now)


def rewrap_totp_secrets(session: Session, *, keys: KeyManager, tenant_id: int) -> int:
    """Reseal the tenant's TOTP secrets under its active key version (run with a tenant key rotation)."""
    active = keys.active_version(session, tenant_id)
    n = 0
    for user in session.scalars(
        select(User).where(User.tenant_id == tenant_id, User.totp_secret.is_not(None), User.totp_key_version != active)
    ):
        _seal_secret(session, keys, user, _open_secret(session, keys, user))
        n += 1
    session.flush()
    return n


# -- sessions ---------------------------------------------------------------------------------------------


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
            token_hash=_digest(_TOKEN_DOMAIN, token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + limits.lifetime,
            reauth_at=now,
            ip=ip,
        )
    )
    user.last_login_at = now
    session.flush()
    _audit(session, user, actor=actor_of(user), action="user.sign-in", ip=ip, now=now)
    return token


def resolve_session(
    session: Session, *, token: str, limits: SessionLimits = SessionLimits(), now: datetime | None = None
) -> tuple[DashboardSession, User] | None:
    """The live session of ``token`` and its user, or None (unknown, expired, idle too long, user disabled)."""
    now = now or utcnow()
    row = session.scalar(select(DashboardSession).where(DashboardSession.token_hash == _digest(_TOKEN_DOMAIN, token)))
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


def mark_reauthenticated(session: Session, *, row: DashboardSession, now: datetime | None = None) -> None:
    """Record a fresh second-factor check on this session (for actions that need one)."""
    row.reauth_at = now or utcnow()
    session.flush()


def end_session(session: Session, *, token: str) -> None:
    """Sign out: forget the session of ``token``."""
    session.execute(delete(DashboardSession).where(DashboardSession.token_hash == _digest(_TOKEN_DOMAIN, token)))
    session.flush()


def end_sessions(session: Session, *, user: User) -> int:
    """End every session of ``user``; returns how many there were."""
    rows = session.scalars(select(DashboardSession.id).where(DashboardSession.user_id == user.id)).all()
    session.execute(delete(DashboardSession).where(DashboardSession.user_id == user.id))
    session.flush()
    return len(rows)


# -- the dashboard allowlist ------------------------------------------------------------------------------


def dashboard_cidrs(session: Session, *, tenant_id: int) -> list[str]:
    """The tenant's dashboard ranges (empty: only the global allowlist applies)."""
    row = session.get(DashboardAllowlist, tenant_id)
    return list(row.cidrs) if row is not None else []


def dashboard_allows(session: Session, *, tenant_id: int, ip: str | None) -> bool:
    """Whether the tenant's dashboard allowlist lets ``ip`` in (an unparseable address never)."""
    cidrs = dashboard_cidrs(session, tenant_id=tenant_id)
    if not cidrs:
        return True
    try:
        address: IPAddress = parse_ip(ip or "")
    except AddressError:
        return False
    return in_any(address, (parse_network(c, allow_broad=True) for c in cidrs))


def set_dashboard_cidrs(
    session: Session,
    *,
    tenant_id: int,
    cidrs: Iterable[str],
    actor: str,
    current_ip: str | None,
    allow_broad: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Replace the tenant's dashboard ranges; refused if they would shut out ``current_ip``. Audited."""
    networks: list[str] = []
    for text in cidrs:
        text = text.strip()
        if not text:
            continue
        try:
            network = str(parse_network(text, allow_broad=allow_broad))
        except AddressError as exc:
            raise UserError(f"range {text!r}: {exc}") from None
        if network not in networks:
            networks.append(network)
    if networks and current_ip is not None:
        try:
            inside = in_any(parse_ip(current_ip), (parse_network(n, allow_broad=True) for n in networks))
        except AddressError:
            inside = False
        if not inside:
            raise UserError("these ranges would shut out the address you are using now; include it")
    row = session.get(DashboardAllowlist, tenant_id)
    if row is None:
        row = DashboardAllowlist(tenant_id=tenant_id, cidrs=networks, updated_by=actor[:100])
        session.add(row)
    else:
        row.cidrs, row.updated_by = networks, actor[:100]
    session.flush()
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="dashboard.allowlist",
        ip=current_ip,
        purpose="administration",
        details={"cidrs": networks},
        now=now,
    )
    return networks
