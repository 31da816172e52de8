"""labelvault installs like a Python package: the console script, the declared dependencies, the wheel.

These tests use the installed distribution in the running venv (``./scripts/bootstrap`` makes it), and run
``labelvault`` from a directory outside the checkout, the way an operator does.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app import create_app

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The top-level packages the distribution ships (pyproject.toml's include list, render/ once it exists).
PACKAGES = sorted({pattern.split(".")[0] for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]})
PRESENT = [name for name in PACKAGES if (ROOT / name / "__init__.py").is_file()]
LOCKS = ["requirements-build.txt", "requirements.txt", "requirements-dev.txt"]


def declared_dependencies() -> set[str]:
    return {canonicalize_name(Requirement(spec).name) for spec in PYPROJECT["project"]["dependencies"]}


def labelvault_script() -> Path:
    script = Path(sys.executable).with_name("labelvault")
    assert script.is_file(), f"{script} is missing: labelvault is not installed in this venv (./scripts/bootstrap)"
    return script


def run_labelvault(*args: str, cwd: Path, instance: Path) -> subprocess.CompletedProcess[str]:
    """``labelvault ARGS`` in ``cwd``, configured only by the instance folder (nothing from this process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABELVAULT_", "FLASK_", "PYTHON"))}
    env["LABELVAULT_INSTANCE_PATH"] = str(instance)
    return subprocess.run(
        [str(labelvault_script()), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def listed_commands(help_text: str) -> set[str]:
    section = help_text.split("\nCommands:\n", 1)[1]
    return set(re.findall(r"^  (\S+)", section, flags=re.MULTILINE))


def test_labelvault_help_works_outside_the_checkout_and_lists_every_command_group(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    result = run_labelvault("--help", cwd=tmp_path, instance=instance)
    assert result.returncode == 0, result.stderr
    # Flask prints a traceback (and still exits 0, listing only its own commands) when the app fails to load.
    assert "Traceback" not in result.stderr, result.stderr
    registered = set(create_app({"instance_path": tmp_path / "in-process"}).cli.commands)
    assert {"vault", "tenants", "clients", "accounts", "sync", "audit", "users", "worker"} <= registered
    assert registered | {"run", "shell", "routes"} <= listed_commands(result.stdout)


def test_labelvault_commands_use_the_instance_folder_from_settings_not_the_current_directory(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    instance = tmp_path / "state"
    for args in (["vault", "init"], ["tenants", "create", "acme", "--name", "Acme Trading"]):
        result = run_labelvault(*args, cwd=elsewhere, instance=instance)
        assert result.returncode == 0, result.stderr
    listing = run_labelvault("tenants", "list", cwd=elsewhere, instance=instance)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split("\t")[:2] == ["acme", "Acme Trading"]
    assert (instance / "labelvault.db").is_file() and (instance / "keyring.json").is_file()
    assert list(elsewhere.iterdir()) == []


def runtime_imports(files: Iterable[Path]) -> Iterator[tuple[str, Path, int]]:
    """(top-level module, file, line) for each absolute import, skipping ``if TYPE_CHECKING:`` blocks."""
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        typing_only: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                typing_only |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name.split(".")[0], path, node.lineno
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0], path, node.lineno


def undeclared_imports(files: Iterable[Path], *, first_party: set[str], declared: set[str]) -> list[str]:
    """Each import that neither the standard library, the project itself nor a declared dependency provides."""
    providers = packages_distributions()
    problems = []
    for module, path, line in runtime_imports(files):
        if module in sys.stdlib_module_names or module in first_party or module == "__future__":
            continue
        dists = {canonicalize_name(dist) for dist in providers.get(module, [])}
        if not dists & declared:
            by = f"installed by {', '.join(sorted(dists))}" if dists else "not installed"
            problems.append(f"{path}:{line} imports {module} ({by}), which pyproject.toml doesn't declare")
    return problems


def test_every_import_of_the_packages_is_a_declared_dependency() -> None:
    files = sorted(path for package in PRESENT for path in (ROOT / package).rglob("*.py"))
    assert len(files) > 50
    problems = undeclared_imports(files, first_party=set(PACKAGES), declared=declared_dependencies())
    assert problems == []


def test_the_import_check_names_undeclared_and_missing_modules(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import flask\n"
        "from app import create_app\n"
        "import pytest\n"
        "if TYPE_CHECKING:\n"
        "    import hypothesis\n"
        "def later():\n"
        "    import labelvault_no_such_module.sub\n"
    )
    problems = undeclared_imports([module], first_party={"app"}, declared={"flask"})
    assert problems == [
        f"{module}:4 imports pytest (installed by pytest), which pyproject.toml doesn't declare",
        f"{module}:8 imports labelvault_no_such_module (not installed), which pyproject.toml doesn't declare",
    ]


def locked(lock: str) -> dict[str, str]:
    """Package → the whole requirement entry (pin, markers, hashes) of a lock file."""
    text = (ROOT / lock).read_text()
    entries = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(.+?)(?=^\S|\Z)", text, flags=re.MULTILINE | re.DOTALL)
    return {canonicalize_name(name): rest for name, rest in entries}


def test_the_locks_pin_every_dependency_with_hashes_and_agree_with_each_other() -> None:
    runtime = locked("requirements.txt")
    assert declared_dependencies() - set(runtime) == set(), "declared but not locked: run ./scripts/lock"
    assert {"setuptools", "pip"} <= set(locked("requirements-build.txt"))
    dev = locked("requirements-dev.txt")
    for lock in LOCKS:
        for name, entry in locked(lock).items():
            assert "--hash=sha256:" in entry, f"{lock}: {name} has no hash; pip --require-hashes would refuse it"
    # The dev lock is constrained by the runtime one, so installing both never moves a runtime pin.
    for name in set(runtime) & set(dev):
        assert runtime[name].split()[0] == dev[name].split()[0], f"{name}: the dev lock disagrees; ./scripts/lock"
    # The demo installs the runtime lock only: no test or lint tool may ride along in it.
    assert {"pytest", "ruff", "mypy", "moto", "playwright", "hypothesis", "pre-commit"} & set(runtime) == set()


def source_files(top: Path) -> set[str]:
    return {
        path.relative_to(top).as_posix()
        for package in PRESENT
        for path in (top / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_ships_every_module_data_file_and_the_console_script(tmp_path: Path) -> None:
    # Built from a copy, so the build's scratch folders never land in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in PRESENT:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation"]
    subprocess.run([*build, "--wheel-dir", str(tmp_path / "dist"), str(src)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("labelvault-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    shipped = {name for name in names if ".dist-info/" not in name}
    assert source_files(src) - shipped == set(), "left out of the wheel: extend pyproject.toml's package-data"
    assert shipped - source_files(src) == set()
    assert "labelvault = app.cli:main" in entry_points


def test_the_pre_commit_hooks_run_tools_from_the_venv() -> None:
    config = ROOT / ".pre-commit-config.yaml"
    pre_commit = Path(sys.executable).with_name("pre-commit")
    subprocess.run([str(pre_commit), "validate-config", str(config)], check=True, timeout=60)
    entries = re.findall(r"^\s+entry: (\S+)", config.read_text(), flags=re.MULTILINE)
    assert entries == [".venv/bin/ruff", ".venv/bin/ruff", ".venv/bin/mypy"]
    for entry in entries:
        assert (ROOT / entry).is_file(), f"{entry} is not installed (./scripts/bootstrap --dev)"
