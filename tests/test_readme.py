"""The README stays true: every setting is in its configuration table, and its two commands exist."""

from __future__ import annotations

import os
import re
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `LABELVAULT_([A-Z0-9_]+)` \|", README, flags=re.MULTILINE))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from README's configuration table"
    assert documented - settings == set(), "README documents settings that don't exist"


def test_the_two_commands_exist_and_are_executable() -> None:
    commands = re.findall(r"^(\./scripts/\w+)", README, flags=re.MULTILINE)
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK)
