"""The printers a packing station has: Zebra (and compatible) label printers on raw TCP 9100, and office
printers behind a CUPS queue (``lp``).

Every printer keeps one contract (:class:`Printer`): :meth:`~Printer.problems` is asked before each job (a
printer that can't print gets nothing, so the vault counts nothing), :meth:`~Printer.send` either delivers
the whole label or raises :class:`PrinterFailed`, after which the agent may send the same bytes again. The
label bytes are handed over in memory: to a socket, or to ``lp``'s standard input, never a file.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from typing import Protocol, runtime_checkable

from printagent.hoststatus import MAX_ANSWER_BYTES, HostStatus, HostStatusError, answer_complete, parse_status

#: The label formats each kind of printer takes, as the label API names them.
ZEBRA_FORMATS = ("zpl",)
CUPS_FORMATS = ("pdf", "png")
DPIS = (203, 300)


class PrinterFailed(Exception):
    """The printer could not be reached or lost the job; the message names the printer, never the label."""


@runtime_checkable
class Printer(Protocol):
    """A printer the agent sends labels to."""

    #: The station's name for it (``zebra-1``), shown in status lines.
    name: str
    #: The label API's format for it (``zpl``, ``pdf``, ``png``).
    fmt: str

    @property
    def options(self) -> dict[str, str]:
        """The label API's renderer options for this printer (``dpi`` for ZPL and PNG)."""
        ...

    def problems(self) -> list[str]:
        """Why a label sent now would not print (paper out, head open, paused), or ``[]``; raises
        :class:`PrinterFailed` if the printer can't be asked."""
        ...

    def send(self, document: bytes) -> None:
        """Deliver one label whole, or raise :class:`PrinterFailed` (then nothing, or part of it, arrived)."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...


class ZebraPrinter:
    """A ZPL printer on raw TCP (port 9100), one connection kept open between jobs.

    A job is confirmed by asking ``~HS`` after the label on the same connection: the printer reads its input
    in order, so an answer means every byte of the label arrived. A connection that drops before the answer
    is a failed job, sent again (whole) on a new connection. A printer that received the whole label and then
    dropped the connection before answering would print the label twice on that retry; a drop mid-label (what
    a power cut, a cable pulled or a printer reboot does) is discarded by the printer as an unfinished format.
    """

    fmt = "zpl"

    def __init__(self, name: str, host: str, port: int = 9100, *, dpi: int = 203, timeout: float = 5.0) -> None:
        if dpi not in DPIS:
            raise ValueError(f"a Zebra printer's dpi must be one of {', '.join(map(str, DPIS))}")
        self.name = name
        self.host = host
        self.port = port
        self.dpi = dpi
        self.timeout = timeout
        self._sock: socket.socket | None = None

    @property
    def options(self) -> dict[str, str]:
        return {"dpi": str(self.dpi)}

    def problems(self) -> list[str]:
        return self._ask_status().problems

    def send(self, document: bytes) -> None:
        try:
            self._connection().sendall(document)
        except OSError as exc:
            self.close()
            raise PrinterFailed(f"{self.name}: the connection failed during the job ({type(exc).__name__})") from None
        self._ask_status()  # the label's bytes came before this question on the same connection

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _connection(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            except OSError as exc:
                raise PrinterFailed(
                    f"{self.name}: cannot connect to {self.host}:{self.port} ({type(exc).__name__})"
                ) from None
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def _ask_status(self) -> HostStatus:
        sock = self._connection()
        answer = b""
        try:
            sock.sendall(b"~HS")
            while not answer_complete(answer):
                chunk = sock.recv(MAX_ANSWER_BYTES)
                if not chunk:
                    raise ConnectionResetError("closed by the printer")
                answer += chunk
                if len(answer) > MAX_ANSWER_BYTES:
                    raise HostStatusError("the printer's status answer is too long")
            return parse_status(answer)
        except HostStatusError as exc:
            self.close()
            raise PrinterFailed(f"{self.name}: {exc}") from None
        except OSError as exc:
            self.close()
            raise PrinterFailed(
                f"{self.name}: no status answer from {self.host}:{self.port} ({type(exc).__name__})"
            ) from None


class CupsPrinter:
    """An office printer's CUPS queue: each label is one ``lp -d QUEUE`` job, the document on ``lp``'s stdin.

    CUPS spools the job itself; ``lp`` exiting 0 means the queue accepted it. The agent can't see paper or
    covers through ``lp``, so :meth:`problems` reports only a queue that is missing or refusing jobs
    (``lpstat -a QUEUE``), when ``lpstat`` exists.
    """

    def __init__(self, name: str, queue: str, fmt: str = "pdf", *, dpi: int = 203, lp: str = "lp") -> None:
        if fmt not in CUPS_FORMATS:
            raise ValueError(f"a CUPS queue takes {' or '.join(CUPS_FORMATS)} labels")
        if not queue or queue.startswith("-") or any(c.isspace() for c in queue):
            raise ValueError("a CUPS queue name is one word, like Office_Laser")
        if dpi not in DPIS:
            raise ValueError(f"dpi must be one of {', '.join(map(str, DPIS))}")
        self.name = name
        self.queue = queue
        self.fmt = fmt
        self.dpi = dpi
        self.lp = lp

    @property
    def options(self) -> dict[str, str]:
        return {"dpi": str(self.dpi)} if self.fmt == "png" else {}

    def problems(self) -> list[str]:
        lpstat = shutil.which("lpstat")
        if lpstat is None:
            return []
        try:
            # The queue name is checked to be one word at construction; no shell is involved.
            done = subprocess.run([lpstat, "-a", self.queue], capture_output=True, timeout=10, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            return ["CUPS did not answer lpstat within 10 s"]
        if done.returncode != 0 or b"not accepting" in done.stdout:
            return [f"CUPS queue {self.queue} is missing or not accepting jobs"]
        return []

    def send(self, document: bytes) -> None:
        lp = shutil.which(self.lp)
        if lp is None:
            raise PrinterFailed(f"{self.name}: the CUPS command {self.lp!r} is not installed")
        try:
            done = subprocess.run(  # noqa: S603 - an argument list, no shell, the queue checked at construction
                [lp, "-d", self.queue, "-t", "labelvault label"],
                input=document,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PrinterFailed(f"{self.name}: lp did not finish within 60 s") from None
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            raise PrinterFailed(
                f"{self.name}: lp exited {done.returncode}" + (f": {reason[0][:200]}" if reason else "")
            )

    def close(self) -> None:
        pass
