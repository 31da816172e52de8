"""The packing station's job loop: a scan in, one status line out, and the label at the printer exactly once.

A job: the reference is checked (a bad scan never reaches the vault) → a printer that can print is found
(``~HS`` before every job: paper out, head open or paused means nothing is asked of the vault and nothing is
sent) → the label is fetched with the job's ``Idempotency-Key`` → it is sent to that printer, and sent
again (the same bytes) if the printer loses it. A job that ends without a printed label keeps its key, so
scanning the order again gets the same label from the vault (redelivered, not counted) instead of using a
reprint. An order printed once this shift is not printed again by a second scan: a reprint is the separate
``labelvault-print reprint`` command, which makes a new key (and needs an owner's grant once the reissue cap
is used).

Label bytes are a local variable of :meth:`Agent.print_order`: from the response to the printer, never
stored, logged or shown. Status lines name the order, the printer and a reason code, nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Protocol

from printagent.client import Label, Refused, VaultClient, VaultUnavailable, new_idempotency_key
from printagent.printers import Printer, PrinterFailed
from printagent.refs import BadReference, OrderRef, parse_ref

log = logging.getLogger("printagent")


class Outcome(StrEnum):
    """How one scan ended; also the first word of its status line."""

    PRINTED = "printed"
    REFUSED = "refused"
    PRINTER = "printer-problem"
    UNAVAILABLE = "vault-unavailable"
    INVALID = "invalid-scan"
    DUPLICATE = "already-printed"
    STATION = "station-refused"


class ExitCode:
    """What the agent's exit status tells a WMS or a script, the most serious outcome of the run winning."""

    OK = 0  #: every scan printed (a repeated scan of a printed order included: it was not printed twice)
    REFUSED = 1  #: some order was refused by the vault, or a scan was not an order reference
    PRINTER = 2  #: some label was not printed because of a printer (paper, head, pause, connection)
    UNAVAILABLE = 3  #: the vault could not be reached for some order
    STATION = 4  #: the vault refused the station itself (API key, address, scope): fix the setup
    USAGE = 64  #: bad command line or configuration; nothing was done

    @staticmethod
    def of(counts: Counter[Outcome]) -> int:
        for outcome, code in (
            (Outcome.STATION, ExitCode.STATION),
            (Outcome.UNAVAILABLE, ExitCode.UNAVAILABLE),
            (Outcome.PRINTER, ExitCode.PRINTER),
            (Outcome.REFUSED, ExitCode.REFUSED),
            (Outcome.INVALID, ExitCode.REFUSED),
        ):
            if counts[outcome]:
                return code
        return ExitCode.OK


class Console(Protocol):
    """Where status lines go: the terminal (``sys.stdout``), or anything with ``write`` and ``flush``."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class StationRefused(Exception):
    """The vault refused the station's key, address or scope: every further job would be refused too."""


_JobKey = tuple[OrderRef, str, tuple[tuple[str, str], ...], bool]


