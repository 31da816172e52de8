"""The dashboard's pages: security headers, CSRF, roles, masked orders, the audited label preview, warehouse
clients, rights requests, the audit log and the languages."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import select

from render import FontCoverageError
from render.pdf import PdfRenderer
from tests.support.buyers import MARKED_BUYERS
from tests.support.dashboard import Seller, Shop, csrf_of, open_shop, post
from tests.support.vault import T0
from tests.support.world import PII_STRINGS
from vault.models import AuditEvent, MarketplaceAccount, Order, Tenant, User
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus


@pytest.fixture
def shop(seller: Seller, client: FlaskClient) -> Shop:
    return open_shop(seller, client)


def assert_no_pii(html: str) -> None:
    for value in PII_STRINGS:
        assert value not in html, "buyer PII in a page"


PAGES = [
    "/",
    "/accounts",
    "/shipping",
    "/orders",
    "/clients",
    "/carriers",
    "/audit",
    "/retention",
    "/users",
    "/settings",
    "/profile",
]


def test_every_page_sends_the_security_headers(shop: Shop, client: FlaskClient) -> None:
    for path in [*PAGES, "/login", "/static/css/dashboard.css"]:
        resp = client.get(path)
        assert resp.status_code in (200, 302), path
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in resp.headers  # not outside production
        if not path.startswith("/static"):
            assert resp.headers["Cache-Control"] == "no-store"
        resp.close()


def test_pages_have_no_inline_script_or_style(shop: Shop, client: FlaskClient) -> None:
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        assert " style=" not in html and "<style" not in html, path
        for chunk in html.split("<script")[1:]:
            assert chunk.lstrip().startswith(("src=", 'type="application/json"')), path


def test_production_sends_hsts_and_secure_cookies(make_app: Any, tmp_path: Path) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 'p.db'}",
        env="production",
        secret_key="s" * 40,
        global_allowlist="127.0.0.1/32",
        accept_local_keyring_risk=True,
    )
    resp = app.test_client().get("/login")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-lv_session" and app.config["SESSION_COOKIE_SECURE"]


def test_forms_need_the_csrf_token(shop: Shop, client: FlaskClient) -> None:
    assert client.post("/users/invite", data={"email": "x@seller.example", "role": "viewer"}).status_code == 400
    resp = post(client, "/users/invite", {"email": "x@seller.example", "role": "viewer"}, token="forged")
    assert resp.status_code == 400
    resp = post(
        client,
        "/users/invite",
        {"email": "y@seller.example", "role": "viewer"},
        headers={"Origin": "https://evil.example"},
    )
    assert resp.status_code == 400
    assert client.post("/login", data={"email": "a@b.cd", "password": "x"}).status_code == 400


def test_roles_limit_what_a_user_can_do(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="viewer")
    html = client.get("/").get_data(as_text=True)
    assert "/users" not in html and "/rights" not in html
    assert client.get("/orders").status_code == 200
    assert client.get("/users").status_code == 403
    assert client.get(f"/orders/amazon/{shop.order_ids[0]}/preview").status_code == 403
    assert client.get(f"/orders/amazon/{shop.order_ids[0]}/label.png").status_code == 403
    assert post(client, "/clients", {"name": "x", "cidrs": "127.0.0.1/32"}).status_code == 403
    assert post(client, "/users/invite", {"email": "x@seller.example", "role": "owner"}).status_code == 403
    assert post(client, f"/orders/amazon/{shop.order_ids[0]}/reprint", {"reason": "printer jam"}).status_code == 403


def test_an_owner_grants_a_reprint_with_a_reason_and_an_operator_cannot(
    seller: Seller, shop: Shop, client: FlaskClient
) -> None:
    page = f"/orders/amazon/{shop.order_ids[0]}"
    assert "/reprint" in client.get(page).get_data(as_text=True)
    assert post(client, page + "/reprint", {"reason": ""}).status_code == 302  # refused: no reason
    resp = post(client, page + "/reprint", {"reason": "printer jam"}, follow_redirects=True)
    assert resp.status_code == 200 and "Reprint granted: 0 of 4 labels issued." in resp.get_data(as_text=True)
    with seller.session() as s:
        assert s.scalars(select(Order.reprints_granted).where(Order.external_order_id == shop.order_ids[0])).one() == 1
        grants = s.scalars(select(AuditEvent).where(AuditEvent.action == "label.grant-reprint")).all()
        assert [(e.actor, e.details["reason"]) for e in grants if e.tenant_id == seller.tenant.id] == [  # type: ignore[index]
            (f"user:{shop.user.id}", "printer jam")
        ]
    operator = seller.app.test_client()
    user, auth = seller.user("operator")
    assert auth is not None
    seller.login(operator, user, auth)
    assert "/reprint" not in operator.get(page).get_data(as_text=True)
    assert post(operator, page + "/reprint", {"reason": "printer jam"}).status_code == 403


def test_orders_show_buyers_only_masked(shop: Shop, client: FlaskClient) -> None:
    html = client.get("/orders").get_data(as_text=True)
    assert_no_pii(html)
    assert "Q****** Z****** T********, 981** US" in html
    assert "試* 花*, 100-**** JP" in html
    detail = client.get(f"/orders/amazon/{shop.order_ids[1]}").get_data(as_text=True)
    assert_no_pii(detail)
    assert client.get("/orders?order_id=503-&status=unshipped").status_code == 200
    assert client.get("/orders/amazon/no-such-order").status_code == 404


def test_orders_whose_text_was_repaired_are_marked(shop: Shop, client: FlaskClient) -> None:
    assert 'data-testid="text-repaired"' not in client.get("/orders").get_data(as_text=True)
    with shop.seller.session() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == shop.order_ids[0])).one()
        order.text_repaired = True
        s.commit()
    html = client.get("/orders").get_data(as_text=True)
    assert html.count('data-testid="text-repaired"') == 1 and "text repaired" in html


def test_the_label_preview_needs_a_fresh_code_and_is_audited(shop: Shop, client: FlaskClient) -> None:
    order_id = shop.order_ids[0]
    shop.seller.clock.advance(6 * 60)
    assert client.get(f"/orders/amazon/{order_id}/label.png").status_code == 403
    resp = client.get(f"/orders/amazon/{order_id}/preview")
    assert resp.status_code == 302 and "/reauth" in resp.headers["Location"]
    post(client, resp.headers["Location"], {"code": shop.auth.code()})
    page = client.get(f"/orders/amazon/{order_id}/preview").get_data(as_text=True)
    assert_no_pii(page)
    head = client.head(f"/orders/amazon/{order_id}/label.png")  # a view nobody sees is no view to audit
    assert head.status_code == 405 and "HEAD" not in head.headers["Allow"]
    with shop.seller.session() as s:
        assert not s.scalars(select(AuditEvent).where(AuditEvent.action == "label.preview")).all()
    image = client.get(f"/orders/amazon/{order_id}/label.png")
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data[:4] == b"\x89PNG"
    assert image.headers["Cache-Control"] == "no-store"
    with shop.seller.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "label.preview")).all()[-1]
        assert (event.purpose, event.order_ref, event.actor) == (
            "label-preview",
            f"amazon:{order_id}",
            f"user:{shop.user.id}",
        )


def test_a_new_client_key_is_shown_once_and_works(shop: Shop, client: FlaskClient) -> None:
    resp = post(
        client, "/clients", {"name": "Osaka line 2", "cidrs": "127.0.0.1/32", "fields": ["phone", "postal_code"]}
    )
    html = resp.get_data(as_text=True)
    key = html.split('id="new-api-key">')[1].split("<")[0]
    assert key.startswith("lv_")
    assert key not in client.get("/clients").get_data(as_text=True)
    label = client.get(f"/v1/labels/amazon/{shop.order_ids[1]}", headers={"Authorization": f"Bearer {key}"})
    assert label.status_code == 200 and label.json is not None
    bad = post(client, "/clients", {"name": "Osaka line 2", "cidrs": "127.0.0.1/32"})
    assert bad.status_code == 400 and "already" in bad.get_data(as_text=True)
    key_id = key.split("_")[1]
    post(client, f"/clients/{key_id}/cidrs", {"cidrs": "127.0.0.1/32, 10.1.2.0/24"})
    post(client, f"/clients/{key_id}/revoke")
    again = client.get(f"/v1/labels/amazon/{shop.order_ids[1]}", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 401


def test_a_clients_label_profile_can_be_changed_and_is_audited(shop: Shop, client: FlaskClient) -> None:
    resp = post(client, "/clients", {"name": "Busan line 1", "cidrs": "127.0.0.1/32"})
    key = resp.get_data(as_text=True).split('id="new-api-key">')[1].split("<")[0]
    key_id = key.split("_")[1]
    order = f"/v1/labels/amazon/{shop.order_ids[1]}"

    def released() -> set[str]:
        label = client.get(order, headers={"Authorization": f"Bearer {key}"}).get_json()
        return {name for name, value in label["ship_to"].items() if value is not None}

    assert "phone" not in released()  # the default profile withholds the phone
    page = client.get("/clients").get_data(as_text=True)
    assert f'action="/clients/{key_id}/profile"' in page
    resp = post(client, f"/clients/{key_id}/profile", {"fields": ["phone", "postal_code"]})
    assert resp.status_code == 302
    assert "phone" in released()
    bad = post(client, f"/clients/{key_id}/profile", {"fields": ["postal_code"], "phone_countries": "KR"})
    assert bad.status_code == 400  # phone countries without the phone
    assert "phone" in released()  # unchanged by the refused form
    font = post(
        client, f"/clients/{key_id}/profile", {"fields": ["phone", "postal_code"], "printer_font": "E:ANMDJ.TTF"}
    )
    assert font.status_code == 302 and "E:ANMDJ.TTF" in client.get("/clients").get_data(as_text=True)
    other_order = f"/v1/labels/amazon/{shop.order_ids[0]}?format=zpl"  # order 1 is at its reissue cap
    assert "^A@N," in client.get(other_order, headers={"Authorization": f"Bearer {key}"}).get_data(as_text=True)
    bad_font = post(client, f"/clients/{key_id}/profile", {"fields": ["phone"], "printer_font": "E:X.TTF^XZ"})
    assert bad_font.status_code == 400 and "E:X.TTF^XZ" not in bad_font.get_data(as_text=True).split("error")[0]
    with shop.seller.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "client.profile")).all()[-1]
        assert event.details["client"] == key_id and "phone" in event.details["profile"]["fields"]
        assert event.actor == f"user:{shop.user.id}"


def test_an_erasure_request_erases_the_label_data(shop: Shop, client: FlaskClient) -> None:
    order_id = shop.order_ids[0]
    form = client.get(f"/rights?order_id={order_id}").get_data(as_text=True)
    assert 'method="post"' in form and f'value="{order_id}"' in form
    resp = post(client, "/rights/erasure", {"order_id": order_id, "request_id": "T-1", "verified_by": "support"})
    assert resp.status_code == 302
    assert "erased" in client.get(resp.headers["Location"]).get_data(as_text=True)
    with shop.seller.session() as s:
        order = s.scalar(select(Order).where(Order.external_order_id == order_id))
        assert order is not None and order.erased_at is not None and order.label is None
    resp = post(client, "/rights/erasure", {"order_id": "nope", "request_id": "T-2", "verified_by": "support"})
    assert resp.status_code == 400


def test_an_access_export_is_a_download(shop: Shop, client: FlaskClient) -> None:
    resp = post(client, "/rights/access", {"order_id": shop.order_ids[1], "request_id": "T-9", "verified_by": "s"})
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert json.loads(resp.data)["shipping_label_data"]["name"] == MARKED_BUYERS[1].name


def test_the_audit_log_filters_verifies_and_exports(shop: Shop, client: FlaskClient) -> None:
    assert "user.sign-in" in client.get("/audit?action=user.sign-in").get_data(as_text=True)
    html = post(client, "/audit/verify").get_data(as_text=True)
    assert "Chain intact" in html
    csv = client.get("/audit/export.csv?action=user.sign-in")
    assert csv.mimetype == "text/csv" and b"user.sign-in" in csv.data and b"user.create" not in csv.data
    csv.close()  # a streamed response keeps its request (and database session) until closed


def test_the_language_is_chosen_before_sign_in_and_kept_on_the_user(seller: Seller, client: FlaskClient) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/language", data={"csrf_token": token, "locale": "zh_Hans", "next": "/login"})
    assert resp.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert 'lang="zh-Hans"' in page and "登录" in page
    user, auth = seller.user()
    assert auth is not None
    seller.login(client, user, auth)
    assert "概览" in client.get("/").get_data(as_text=True)
    with seller.session() as s:
        assert s.get(User, user.id).locale == "zh_Hans"  # type: ignore[union-attr]
    fresh = seller.app.test_client()  # another browser: the user's choice, not a cookie
    seller.login(fresh, user, auth)
    assert "概览" in fresh.get("/").get_data(as_text=True)
    browser_zh = seller.app.test_client().get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert 'lang="zh-Hans"' in browser_zh.get_data(as_text=True)  # before any choice, the browser's language


def test_the_compiled_catalog_is_current() -> None:
    folder = Path(__file__).resolve().parents[3] / "app" / "translations" / "zh_Hans" / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id}
    with open(folder / "messages.mo", "rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert po == mo, "run: pybabel compile -d app/translations"
    assert all(po.values()), "every message has a Chinese translation"


def test_pii_never_travels_in_a_url(shop: Shop, client: FlaskClient) -> None:
    # Every form that takes buyer data (rights requests) is a POST; search forms take order ids only.
    html = client.get("/rights").get_data(as_text=True)
    assert html.count('method="post"') >= 3 and 'method="get"' not in html


def test_the_tenants_dashboard_allowlist_signs_out_other_networks(shop: Shop, client: FlaskClient) -> None:
    from vault.models import DashboardAllowlist

    with shop.seller.session() as s:
        s.add(DashboardAllowlist(tenant_id=shop.seller.tenant.id, cidrs=["198.51.100.0/24"], updated_by="test"))
        s.commit()
    resp = client.get("/orders")
    assert resp.status_code == 403 and "does not allow the dashboard from this network" in resp.get_data(as_text=True)
    assert client.get("/orders").headers["Location"].startswith("/login")  # the session is gone


def test_an_owner_without_a_return_address_is_asked_for_it_after_enrolment(seller: Seller, client: FlaskClient) -> None:
    import pyotp

    user, _ = seller.user("owner", enrolled=False)
    resp = post(client, "/login", {"email": user.email, "password": "correct horse battery staple"})
    assert resp.headers["Location"].endswith("/enrol")
    html = client.get("/enrol").get_data(as_text=True)
    secret = html.split('data-testid="totp-secret">')[1].split("<")[0].replace(" ", "")
    seller.clock.advance(30)
    codes = post(client, "/enrol", {"code": pyotp.TOTP(secret).at(seller.clock())}).get_data(as_text=True)
    assert "/welcome/return-address?next=" in codes  # the recovery codes go on to the return-address step
    step = client.get("/welcome/return-address?next=/").get_data(as_text=True)
    assert 'data-testid="skip-note"' in step and "empty FROM block" in step
    assert 'data-testid="return-address-missing"' in client.get("/").get_data(as_text=True)  # skipped: a warning
    bad = post(client, "/settings/return-address", {"name": "Sakura", "line": [""], "country": "C", "next": "/"})
    assert bad.status_code == 400 and 'data-testid="welcome-return-address"' in bad.get_data(as_text=True)
    form = {"name": "Sakura Trading", "line": ["1-2-3 Minato", "", "Tokyo"], "country": "jp", "next": "/"}
    resp = post(client, "/settings/return-address", form)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert 'data-testid="return-address-missing"' not in client.get("/").get_data(as_text=True)
    assert client.get("/welcome/return-address?next=/orders").headers["Location"] == "/orders"  # asked once only
    with seller.session() as s:
        tenant = s.get_one(Tenant, seller.tenant.id)
        assert tenant.return_address == {
            "name": "Sakura Trading",
            "lines": ["1-2-3 Minato", "Tokyo"],
            "country_code": "JP",
        }
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.return_address")).all()[-1]
        assert event.actor == f"user:{user.id}" and event.chain == f"tenant:{seller.tenant.id}"


def test_settings_are_for_owners_and_change_the_time_zone(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="operator")
    assert client.get("/settings").status_code == 403
    assert post(client, "/settings/time-zone", {"time_zone": "Asia/Tokyo"}).status_code == 403
    assert "/settings" not in client.get("/").get_data(as_text=True)
    owner, auth = shop.seller.user("owner")
    assert auth is not None
    other = shop.seller.app.test_client()
    shop.seller.login(other, owner, auth)
    assert post(other, "/settings/time-zone", {"time_zone": "Mars/Olympus"}).status_code == 400
    assert post(other, "/settings/time-zone", {"time_zone": "Asia/Tokyo"}).status_code == 302
    assert "<option selected>Asia/Tokyo</option>" in other.get("/settings").get_data(as_text=True)


def test_the_print_run_lists_todays_and_overdue_orders_in_the_sellers_time_zone(
    shop: Shop, client: FlaskClient
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    tokyo = ZoneInfo("Asia/Tokyo")
    end_of_today = datetime.combine(now.astimezone(tokyo).date() + timedelta(days=1), time(), tzinfo=tokyo)
    overdue_id, today_id, later_id = shop.order_ids[0], shop.order_ids[1], "503-9999999-0000001"
    with shop.seller.session() as s:
        tenant = s.get_one(Tenant, shop.seller.tenant.id)
        tenant.time_zone = "Asia/Tokyo"
        orders = {o.external_order_id: o for o in s.scalars(select(Order).where(Order.tenant_id == tenant.id))}
        orders[overdue_id].ship_by = now - timedelta(hours=3)
        orders[overdue_id].marketplace_id = "A1VC38T7YXB528"
        orders[today_id].ship_by = end_of_today - timedelta(minutes=1)
        orders[today_id].marketplace_id = "ATVPDKIKX0DER"
        account = s.get_one(MarketplaceAccount, orders[overdue_id].account_id)
        later = OrderFacts(
            marketplace="amazon",
            external_order_id=later_id,
            status=OrderStatus.UNSHIPPED,
            purchased_at=T0,
            last_updated_at=T0,
            ship_by=end_of_today + timedelta(minutes=1),
        )
        store_order(s, keys=shop.seller.keys, account=account, facts=later, label=MARKED_BUYERS[0])
        s.commit()
    html = client.get("/shipping").get_data(as_text=True)
    assert_no_pii(html)
    overdue = html.split('data-testid="ship-overdue"')[1:]
    today = html.split('data-testid="ship-today"')[1:]
    assert len(overdue) == 1 and overdue_id in overdue[0] and "Amazon.co.jp" in overdue[0]
    assert len(today) == 1 and today_id in today[-1].split("</tr>")[0] and "Amazon.com<" in today[-1]
    assert later_id not in html  # due tomorrow in Tokyo
    local = (end_of_today - timedelta(minutes=1)).astimezone(tokyo).strftime("%Y-%m-%d %H:%M")
    assert local in today[-1] and "Asia/Tokyo" in html


def test_printing_the_run_releases_the_wave_through_the_batch_path(shop: Shop, client: FlaskClient) -> None:
    with shop.seller.session() as s:
        tenant = s.get_one(Tenant, shop.seller.tenant.id)
        tenant.return_address = {"name": "Sakura Trading", "lines": ["1-2-3 Minato"], "country_code": "JP"}
        s.commit()
    wave = [f"amazon:{order_id}" for order_id in shop.order_ids] + ["amazon:503-0000000-0000000", "bad ref"]
    resp = post(client, "/shipping/print", {"order": wave, "format": "pdf"})
    assert resp.status_code == 200 and resp.mimetype == "application/pdf", resp.get_data(as_text=True)[:500]
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Content-Disposition"].startswith("attachment")
    pages = PdfReader(io.BytesIO(resp.data)).pages
    assert len(pages) == 2 and "Sakura Trading" in pages[0].extract_text()
    warning = client.get("/orders").get_data(as_text=True)
    assert "Some orders were not printed" in warning and "503-0000000-0000000 (order not found)" in warning
    with shop.seller.session() as s:
        events = s.scalars(
            select(AuditEvent).where(
                AuditEvent.chain == f"tenant:{shop.seller.tenant.id}", AuditEvent.action == "label.release"
            )
        ).all()
        assert [(e.outcome, e.order_ref) for e in events] == [
            ("released", f"amazon:{shop.order_ids[0]}"),
            ("released", f"amazon:{shop.order_ids[1]}"),
            ("refused:not-found", "amazon:503-0000000-0000000"),
            ("refused:not-found", None),
        ]
        assert {e.actor for e in events} == {f"user:{shop.user.id}"} and events[0].purpose == "shipping-label"
        assert all(
            o.labels_issued == 1 for o in s.scalars(select(Order).where(Order.tenant_id == shop.seller.tenant.id))
        )
    zpl = post(client, "/shipping/print", {"order": [f"amazon:{shop.order_ids[0]}"], "format": "zpl"})
    assert zpl.mimetype == "application/zpl" and zpl.get_data(as_text=True).count("^XA") == 1
    nothing = post(client, "/shipping/print", {"order": ["amazon:503-0000000-0000000"], "format": "pdf"})
    assert nothing.status_code == 409 and "No label was printed" in nothing.get_data(as_text=True)
    audit = client.get("/audit?action=label.release").get_data(as_text=True)
    assert "Label released" in audit and "refused: order not found" in audit


def test_an_unrenderable_order_in_the_print_run_is_refused_and_the_rest_printed(
    shop: Shop, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The print run takes release_batch's render-failure isolation: the order refused, its count not burnt."""
    bad = shop.order_ids[0]
    real = PdfRenderer.render

    def render(self: PdfRenderer, documents: Any) -> bytes:
        if any(d.order_ref == bad for d in documents):
            raise FontCoverageError("no font covers a character of the label")
        return real(self, documents)

    monkeypatch.setattr(PdfRenderer, "render", render)
    wave = [f"amazon:{order_id}" for order_id in shop.order_ids]
    resp = post(client, "/shipping/print", {"order": wave, "format": "pdf"})
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert len(PdfReader(io.BytesIO(resp.data)).pages) == len(wave) - 1
    assert f"{bad} (label could not be rendered)" in client.get("/orders").get_data(as_text=True)
    with shop.seller.session() as s:
        outcomes = s.execute(
            select(AuditEvent.order_ref, AuditEvent.outcome).where(
                AuditEvent.chain == f"tenant:{shop.seller.tenant.id}", AuditEvent.action == "label.release"
            )
        ).all()
        issued = dict(
            s.execute(
                select(Order.external_order_id, Order.labels_issued).where(Order.tenant_id == shop.seller.tenant.id)
            ).all()
        )
    assert (f"amazon:{bad}", "refused:render-failed") in outcomes
    assert issued[bad] == 0 and all(n == 1 for order_id, n in issued.items() if order_id != bad)


