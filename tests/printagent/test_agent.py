"""The print agent against the real label API on loopback and a fake Zebra printer: scans in, each label
printed exactly once, refusals and printer problems as one clear line each, nothing counted that wasn't
printed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from printagent.agent import Agent, ExitCode, Outcome, StationRefused
from printagent.client import VaultClient
from printagent.fakeprinter import FakeZebra
from printagent.printers import ZebraPrinter
from printagent.wave import WaveServer
from tests.support.buyers import MARKED_BUYERS
from tests.support.printing import UNLIMITED, FaultyProxy, barcode_of, expected_zpl, served
from tests.support.servers import Database
from tests.support.world import World, assert_no_pii, build_world
from vault.keys import KeyManager
from vault.models import Order
from vault.records import OrderStatus

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")
zplkit = pytest.importorskip("zplkit")


_agents: list[Agent] = []


@pytest.fixture(autouse=True)
def _close_agents() -> Iterator[None]:
    yield
    while _agents:
        station = _agents.pop()
        station.close()
        station.client.close()


def agent(url: str, world: World, zebra: FakeZebra, out: io.StringIO, **options: Any) -> Agent:
    """A station on ``url`` with the world's key and the fake printer, closed after the test."""
    client = VaultClient(url, world.key, backoff=0.01)
    options.setdefault("printer_wait", 0.0)
    station = Agent(client, [ZebraPrinter("zebra-1", zebra.host, zebra.port)], out=out, poll_interval=0.01, **options)
    _agents.append(station)
    return station


def issued(world: World) -> list[int]:
    with world.session() as s:
        return [s.get_one(Order, o.id).labels_issued for o in world.orders]


def lines(out: io.StringIO) -> list[str]:
    text = out.getvalue()
    assert_no_pii(text, "the agent's status lines")
    return text.splitlines()


def png(zpl: bytes) -> Image.Image:
    document = zplkit.render(zpl, zplkit.Options(dpi=203, width=812, height=1218))
    assert len(document.labels) == 1
    return Image.open(io.BytesIO(document.labels[0].png())).convert("1")


def test_a_scanned_barcode_prints_the_order_once_and_the_printer_gets_the_expected_label(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    station = agent(vault_url, world, zebra, out)
    assert station.scan(world.order_ids[0] + "\r\n") == Outcome.PRINTED  # what a scanner types: the bare id
    assert lines(out) == [f"PRINTED amazon:{world.order_ids[0]} on zebra-1"]
    (label,) = zebra.labels
    assert barcode_of(label) == world.order_ids[0]
    expected = expected_zpl(world.order_ids[0], MARKED_BUYERS[0], label)
    assert label == expected
    printed = png(label)
    assert printed.tobytes() == png(expected).tobytes()
    assert printed.histogram()[0] > 2000  # ink: the label is not blank
    zxingcpp = pytest.importorskip("zxingcpp")
    assert [r.text for r in zxingcpp.read_barcodes(printed.convert("L"))] == [world.order_ids[0]]
    assert issued(world) == [1, 0, 0, 0]
    assert station.exit_code == ExitCode.OK


def test_a_second_scan_of_a_printed_order_prints_nothing_and_uses_no_reprint(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    station = agent(vault_url, world, zebra, out)
    station.scan(f"amazon:{world.order_ids[1]}")
    assert station.scan(world.order_ids[1]) == Outcome.DUPLICATE
    assert len(zebra.labels) == 1 and issued(world) == [0, 1, 0, 0]
    assert lines(out)[-1] == (
        f"ALREADY PRINTED amazon:{world.order_ids[1]}: not printed again; "
        f"for a second label run: labelvault-print reprint amazon:{world.order_ids[1]}"
    )
    assert station.exit_code == ExitCode.OK


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("paper_out", "paper out: load labels"),
        ("head_open", "head open: close the print head"),
        ("paused", "paused: press pause on the printer to resume"),
    ],
)
def test_a_printer_that_cannot_print_gets_nothing_and_the_vault_counts_nothing(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO, flag: str, message: str
) -> None:
    zebra.set_flags(**{flag: True})
    station = agent(vault_url, world, zebra, out)
    assert station.scan(world.order_ids[0]) == Outcome.PRINTER
    assert lines(out) == [f"PRINTER amazon:{world.order_ids[0]} not printed, nothing sent: zebra-1 {message}"]
    assert zebra.labels == [] and zebra.held == []
    assert issued(world) == [0, 0, 0, 0]
    assert station.exit_code == ExitCode.PRINTER
    assert station.summary() == (
        "SHIFT printed=0 refused=0 printer-problem=1 vault-unavailable=0 invalid-scan=0 already-printed=0 "
        "station-refused=0"
    )