class Agent:
    """One packing station: its vault client, its printers (tried in order), its shift's counts."""

    def __init__(
        self,
        client: VaultClient,
        printers: Sequence[Printer],
        *,
        out: Console,
        default_marketplace: str = "amazon",
        printer_wait: float = 60.0,
        poll_interval: float = 0.5,
        send_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not printers:
            raise ValueError("at least one printer is needed")
        self.client = client
        self.printers = list(printers)
        self.out = out
        self.default_marketplace = default_marketplace
        self.printer_wait = printer_wait
        self.poll_interval = poll_interval
        self.send_attempts = send_attempts
        self.sleep = sleep
        self.counts: Counter[Outcome] = Counter()
        self._printed: set[OrderRef] = set()
        # Jobs that may have been released but were not printed: their key, reused when the order comes again.
        self._pending: dict[_JobKey, str] = {}
        self._lock = threading.Lock()  # a WMS wave and the scanner share the printers: one job at a time

    # -- entry points ---------------------------------------------------------------------------------

    def scan(self, line: str) -> Outcome:
        """One line from the scanner (or a WMS): parsed, then printed unless this shift printed it already."""
        try:
            ref = parse_ref(line, self.default_marketplace)
        except BadReference as exc:
            return self.reject(exc)
        return self.print_order(ref)

    def reject(self, bad: BadReference) -> Outcome:
        """Count and show a scan that is not an order reference (its text is not repeated)."""
        return self._finish(Outcome.INVALID, f"INVALID scan: {bad}")

    def print_order(self, ref: OrderRef, *, reprint: bool = False) -> Outcome:
        """Print one order's label; ``reprint`` is the deliberate second copy (a new key, counted by the vault)."""
        with self._lock:
            if ref in self._printed and not reprint:
                return self._finish(
                    Outcome.DUPLICATE,
                    f"ALREADY PRINTED {ref}: not printed again; for a second label run: labelvault-print reprint {ref}",
                )
            return self._job(ref, reprint)

    def summary(self) -> str:
        """The shift in one line: counts of every outcome."""
        parts = " ".join(f"{o.value}={self.counts[o]}" for o in Outcome)
        return f"SHIFT {parts}"

    @property
    def exit_code(self) -> int:
        return ExitCode.of(self.counts)

    def close(self) -> None:
        for printer in self.printers:
            printer.close()

    # -- one job --------------------------------------------------------------------------------------

    def _job(self, ref: OrderRef, reprint: bool) -> Outcome:
        printer = self._ready_printer()
        if isinstance(printer, str):
            return self._finish(Outcome.PRINTER, f"PRINTER {ref} not printed, nothing sent: {printer}")
        job: _JobKey = (ref, printer.fmt, tuple(sorted(printer.options.items())), reprint)
        key = self._pending.setdefault(job, new_idempotency_key())
        try:
            result = self.client.label(ref, printer.fmt, printer.options, key)
        except VaultUnavailable as exc:
            return self._finish(Outcome.UNAVAILABLE, f"UNAVAILABLE {ref} not printed: {exc}; scan it again")
        if isinstance(result, Refused):
            del self._pending[job]
            return self._refused(result)
        failure = self._deliver(printer, result)
        if failure is not None:
            return self._finish(
                Outcome.PRINTER,
                f"PRINTER {ref} not printed: {failure}; scan it again to print the same label (no reprint used)",
            )
        del self._pending[job]
        self._printed.add(ref)
        again = " (the vault's copy of an earlier attempt)" if result.replayed else ""
        word = "REPRINTED" if reprint else "PRINTED"
        return self._finish(Outcome.PRINTED, f"{word} {ref} on {printer.name}{again}")

    def _refused(self, refused: Refused) -> Outcome:
        hint = ""
        if refused.reason == "reissue-cap":
            hint = "; an owner can allow one more with: labelvault labels grant-reprint"
        detail = f" ({refused.detail})" if refused.detail else ""
        if refused.station_problem:
            self._finish(Outcome.STATION, f"STATION REFUSED {refused.ref}: {refused.reason}{detail}")
            raise StationRefused(refused.reason)
        return self._finish(Outcome.REFUSED, f"REFUSED {refused.ref}: {refused.reason}{detail}{hint}")

    def _deliver(self, printer: Printer, label: Label) -> str | None:
        """Send the label, again (whole) after a failure once the printer is ready; the last failure, or None."""
        failure = "not sent"
        for attempt in range(self.send_attempts):
            if attempt:
                ready = self._wait_until_ready(printer)
                if ready is not None:
                    return ready
            try:
                printer.send(label.document)
                return None
            except PrinterFailed as exc:
                failure = str(exc)
                self._line(f"RETRY {label.ref}: {failure}; sending the same label again")
        return failure

    def _ready_printer(self) -> Printer | str:
        """The first printer that can print now, waiting up to ``printer_wait`` for one; else why none can."""
        deadline = time.monotonic() + self.printer_wait
        shown: set[str] = set()
        while True:
            problems: list[str] = []
            for printer in self.printers:
                found = self._problems(printer)
                if not found:
                    return printer
                problems.append(f"{printer.name} {'; '.join(found)}")
            summary = ", ".join(problems)
            if time.monotonic() >= deadline:
                return summary
            if summary not in shown:
                shown.add(summary)
                self._line(f"WAITING for a printer: {summary}")
            self.sleep(self.poll_interval)

    def _wait_until_ready(self, printer: Printer) -> str | None:
        deadline = time.monotonic() + self.printer_wait
        while True:
            found = self._problems(printer)
            if not found:
                return None
            if time.monotonic() >= deadline:
                return f"{printer.name} {'; '.join(found)}"
            self.sleep(self.poll_interval)

    @staticmethod
    def _problems(printer: Printer) -> list[str]:
        try:
            return printer.problems()
        except PrinterFailed as exc:
            return [str(exc).removeprefix(f"{printer.name}: ")]

    # -- status lines -----------------------------------------------------------------------------------

    def _finish(self, outcome: Outcome, line: str) -> Outcome:
        self.counts[outcome] += 1
        self._line(line)
        return outcome

    def _line(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
        log.debug("%s", line)
