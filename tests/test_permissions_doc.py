"""docs/privacy-controls.md's permission table and vault/users/roles.py's PERMISSIONS say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

from vault.users.roles import PERMISSIONS

DOC = Path(__file__).resolve().parent.parent / "docs" / "privacy-controls.md"
ROW = re.compile(r"^\| `([\w-]+)` \| (\w+) \| .+ \|$")


def documented() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Who may do what in the dashboard", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2] for line in section.splitlines() if (m := ROW.match(line))}


def test_the_documented_permission_table_is_the_codes() -> None:
    assert documented() == dict(PERMISSIONS)


def test_buyer_data_leaves_the_dashboard_only_for_owners() -> None:
    assert documented()["rights-access"] == documented()["rights-correction"] == "owner"
