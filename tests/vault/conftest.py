"""Fixtures of the vault tests: a marketplace account of the test tenant."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.support.vault import make_account
from vault.models import MarketplaceAccount, Tenant


@pytest.fixture
def account(session: Session, tenant: Tenant) -> MarketplaceAccount:
    return make_account(session, tenant)
