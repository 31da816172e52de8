"""Dashboard users: passwords (argon2id), TOTP with replay protection, recovery codes, lockout, sessions,
invitations, roles, the dashboard allowlist."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.dashboard import wrong_code
from vault import rotation
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.models import AuditEvent, Tenant, User, utcnow
from vault.sealed import TOTP_SECRETS
from vault.users import accounts, allowlist, base, invitations, passwords, roles, second_factor, sessions, signin

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(passwords, "_DUMMY_HASH", [])


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:8]}@seller.example"


def _user(session: Session, tenant: Tenant, role: str = "owner") -> User:
    return accounts.create_user(session, tenant=tenant, email=_email(), role=role, password=PASSWORD, actor="test")


def _enrol(session: Session, keys: KeyManager, user: User) -> pyotp.TOTP:
    totp = pyotp.TOTP(second_factor.start_enrolment(session, keys=keys, user=user).secret)
    now = utcnow()
    second_factor.confirm_enrolment(session, keys=keys, user=user, code=totp.at(now - timedelta(seconds=30)), now=now)
    return totp


def test_passwords_are_argon2id_hashes(session: Session, tenant: Tenant) -> None:
    user = _user(session, tenant)
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert signin.check_password(session, email=user.email.upper(), password=PASSWORD) is user


def test_weak_passwords_and_duplicate_addresses_are_refused(session: Session, tenant: Tenant) -> None:
    with pytest.raises(base.UserError, match="at least 12"):
        accounts.create_user(session, tenant=tenant, email=_email(), role="owner", password="short", actor="t")
    user = _user(session, tenant)
    with pytest.raises(base.UserError, match="exists already"):
        accounts.create_user(session, tenant=tenant, email=user.email, role="viewer", password=PASSWORD, actor="t")
    with pytest.raises(base.UserError, match="role"):
        accounts.create_user(session, tenant=tenant, email=_email(), role="admin", password=PASSWORD, actor="t")


def test_wrong_password_and_unknown_address_fail_alike(session: Session, tenant: Tenant) -> None:
    user = _user(session, tenant)
    for email, password in ((user.email, "wrong password!!"), ("nobody@seller.example", PASSWORD), ("x", PASSWORD)):
        with pytest.raises(base.SignInRefused) as info:
            signin.check_password(session, email=email, password=password)
        assert str(info.value) == "sign-in failed"
    assert user.failed_logins == 1


def test_repeated_failures_lock_the_account(session: Session, tenant: Tenant) -> None:
    user = _user(session, tenant)
    policy = signin.LoginPolicy(max_failures=3, lockout=timedelta(minutes=15))
    now = utcnow()
    for _ in range(2):
        with pytest.raises(base.SignInRefused):
            signin.check_password(session, email=user.email, password="wrong password!!", policy=policy, now=now)
    with pytest.raises(base.AccountLocked) as info:
        signin.check_password(session, email=user.email, password="wrong password!!", policy=policy, now=now)
    assert info.value.until == now + timedelta(minutes=15)
    with pytest.raises(base.AccountLocked):  # even the right password, until the lockout ends
        signin.check_password(session, email=user.email, password=PASSWORD, policy=policy, now=now)
    later = now + timedelta(minutes=16)
    assert signin.check_password(session, email=user.email, password=PASSWORD, policy=policy, now=later) is user
    outcomes = session.scalars(
        select(AuditEvent.outcome).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "user.sign-in")
    ).all()
    assert outcomes == ["refused:password"] * 3 + ["refused:locked", "ok:password"]  # every attempt audited


def test_totp_codes_are_good_once(session: Session, tenant: Tenant, keys: KeyManager) -> None:
    user = _user(session, tenant)
    totp = _enrol(session, keys, user)
    assert user.totp_secret is not None and totp.secret.encode() not in user.totp_secret  # sealed
    now = utcnow()
    code = totp.at(now)
    assert second_factor.check_second_factor(session, keys=keys, user=user, code=code, now=now) == "totp"
    with pytest.raises(base.SignInRefused):  # the same code again: a replay
        second_factor.check_second_factor(session, keys=keys, user=user, code=code, now=now)
    with pytest.raises(base.SignInRefused):  # an older one
        second_factor.check_second_factor(
            session, keys=keys, user=user, code=totp.at(now - timedelta(seconds=30)), now=now
        )
    nxt = now + timedelta(seconds=30)
    assert second_factor.check_second_factor(session, keys=keys, user=user, code=totp.at(nxt), now=nxt) == "totp"


def test_enrolment_needs_a_right_first_code(session: Session, tenant: Tenant, keys: KeyManager) -> None:
    user = _user(session, tenant)
    enrolment = second_factor.start_enrolment(session, keys=keys, user=user)
    assert second_factor.pending_enrolment(session, keys=keys, user=user) == enrolment
    with pytest.raises(base.UserError):
        second_factor.confirm_enrolment(session, keys=keys, user=user, code=wrong_code(enrolment.secret, utcnow()))
    assert user.totp_enabled_at is None
    assert enrolment.uri.startswith("otpauth://totp/labelvault:")


def test_recovery_codes_are_single_use(session: Session, tenant: Tenant, keys: KeyManager) -> None:
    user = _user(session, tenant)
    totp = pyotp.TOTP(second_factor.start_enrolment(session, keys=keys, user=user).secret)
    codes = second_factor.confirm_enrolment(session, keys=keys, user=user, code=totp.now())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert second_factor.check_second_factor(session, keys=keys, user=user, code=codes[0].upper()) == "recovery-code"
    with pytest.raises(base.SignInRefused):
        second_factor.check_second_factor(session, keys=keys, user=user, code=codes[0])
    assert second_factor.recovery_codes_left(session, user=user) == 9


def test_replacing_recovery_codes_voids_the_old_ones_and_is_audited(
    session: Session, tenant: Tenant, keys: KeyManager
) -> None:
    user = _user(session, tenant)
    with pytest.raises(base.UserError, match="no second factor"):  # nothing to replace before enrolment
        second_factor.replace_recovery_codes(session, user=user, actor=base.actor_of(user))
    totp = pyotp.TOTP(second_factor.start_enrolment(session, keys=keys, user=user).secret)
    old = second_factor.confirm_enrolment(session, keys=keys, user=user, code=totp.now())
    new = second_factor.replace_recovery_codes(session, user=user, actor=base.actor_of(user), ip="192.0.2.8")
    assert len(new) == 10 and not set(new) & set(old)
    with pytest.raises(base.SignInRefused):
        second_factor.check_second_factor(session, keys=keys, user=user, code=old[0])
    assert second_factor.check_second_factor(session, keys=keys, user=user, code=new[0]) == "recovery-code"
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "user.recovery-codes")
    ).all()
    assert [(e.actor, e.outcome, e.ip, e.details) for e in events] == [
        (f"user:{user.id}", "replaced", "192.0.2.8", {"user": user.id})
    ]
    assert not any(code in repr(e.details) for e in events for code in new)


def test_sessions_expire_idle_and_end_with_the_user(session: Session, tenant: Tenant, keys: KeyManager) -> None:
    user = _user(session, tenant)
    _enrol(session, keys, user)
    limits = sessions.SessionLimits(lifetime=timedelta(hours=1), idle=timedelta(minutes=10))
    now = utcnow()
    token = sessions.start_session(session, user=user, ip="127.0.0.1", limits=limits, now=now)
    found = sessions.resolve_session(session, token=token, limits=limits, now=now + timedelta(minutes=9))
    assert found is not None and found[1] is user
    assert sessions.resolve_session(session, token=token, limits=limits, now=now + timedelta(minutes=30)) is None
    assert sessions.resolve_session(session, token=token, limits=limits, now=now) is None  # gone for good
    token = sessions.start_session(session, user=user, ip=None, limits=limits, now=now)
    assert sessions.resolve_session(session, token=token + "x", limits=limits, now=now) is None
    second_factor.reset_second_factor(session, user=user, actor="test")
    assert sessions.resolve_session(session, token=token, limits=limits, now=now) is None


def test_invitations_are_one_time_and_expire(session: Session, tenant: Tenant) -> None:
    owner = _user(session, tenant)
    now = utcnow()
    invitation = invitations.invite_user(
        session, tenant_id=tenant.id, email=_email(), role="operator", actor=base.actor_of(owner), now=now
    )
    assert invitation.user.password_hash is None
    with pytest.raises(base.SignInRefused):  # no password yet
        signin.check_password(session, email=invitation.user.email, password=PASSWORD)
    with pytest.raises(NotFound):
        invitations.accept_invitation(session, token=invitation.token, password=PASSWORD, now=now + timedelta(days=4))
    user = invitations.accept_invitation(session, token=invitation.token, password=PASSWORD, now=now)
    assert signin.check_password(session, email=user.email, password=PASSWORD) is user
    with pytest.raises(NotFound):
        invitations.accept_invitation(session, token=invitation.token, password=PASSWORD, now=now)


def test_roles_and_the_last_owner(session: Session, tenant: Tenant) -> None:
    assert roles.may("owner", "users") and roles.may("operator", "label-preview") and roles.may("viewer", "view")
    assert not roles.may("viewer", "label-preview") and not roles.may("operator", "users")
    assert not roles.may("operator", "no-such-permission")
    owner = _user(session, tenant)
    with pytest.raises(base.UserError, match="last owner"):
        accounts.set_role(session, user=owner, role="viewer", actor="test")
    with pytest.raises(base.UserError, match="last owner"):
        accounts.disable_user(session, user=owner, actor="test")
    second = _user(session, tenant)
    accounts.set_role(session, user=owner, role="viewer", actor="test")
    accounts.disable_user(session, user=owner, actor="test")
    assert owner.disabled_at is not None and second.role == "owner"


def test_the_dashboard_allowlist(session: Session, tenant: Tenant) -> None:
    assert allowlist.dashboard_allows(session, tenant_id=tenant.id, ip="203.0.113.9")  # no list: no extra limit
    with pytest.raises(base.UserError, match="shut out"):
        allowlist.set_dashboard_cidrs(
            session, tenant_id=tenant.id, cidrs=["198.51.100.0/24"], actor="test", current_ip="203.0.113.9"
        )
    allowlist.set_dashboard_cidrs(
        session, tenant_id=tenant.id, cidrs=["198.51.100.0/24", "203.0.113.0/28"], actor="t", current_ip="203.0.113.9"
    )
    assert allowlist.dashboard_allows(session, tenant_id=tenant.id, ip="203.0.113.9")
    assert not allowlist.dashboard_allows(session, tenant_id=tenant.id, ip="192.0.2.1")
    assert not allowlist.dashboard_allows(session, tenant_id=tenant.id, ip="not an address")
    with pytest.raises(base.UserError):
        allowlist.set_dashboard_cidrs(session, tenant_id=tenant.id, cidrs=["0.0.0.0/0"], actor="t", current_ip=None)


def test_totp_secrets_follow_a_key_rotation(session: Session, tenant: Tenant, keys: KeyManager) -> None:
    user = _user(session, tenant)
    _enrol(session, keys, user)
    keys.create_tenant_key(session, tenant.id)
    keys._active.clear()  # see the new version now, not after the cache's max age
    result = rotation.rewrap_sealed(session, keys=keys, kind=TOTP_SECRETS, tenant_id=tenant.id)
    assert (result.rewrapped, result.skipped) == (1, 0)
    assert user.totp_key_version == keys.active_version(session, tenant.id)


def test_nothing_secret_is_audited(session: Session, tenant: Tenant, keys: KeyManager) -> None:
    user = _user(session, tenant)
    _enrol(session, keys, user)
    events = session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id)).all()
    assert {e.actor for e in events} <= {"test", f"user:{user.id}"}
    text = repr([(e.details, e.actor) for e in events])
    assert user.email not in text and PASSWORD not in text


def test_a_tenant_rotation_moves_totp_secrets_and_guards_their_old_key(
    session: Session, tenant: Tenant, keys: KeyManager
) -> None:
    from datetime import timedelta

    from vault import rotation
    from vault.errors import KeyVersionInUse
    from vault.models import utcnow

    user = _user(session, tenant)
    _enrol(session, keys, user)
    old = user.totp_key_version
    keys.create_tenant_key(session, tenant.id)
    keys._active.clear()
    later = utcnow() + timedelta(hours=1)
    with pytest.raises(KeyVersionInUse):  # the TOTP secret still needs the old version
        rotation.destroy_tenant_key_version(
            session, keys=keys, tenant_id=tenant.id, version=old, actor="test", now=later
        )
    assert rotation.stale_count(session, keys=keys, tenant_id=tenant.id) == 1
    rotation.rewrap_tenant(session, keys=keys, tenant_id=tenant.id)
    assert user.totp_key_version == keys.active_version(session, tenant.id)
    rotation.destroy_tenant_key_version(session, keys=keys, tenant_id=tenant.id, version=old, actor="test", now=later)
    assert second_factor.open_totp_secret(session, keys=keys, user=user)  # the user's second factor still opens