def test_printing_needs_a_fresh_second_factor_and_a_role_that_prints(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="viewer")
    assert post(client, "/shipping/print", {"order": [f"amazon:{shop.order_ids[0]}"]}).status_code == 403
    owner, auth = seller.user("owner")
    assert auth is not None
    other = seller.app.test_client()
    seller.login(other, owner, auth)
    seller.clock.advance(6 * 60)
    resp = post(other, "/shipping/print", {"order": [f"amazon:{shop.order_ids[0]}"]})
    assert resp.status_code == 302 and "/reauth" in resp.headers["Location"]
    with seller.session() as s:
        chain = AuditEvent.chain == f"tenant:{seller.tenant.id}"
        assert s.scalar(select(AuditEvent).where(chain, AuditEvent.action == "label.release")) is None


def test_the_preview_prints_the_return_address_as_the_api_does(
    shop: Shop, client: FlaskClient, monkeypatch: Any
) -> None:
    import app.printing

    drawn: list[Any] = []
    real = app.printing.label_document

    def spy(*args: Any) -> Any:
        drawn.append(real(*args))
        return drawn[-1]

    monkeypatch.setattr("app.dashboard.preview.label_document", spy)
    with shop.seller.session() as s:
        tenant = s.get_one(Tenant, shop.seller.tenant.id)
        tenant.return_address = {"name": "Sakura Trading", "lines": ["1-2-3 Minato"], "country_code": "JP"}
        s.commit()
    assert client.get(f"/orders/amazon/{shop.order_ids[0]}/label.png").status_code == 200
    assert drawn[0].return_address.name == "Sakura Trading" and drawn[0].ship_to.phone is None


