"""The dashboard's pages: security headers, CSRF, roles, masked orders, the audited label preview, warehouse
clients, rights requests, the audit log and the languages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.buyers import MARKED_BUYERS
from tests.support.dashboard import Authenticator, Seller, csrf_of, post
from tests.support.vault import T0
from tests.support.world import PII_STRINGS
from vault.models import AuditEvent, MarketplaceAccount, Order, User
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus


@dataclass
class Shop:
    """A seller with an account and two orders carrying the test buyers, and a signed-in user."""

    seller: Seller
    user: User
    auth: Authenticator
    order_ids: list[str]


def _shop(seller: Seller, client: FlaskClient, role: str = "owner") -> Shop:
    user, auth = seller.user(role)
    assert auth is not None
    ids = []
    with seller.session() as s:
        account = MarketplaceAccount(
            tenant_id=seller.tenant.id,
            marketplace="amazon",
            name=f"JP {role}",
            region="fe",
            api_version="2026-01-01",
            marketplace_ids=["A1VC38T7YXB528"],
        )
        s.add(account)
        s.flush()
        for i, buyer in enumerate(MARKED_BUYERS):
            order_id = f"503-{seller.tenant.id:07d}-{i:07d}"
            facts = OrderFacts(
                marketplace="amazon",
                external_order_id=order_id,
                status=OrderStatus.UNSHIPPED,
                purchased_at=T0,
                last_updated_at=T0,
                ship_by=T0 + timedelta(days=2),
            )
            store_order(s, keys=seller.keys, account=account, facts=facts, label=buyer)
            ids.append(order_id)
        s.commit()
    seller.login(client, user, auth)
    return Shop(seller, user, auth, ids)


@pytest.fixture
def shop(seller: Seller, client: FlaskClient) -> Shop:
    return _shop(seller, client)


def assert_no_pii(html: str) -> None:
    for value in PII_STRINGS:
        assert value not in html, "buyer PII in a page"


PAGES = ["/", "/accounts", "/orders", "/clients", "/audit", "/retention", "/users", "/profile"]


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
    shop = _shop(seller, client, role="viewer")
    html = client.get("/").get_data(as_text=True)
    assert "/users" not in html and "/rights" not in html
    assert client.get("/orders").status_code == 200
    assert client.get("/users").status_code == 403
    assert client.get(f"/orders/amazon/{shop.order_ids[0]}/preview").status_code == 403
    assert client.get(f"/orders/amazon/{shop.order_ids[0]}/label.png").status_code == 403
    assert post(client, "/clients", {"name": "x", "cidrs": "127.0.0.1/32"}).status_code == 403
    assert post(client, "/users/invite", {"email": "x@seller.example", "role": "owner"}).status_code == 403
    assert post(client, f"/orders/amazon/{shop.order_ids[0]}/reprint", {"reason": "printer jam"}).status_code == 403


def test_an_owner_grants_a_reprint_with_a_reason_and_an_operator_cannot(seller: Seller, client: FlaskClient) -> None:
    shop = _shop(seller, client)
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


def test_connecting_an_account_never_echoes_its_secrets(shop: Shop, client: FlaskClient) -> None:
    form = {
        "name": "",
        "region": "fe",
        "marketplace_ids": "A1VC38T7YXB528",
        "client_id": "amzn1.application-oa2-client.x",
        "client_secret": "very-secret-client-secret",
        "refresh_token": "Atzr|very-secret-refresh-token",
        "sp_api_endpoint": "ftp://nope",
    }
    resp = post(client, "/accounts", form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Give the account a name" in html
    assert "very-secret" not in html
    resp = post(client, "/accounts", {**form, "name": "JP 2"})
    assert resp.status_code == 400 and "full URL" in resp.get_data(as_text=True)
    resp = post(client, "/accounts", {**form, "name": "JP 2", "sp_api_endpoint": "https://sp.example"})
    assert resp.status_code == 302
    with shop.seller.session() as s:
        account = s.scalar(select(MarketplaceAccount).where(MarketplaceAccount.name == "JP 2"))
        assert account is not None and account.credentials_envelope is not None
        assert b"very-secret" not in account.credentials_envelope
