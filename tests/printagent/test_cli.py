"""``labelvault-print`` as a packing station runs it: the key from the OS keyring or the environment (never
the command line), printers named on the command line, one status line per scan, the shift's summary, an
exit code a WMS can act on, and no file written anywhere."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from printagent import cli
from printagent.agent import ExitCode
from printagent.credentials import ENV_KEY, KEYRING_SERVICE, KeyMissing, api_key
from printagent.fakeprinter import FakeZebra
from printagent.printers import CupsPrinter, ZebraPrinter
from tests.support.printing import MemoryKeyring
from tests.support.world import World, assert_no_pii

ROOT = Path(__file__).resolve().parents[2]
VAULT = "https://labels.example.com"


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.delenv(ENV_KEY, raising=False)
    previous = keyring.get_keyring()
    store = MemoryKeyring()
    keyring.set_keyring(store)
    yield store
    keyring.set_keyring(previous)


def run(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = cli.run(list(argv), stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_key_set_stores_the_key_in_the_os_keyring_under_the_vaults_url(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt: "lv_station-key\n")
    code, out = run("key", "set", "--vault", VAULT + "/")
    assert code == ExitCode.OK
    assert memory_keyring.entries == {(KEYRING_SERVICE, VAULT): "lv_station-key"}
    assert "lv_station-key" not in out
    assert api_key(VAULT) == "lv_station-key"
    assert run("key", "delete", "--vault", VAULT) == (
        ExitCode.OK,
        f"removed the API key for {VAULT} from the OS keyring\n",
    )
    with pytest.raises(KeyMissing, match=f"labelvault-print key set --vault {VAULT}"):
        api_key(VAULT)


def test_the_environment_variable_wins_over_the_keyring(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_keyring.set_password(KEYRING_SERVICE, VAULT, "from-keyring")
    monkeypatch.setenv(ENV_KEY, "from-env")
    assert api_key(VAULT) == "from-env"


def test_without_a_key_the_agent_says_how_to_store_one_and_exits_with_usage(
    memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run("scan", "--vault", VAULT, "--printer", "zebra:127.0.0.1")
    assert code == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"labelvault-print: no API key for {VAULT}: store one with `labelvault-print key set --vault {VAULT}`\n"
    )


def test_there_is_no_way_to_give_the_key_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run("scan", "--vault", VAULT, "--api-key", "lv_secret")
    assert exited.value.code == ExitCode.USAGE
    assert "unrecognized arguments: --api-key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan", "--printer", "zebra:h"], "name the vault with --vault URL or LABELVAULT_PRINT_VAULT"),
        (["scan", "--vault", "http://labels.example.com"], "the vault URL must be https"),
        (["scan", "--vault", VAULT], "name at least one printer with --printer"),
        (["scan", "--vault", VAULT, "--printer", "laser:office"], "a printer is NAME=zebra:HOST[:PORT]"),
        (["scan", "--vault", VAULT, "--printer", "zebra:h@600"], "a Zebra printer's dpi must be one of 203, 300"),
    ],
)
def test_bad_settings_are_one_line_on_stderr(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABELVAULT_PRINT_VAULT", raising=False)
    monkeypatch.setenv(ENV_KEY, "lv_key")
    assert run(*argv)[0] == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("labelvault-print: " + message) and err.count("\n") == 1


def test_printer_specs() -> None:
    zebra = cli.parse_printer("pack-3=zebra:10.0.5.21:6101@300", 0)
    assert isinstance(zebra, ZebraPrinter)
    assert (zebra.name, zebra.host, zebra.port, zebra.dpi, zebra.options) == (
        "pack-3",
        "10.0.5.21",
        6101,
        300,
        {"dpi": "300"},
    )
    default = cli.parse_printer("zebra:[::1]", 1)
    assert isinstance(default, ZebraPrinter)
    assert (default.name, default.host, default.port, default.dpi) == ("printer-2", "::1", 9100, 203)
    office = cli.parse_printer("office=cups:Office_Laser@png", 0)
    assert isinstance(office, CupsPrinter) and (office.queue, office.fmt, office.options) == (
        "Office_Laser",
        "png",
        {"dpi": "203"},
    )


def test_a_shift_of_scans_prints_and_ends_with_its_summary_and_exit_code_writing_no_file(
    vault_url: str, world: World, zebra: FakeZebra, tmp_path: Path
) -> None:
    home, cwd, tmp = tmp_path / "home", tmp_path / "cwd", tmp_path / "tmp"
    for folder in (home, cwd, tmp):
        folder.mkdir()
    scans = f"{world.order_ids[0]}\r\namazon:{world.order_ids[1]}\n{world.order_ids[0]}\n\nnot a ref\n"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "APPDATA": str(home),
        ENV_KEY: world.key,
        "LABELVAULT_PRINT_VAULT": vault_url,
        "LABELVAULT_PRINT_PRINTERS": f"zebra-1=zebra:{zebra.host}:{zebra.port}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "printagent", "scan", "--printer-wait", "0"],
        input=scans,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert done.stdout.splitlines() == [
        f"PRINTED amazon:{world.order_ids[0]} on zebra-1",
        f"PRINTED amazon:{world.order_ids[1]} on zebra-1",
        f"ALREADY PRINTED amazon:{world.order_ids[0]}: not printed again; "
        f"for a second label run: labelvault-print reprint amazon:{world.order_ids[0]}",
        "INVALID scan: not an order reference: expected an order id (letters, digits, '.', '_', '-') "
        "or marketplace:order-id",
        "SHIFT printed=2 refused=0 printer-problem=0 vault-unavailable=0 invalid-scan=1 already-printed=1 "
        "station-refused=0",
    ]
    assert done.returncode == ExitCode.REFUSED, done.stderr
    assert done.stderr == ""
    assert_no_pii(done.stdout + done.stderr, "the agent's console")
    assert [p for folder in (home, cwd, tmp) for p in folder.rglob("*")] == [], "the agent wrote a file"
    assert len(zebra.labels) == 2


def test_reprint_on_the_command_line_prints_a_second_label(
    vault_url: str, world: World, zebra: FakeZebra, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_KEY, world.key)
    printer = f"zebra-1=zebra:{zebra.host}:{zebra.port}"
    ref = f"amazon:{world.order_ids[0]}"
    assert run("scan", "--vault", vault_url, "--printer", printer, stdin=ref + "\n")[0] == ExitCode.OK
    code, out = run("reprint", "--vault", vault_url, "--printer", printer, ref, "amazon:")
    assert code == ExitCode.REFUSED  # the second reference is not one
    assert out.splitlines()[:2] == [
        f"REPRINTED {ref} on zebra-1",
        "INVALID scan: not an order reference: expected an order id (letters, digits, '.', '_', '-') "
        "or marketplace:order-id",
    ]
    assert len(zebra.labels) == 2


def test_serve_prints_a_wms_wave_until_interrupted_then_sums_up_the_shift(
    vault_url: str, world: World, zebra: FakeZebra, tmp_path: Path
) -> None:
    import signal
    import time

    import httpx

    from tests.support.servers import free_port

    port = free_port()
    station = tmp_path / "station"  # the station's home and working folder (the vault's instance is beside it)
    station.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "HOME": str(station),
        "TMPDIR": str(station),
        ENV_KEY: world.key,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "printagent", "serve", "--vault", vault_url, "--listen", f"127.0.0.1:{port}",
         "--printer", f"zebra-1=zebra:{zebra.host}:{zebra.port}", "--printer-wait", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=station, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/wave", json={"orders": world.order_ids[:3]})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "the wave endpoint did not start"
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert [r["outcome"] for r in answer.json()["results"]] == ["printed"] * 3
    assert stdout.splitlines() == [
        f"LISTENING http://127.0.0.1:{port}/v1/wave (Ctrl-C ends the shift)",
        *(f"PRINTED amazon:{order_id} on zebra-1" for order_id in world.order_ids[:3]),
        "SHIFT printed=3 refused=0 printer-problem=0 vault-unavailable=0 invalid-scan=0 already-printed=0 "
        "station-refused=0",
    ]
    assert proc.returncode == ExitCode.OK, stderr
    assert stderr == ""
    assert list(station.rglob("*")) == []
