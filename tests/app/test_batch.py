"""POST /v1/labels/batch: one ZPL stream or PDF for a wave of orders, each order checked and audited."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from render import FontCoverageError
from render.pdf import PdfRenderer
from render.zpl import ZplRenderer
from tests.support.buyers import MARKED_BUYERS
from tests.support.servers import Database
from tests.support.world import World, assert_matches_openapi, build_world
from vault.audit import verify_chain
from vault.keys import KeyManager
from vault.models import AuditEvent, Order
from vault.records import OrderStatus

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")
BATCH = "/v1/labels/batch"


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=4, statuses={2: OrderStatus.CANCELLED})


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url)


def refs(world: World, *indexes: int) -> list[dict[str, str]]:
    return [{"marketplace": "amazon", "order_id": world.order_ids[i]} for i in indexes]


def test_a_zpl_batch_releases_the_eligible_and_reports_the_refused(app: Any, world: World) -> None:
    orders = [*refs(world, 0, 1, 2, 3), {"marketplace": "amazon", "order_id": "503-0000000-0000000"}]
    resp = app.test_client().post(BATCH, json={"orders": orders}, headers=world.auth())
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    assert_matches_openapi(resp, BATCH, "post")
    body = resp.get_json()
    assert body["media_type"] == "application/zpl" and body["encoding"] == "utf-8"
    assert body["released"] == refs(world, 0, 1, 3)
    assert body["refused"] == [
        {**refs(world, 2)[0], "reason": "cancelled"},
        {"marketplace": "amazon", "order_id": "503-0000000-0000000", "reason": "not-found"},
    ]
    zpl = body["document"]
    assert zpl.count("^XA") == zpl.count("^XZ") == 3  # one label per released order, in one stream
    with world.session() as s:
        chain = f"tenant:{world.tenant.id}"
        outcomes = [
            (e.order_ref, e.outcome)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 1))
        ]
        assert verify_chain(s, chain=chain).ok
    assert [o for _, o in outcomes if o == "released"] == ["released"] * 3
    assert ("amazon:" + world.order_ids[2], "refused:cancelled") in outcomes


def test_a_pdf_batch_is_one_multi_page_document(app: Any, world: World, tmp_path: Any) -> None:
    resp = app.test_client().post(BATCH + "?format=pdf", json={"orders": refs(world, 0, 1)}, headers=world.auth())
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["encoding"] == "base64" and body["media_type"] == "application/pdf"
    path = tmp_path / "batch.pdf"
    path.write_bytes(base64.b64decode(body["document"]))
    pages = PdfReader(path).pages
    assert len(pages) == 2
    assert MARKED_BUYERS[0].name in pages[0].extract_text()


def test_all_refused_is_a_report_without_a_document(app: Any, world: World) -> None:
    resp = app.test_client().post(BATCH, json={"orders": refs(world, 2)}, headers=world.auth())
    assert resp.status_code == 200
    assert resp.get_json()["document"] is None and resp.get_json()["released"] == []


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"orders": []}, {"orders": "x"}, {"orders": [{"marketplace": "amazon"}]}, {"orders": [{}] * 501}],
)
def test_malformed_batches_are_400_problems(app: Any, world: World, payload: Any) -> None:
    resp = app.test_client().post(BATCH, json=payload, headers=world.auth())
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/problem+json"


def test_a_body_over_the_limit_is_a_413_refusal_audited_before_the_key_is_read(
    make_app: Any, shared_db: Database, world: World
) -> None:
    app = make_app(shared_db.app_url, max_request_bytes=4096)
    body = b'{"orders": [' + b'{"marketplace": "amazon", "order_id": "x"},' * 200 + b"{}]}"
    declared = app.test_client().post(BATCH, data=body, content_type="application/json", headers=world.auth())
    # Chunked: no Content-Length to check up front; werkzeug cuts the body off at the limit as it is read.
    chunked = app.test_client().post(
        BATCH,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**world.auth(), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn says of a chunked body it de-chunks
    )
    for resp in (declared, chunked):
        assert resp.status_code == 413 and resp.headers["Content-Type"] == "application/problem+json"
        assert resp.get_json()["type"].endswith("/body-too-large")
    with world.session() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused:body-too-large")).all()
    assert refused and all(e.chain == "platform" for e in refused)  # refused at the gate: no key was read
    small = app.test_client().post(BATCH, json={"orders": refs(world, 0)}, headers=world.auth())
    assert small.status_code == 200


def test_json_nested_too_deep_is_a_400_not_a_crash(app: Any, world: World) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"orders": ' + b"[" * 40 + b"]" * 40 + b"}", b"[" * 100_000):
        resp = app.test_client().post(BATCH, data=body, content_type="application/json", headers=world.auth())
        assert resp.status_code == 400 and resp.headers["Content-Type"] == "application/problem+json"
    # Brackets inside strings are text, not nesting.
    deep_text = {"orders": refs(world, 0), "note": "[" * 1000}
    assert app.test_client().post(BATCH, json=deep_text, headers=world.auth()).status_code == 200


def test_a_batch_needs_a_key(app: Any, world: World) -> None:
    assert app.test_client().post(BATCH, json={"orders": refs(world, 0)}).status_code == 401


def test_each_order_is_audited_in_request_order_and_a_repeat_counts_as_another_issue(
    make_app: Any, shared_db: Database, world: World
) -> None:
    app = make_app(shared_db.app_url, label_reissue_cap=2)
    orders = [
        *refs(world, 0),
        {"marketplace": "amazon", "order_id": "bad ref!"},
        *refs(world, 0, 0, 2, 1),
    ]
    body = app.test_client().post(BATCH, json={"orders": orders}, headers=world.auth()).get_json()
    # The third copy of order 0 is past the cap of 2; the malformed reference is reported as given.
    assert body["released"] == refs(world, 0, 0, 1)
    assert body["refused"] == [
        {"marketplace": "amazon", "order_id": "bad ref!", "reason": "not-found"},
        {**refs(world, 0)[0], "reason": "reissue-cap"},
        {**refs(world, 2)[0], "reason": "cancelled"},
    ]
    assert body["document"].count("^XA") == 3
    with world.session() as s:
        chain = f"tenant:{world.tenant.id}"
        events = s.scalars(select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)).all()[-6:]
        assert verify_chain(s, chain=chain).ok
    ref0, ref1, ref2 = (f"amazon:{world.order_ids[i]}" for i in (0, 1, 2))
    assert [(e.order_ref, e.outcome) for e in events] == [
        (ref0, "released"),
        (None, "refused:not-found"),  # a malformed reference names no order: audited without it
        (ref0, "released"),
        (ref0, "refused:reissue-cap"),
        (ref2, "refused:cancelled"),
        (ref1, "released"),
    ]
    assert [e.details["issue"] for e in events if e.outcome == "released"] == [1, 2, 1]
    assert len({e.seq for e in events}) == 6


def test_an_order_capped_by_a_concurrent_release_is_refused_and_not_printed(
    make_app: Any, shared_db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the batch's read and its count, another station used up order 1's last issue."""
    import vault.release
    from vault.models import Order

    app = make_app(shared_db.app_url, label_reissue_cap=1)
    real = vault.release._prepared

    def racing(*args: Any, **kw: Any) -> Any:
        prepared = real(*args, **kw)
        if prepared.order_id == world.order_ids[1]:
            with world.session() as other:
                other.get(Order, prepared.order.id).labels_issued = 1
                other.commit()
        return prepared

    monkeypatch.setattr(vault.release, "_prepared", racing)
    body = app.test_client().post(BATCH, json={"orders": refs(world, 0, 1, 3)}, headers=world.auth()).get_json()
    assert body["released"] == refs(world, 0, 3)
    assert body["refused"] == [{**refs(world, 1)[0], "reason": "reissue-cap"}]
    assert body["document"].count("^XA") == 2 and world.order_ids[1] not in body["document"]


