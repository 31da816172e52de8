"""The fake Zebra printer speaks the printer's side of TCP 9100 as the agent (and any ZPL client) sees it: the
``~HS`` answer byte for byte in Zebra's three-line format, formats printed only when complete, held while it
can't print, and an unfinished format lost with a dropped connection."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from printagent.fakeprinter import FakeZebra
from printagent.hoststatus import HostStatus, HostStatusError, answer_complete, format_status, parse_status
from printagent.printers import PrinterFailed, ZebraPrinter

LABEL = b"^XA^FO50,50^A0N,40,40^FDHELLO^FS^XZ"


@pytest.fixture
def zebra() -> Iterator[FakeZebra]:
    with FakeZebra() as fake:
        yield fake


def ask(sock: socket.socket) -> bytes:
    sock.sendall(b"~HS")
    answer = b""
    while not answer_complete(answer):
        answer += sock.recv(512)
    return answer


def test_the_host_status_answer_is_zebras_three_framed_lines() -> None:
    answer = format_status(HostStatus(paper_out=True, label_length_dots=1218, labels_remaining=3))
    assert answer == (
        b"\x02030,1,0,1218,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,0,2,4,0,00000003,1,000\x03\r\n\x021234,0\x03\r\n"
    )


# Eleven fields a status: generating them is slow on a shared machine, and no example is slow to check.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.builds(
        HostStatus,
        paper_out=st.booleans(),
        paused=st.booleans(),
        head_open=st.booleans(),
        ribbon_out=st.booleans(),
        buffer_full=st.booleans(),
        corrupt_ram=st.booleans(),
        under_temperature=st.booleans(),
        over_temperature=st.booleans(),
        formats_in_buffer=st.integers(0, 999),
        labels_remaining=st.integers(0, 99_999_999),
        label_length_dots=st.integers(1, 9999),
    )
)
def test_a_host_status_reads_back_as_it_was_written(status: HostStatus) -> None:
    assert parse_status(format_status(status)) == status


@pytest.mark.parametrize(
    "answer",
    [b"", b"\x02030,0,0\x03\r\n", format_status(HostStatus())[:-8], b"\x02a,b,c,d,e,f,g,h,i,j,k,l\x03" * 3],
)
def test_anything_else_is_not_a_host_status(answer: bytes) -> None:
    with pytest.raises(HostStatusError):
        parse_status(answer)


def test_complete_formats_print_and_status_is_answered_between_and_inside_them(zebra: FakeZebra) -> None:
    with socket.create_connection((zebra.host, zebra.port)) as sock:
        assert parse_status(ask(sock)) == HostStatus(label_length_dots=1218)
        sock.sendall(LABEL + b"\n" + LABEL[:20])
        assert parse_status(ask(sock)).problems == []  # ~HS in the middle of a format is answered at once
        sock.sendall(LABEL[20:])
        ask(sock)
    assert zebra.labels == [LABEL, LABEL]
    assert zebra.status_queries == 3


@pytest.mark.parametrize("flag", ["paper_out", "head_open", "paused"])
def test_a_printer_that_cannot_print_says_so_and_holds_what_it_receives(zebra: FakeZebra, flag: str) -> None:
    zebra.set_flags(**{flag: True})
    with socket.create_connection((zebra.host, zebra.port)) as sock:
        assert getattr(parse_status(ask(sock)), flag)
        sock.sendall(LABEL)
        assert parse_status(ask(sock)).formats_in_buffer == 1
    assert zebra.labels == [] and zebra.held == [LABEL]


def test_a_connection_dropped_mid_job_loses_the_unfinished_format(zebra: FakeZebra) -> None:
    zebra.drop_next_job(after_bytes=10)
    printer = ZebraPrinter("zebra-1", zebra.host, zebra.port)
    with pytest.raises(PrinterFailed, match="zebra-1: no status answer"):
        printer.send(LABEL)
    assert zebra.labels == [] and zebra.dropped == 1
    printer.send(LABEL)  # a new connection, the same label whole
    printer.close()
    assert zebra.labels == [LABEL] and zebra.connections == 2


def test_a_status_plan_runs_out_and_the_printer_is_ready_again(zebra: FakeZebra) -> None:
    zebra.fail_for(2, head_open=True)
    printer = ZebraPrinter("zebra-1", zebra.host, zebra.port)
    assert [printer.problems() for _ in range(3)] == [
        ["head open: close the print head"],
        ["head open: close the print head"],
        [],
    ]
    printer.close()


def test_the_printer_client_names_an_unreachable_printer() -> None:
    from tests.support.servers import free_port

    port = free_port()
    with pytest.raises(PrinterFailed, match=f"zebra-9: cannot connect to 127.0.0.1:{port}"):
        ZebraPrinter("zebra-9", "127.0.0.1", port, timeout=1).problems()


def test_something_that_is_not_a_zebra_on_port_9100_is_a_printer_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        printer = ZebraPrinter("zebra-1", "127.0.0.1", port, timeout=2)

        import threading

        def answer_nonsense() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(16)
                conn.sendall(b"\x02HELLO\x03\r\n\x02WORLD\x03\r\n\x02!\x03\r\n")

        thread = threading.Thread(target=answer_nonsense)
        thread.start()
        with pytest.raises(PrinterFailed, match="not a Zebra host status"):
            printer.problems()
        thread.join()
        printer.close()