#: How the code names the action of an event it appends: ``action="…"``, a module's ``…ACTION = "…"``, and the
#: clients module's ``_audit_change(session, client, "…"``.
_ACTION_LITERALS = re.compile(r'(?:\baction=|ACTION = |_audit_change\(session, \w+, )"([a-z_]+\.[a-z_.\-]+)"')


def test_every_action_the_code_audits_has_a_name_on_the_audit_log() -> None:
    from app.dashboard.templating import AUDIT_ACTIONS
    from vault.rights_requests import STEPS

    root = Path(__file__).resolve().parents[3]
    written = {
        action
        for package in ("app", "vault", "connectors")
        for source in (root / package).rglob("*.py")
        for action in _ACTION_LITERALS.findall(source.read_text(encoding="utf-8"))
    }
    written |= {f"rights.request.{step}" for step in STEPS}
    assert {"label.release", "client.revoke", "shipment.confirm", "user.data.erase"} <= written  # the scan works
    assert sorted(written - set(AUDIT_ACTIONS)) == []


def test_the_audit_log_names_actions_and_outcomes_in_both_languages(shop: Shop, client: FlaskClient) -> None:
    from app.dashboard.templating import AUDIT_ACTIONS, AUDIT_OUTCOMES, REFUSAL_REASONS
    from vault.errors import RefusalReason

    assert set(RefusalReason) <= set(REFUSAL_REASONS)
    assert {"label.release", "label.preview", "tenant.return_address", "tenant.time_zone"} <= set(AUDIT_ACTIONS)
    assert "released" in AUDIT_OUTCOMES
    assert "Sign-in" in client.get("/audit").get_data(as_text=True)
    post(client, "/language", {"locale": "zh_Hans", "next": "/"})
    html = client.get("/audit").get_data(as_text=True)
    assert "登录" in html and "完成" in html and "user.sign-in" in html


