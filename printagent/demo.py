"""The README demo's last step: a packing station prints labels through the agent to a fake Zebra printer.

``app/demo.py`` calls :func:`print_via_agent` with the demo vault's URL, the station's key and a few order
references once its own label requests are done; it starts a :class:`~printagent.fakeprinter.FakeZebra` on
loopback, scans the references through an :class:`~printagent.agent.Agent` and answers with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from printagent.agent import Agent
from printagent.client import VaultClient
from printagent.fakeprinter import FakeZebra
from printagent.printers import ZebraPrinter


class _Lines:
    """Where the agent's status lines go: ``out`` (indented), or nowhere."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out

    def write(self, text: str) -> int:
        if self.out is not None:
            self.out.write("".join(f"   {line}\n" for line in text.splitlines()))
        return len(text)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


def print_via_agent(base_url: str, api_key: str, refs: Sequence[str], *, out: TextIO | None = None) -> str:
    """Scan ``refs`` (``amazon:ORDER`` or a bare Amazon order id) through the agent into a fake Zebra printer;
    the agent's status lines go to ``out`` if given. Returns one line: what the printer received, and the
    shift's summary."""
    with FakeZebra() as printer:
        client = VaultClient(base_url, api_key)
        agent = Agent(
            client,
            [ZebraPrinter("demo-zebra", printer.host, printer.port)],
            out=_Lines(out),
            printer_wait=5.0,
        )
        try:
            for ref in refs:
                agent.scan(ref)
        finally:
            agent.close()
            client.close()
        received = len(printer.labels)
        where = f"{printer.host}:{printer.port}"
    return f"labelvault-print: {received} ZPL label(s) at the fake Zebra printer on {where}; {agent.summary()}"
