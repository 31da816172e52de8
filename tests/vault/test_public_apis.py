"""The domain uses its dependencies' public APIs only: no private attributes, no name-mangled names, no
reading an object's state through its pickling or instance-dict hooks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p for package in ("vault", "connectors") for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts
)
#: Underscored names that are public API: a named tuple's methods and fields (underscored so as not to
#: clash with field names).
PUBLIC_UNDERSCORED = {"_make", "_fields", "_asdict", "_replace", "_field_defaults"}
#: Dunder attributes that read or rebuild another object's internal state.
STATE_HOOKS = {"__reduce__", "__reduce_ex__", "__getstate__", "__setstate__", "__dict__", "__closure__", "__code__"}


def _private_uses(path: Path) -> list[tuple[int, str]]:
    """``(line, attribute)`` of every use of another object's private state in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        name, owner = node.attr, node.value
        own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
        dunder = name.startswith("__") and name.endswith("__")
        mangled = name.startswith("_") and "__" in name[1:] and not dunder
        if (
            mangled
            or name in STATE_HOOKS
            or (name.startswith("_") and not dunder and not own and name not in PUBLIC_UNDERSCORED)
        ):
            found.append((node.lineno, name))
    return sorted(found)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_internals_of_other_objects(path: Path) -> None:
    assert _private_uses(path) == []


def test_the_check_sees_the_tricks_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "n = counter.__reduce__()[1][0]\n"
        "storage._MemoryStorage__schedule_expiry()\n"
        "limiter._storage.reset()\n"
        "row._fields, self._cache\n"
    )
    assert _private_uses(sample) == [(1, "__reduce__"), (2, "_MemoryStorage__schedule_expiry"), (3, "_storage")]