def test_the_order_page_says_whether_the_marketplace_was_told_the_order_shipped(
    shop: Shop, client: FlaskClient
) -> None:
    from vault.models import CarrierAccount, Shipment, ShipmentConfirmation

    page = f"/orders/amazon/{shop.order_ids[0]}"
    assert 'data-testid="shipment-confirmation"' not in client.get(page).get_data(as_text=True)
    with shop.seller.session() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == shop.order_ids[0])).one()
        carrier = CarrierAccount(tenant_id=order.tenant_id, carrier="shippo", name="Shippo", ship_from={})
        s.add(carrier)
        s.flush()
        shipment = Shipment(
            tenant_id=order.tenant_id, order_id=order.id, live_order_id=order.id, carrier_account_id=carrier.id,
            key_hash="k" * 64, request_hash="r" * 64, reference="ref-confirm-page", status="bought", parcel={},
            service_asked="cheapest", label_format="pdf",
        )  # fmt: skip
        s.add(shipment)
        s.flush()
        row = ShipmentConfirmation(
            tenant_id=order.tenant_id, shipment_id=shipment.id, order_id=order.id, marketplace="amazon",
            status="pending", attempts=2, last_error="unavailable", next_attempt_at=datetime.now(UTC),
        )  # fmt: skip
        s.add(row)
        s.commit()
        row_id = row.id
    html = client.get(page).get_data(as_text=True)
    assert 'data-status="pending"' in html and "Pending: Amazon is not told yet" in html and "unavailable" in html
    for status, text in (
        ("failed", "Amazon was not told the order shipped (scope-missing)"),
        ("confirmed", "Marked shipped on Amazon"),
        ("cancelled", "Cancelled: the label was voided before Amazon was told"),
    ):
        with shop.seller.session() as s:
            found = s.get(ShipmentConfirmation, row_id)
            assert found is not None
            found.status, found.last_error = status, "scope-missing" if status == "failed" else None
            found.confirmed_at = datetime.now(UTC) if status == "confirmed" else None
            s.commit()
        html = client.get(page).get_data(as_text=True)
        assert f'data-status="{status}"' in html and text in html, status
        assert_no_pii(html)
