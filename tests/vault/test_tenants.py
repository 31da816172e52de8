"""Creating a tenant: its slug follows one rule, said in the refusal, and a refused tenant leaves nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.errors import TenantSetupError
from vault.keys import KeyManager
from vault.models import Tenant, TenantKey
from vault.tenants import create_tenant


@pytest.mark.parametrize(
    "slug", ["ab", "x" * 64, "Acme", "acme_trading", "acme trading", "-acme", "acme/eu", "ａｃｍｅ", "", "acme\n"]
)
def test_a_slug_breaking_the_rule_is_refused_with_the_rule(session: Session, keys: KeyManager, slug: str) -> None:
    before = session.scalar(select(func.count()).select_from(Tenant))
    with pytest.raises(TenantSetupError, match="3 to 63 lowercase letters, digits and hyphens"):
        create_tenant(session, keys=keys, slug=slug, name="Acme", actor="test")
    assert session.scalar(select(func.count()).select_from(Tenant)) == before


def test_a_slug_of_lowercase_letters_digits_and_hyphens_is_taken(session: Session, keys: KeyManager) -> None:
    for slug in (f"a{uuid.uuid4().hex[:2]}", f"{uuid.uuid4().hex[:8]}-jp-2", "9" + uuid.uuid4().hex[:31] + "x" * 31):
        tenant = create_tenant(session, keys=keys, slug=slug, name="Acme", actor="test")
        assert session.scalar(select(func.count()).where(TenantKey.tenant_id == tenant.id)) == 1
