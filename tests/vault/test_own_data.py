"""The seller's own people: see, correct and erase their own account data; an owner for a departed user;
the audit chain names only the user's id."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.models import AuditEvent, Tenant, User
from vault.users import accounts, own_data
from vault.users.base import UserError


def make(session: Session, tenant: Tenant, email: str, role: str) -> User:
    return accounts.create_user(session, tenant=tenant, email=email, role=role, password="x" * 16, actor="test")


def test_a_user_sees_and_corrects_their_data_and_an_owner_erases_a_departed_user(
    session: Session, tenant: Tenant
) -> None:
    owner = make(session, tenant, "boss@seller.example", "owner")
    clerk = make(session, tenant, "mei.lin@seller.example", "operator")
    export = own_data.export_own_data(session, by=clerk, user=clerk)
    assert export["user"]["email"] == "mei.lin@seller.example"
    assert own_data.correct_own_data(session, by=clerk, user=clerk, display_name="Lin Mei") == ["display_name"]
    with pytest.raises(UserError, match="only the user themself or an owner"):
        own_data.erase_own_data(session, by=clerk, user=owner)
    own_data.erase_own_data(session, by=owner, user=clerk)
    assert clerk.email == f"erased-user-{clerk.id}@erased.invalid" and clerk.password_hash is None
    assert clerk.disabled_at is not None
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action.like("user.data.%"))
    ).all()
    assert [e.action for e in events] == ["user.data.access", "user.data.correct", "user.data.erase"]
    blob = json.dumps([[e.actor, e.details] for e in events]).lower()
    assert "mei" not in blob and "lin" not in blob and "@" not in blob
    assert events[-1].actor == f"user:{owner.id}" and events[-1].details == {"user": clerk.id}


def test_the_last_owner_cant_erase_themself(session: Session, tenant: Tenant) -> None:
    owner = make(session, tenant, "only@seller.example", "owner")
    with pytest.raises(UserError, match="last owner"):
        own_data.erase_own_data(session, by=owner, user=owner)
