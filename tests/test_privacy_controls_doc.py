"""docs/privacy-controls.md names real code and real tests: a renamed or deleted test breaks this test.

Rows whose proof is still being built carry "pending" in their Pending column: allowed, and listed (run
with ``-rP`` to see the list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "privacy-controls.md"
REF = re.compile(r"`([\w./-]+)(?:::(\w+))?`")


@dataclass(frozen=True)
class Row:
    table: str
    promise: str
    code: list[tuple[str, str | None]]
    tests: list[tuple[str, str | None]]
    pending: str


def rows() -> list[Row]:
    out: list[Row] = []
    table = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            table = line[3:].strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) != 4 or cells[0] in ("Promise", "Rule") or set(cells[0]) <= {"-", " "}:
            continue
        code, tests = ([(path, name or None) for path, name in REF.findall(cell)] for cell in cells[1:3])
        out.append(Row(table, cells[0], code, tests, cells[3]))
    return out


def defines(path: Path, name: str) -> bool:
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE) is not None


def test_the_document_maps_both_tables() -> None:
    tables = {r.table for r in rows()}
    assert any("privacy policy" in t for t in tables) and any("Data Protection Policy" in t for t in tables)
    promises = " ".join(r.promise.lower() for r in rows())
    for topic in ("collection", "shipping labels", "allowlist", "encrypted", "retention", "access", "correction",
                  "deletion", "identity", "logged", "shared"):  # fmt: skip
        assert topic in promises, topic


@pytest.mark.parametrize("row", rows(), ids=lambda r: r.promise[:50])
def test_every_row_is_proven_or_says_pending(row: Row) -> None:
    assert row.tests or row.pending.lower().startswith("pending"), "map a test or mark the row pending"
    assert not row.pending or row.pending.lower().startswith("pending"), "the Pending column says 'pending: …'"


@pytest.mark.parametrize("row", [r for r in rows() if r.tests], ids=lambda r: r.promise[:50])
def test_every_mapped_test_exists(row: Row) -> None:
    for path, name in row.tests:
        file = ROOT / path
        assert path.startswith("tests/") and file.is_file(), f"{path} does not exist"
        assert name is not None and name.startswith("test_"), f"{path}: name the test function"
        assert defines(file, name), f"{path}::{name} no longer exists"


@pytest.mark.parametrize("row", [r for r in rows() if r.code], ids=lambda r: r.promise[:50])
def test_every_mapped_piece_of_code_exists(row: Row) -> None:
    for path, name in row.code:
        file = ROOT / path
        assert file.is_file(), f"{path} does not exist"
        if name is not None:
            assert defines(file, name), f"{path}::{name} no longer exists"


def test_pending_rows_are_listed() -> None:
    pending = [f"{r.table}: {r.promise} -> {r.pending}" for r in rows() if r.pending]
    print("\n".join(["pending rows in docs/privacy-controls.md:", *pending]))
    assert all(p.split("-> ", 1)[1] for p in pending)
