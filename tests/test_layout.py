"""The test tree's layout: tests and benchmarks share tests/support, never each other.

A test module or conftest imported as a library runs its module-level code (and, for a conftest, drags its
fixtures along) wherever it is imported, and couples two test files so that moving one breaks the other. So
every helper two places need lives in ``tests/support``, and nothing under ``tests/`` or ``bench/`` imports
a ``test_*`` module or a ``conftest``. And one naming pattern: under ``tests/``, besides ``tests/support``,
only ``test_*.py`` files, conftests and package markers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "bench")
ALLOWED_NAMES = {"conftest.py", "__init__.py"}


def module_name(path: Path, root: Path) -> str:
    """The dotted name ``path`` is imported under, ``root`` being the directory on ``sys.path``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports or names as a pytest plugin; ``from a import b`` counts ``a`` and ``a.b``
    (``b`` may be a module), relative imports resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            found.update(
                c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return found


def is_test_module(name: str) -> bool:
    """A test module or a conftest of the tests package (a package of the same name elsewhere is not)."""
    last = name.rpartition(".")[2]
    return name.split(".")[0] == "tests" and (last == "conftest" or last.startswith("test_"))


def imports_of_test_modules(root: Path) -> list[str]:
    """``FILE imports MODULE`` for each test module or conftest imported by a file under tests/ or bench/."""
    return sorted(
        f"{path.relative_to(root)} imports {module}"
        for top in SCANNED
        for path in (root / top).rglob("*.py")
        for module in imported_modules(path, root)
        if is_test_module(module)
    )


def misnamed_files(root: Path) -> list[str]:
    """Files under tests/ outside tests/support that are neither ``test_*.py`` nor a conftest or ``__init__``."""
    tests = root / "tests"
    return [
        str(path.relative_to(root))
        for path in sorted(tests.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.relative_to(tests).parts[0] != "support"
        and path.name not in ALLOWED_NAMES
        and not (path.name.startswith("test_") and path.suffix == ".py")
    ]


def test_no_test_module_or_conftest_is_imported() -> None:
    assert imports_of_test_modules(ROOT) == []


def test_test_files_follow_one_naming_pattern() -> None:
    assert misnamed_files(ROOT) == []


def test_the_checks_see_every_kind_of_violation(tmp_path: Path) -> None:
    """The two checks above pass only because the tree is clean, not because they cannot see a violation."""
    (tmp_path / "bench").mkdir()
    pkg = tmp_path / "tests" / "vault"
    (tmp_path / "tests" / "support").mkdir(parents=True)
    pkg.mkdir()
    for init in (tmp_path / "tests" / "__init__.py", pkg / "__init__.py"):
        init.write_text("")
    (pkg / "conftest.py").write_text("")
    (pkg / "test_a.py").write_text("from .conftest import account\nfrom . import test_b\n")
    (pkg / "test_b.py").write_text("import tests.vault.test_a\nfrom tests.support.vault import make_account\n")
    (pkg / "helpers.py").write_text("")
    (pkg / "data.json").write_text("{}")
    (tmp_path / "tests" / "conftest.py").write_text('pytest_plugins = ["tests.vault.conftest"]\n')
    (tmp_path / "tests" / "support" / "servers.py").write_text("")
    (tmp_path / "bench" / "run.py").write_text("from tests.vault.conftest import make_account\n")

    assert imports_of_test_modules(tmp_path) == [
        "bench/run.py imports tests.vault.conftest",
        "tests/conftest.py imports tests.vault.conftest",
        "tests/vault/test_a.py imports tests.vault.conftest",
        "tests/vault/test_a.py imports tests.vault.test_b",
        "tests/vault/test_b.py imports tests.vault.test_a",
    ]
    assert misnamed_files(tmp_path) == ["tests/vault/data.json", "tests/vault/helpers.py"]
