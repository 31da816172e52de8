"""Office printers through CUPS: each label is one ``lp -d QUEUE`` job with the document on ``lp``'s stdin.

CUPS isn't installed here, so ``lp`` and ``lpstat`` are small scripts put first on ``PATH``: the fake ``lp``
sends its arguments and the document it read from stdin down a named pipe (a FIFO: nothing is stored on
disk) to the test, which reads it as the print queue would.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from printagent.agent import Agent, ExitCode, Outcome
from printagent.client import VaultClient
from printagent.printers import CupsPrinter, PrinterFailed
from tests.support.world import World, assert_no_pii
from vault.models import Order

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

FAKE_LP = """#!{python}
import json, os, sys
document = sys.stdin.buffer.read()
if os.environ.get("FAKE_LP_FAIL"):
    sys.stderr.write("lp: The printer or class does not exist.\\n")
    sys.exit(1)
with open(os.environ["FAKE_LP_PIPE"], "wb") as pipe:
    pipe.write(json.dumps(sys.argv[1:]).encode() + b"\\n" + document)
"""
FAKE_LPSTAT = """#!{python}
import os, sys
state = os.environ.get("FAKE_LPSTAT", "accepting")
if state == "missing":
    sys.stderr.write("lpstat: Invalid destination name in list.\\n")
    sys.exit(1)
print(f"{{sys.argv[2]}} {{'not accepting' if state == 'refusing' else 'accepting'}} requests since now")
"""


class Queue:
    """The receiving end of the fake ``lp``: one job per read of the FIFO."""

    def __init__(self, pipe: Path) -> None:
        self.pipe = pipe
        self.jobs: list[tuple[list[str], bytes]] = []
        self._thread: threading.Thread | None = None

    def expect(self, n: int) -> None:
        def read() -> None:
            for _ in range(n):
                with open(self.pipe, "rb") as fifo:
                    args, _, document = fifo.read().partition(b"\n")
                self.jobs.append((json.loads(args), document))

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def wait(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the fake lp never wrote its job"


@pytest.fixture
def cups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Queue:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("lp", FAKE_LP), ("lpstat", FAKE_LPSTAT)):
        path = bin_dir / name
        path.write_text(script.format(python=sys.executable))
        path.chmod(0o755)
    pipe = tmp_path / "queue.fifo"
    os.mkfifo(pipe)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LP_PIPE", str(pipe))
    return Queue(pipe)


def station(url: str, world: World, out: io.StringIO, fmt: str) -> Agent:
    client = VaultClient(url, world.key, backoff=0.01)
    return Agent(client, [CupsPrinter("office", "Office_Laser", fmt)], out=out, printer_wait=0.0, poll_interval=0.01)


def issued(world: World) -> list[int]:
    with world.session() as s:
        return [s.get_one(Order, o.id).labels_issued for o in world.orders]


def test_a_pdf_label_goes_to_the_queue_on_lps_stdin(vault_url: str, world: World, cups: Queue) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    out = io.StringIO()
    cups.expect(1)
    agent = station(vault_url, world, out, "pdf")
    assert agent.scan(world.order_ids[0]) == Outcome.PRINTED
    cups.wait()
    ((args, document),) = cups.jobs
    assert args == ["-d", "Office_Laser", "-t", "labelvault label"]
    assert document.startswith(b"%PDF-")
    pdf = pdfium.PdfDocument(document)
    assert len(pdf) == 1
    assert world.order_ids[0] in pdf[0].get_textpage().get_text_range()
    assert out.getvalue() == f"PRINTED amazon:{world.order_ids[0]} on office\n"
    assert_no_pii(out.getvalue())
    assert issued(world) == [1, 0, 0, 0]
    agent.client.close()


def test_a_png_label_is_the_label_at_the_printers_resolution(vault_url: str, world: World, cups: Queue) -> None:
    from PIL import Image

    cups.expect(1)
    agent = station(vault_url, world, io.StringIO(), "png")
    assert agent.scan(world.order_ids[1]) == Outcome.PRINTED
    cups.wait()
    image = Image.open(io.BytesIO(cups.jobs[0][1]))
    assert image.size == (812, 1218)
    zxingcpp = pytest.importorskip("zxingcpp")
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == [world.order_ids[1]]
    agent.client.close()


def test_a_queue_that_fails_the_job_is_a_printer_problem_and_the_next_scan_is_the_same_label(
    vault_url: str, world: World, cups: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    agent = station(vault_url, world, out, "pdf")
    monkeypatch.setenv("FAKE_LP_FAIL", "1")
    assert agent.scan(world.order_ids[2]) == Outcome.PRINTER
    assert out.getvalue().splitlines()[-1] == (
        f"PRINTER amazon:{world.order_ids[2]} not printed: office: lp exited 1: lp: The printer or class does not "
        "exist.; scan it again to print the same label (no reprint used)"
    )
    monkeypatch.delenv("FAKE_LP_FAIL")
    cups.expect(1)
    assert agent.scan(world.order_ids[2]) == Outcome.PRINTED
    cups.wait()
    assert len(cups.jobs) == 1 and issued(world) == [0, 0, 1, 0]
    assert agent.exit_code == ExitCode.PRINTER
    agent.client.close()


@pytest.mark.parametrize("state", ["missing", "refusing"])
def test_a_queue_that_is_missing_or_refusing_jobs_gets_nothing(
    vault_url: str, world: World, cups: Queue, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    monkeypatch.setenv("FAKE_LPSTAT", state)
    out = io.StringIO()
    agent = station(vault_url, world, out, "pdf")
    assert agent.scan(world.order_ids[0]) == Outcome.PRINTER
    assert out.getvalue() == (
        f"PRINTER amazon:{world.order_ids[0]} not printed, nothing sent: "
        "office CUPS queue Office_Laser is missing or not accepting jobs\n"
    )
    assert issued(world) == [0, 0, 0, 0]
    agent.client.close()


def test_without_lp_the_printer_says_cups_is_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrinterFailed, match="office: the CUPS command 'lp' is not installed"):
        CupsPrinter("office", "Office_Laser").send(b"%PDF-1.7")


@pytest.mark.parametrize("queue", ["", "-o evil", "two words", "a\nb"])
def test_a_queue_name_is_one_word(queue: str) -> None:
    with pytest.raises(ValueError, match="one word"):
        CupsPrinter("office", queue)
