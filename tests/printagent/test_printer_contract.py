"""Every kind of printer keeps the one contract the agent relies on (printagent/printers.py, ``Printer``):
``problems`` before a job, ``send`` delivers the whole label or raises ``PrinterFailed``, ``close`` may be
called any number of times."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from printagent.fakeprinter import FakeZebra
from printagent.printers import CupsPrinter, Printer, PrinterFailed, ZebraPrinter

LABEL = b"^XA^FO50,50^A0N,40,40^FDCONTRACT^FS^XZ"
#: A CUPS queue's fake ``lp``: the byte count of what it read from stdin, down a FIFO to the test.
FAKE_LP = """#!{python}
import os, sys
data = sys.stdin.buffer.read()
if os.environ.get("FAKE_LP_FAIL"):
    sys.exit(2)
with open(os.environ["FAKE_LP_PIPE"], "w") as pipe:
    pipe.write(str(len(data)))
"""


@pytest.fixture(params=["zebra", "cups"])
def kind(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Printer, Callable[[], int], Callable[[], None]]]:
    """A printer, how many labels it has delivered, and how to make its next job fail."""
    if request.param == "zebra":
        with FakeZebra() as fake:
            yield (
                ZebraPrinter("zebra-1", fake.host, fake.port),
                lambda: len(fake.labels),
                lambda: fake.drop_next_job(10),
            )
        return
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lp").write_text(FAKE_LP.format(python=sys.executable))
    (bin_dir / "lp").chmod(0o755)
    pipe = tmp_path / "lp.fifo"
    os.mkfifo(pipe)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LP_PIPE", str(pipe))
    sizes: list[int] = []

    import threading

    def receive() -> None:
        while True:
            with open(pipe) as fifo:
                text = fifo.read()
            if text == "stop":
                return
            sizes.append(int(text))

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    delivered: Callable[[], int] = lambda: len(sizes)  # noqa: E731
    yield CupsPrinter("office", "Office_Laser"), delivered, lambda: monkeypatch.setenv("FAKE_LP_FAIL", "1")
    with open(pipe, "w") as fifo:
        fifo.write("stop")
    reader.join(timeout=10)


def wait_for(count: Callable[[], int], n: int) -> int:
    import time

    deadline = time.monotonic() + 10
    while count() < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return count()


def test_a_printer_keeps_the_contract(kind: tuple[Printer, Callable[[], int], Callable[[], None]]) -> None:
    printer, delivered, fail_next = kind
    assert isinstance(printer, Printer)
    assert printer.fmt in ("zpl", "pdf", "png") and printer.name
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in printer.options.items())
    assert printer.problems() == []
    printer.send(LABEL)
    assert wait_for(delivered, 1) == 1
    fail_next()
    with pytest.raises(PrinterFailed, match=f"^{printer.name}: "):
        printer.send(LABEL)
    printer.close()
    printer.close()
