"""The lockout is keyed per account and source address, with a slower account-wide backstop; unknown
accounts cost and answer the same as known ones, and every attempt is audited without PII."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.dashboard import wrong_code
from vault.keys import KeyManager
from vault.models import AuditEvent, Tenant, User, utcnow
from vault.users import accounts, base, passwords, second_factor, signin

PASSWORD = "correct horse battery staple"
POLICY = signin.LoginPolicy(max_failures=3, lockout=timedelta(minutes=15), account_max_failures=7)
HERE, THERE, ELSEWHERE = "203.0.113.5", "198.51.100.7", "192.0.2.9"


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(passwords, "_DUMMY_HASH", [])


def _user(session: Session, tenant: Tenant) -> User:
    email = f"u-{uuid.uuid4().hex[:8]}@seller.example"
    return accounts.create_user(session, tenant=tenant, email=email, role="owner", password=PASSWORD, actor="test")


def _attempt(session: Session, user: User, password: str, ip: str, **kw: Any) -> User:
    return signin.check_password(session, email=user.email, password=password, ip=ip, policy=POLICY, **kw)


def test_a_lockout_from_one_address_leaves_the_user_in_from_another(session: Session, tenant: Tenant) -> None:
    user = _user(session, tenant)
    now = utcnow()
    for _ in range(2):
        with pytest.raises(base.SignInRefused):
            _attempt(session, user, "wrong password!!", HERE, now=now)
    with pytest.raises(base.AccountLocked):
        _attempt(session, user, "wrong password!!", HERE, now=now)
    with pytest.raises(base.AccountLocked):  # the right password from the guesser's address: still locked
        _attempt(session, user, PASSWORD, HERE, now=now)
    assert _attempt(session, user, PASSWORD, THERE, now=now) is user  # the real user, elsewhere
    assert _attempt(session, user, PASSWORD, HERE, now=now + timedelta(minutes=16)) is user  # the lock ended


def test_guesses_from_many_addresses_meet_the_account_wide_backstop(session: Session, tenant: Tenant) -> None:
    user = _user(session, tenant)
    now = utcnow()
    guesses = [f"203.0.113.{i}" for i in range(1, 8)]  # 7 addresses, one guess each: under every per-address limit
    for ip in guesses[:-1]:
        with pytest.raises(base.SignInRefused):
            _attempt(session, user, "wrong password!!", ip, now=now)
    with pytest.raises(base.AccountLocked):
        _attempt(session, user, "wrong password!!", guesses[-1], now=now)
    with pytest.raises(base.AccountLocked):  # everywhere now
        _attempt(session, user, PASSWORD, ELSEWHERE, now=now)
    accounts.unlock_user(session, user=user, actor="owner")
    assert _attempt(session, user, PASSWORD, ELSEWHERE, now=now) is user


def test_a_correct_password_does_not_reset_the_count_but_a_second_factor_does(
    session: Session, tenant: Tenant, keys: KeyManager
) -> None:
    """Knowing the password must not buy more guesses at the code: only both factors clear the count."""
    user = _user(session, tenant)
    totp = pyotp.TOTP(second_factor.start_enrolment(session, keys=keys, user=user).secret)
    now = utcnow()
    second_factor.confirm_enrolment(session, keys=keys, user=user, code=totp.at(now - timedelta(seconds=30)), now=now)
    for _ in range(2):
        _attempt(session, user, PASSWORD, HERE, now=now)
        with pytest.raises(base.SignInRefused):
            second_factor.check_second_factor(
                session, keys=keys, user=user, code=wrong_code(totp.secret, now), ip=HERE, policy=POLICY, now=now
            )
    _attempt(session, user, PASSWORD, HERE, now=now)
    with pytest.raises(base.AccountLocked):  # the third wrong code, though the password was right each time
        second_factor.check_second_factor(
            session, keys=keys, user=user, code=wrong_code(totp.secret, now), ip=HERE, policy=POLICY, now=now
        )
    later = now + timedelta(minutes=16)
    _attempt(session, user, PASSWORD, HERE, now=later)
    code = totp.at(later)
    assert second_factor.check_second_factor(
        session, keys=keys, user=user, code=code, ip=HERE, policy=POLICY, now=later
    )
    for _ in range(2):  # a clean count again
        with pytest.raises(base.SignInRefused):
            _attempt(session, user, "wrong password!!", HERE, now=later)


def test_an_unknown_account_costs_one_argon2_verification_and_is_audited_without_the_address(
    session: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            verified.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(passwords, "HASHER", Counting(time_cost=1, memory_cost=1024, parallelism=1))
    user = _user(session, tenant)
    email = f"nobody-{uuid.uuid4().hex[:6]}@seller.example"
    for address in (email, "not an address"):
        with pytest.raises(base.SignInRefused) as unknown:
            signin.check_password(session, email=address, password=PASSWORD, ip=HERE)
    with pytest.raises(base.SignInRefused) as known:
        signin.check_password(session, email=user.email, password="wrong password!!", ip=HERE)
    assert str(unknown.value) == str(known.value)
    assert len(verified) == 3 and verified[0] == verified[1] != user.password_hash  # the dummy hash
    assert verified[0].startswith("$argon2id$") and verified[2] == user.password_hash
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id.is_(None), AuditEvent.outcome == "refused:unknown-account")
    ).all()
    mine = [e for e in events if e.ip == HERE]
    assert len(mine) >= 2
    for event in mine:
        assert email not in str(event.details) and "nobody" not in str(event.details) and event.actor == "anonymous"
