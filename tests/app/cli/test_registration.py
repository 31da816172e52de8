"""Registering the CLI only adds commands: process-wide configuration is the app factory's job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app import cli
from vault import retention


@pytest.fixture(autouse=True)
def default_rules() -> Iterator[None]:
    yield
    retention.configure(delivery_allowance_days=retention.DEFAULT_DELIVERY_ALLOWANCE_DAYS)


def allowance() -> int:
    return retention.platform_rules().for_marketplace("amazon").delivery_allowance_days


def test_create_app_sets_the_retention_rules_of_the_process(make_app: Any) -> None:
    make_app(retention_delivery_allowance_days=3)
    assert allowance() == 3


def test_registering_the_commands_changes_no_process_setting(make_app: Any) -> None:
    app = make_app(retention_delivery_allowance_days=9)
    retention.configure(delivery_allowance_days=5)  # e.g. another app of this process, built since
    cli.init_app(app)
    assert allowance() == 5
    assert set(app.cli.commands) >= {command.name for command in cli.COMMANDS}