@pytest.mark.parametrize(("query", "accept"), [("?format=png", None), ("", "image/png")])
def test_png_batches_are_a_400_that_releases_nothing(app: Any, world: World, query: str, accept: str | None) -> None:
    headers = {**world.auth(), **({"Accept": accept} if accept else {})}
    resp = app.test_client().post(BATCH + query, json={"orders": refs(world, 0, 1)}, headers=headers)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert "one image each" in resp.get_json()["detail"]
    assert_matches_openapi(resp, BATCH, "post")
    with world.session() as s:
        chain = f"tenant:{world.tenant.id}"
        assert not [
            e for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == chain)) if e.outcome == "released"
        ]


# --- one unrenderable order in a wave ------------------------------------------------------------------


@pytest.fixture
def wave(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=500)


def _unrenderable(monkeypatch: pytest.MonkeyPatch, cls: type, order_id: str) -> None:
    """Make the renderer ``cls`` fail, as for a script no font covers, on every batch that holds ``order_id``."""
    real = cls.render  # type: ignore[attr-defined]

    def render(self: Any, documents: Any) -> bytes:
        if any(d.order_ref == order_id for d in documents):
            raise FontCoverageError("no font covers a character of the label")
        return real(self, documents)  # type: ignore[no-any-return]

    monkeypatch.setattr(cls, "render", render)


