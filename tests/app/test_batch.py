"""POST /v1/labels/batch: one ZPL stream or PDF for a wave of orders, each order checked and audited."""

from __future__ import annotations

import base64
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
    real = vault.release.prepare_release

    def racing(session: Any, **kw: Any) -> Any:
        prepared = real(session, **kw)
        if kw["order_id"] == world.order_ids[1]:
            with world.session() as other:
                other.get(Order, prepared.order.id).labels_issued = 1
                other.commit()
        return prepared

    monkeypatch.setattr("app.api.labels.prepare_release", racing)
    body = app.test_client().post(BATCH, json={"orders": refs(world, 0, 1, 3)}, headers=world.auth()).get_json()
    assert body["released"] == refs(world, 0, 3)
    assert body["refused"] == [{**refs(world, 1)[0], "reason": "reissue-cap"}]
    assert body["document"].count("^XA") == 2 and world.order_ids[1] not in body["document"]


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
