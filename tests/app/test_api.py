"""The label API end to end: release, tenancy, keys and scopes, eligibility, fail-closed audit and KMS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from tests.support.buyers import MARKED_BUYERS
from tests.support.servers import Database, MotoKms
from tests.support.world import World, assert_matches_openapi, assert_no_pii, build_world
from vault.audit import canonical_event, verify_chain
from vault.clients import ADMIN, LabelProfile
from vault.errors import NotFound, ReprintNotGranted
from vault.keys import KeyManager
from vault.labels import shred_label
from vault.models import ApiClient, AuditEvent, Order, utcnow
from vault.records import OrderStatus
from vault.release import grant_reprint

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

LABEL_PATH = "/v1/labels/{marketplace}/{order_id}"
NOT_FOUND = {"type": "https://labelvault.dev/problems/not-found", "title": "Not Found", "status": 404}


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=2)


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url)


def events(world: World, chain: str | None = None) -> list[AuditEvent]:
    with world.session() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.chain == (chain or f"tenant:{world.tenant.id}"))
                .order_by(AuditEvent.seq)
            )
        )


def issued(world: World, i: int = 0) -> int:
    with world.session() as s:
        return s.get(Order, world.orders[i].id).labels_issued  # type: ignore[union-attr]


def test_release_returns_the_profiled_label_as_json(app: Any, world: World) -> None:
    resp = app.test_client().get(world.url(0), headers=world.auth())
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert_matches_openapi(resp, LABEL_PATH)
    body = resp.get_json()
    jp = MARKED_BUYERS[0]
    assert body["order_ref"] == world.order_ids[0] and body["marketplace"] == "amazon"
    assert body["ship_to"]["name"] == jp.name and body["ship_to"]["postal_code"] == jp.postal_code
    assert "phone" not in body["ship_to"]  # the default profile withholds the phone
    # Japanese addresses in Japanese script are laid out big-to-small: postal code first, name last.
    assert body["address_lines"][0] == "〒100-0001" and body["address_lines"][-2:] == [jp.name, "JAPAN"]
    release = events(world)[-1]
    assert (release.action, release.outcome, release.order_ref) == (
        "label.release",
        "released",
        f"amazon:{world.order_ids[0]}",
    )
    assert release.actor == f"client:{world.client.key_id}" and release.ip == "127.0.0.1"
    assert release.purpose == "shipping-label" and release.details["issue"] == 1  # type: ignore[index]
    assert "phone" not in release.details["fields"]  # type: ignore[index]
    assert issued(world) == 1


def test_profile_releases_the_phone_only_where_the_carrier_needs_it(
    app: Any, shared_db: Database, keys: KeyManager
) -> None:
    profile = LabelProfile(frozenset(LabelProfile.from_json(None).fields | {"phone"}), frozenset({"JP"}))
    world = build_world(shared_db, keys, n_orders=2, profile=profile)
    client = app.test_client()
    jp, us = (client.get(world.url(i), headers=world.auth()).get_json()["ship_to"] for i in (0, 1))
    assert jp["phone"] == MARKED_BUYERS[0].phone
    assert "phone" not in us and us["company"] == MARKED_BUYERS[1].company


def test_profile_can_withhold_optional_fields(app: Any, shared_db: Database, keys: KeyManager) -> None:
    profile = LabelProfile(frozenset({"name", "address_line1", "city", "country_code", "postal_code"}))
    world = build_world(shared_db, keys, n_orders=2, profile=profile)
    ship_to = app.test_client().get(world.url(1), headers=world.auth()).get_json()["ship_to"]
    assert set(ship_to) == {"name", "address_line1", "city", "country_code", "postal_code"}


def test_a_printer_font_in_the_profile_prints_cjk_as_text(app: Any, shared_db: Database, keys: KeyManager) -> None:
    """ZPL for a client whose printers hold a CJK font: every line in that font, no graphics."""
    default = LabelProfile.from_json(None)
    world = build_world(shared_db, keys, n_orders=1, profile=LabelProfile(default.fields, None, "E:ANMDJ.TTF"))
    other = build_world(shared_db, keys, n_orders=1)
    client = app.test_client()
    zpl = client.get(world.url(0, format="zpl"), headers=world.auth()).get_data(as_text=True)
    assert "^A@N," in zpl and ",E:ANMDJ.TTF^FH^FD" + MARKED_BUYERS[0].city + "^FS" in zpl and "^GF" not in zpl
    batch = client.post(
        "/v1/labels/batch", json={"orders": [{"marketplace": "amazon", "order_id": world.order_ids[0]}]},
        headers=world.auth(),
    ).get_json()  # fmt: skip
    assert batch["released"] and "E:ANMDJ.TTF" in batch["document"] and "^GF" not in batch["document"]
    # Without one, the same kind of address goes as graphics.
    assert "^GFA," in client.get(other.url(0, format="zpl"), headers=other.auth()).get_data(as_text=True)


def test_a_label_profile_refuses_a_printer_font_that_could_inject_commands() -> None:
    from vault.errors import ClientSetupError

    fields = LabelProfile.from_json(None).fields
    for bad in ("E:X.TTF^XZ", "E:X.TTF\n", "~JR", "JJ", "E:../X.TTF"):
        with pytest.raises(ClientSetupError, match="printer font"):
            LabelProfile(fields, None, bad)
    assert LabelProfile.from_json(LabelProfile(fields, None, "J").to_json()).printer_font == "J"
    assert "printer_font" not in LabelProfile(fields).to_json()  # stored profiles without one are unchanged


def test_a_key_of_one_tenant_never_reaches_another_tenants_order(
    app: Any, shared_db: Database, keys: KeyManager
) -> None:
    a = build_world(shared_db, keys)
    b = build_world(shared_db, keys)
    client = app.test_client()
    theirs = client.get(b.url(0), headers=a.auth())
    missing = client.get("/v1/labels/amazon/503-0000000-0000000", headers=a.auth())
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_data() == missing.get_data() and theirs.get_json() == NOT_FOUND
    assert_matches_openapi(theirs, LABEL_PATH)
    assert issued(b) == 0
    assert [e.action for e in events(b)] == ["tenant.create", "client.create"]  # B's chain never hears of A's attempt
    refusal = events(a)[-2]  # the last one is the missing order's
    assert refusal.outcome == "refused:not-found" and refusal.order_ref == f"amazon:{b.order_ids[0]}"


@pytest.mark.parametrize("path", ["/v1/labels/amazon/..", "/v1/labels/AMAZON/x", "/v1/labels/amazon/a%20b"])
def test_malformed_order_references_are_404(app: Any, world: World, path: str) -> None:
    resp = app.test_client().get(path, headers=world.auth())
    assert resp.status_code == 404


def test_scopes_are_enforced(app: Any, world: World, keys: KeyManager) -> None:
    client = app.test_client()
    _, admin_key = world.add_client(keys, scopes=[ADMIN])
    refused = client.get(world.url(0), headers=world.auth(admin_key))
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("/insufficient-scope")
    assert_matches_openapi(refused, LABEL_PATH)
    assert client.get("/v1/audit/head", headers=world.auth()).status_code == 403  # labels:issue only
    head = client.get("/v1/audit/head", headers=world.auth(admin_key))
    assert head.status_code == 200
    assert_matches_openapi(head, "/v1/audit/head")
    assert head.get_json()["chain"] == f"tenant:{world.tenant.id}"
    assert issued(world) == 0
    assert events(world)[-1].outcome == "refused:scope"


def test_revoked_expired_and_bad_keys_are_one_401(app: Any, world: World, keys: KeyManager) -> None:
    from vault.clients import revoke_client

    revoked, revoked_key = world.add_client(keys)
    expired, expired_key = world.add_client(keys, expires_at=utcnow() + timedelta(days=1))
    with world.session() as s:
        revoke_client(s, client=s.get(ApiClient, revoked.id), actor="test")  # type: ignore[arg-type]
        s.execute(
            update(ApiClient).where(ApiClient.id == expired.id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        s.commit()
    good_id_bad_secret = world.key[: -len("x" * 43)] + "A" * 43
    client = app.test_client()
    bodies = set()
    for headers in (
        world.auth(revoked_key),
        world.auth(expired_key),
        world.auth(good_id_bad_secret),
        world.auth("lv_0000000000000000_" + "A" * 43),
        world.auth("not-a-key"),
        {"Authorization": f"Basic {world.key}"},
        {},
    ):
        resp = client.get(world.url(0), headers=headers)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == 'Bearer realm="labelvault"'
        assert_matches_openapi(resp, LABEL_PATH)
        bodies.add(resp.get_data())
    assert len(bodies) == 1
    assert issued(world) == 0
    assert client.get(world.url(0), headers=world.auth()).status_code == 200  # the good key still works


def test_last_use_is_recorded(app: Any, world: World) -> None:
    app.test_client().get(world.url(0), headers=world.auth())
    with world.session() as s:
        client = s.get(ApiClient, world.client.id)
        assert client is not None and client.last_used_at is not None and client.last_used_ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (OrderStatus.SHIPPED, "status"),
        (OrderStatus.PENDING, "status"),
        (OrderStatus.CANCELLED, "cancelled"),
        (OrderStatus.PARTIALLY_SHIPPED, None),
    ],
)
def test_order_state_decides_eligibility(
    app: Any, shared_db: Database, keys: KeyManager, status: OrderStatus, reason: str | None
) -> None:
    world = build_world(shared_db, keys, n_orders=1, statuses={0: status})
    resp = app.test_client().get(world.url(0), headers=world.auth())
    assert_matches_openapi(resp, LABEL_PATH)
    if reason is None:
        assert resp.status_code == 200
    else:
        assert resp.status_code == 409 and resp.get_json()["reason"] == reason
        assert issued(world) == 0 and events(world)[-1].outcome == f"refused:{reason}"


def test_erased_and_expired_orders_are_refused(app: Any, world: World) -> None:
    with world.session() as s:
        shred_label(s, order=s.get(Order, world.orders[0].id))  # type: ignore[arg-type]
        s.execute(
            update(Order).where(Order.id == world.orders[1].id).values(retention_until=utcnow() - timedelta(days=1))
        )
        s.commit()
    client = app.test_client()
    assert client.get(world.url(0), headers=world.auth()).get_json()["reason"] == "erased"
    assert client.get(world.url(1), headers=world.auth()).get_json()["reason"] == "retention-expired"


def test_reissue_cap_holds(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, label_reissue_cap=2)
    client = app.test_client()
    assert [client.get(world.url(0), headers=world.auth()).status_code for _ in range(2)] == [200, 200]
    third = client.get(world.url(0), headers=world.auth())
    assert third.status_code == 409 and third.get_json()["reason"] == "reissue-cap"
    assert_matches_openapi(third, LABEL_PATH)
    assert (third.get_json()["issued"], third.get_json()["cap"]) == (2, 2)
    assert issued(world) == 2
    assert [e.details["issue"] for e in events(world) if e.outcome == "released"] == [1, 2]  # type: ignore[index]


def test_a_granted_reprint_allows_exactly_one_more_label(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, label_reissue_cap=1)
    client = app.test_client()
    assert client.get(world.url(0), headers=world.auth()).status_code == 200
    with world.session() as s:
        with pytest.raises(ReprintNotGranted):
            grant_reprint(
                s,
                tenant_id=world.tenant.id,
                marketplace="amazon",
                order_id=world.order_ids[0],
                actor="owner",
                reason=" ",
            )
        with pytest.raises(NotFound):  # another tenant's order is no order
            grant_reprint(
                s,
                tenant_id=world.tenant.id + 1000,
                marketplace="amazon",
                order_id=world.order_ids[0],
                actor="owner",
                reason="printer jam",
            )
        granted = grant_reprint(
            s,
            tenant_id=world.tenant.id,
            marketplace="amazon",
            order_id=world.order_ids[0],
            actor="user:1",
            reason="printer jam",
        )
        s.commit()
    assert granted == (1, 1)
    assert client.get(world.url(0), headers=world.auth()).status_code == 200
    capped = client.get(world.url(0), headers=world.auth())
    assert capped.status_code == 409 and (capped.get_json()["issued"], capped.get_json()["cap"]) == (2, 2)
    grant = next(e for e in events(world) if e.action == "label.grant-reprint")
    assert (grant.actor, grant.order_ref) == ("user:1", f"amazon:{world.order_ids[0]}")
    assert grant.details == {"reason": "printer jam", "labels_issued": 1, "reprints_granted": 1}
    assert [e.details["issue"] for e in events(world) if e.outcome == "released"] == [1, 2]  # type: ignore[index]


def test_head_is_not_a_release(app: Any, world: World) -> None:
    """HEAD on a label is refused by routing: nothing unsealed, counted or audited; GET still releases."""
    before = len(events(world))
    resp = app.test_client().head(world.url(0), headers=world.auth())
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"GET", "OPTIONS"}
    assert issued(world) == 0
    assert len(events(world)) == before
    assert app.test_client().get(world.url(0), headers=world.auth()).status_code == 200
    assert issued(world) == 1


@pytest.mark.parametrize(
    ("query", "accept", "status", "media_type"),
    [
        ("", "application/json", 200, "application/json"),
        ("", "*/*", 200, "application/json"),
        ("", "text/html, application/json;q=0.5", 200, "application/json"),
        ("", "application/xml", 406, "application/problem+json"),
        ("?format=json", "application/xml", 200, "application/json"),
        ("?format=docx", "", 400, "application/problem+json"),
        ("?format=zpl&dpi=150", "", 400, "application/problem+json"),
    ],
)
def test_format_negotiation(app: Any, world: World, query: str, accept: str, status: int, media_type: str) -> None:
    headers = {**world.auth(), **({"Accept": accept} if accept else {})}
    resp = app.test_client().get(world.url(0) + query, headers=headers)
    assert (resp.status_code, resp.mimetype) == (status, media_type)
    assert_matches_openapi(resp, LABEL_PATH)
    assert issued(world) == (1 if status == 200 else 0)  # a refused format counts nothing


def test_audit_unwritable_releases_nothing(make_app: Any, fresh_db: Database, keys: KeyManager) -> None:
    world = build_world(fresh_db, keys, n_orders=1)
    with fresh_db.engine.begin() as c:
        if fresh_db.backend == "sqlite":
            c.execute(
                text(
                    "CREATE TRIGGER audit_readonly BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit table is read-only'); END"
                )
            )
        else:
            c.execute(
                text(
                    "CREATE FUNCTION audit_readonly() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit table is read-only'; END $$"
                )
            )
            c.execute(
                text(
                    "CREATE TRIGGER audit_readonly BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION audit_readonly()"
                )
            )
    app = make_app(fresh_db.app_url)
    resp = app.test_client().get(world.url(0), headers=world.auth())
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert_matches_openapi(resp, LABEL_PATH)
    assert_no_pii(resp.get_data(as_text=True), "the response")
    assert issued(world) == 0  # the reissue counter rolled back with the failed event
    assert [e.action for e in events(world)] == ["tenant.create", "client.create"]


def test_key_service_outage_is_503_and_releases_nothing(
    make_app: Any, shared_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kms = MotoKms()
    try:
        world = build_world(shared_db, KeyManager(kms.provider()), n_orders=1)
        app = make_app(
            shared_db.app_url,
            key_provider="aws-kms",
            kms_key_id=kms.key_id,
            kms_region=kms.region,
            kms_endpoint_url=kms.endpoint,
        )
        kms.stop()
        resp = app.test_client().get(world.url(0), headers=world.auth())
    finally:
        kms.stop()
    assert resp.status_code == 503 and resp.get_json()["type"].endswith("/key-service-unavailable")
    assert_matches_openapi(resp, LABEL_PATH)
    assert issued(world) == 0
    assert events(world)[-1].outcome == "refused:key-service-unavailable"


def test_audit_chain_holds_no_pii_and_verifies(app: Any, world: World, keys: KeyManager) -> None:
    client = app.test_client()
    for i in (0, 1, 0):
        client.get(world.url(i), headers=world.auth())
    client.get("/v1/labels/amazon/missing", headers=world.auth())
    with world.session() as s:
        report = verify_chain(s, chain=f"tenant:{world.tenant.id}")
        assert report.ok and report.checked == 6  # tenant.create, client.create, three releases, one refusal
    for event in events(world):
        assert_no_pii(canonical_event({"d": event.details, "r": event.order_ref, "a": event.actor}).decode(), "audit")
        assert_no_pii(str(event.details), "audit")


@pytest.mark.parametrize(
    ("query", "accept", "pixels"),
    [("?format=png", "", (812, 1218)), ("?dpi=300&size=100x100mm", "image/png", (1181, 1181))],
)
def test_a_png_label_is_one_printer_image_and_is_audited_as_png(
    app: Any, world: World, query: str, accept: str, pixels: tuple[int, int]
) -> None:
    import io

    from PIL import Image

    headers = {**world.auth(), **({"Accept": accept} if accept else {})}
    resp = app.test_client().get(world.url(0) + query, headers=headers)
    assert (resp.status_code, resp.mimetype) == (200, "image/png")
    assert resp.headers["Cache-Control"] == "no-store"
    assert_matches_openapi(resp, LABEL_PATH)
    image = Image.open(io.BytesIO(resp.get_data()))
    assert (image.size, image.mode) == (pixels, "1")
    assert events(world)[-1].details["format"] == "png"  # type: ignore[index]
    assert issued(world) == 1


@pytest.mark.parametrize(
    ("query", "expected"), [("format=zpl&size=100x100mm", "^LL799"), ("format=pdf&size=100x100mm", "")]
)
def test_a_100_mm_square_label_through_the_api(app: Any, world: World, query: str, expected: str) -> None:
    resp = app.test_client().get(world.url(1) + "?" + query, headers=world.auth())
    assert resp.status_code == 200
    assert_matches_openapi(resp, LABEL_PATH)
    if expected:
        assert expected in resp.get_data(as_text=True)
    else:
        import io

        from pypdf import PdfReader

        box = PdfReader(io.BytesIO(resp.get_data())).pages[0].mediabox
        assert (float(box.width), float(box.height)) == pytest.approx((283.46, 283.46), abs=0.01)


def test_japanese_domestic_labels_print_the_phone_the_profile_releases(
    app: Any, shared_db: Database, keys: KeyManager
) -> None:
    from vault.tenants import set_return_address

    phones = LabelProfile(frozenset(LabelProfile.from_json(None).fields | {"phone"}), frozenset({"JP"}))
    domestic, withheld = (
        build_world(shared_db, keys, n_orders=1, profile=phones),
        build_world(shared_db, keys, n_orders=1),
    )
    for world in (domestic, withheld):
        with world.session() as s:
            tenant = s.merge(world.tenant)
            set_return_address(s, tenant=tenant, name="Osaka Seller", lines=["Umeda 1-1"], country_code="JP", actor="t")
            s.commit()
    client = app.test_client()
    assert MARKED_BUYERS[0].phone is not None
    zpl = client.get(domestic.url(0, format="zpl"), headers=domestic.auth()).get_data(as_text=True)
    assert f"TEL {MARKED_BUYERS[0].phone}" in zpl
    zpl = client.get(withheld.url(0, format="zpl"), headers=withheld.auth()).get_data(as_text=True)
    assert MARKED_BUYERS[0].phone not in zpl and "TEL" not in zpl