def _refusals(world: World) -> list[tuple[str | None, str]]:
    with world.session() as s:
        chain = f"tenant:{world.tenant.id}"
        events = s.scalars(select(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 1)).all()
        assert verify_chain(s, chain=chain).ok
    return [(e.order_ref, e.outcome) for e in events if e.outcome.startswith("refused:")]


def test_one_unrenderable_order_is_refused_and_the_other_499_are_printed(
    app: Any, wave: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = wave.order_ids[137]
    _unrenderable(monkeypatch, ZplRenderer, bad)
    resp = app.test_client().post(BATCH, json={"orders": refs(wave, *range(500))}, headers=wave.auth())
    assert resp.status_code == 200, resp.get_json()
    assert_matches_openapi(resp, BATCH, "post")
    body = resp.get_json()
    assert body["refused"] == [{"marketplace": "amazon", "order_id": bad, "reason": "render-failed"}]
    assert body["released"] == refs(wave, *(i for i in range(500) if i != 137))
    assert body["document"].count("^XA") == 499
    assert resp.headers["Labelvault-Refused"] == f"amazon:{bad}=render-failed"
    assert resp.headers["Labelvault-Refused-Count"] == "1"
    assert _refusals(wave) == [(f"amazon:{bad}", "refused:render-failed")]
    with wave.session() as s:  # the refused order's reissue count is not burnt
        issued = dict(
            s.execute(
                select(Order.external_order_id, Order.labels_issued).where(Order.tenant_id == wave.tenant.id)
            ).all()
        )
    assert issued[bad] == 0 and sum(issued.values()) == 499


def test_a_pdf_wave_asked_for_with_accept_is_the_pdf_itself(
    app: Any, wave: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bad = wave.order_ids[3]
    _unrenderable(monkeypatch, PdfRenderer, bad)
    orders = [*refs(wave, *range(500))]
    orders[10] = {"marketplace": "amazon", "order_id": "not a reference, maybe a name"}
    resp = app.test_client().post(BATCH, json={"orders": orders}, headers={**wave.auth(), "Accept": "application/pdf"})
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf" and resp.headers["Cache-Control"] == "no-store"
    assert_matches_openapi(resp, BATCH, "post")
    assert resp.headers["Labelvault-Refused"] == f"amazon:{bad}=render-failed, #10=not-found"
    assert resp.headers["Labelvault-Refused-Count"] == "2"
    path = tmp_path / "wave.pdf"
    path.write_bytes(resp.data)
    assert len(PdfReader(path).pages) == 498
    assert _refusals(wave) == [(f"amazon:{bad}", "refused:render-failed"), (None, "refused:not-found")]


def test_an_all_refused_batch_asked_for_as_zpl_is_a_409_naming_the_refused(app: Any, world: World) -> None:
    resp = app.test_client().post(
        BATCH, json={"orders": refs(world, 2)}, headers={**world.auth(), "Accept": "application/zpl"}
    )
    assert resp.status_code == 409 and resp.mimetype == "application/problem+json"
    assert_matches_openapi(resp, BATCH, "post")
    assert resp.headers["Labelvault-Refused"] == f"amazon:{world.order_ids[2]}=cancelled"


@pytest.mark.parametrize(
    ("accept", "envelope"),
    [
        ("*/*", True),
        ("application/json", True),
        ("application/pdf;q=0.5, application/json", True),
        ("application/pdf", False),
    ],
)
def test_accept_chooses_between_the_envelope_and_the_document(
    app: Any, world: World, accept: str, envelope: bool
) -> None:
    resp = app.test_client().post(
        BATCH + "?format=pdf", json={"orders": refs(world, 0)}, headers={**world.auth(), "Accept": accept}
    )
    assert resp.status_code == 200
    assert resp.mimetype == ("application/json" if envelope else "application/pdf")
    assert resp.headers["Labelvault-Refused-Count"] == "0" and resp.headers["Labelvault-Refused"] == ""
