"""``labelvault``, the console script: the same commands as ``flask``, from any directory, state where settings say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from app.cli import COMMANDS, labelvault_cli

ROOT = Path(__file__).resolve().parents[3]
FLASK = Path(sys.executable).parent / "flask"


def environment(instance: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any labelvault or Flask app setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABELVAULT_", "FLASK_"))}
    return {**env, "PYTHONPATH": str(ROOT), "LABELVAULT_INSTANCE_PATH": str(instance), **settings}


def labelvault(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # `python -m app.cli` is what the console script runs (app.cli:main), without installing the package.
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def listed_commands(help_text: str) -> set[str]:
    return set(re.findall(r"^  ([a-z][\w-]*)  ", help_text.partition("Commands:")[2], flags=re.MULTILINE))


def test_labelvault_offers_the_same_commands_as_flask(tmp_path: Path) -> None:
    env = environment(tmp_path / "instance")
    ours = labelvault(tmp_path, env, "--help")
    flask = subprocess.run(
        [str(FLASK), "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.startswith("Usage: labelvault [OPTIONS] COMMAND [ARGS]...")
    assert listed_commands(ours.stdout) == listed_commands(flask.stdout)
    assert {c.name for c in COMMANDS} | {"run", "shell", "routes"} <= listed_commands(ours.stdout)
    assert "--app" not in ours.stdout  # labelvault always builds its own app
    assert ours.stderr == ""


def test_labelvault_runs_outside_the_repository_with_its_state_in_the_instance_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    instance = tmp_path / "state"
    env = environment(instance)
    init = labelvault(elsewhere, env, "vault", "init")
    assert init.returncode == 0, init.stderr
    assert "database ready (sqlite)" in init.stdout
    assert labelvault(elsewhere, env, "tenants", "create", "acme", "--name", "Acme Trading").returncode == 0
    listed = labelvault(elsewhere, env, "tenants", "list")
    assert listed.returncode == 0 and listed.stdout.startswith("acme\tAcme Trading\tactive")
    assert (instance / "labelvault.db").is_file() and (instance / "keyring.json").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written where it was run


def test_an_invalid_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = environment(tmp_path / "instance", LABELVAULT_KEY_CACHE_MAX_USES="0")
    run = labelvault(tmp_path, env, "vault", "status")
    assert run.returncode != 0
    assert "LABELVAULT_KEY_CACHE_MAX_USES" in run.stderr and "Traceback" not in run.stderr
    assert "No such command" not in run.stderr
    # Help still lists every group and says what is wrong, in one line.
    listing = labelvault(tmp_path, env, "--help")
    assert listing.returncode == 0
    assert {c.name for c in COMMANDS} <= listed_commands(listing.stdout)
    assert [line for line in listing.stderr.splitlines() if line.strip()] == [
        next(line for line in listing.stderr.splitlines() if "LABELVAULT_KEY_CACHE_MAX_USES" in line)
    ]
    assert labelvault(tmp_path, env, "vault", "rotate", "--help").returncode == 0


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
    return found


@pytest.mark.parametrize(
    ("path", "command"),
    [pytest.param(path, command, id=" ".join(path)) for path, command in every_command(click.Group(commands=COMMANDS))],
)
def test_every_command_explains_itself_with_help(
    path: tuple[str, ...], command: click.Command, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LABELVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    result: Any = CliRunner().invoke(labelvault_cli(), [*path, "--help"], prog_name="labelvault")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: labelvault {' '.join(path)} ")
    summary = command.get_short_help_str(limit=60).removesuffix("...")
    assert summary and summary in " ".join(result.output.split())
