"""Fixtures of the print agent's tests: the real label API served on loopback, a world of orders in it, and
a fake Zebra printer."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from printagent.fakeprinter import FakeZebra
from tests.support.printing import UNLIMITED, served
from tests.support.servers import Database
from tests.support.world import World, build_world
from vault.keys import KeyManager


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=4)


@pytest.fixture
def vault_url(make_app: Any, shared_db: Database) -> Iterator[str]:
    with served(make_app(shared_db.app_url, **UNLIMITED)) as url:
        yield url


@pytest.fixture
def zebra() -> Iterator[FakeZebra]:
    with FakeZebra() as fake:
        yield fake


@pytest.fixture
def out() -> io.StringIO:
    """The agent's console: its status lines."""
    return io.StringIO()