def test_the_agent_waits_for_paper_and_then_prints(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    zebra.fail_for(3, paper_out=True)
    station = agent(vault_url, world, zebra, out, printer_wait=10.0)
    assert station.scan(world.order_ids[0]) == Outcome.PRINTED
    assert lines(out) == [
        "WAITING for a printer: zebra-1 paper out: load labels",
        f"PRINTED amazon:{world.order_ids[0]} on zebra-1",
    ]
    assert len(zebra.labels) == 1


def test_a_printer_that_drops_mid_job_gets_the_same_label_again(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    zebra.drop_next_job(after_bytes=300)
    station = agent(vault_url, world, zebra, out)
    assert station.scan(world.order_ids[2]) == Outcome.PRINTED
    assert zebra.dropped == 1 and len(zebra.labels) == 1
    assert barcode_of(zebra.labels[0]) == world.order_ids[2]
    first, second = lines(out)
    assert first.startswith(f"RETRY amazon:{world.order_ids[2]}: zebra-1: no status answer")
    assert second == f"PRINTED amazon:{world.order_ids[2]} on zebra-1"
    assert issued(world) == [0, 0, 1, 0]


def test_a_job_the_printer_keeps_losing_is_the_same_label_when_scanned_again_not_a_reprint(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    for _ in range(3):
        zebra.drop_next_job(after_bytes=100)
    station = agent(vault_url, world, zebra, out, send_attempts=3)
    assert station.scan(world.order_ids[0]) == Outcome.PRINTER
    assert lines(out)[-1].endswith("; scan it again to print the same label (no reprint used)")
    assert zebra.labels == [] and issued(world) == [1, 0, 0, 0]
    assert station.scan(world.order_ids[0]) == Outcome.PRINTED
    assert lines(out)[-1] == f"PRINTED amazon:{world.order_ids[0]} on zebra-1 (the vault's copy of an earlier attempt)"
    assert len(zebra.labels) == 1 and issued(world) == [1, 0, 0, 0]


def test_responses_lost_on_the_network_are_asked_again_with_the_same_key_and_counted_once(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    proxy = FaultyProxy(int(vault_url.rsplit(":", 1)[1]), rate=0.15, seed=7)
    try:
        station = agent(proxy.url, world, zebra, out)
        station.client.attempts = 12
        for order_id in world.order_ids:
            assert station.scan(order_id) == Outcome.PRINTED, out.getvalue()
    finally:
        proxy.stop()
    assert proxy.cuts["response"] > 0 and proxy.cuts["request"] > 0
    assert sorted(barcode_of(label) for label in zebra.labels) == sorted(world.order_ids)
    assert issued(world) == [1, 1, 1, 1]


def test_refusals_are_one_line_with_the_apis_reason_and_nothing_is_sent(
    shared_db: Database, keys: KeyManager, vault_url: str, zebra: FakeZebra, out: io.StringIO
) -> None:
    world = build_world(shared_db, keys, n_orders=2, statuses={1: OrderStatus.CANCELLED})
    station = agent(vault_url, world, zebra, out)
    assert station.scan(world.order_ids[1]) == Outcome.REFUSED
    assert station.scan("amazon:503-0000000-0000000") == Outcome.REFUSED
    assert station.scan("amazon:no such order!") == Outcome.INVALID
    assert lines(out) == [
        f"REFUSED amazon:{world.order_ids[1]}: cancelled (no label can be issued for this order now)",
        "REFUSED amazon:503-0000000-0000000: not-found",
        "INVALID scan: not an order reference: expected an order id (letters, digits, '.', '_', '-') "
        "or marketplace:order-id",
    ]
    assert zebra.labels == []
    assert station.exit_code == ExitCode.REFUSED


def test_a_reprint_is_a_separate_command_that_needs_an_owners_grant_past_the_cap(
    make_app: Any, shared_db: Database, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    with served(make_app(shared_db.app_url, label_reissue_cap=1, **UNLIMITED)) as url:
        station = agent(url, world, zebra, out)
        station.scan(world.order_ids[0])
        ref = station.default_marketplace + ":" + world.order_ids[0]
        assert station.scan(ref) == Outcome.DUPLICATE
        from printagent.refs import parse_ref

        assert station.print_order(parse_ref(ref, "amazon"), reprint=True) == Outcome.REFUSED
    assert lines(out)[-1] == (
        f"REFUSED {ref}: reissue-cap (1 of 1 labels were issued for this order; an owner can grant a reprint); "
        "an owner can allow one more with: labelvault labels grant-reprint"
    )
    assert len(zebra.labels) == 1 and issued(world) == [1, 0, 0, 0]


def test_a_reprint_under_the_cap_prints_a_second_label(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    from printagent.refs import OrderRef

    station = agent(vault_url, world, zebra, out)
    ref = OrderRef("amazon", world.order_ids[3])
    assert station.print_order(ref) == Outcome.PRINTED
    assert station.print_order(ref, reprint=True) == Outcome.PRINTED
    assert lines(out)[-1] == f"REPRINTED {ref} on zebra-1"
    assert len(zebra.labels) == 2 and issued(world) == [0, 0, 0, 2]


def test_a_refused_station_stops_with_its_own_exit_code(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    station = Agent(
        VaultClient(vault_url, "lv_not-a-real-key"), [ZebraPrinter("zebra-1", zebra.host, zebra.port)], out=out
    )
    _agents.append(station)
    with pytest.raises(StationRefused):
        station.scan(world.order_ids[0])
    assert lines(out) == [f"STATION REFUSED amazon:{world.order_ids[0]}: invalid-api-key (a valid API key is required)"]
    assert station.exit_code == ExitCode.STATION and zebra.labels == []


def test_an_unreachable_vault_is_one_line_and_its_exit_code(world: World, zebra: FakeZebra, out: io.StringIO) -> None:
    from tests.support.servers import free_port

    station = agent(f"http://127.0.0.1:{free_port()}", world, zebra, out)
    station.client.attempts = 2
    assert station.scan(world.order_ids[0]) == Outcome.UNAVAILABLE
    assert lines(out) == [
        f"UNAVAILABLE amazon:{world.order_ids[0]} not printed: the vault did not answer after 2 attempts: "
        "network error (ConnectError); scan it again"
    ]
    assert station.exit_code == ExitCode.UNAVAILABLE


def test_a_wave_posted_by_a_wms_on_loopback_prints_in_order(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    import httpx

    station = agent(vault_url, world, zebra, out)
    server = WaveServer(station, "127.0.0.1", 0)
    server.start()
    try:
        orders = [
            world.order_ids[0],
            {"marketplace": "amazon", "order_id": world.order_ids[1]},
            f"amazon:{world.order_ids[0]}",
            "bad ref",
        ]
        answer = httpx.post(f"{server.url}/v1/wave", json={"orders": orders})
        shift = httpx.get(f"{server.url}/v1/shift").json()
        bad = httpx.post(f"{server.url}/v1/wave", json={"orders": []})
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 200
    assert answer.json()["results"] == [
        {"order": f"amazon:{world.order_ids[0]}", "outcome": "printed"},
        {"order": f"amazon:{world.order_ids[1]}", "outcome": "printed"},
        {"order": f"amazon:{world.order_ids[0]}", "outcome": "already-printed"},
        {
            "order": "",
            "outcome": "invalid-scan",
            "error": "not an order reference: expected an order id (letters, digits, '.', '_', '-') "
            "or marketplace:order-id",
        },
    ]
    assert answer.json()["exit_code"] == ExitCode.REFUSED
    assert shift["counts"]["printed"] == 2
    assert bad.status_code == 400
    assert [barcode_of(label) for label in zebra.labels] == world.order_ids[:2]


def test_the_wave_endpoint_listens_on_loopback_only(world: World, zebra: FakeZebra, out: io.StringIO) -> None:
    station = agent("http://127.0.0.1:1", world, zebra, out)
    with pytest.raises(ValueError, match="loopback only"):
        WaveServer(station, "0.0.0.0", 0)


def test_a_300_dpi_printer_gets_its_label_at_300_dpi(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    client = VaultClient(vault_url, world.key)
    station = Agent(client, [ZebraPrinter("zebra-300", zebra.host, zebra.port, dpi=300)], out=out, printer_wait=0)
    _agents.append(station)
    assert station.scan(world.order_ids[1]) == Outcome.PRINTED
    (label,) = zebra.labels
    assert b"^PW1200" in label and b"^LL1800" in label
    assert label == expected_zpl(world.order_ids[1], MARKED_BUYERS[1], label, dpi=300)


def test_a_second_printer_takes_the_job_when_the_first_cannot_print(
    vault_url: str, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    with FakeZebra() as spare:
        zebra.set_flags(paper_out=True)
        client = VaultClient(vault_url, world.key)
        printers = [ZebraPrinter("zebra-1", zebra.host, zebra.port), ZebraPrinter("zebra-2", spare.host, spare.port)]
        station = Agent(client, printers, out=out, printer_wait=0)
        _agents.append(station)
        assert station.scan(world.order_ids[0]) == Outcome.PRINTED
        assert lines(out) == [f"PRINTED amazon:{world.order_ids[0]} on zebra-2"]
        assert zebra.labels == [] and len(spare.labels) == 1
        station.close()


def test_an_answer_that_is_not_a_label_never_reaches_the_printer(
    world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    from werkzeug.wrappers import Response

    def captive_portal(environ: Any, start_response: Any) -> Any:  # what a hotel or guest network answers
        return Response("<html>Sign in to the network</html>", mimetype="text/html")(environ, start_response)

    with served(captive_portal) as url:
        station = agent(url, world, zebra, out)
        station.client.attempts = 2
        assert station.scan(world.order_ids[0]) == Outcome.UNAVAILABLE
    assert lines(out) == [
        f"UNAVAILABLE amazon:{world.order_ids[0]} not printed: the vault did not answer after 2 attempts: "
        "the answer was text/html, not a zpl label; scan it again"
    ]
    assert zebra.labels == [] and zebra.held == []


def test_the_wave_endpoint_takes_json_from_this_machine_only(world: World, zebra: FakeZebra, out: io.StringIO) -> None:
    import httpx

    station = agent("http://127.0.0.1:1", world, zebra, out)
    server = WaveServer(station, "127.0.0.1", 0)
    server.start()
    try:
        wave = f"{server.url}/v1/wave"
        form = httpx.post(wave, content=b'{"orders": ["amazon:1"]}', headers={"Content-Type": "text/plain"})
        rebound = httpx.post(wave, json={"orders": ["amazon:1"]}, headers={"Host": "printer.evil.example"})
        shift = httpx.get(f"{server.url}/v1/shift", headers={"Host": "printer.evil.example:8631"})
    finally:
        server.shutdown()
        server.server_close()
    assert form.status_code == 415  # what a web page's form can send cross-origin
    assert rebound.status_code == 403 and shift.status_code == 403  # a website's name pointed at 127.0.0.1
    assert sum(station.counts.values()) == 0 and out.getvalue() == ""


def test_gateway_errors_and_rate_limits_are_retried_with_the_same_key(
    make_app: Any, shared_db: Database, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    from tests.support.printing import answering_first

    answers = [(502, {}), (503, {"Retry-After": "0"}), (429, {"Retry-After": "1"}), (504, {})]
    with served(answering_first(make_app(shared_db.app_url, **UNLIMITED), answers)) as url:
        assert agent(url, world, zebra, out).scan(world.order_ids[0]) == Outcome.PRINTED
    assert lines(out) == [f"PRINTED amazon:{world.order_ids[0]} on zebra-1"]
    assert issued(world) == [1, 0, 0, 0]


def test_a_long_retry_after_ends_the_job_at_once_to_be_scanned_again(
    make_app: Any, shared_db: Database, world: World, zebra: FakeZebra, out: io.StringIO
) -> None:
    import time

    from tests.support.printing import answering_first

    with served(answering_first(make_app(shared_db.app_url, **UNLIMITED), [(503, {"Retry-After": "30"})])) as url:
        station = agent(url, world, zebra, out)
        started = time.monotonic()
        assert station.scan(world.order_ids[0]) == Outcome.UNAVAILABLE
        assert time.monotonic() - started < 5
        assert station.scan(world.order_ids[0]) == Outcome.PRINTED
    assert lines(out)[0] == (
        f"UNAVAILABLE amazon:{world.order_ids[0]} not printed: the vault did not answer after 6 attempts: "
        "HTTP 503 (http-503); scan it again"
    )
    assert issued(world) == [1, 0, 0, 0]
