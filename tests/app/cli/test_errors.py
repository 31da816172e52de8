"""Every command fails in one line an operator can act on: no traceback, no secret, a non-zero exit.

Run as an operator runs them, in a subprocess: the ``labelvault`` console script, ``python -m app.cli``
and ``flask`` in the repository, each importing this checkout (PYTHONPATH).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PASSWORD = "pw-s3cret-4711"
#: The three ways to run a command: the console script, its module, and Flask's CLI on wsgi.py.
RUNNERS = {
    "labelvault": [str(BIN / "labelvault")],
    "python -m app.cli": [sys.executable, "-m", "app.cli"],
    "flask": [str(BIN / "flask")],
}
#: Every case runs through the console script in the fast suite; the module and Flask's CLI share its error
#: handling (app/cli/errors.py) and run in the full suite, as each start costs a second or more.
RUNNER_PARAMS = [
    pytest.param(name, marks=() if name == "labelvault" else pytest.mark.slow, id=name) for name in RUNNERS
]


def run(runner: str, tmp_path: Path, *args: str, path: str = "", **settings: str) -> subprocess.CompletedProcess[str]:
    """``runner args`` with only ``settings`` configured (no AWS region anywhere), in the repository (flask
    finds wsgi.py there) or in ``tmp_path`` (labelvault runs from anywhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABELVAULT_", "FLASK_", "AWS_"))}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no")}
    env |= {"PYTHONPATH": os.pathsep.join(p for p in (path, str(ROOT)) if p)}
    env |= {"LABELVAULT_INSTANCE_PATH": str(tmp_path / "instance"), **settings}
    cwd = ROOT if runner == "flask" else tmp_path
    return subprocess.run(
        [*RUNNERS[runner], *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single line on stderr of a failed command (asserting it is single, plain and final)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stdout
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "No such command" not in result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize("runner", RUNNER_PARAMS)
def test_every_configuration_problem_is_reported_at_once(runner: str, tmp_path: Path) -> None:
    line = one_line_error(
        run(
            runner,
            tmp_path,
            "vault",
            "status",
            LABELVAULT_ENV="production",
            LABELVAULT_KEY_CACHE_MAX_USES="0",  # invalid values ...
            LABELVAULT_ALARM_WINDOW="soon",
            LABELVAULT_RATE_LIMIT_IP="many",  # ... a valid type with a bad value ...
            LABELVAULT_SECRET_KEY="short-" + PASSWORD,  # ... and production's own rules
        )
    )
    for name in ("KEY_CACHE_MAX_USES", "ALARM_WINDOW", "RATE_LIMIT_IP", "SECRET_KEY", "GLOBAL_ALLOWLIST"):
        assert f"LABELVAULT_{name}" in line
    assert PASSWORD not in line
    assert "local keyring" in line  # the production rule on the key provider, checked with the rest


@pytest.mark.parametrize("runner", RUNNER_PARAMS)
def test_a_relative_instance_path_is_refused(runner: str, tmp_path: Path) -> None:
    line = one_line_error(run(runner, tmp_path, "tenants", "list", LABELVAULT_INSTANCE_PATH="state"))
    assert "LABELVAULT_INSTANCE_PATH must be an absolute path, not 'state'" in line
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("runner", RUNNER_PARAMS)
def test_an_unreachable_database_is_named_with_its_password_masked(runner: str, tmp_path: Path) -> None:
    url = f"postgresql+psycopg://labelvault:{PASSWORD}@127.0.0.1:{unused_port()}/labelvault"
    result = run(runner, tmp_path, "vault", "init", LABELVAULT_DATABASE_URL=url)
    line = one_line_error(result)
    assert line.startswith("Error: database postgresql+psycopg://labelvault:***@127.0.0.1:")
    assert "refused" in line.lower()
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("runner", RUNNER_PARAMS)
def test_a_kms_key_without_a_region_says_how_to_name_one(runner: str, tmp_path: Path) -> None:
    line = one_line_error(
        run(
            runner,
            tmp_path,
            "vault",
            "status",
            LABELVAULT_KEY_PROVIDER="aws-kms",
            LABELVAULT_KMS_KEY_ID="alias/labelvault",
        )
    )
    assert "'alias/labelvault' needs a region" in line and "LABELVAULT_KMS_REGION" in line


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"mysql://labelvault:{PASSWORD}@db.example/labelvault", "'mysql' is not supported"),
        (f"postgresql+psycopg2://labelvault:{PASSWORD}@db.example/labelvault", "driver 'psycopg2' is not installed"),
        (f"labelvault:{PASSWORD}@db.example", "is not a database URL"),
    ],
)
@pytest.mark.parametrize("runner", RUNNER_PARAMS)
def test_an_unsupported_database_url_is_refused_without_quoting_it(
    runner: str, url: str, reason: str, tmp_path: Path
) -> None:
    result = run(runner, tmp_path, "vault", "init", LABELVAULT_DATABASE_URL=url)
    line = one_line_error(result)
    assert "LABELVAULT_DATABASE_URL" in line and reason in line
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("runner", RUNNER_PARAMS)
def test_a_missing_module_is_one_line_not_no_such_command(runner: str, tmp_path: Path) -> None:
    # A module the dashboard imports when the app is built, shadowed by one that fails as a missing one does.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "segno.py").write_text("raise ModuleNotFoundError(\"No module named 'segno'\", name='segno')\n")
    line = one_line_error(run(runner, tmp_path, "tenants", "list", path=str(shadow)))
    assert "cannot load labelvault: No module named 'segno'" in line


def test_help_still_lists_the_commands_and_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    result = run("labelvault", tmp_path, "--help", LABELVAULT_INSTANCE_PATH="state", LABELVAULT_ALARM_WINDOW="0")
    assert result.returncode == 0 and "vault" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "LABELVAULT_INSTANCE_PATH" in lines[0] and "LABELVAULT_ALARM_WINDOW" in lines[0]
