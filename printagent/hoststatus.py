"""Zebra's host status (``~HS``): the three lines a ZPL printer answers with, built and read.

Each line is framed by STX (0x02) and ETX (0x03) and ends with CR LF (ZPL II Programming Guide, ``~HS``).
The fields the agent acts on, 0-based:

- line 1 ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l``: b paper out, c pause, dddd label length (dots), eee formats in
  the receive buffer, f buffer full, h partial format, j corrupt RAM, k under temperature, l over temperature;
- line 2 ``mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www``: o head up (open), p ribbon out, uuuuuuuu labels remaining in
  the batch;
- line 3 ``xxxx,y``: the password and whether static RAM is installed.

The fake printer (:mod:`printagent.fakeprinter`) answers with :func:`format_status`; the agent reads any
printer's answer with :func:`parse_status`.
"""

from __future__ import annotations

from dataclasses import dataclass

STX, ETX = b"\x02", b"\x03"
#: The whole answer is three framed lines; anything longer is not a host status.
MAX_ANSWER_BYTES = 512


class HostStatusError(ValueError):
    """The printer's answer to ``~HS`` is not Zebra's three-line host status."""


@dataclass(frozen=True, slots=True)
class HostStatus:
    """What the printer reports about itself; :attr:`problems` is what stops a job."""

    paper_out: bool = False
    paused: bool = False
    head_open: bool = False
    ribbon_out: bool = False
    buffer_full: bool = False
    corrupt_ram: bool = False
    under_temperature: bool = False
    over_temperature: bool = False
    formats_in_buffer: int = 0
    labels_remaining: int = 0
    label_length_dots: int = 1218

    @property
    def problems(self) -> list[str]:
        """The conditions under which a label sent now would not print, in the packer's words."""
        found = [
            ("paper out: load labels", self.paper_out),
            ("head open: close the print head", self.head_open),
            ("paused: press pause on the printer to resume", self.paused),
            ("ribbon out: load a ribbon", self.ribbon_out),
            ("receive buffer full", self.buffer_full),
            ("corrupt RAM: power-cycle the printer", self.corrupt_ram),
            ("head too cold", self.under_temperature),
            ("head too hot: let it cool", self.over_temperature),
        ]
        return [text for text, flag in found if flag]


def _flag(value: bool) -> str:
    return "1" if value else "0"


def format_status(status: HostStatus) -> bytes:
    """The answer a Zebra printer sends to ``~HS`` for ``status``."""
    line1 = ",".join(
        [
            "030",
            _flag(status.paper_out),
            _flag(status.paused),
            f"{status.label_length_dots:04d}",
            f"{status.formats_in_buffer:03d}",
            _flag(status.buffer_full),
            "0",
            "0",
            "000",
            _flag(status.corrupt_ram),
            _flag(status.under_temperature),
            _flag(status.over_temperature),
        ]
    )
    line2 = ",".join(
        [
            "001",
            "0",
            _flag(status.head_open),
            _flag(status.ribbon_out),
            "0",
            "2",
            "4",
            "0",
            f"{status.labels_remaining:08d}",
            "1",
            "000",
        ]
    )
    line3 = "1234,0"
    return b"".join(STX + line.encode("ascii") + ETX + b"\r\n" for line in (line1, line2, line3))


def answer_complete(buffer: bytes) -> bool:
    """Whether ``buffer`` holds all three framed lines (a reader stops there)."""
    return buffer.count(ETX) >= 3


def parse_status(answer: bytes) -> HostStatus:
    """A printer's ``~HS`` answer read into a :class:`HostStatus`; :class:`HostStatusError` if it isn't one."""
    lines: list[list[str]] = []
    for frame in answer.split(STX)[1:]:
        body, sep, _ = frame.partition(ETX)
        if not sep:
            raise HostStatusError("the printer's status answer was cut short")
        lines.append(body.decode("ascii", "replace").split(","))
    if len(lines) != 3 or len(lines[0]) < 12 or len(lines[1]) < 11:
        raise HostStatusError("the printer's answer to ~HS is not a Zebra host status")
    one, two = lines[0], lines[1]
    try:
        return HostStatus(
            paper_out=one[1] == "1",
            paused=one[2] == "1",
            label_length_dots=int(one[3]),
            formats_in_buffer=int(one[4]),
            buffer_full=one[5] == "1",
            corrupt_ram=one[9] == "1",
            under_temperature=one[10] == "1",
            over_temperature=one[11] == "1",
            head_open=two[2] == "1",
            ribbon_out=two[3] == "1",
            labels_remaining=int(two[8]),
        )
    except ValueError:
        raise HostStatusError("the printer's answer to ~HS has a non-numeric count") from None
