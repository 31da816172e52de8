"""The rights-request workflow pages: open a request by the person's values or from a marketplace's notice,
see the matches masked, confirm, carry out (an access export downloads as JSON), download the sealed export
a marketplace's request left; owner only, fresh second factor."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.buyers import MARKED_BUYERS
from tests.support.dashboard import Seller, Shop, open_shop, post
from tests.support.people import add_account, add_order
from vault import rights_requests as rr
from vault.models import AuditEvent, Order, RightsRequestRow


def _open(client: FlaskClient, kind: str) -> str:
    buyer = MARKED_BUYERS[0]
    form = {"kind": kind, "reference": "R-1", "name": buyer.name.upper(), "verified_by": "support"}
    form |= {"verification": "id card", "jurisdiction": "eu"}
    resp = post(client, "/rights/requests", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    return resp.headers["Location"]


def test_an_owner_opens_confirms_and_exports(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="owner")
    url = _open(client, "access")
    page = client.get(url).get_data(as_text=True)
    assert shop.order_ids[0] in page and MARKED_BUYERS[0].name not in page  # masked
    assert "R-1" in client.get("/rights/requests").get_data(as_text=True)
    order = page.split('name="order" value="')[1].split('"')[0]
    assert post(client, f"{url}/confirm", {"order": order}).status_code == 302
    resp = post(client, f"{url}/carry-out", {})
    export = json.loads(resp.data)
    assert [o["shipping_label_data"]["name"] for o in export["orders"]] == [MARKED_BUYERS[0].name]


def test_an_erasure_erases_the_confirmed_set_only(seller: Seller, client: FlaskClient) -> None:
    open_shop(seller, client, role="owner")
    url = _open(client, "erasure")
    page = client.get(url).get_data(as_text=True)
    order = page.split('name="order" value="')[1].split('"')[0]
    post(client, f"{url}/confirm", {"order": order})
    assert post(client, f"{url}/carry-out", {}).status_code == 302
    assert "erased" in client.get(url).get_data(as_text=True)


def test_an_operator_may_not(seller: Seller, client: FlaskClient) -> None:
    open_shop(seller, client, role="operator")
    assert client.get("/rights/requests").status_code == 403


def _notice(shop: Shop, **changes: str) -> dict[str, str]:
    form = {"marketplace": "amazon", "kind": "erasure", "notice_id": "AMZ-DEL-77", "notice_date": "2026-01-05"}
    form |= {"order_ids": f"{shop.order_ids[0]}\n{shop.order_ids[1]}, {shop.order_ids[0]}", "jurisdiction": "eu"}
    return form | changes


def _requests(seller: Seller) -> list[RightsRequestRow]:
    with seller.session() as s:
        return list(s.scalars(select(RightsRequestRow).where(RightsRequestRow.tenant_id == seller.tenant.id)))


def test_a_marketplace_notice_locks_in_its_orders_and_is_carried_out(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="owner")
    resp = post(client, "/rights/requests/notice", _notice(shop))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    url = resp.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    assert "2 of the notice" in page and "From Amazon" in page and "2026-02-04" in page  # due 30 days (eu) after it
    assert page.count("checked disabled") == 2 and MARKED_BUYERS[0].name not in page
    (row,) = _requests(seller)
    assert (row.reference, row.source, row.verified_by) == ("AMZ-DEL-77", "marketplace:amazon", "marketplace:amazon")
    assert row.created_by.startswith("user:")
    listing = client.get("/rights/requests").get_data(as_text=True)
    assert "AMZ-DEL-77" in listing and 'data-source="marketplace:amazon">Amazon' in listing
    assert post(client, f"{url}/carry-out", {}).status_code == 302
    with seller.session() as s:
        mine = select(Order.external_order_id).where(Order.tenant_id == seller.tenant.id)
        erased = set(s.scalars(mine.where(Order.erased_at.is_not(None))))
    assert erased == set(shop.order_ids[:2])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"order_ids": "503-1234567-1234567\nnot an order"}, "1 of the 2 order ids are not Amazon order ids"),
        ({"order_ids": ""}, "Give the Amazon order ids"),
        ({"notice_date": "05/01/2026"}, "YYYY-MM-DD"),
        ({"notice_date": "2999-01-01"}, "in the future"),
        ({"marketplace": "nowhere"}, "Choose the marketplace"),
    ],
)
def test_a_bad_notice_is_a_clear_error_and_keeps_the_form(
    seller: Seller, client: FlaskClient, changes: dict[str, str], message: str
) -> None:
    shop = open_shop(seller, client, role="owner")
    resp = post(client, "/rights/requests/notice", _notice(shop, **changes))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in page, page[:2000]
    assert 'value="AMZ-DEL-77"' in page  # nothing typed is lost
    assert _requests(seller) == []


def _sealed_access(seller: Seller) -> int:
    """What Shopify's customers/data_request leaves: an access request carried out, its export sealed."""
    with seller.session() as s:
        account = add_account(s, seller.tenant, "shopify", "shop.example")
        order = add_order(s, seller.keys, account, "5500140898536", MARKED_BUYERS[1])
        row = rr.open_request_from_marketplace(
            s, keys=seller.keys, tenant_id=seller.tenant.id, marketplace="shopify", kind=rr.ACCESS,
            reference="shopify:data_request:991", actor="shopify-webhook", order_ids=[order.external_order_id],
        )  # fmt: skip
        rr.carry_out_sealed(
            s, keys=seller.keys, tenant_id=seller.tenant.id, request_id=row.id, actor="shopify-webhook",
            account_id=account.id, source="shopify:customers/data_request",
        )  # fmt: skip
        s.commit()
        return row.id


def test_the_owner_downloads_a_marketplace_requests_sealed_export(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="owner")
    request_id = _sealed_access(seller)
    with seller.session() as s:
        due = s.get_one(RightsRequestRow, request_id).due_at.date().isoformat()
    listing = client.get("/rights/requests").get_data(as_text=True)
    assert "shopify:data_request:991" in listing and "waiting for you to download" in listing
    assert 'data-source="marketplace:shopify">Shopify' in listing and f"due {due}" in listing
    page = client.get(f"/rights/requests/{request_id}").get_data(as_text=True)
    assert 'data-testid="sealed-export"' in page and "From Shopify" in page and MARKED_BUYERS[1].name not in page
    seller.clock.advance(6 * 60)  # the second factor has gone stale: enter it again first
    resp = post(client, f"/rights/requests/{request_id}/export", {})
    assert resp.status_code == 302 and "/reauth" in resp.headers["Location"]
    post(client, resp.headers["Location"], {"code": shop.auth.code()})
    resp = post(client, f"/rights/requests/{request_id}/export", {})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    export = json.loads(resp.data)
    assert [o["shipping_label_data"]["name"] for o in export["orders"]] == [MARKED_BUYERS[1].name]
    with seller.session() as s:
        mine = select(AuditEvent).where(AuditEvent.tenant_id == seller.tenant.id)
        fetched = s.scalars(mine.where(AuditEvent.action == "rights.export-fetched")).one()
        assert fetched.actor.startswith("user:") and fetched.ip is not None
        assert MARKED_BUYERS[1].name not in json.dumps(fetched.details, ensure_ascii=False)
    assert "downloaded" in client.get("/rights/requests").get_data(as_text=True)


def test_a_request_without_a_sealed_export_has_no_download(seller: Seller, client: FlaskClient) -> None:
    open_shop(seller, client, role="owner")
    url = _open(client, "erasure")
    assert 'data-testid="sealed-export"' not in client.get(url).get_data(as_text=True)
    assert post(client, f"{url}/export", {}).status_code == 404


def test_completed_requests_are_listed_a_page_at_a_time(seller: Seller, client: FlaskClient) -> None:
    open_shop(seller, client, role="owner")
    with seller.session() as s:
        now = seller.clock()
        for n in range(23):  # completed a day apart: REQ-DONE-22 is the newest
            done = now - timedelta(days=23 - n)
            s.add(
                RightsRequestRow(
                    tenant_id=seller.tenant.id,
                    kind="access",
                    reference=f"REQ-DONE-{n:02d}",
                    source="seller",
                    jurisdiction="eu",
                    received_at=done,
                    due_at=done + timedelta(days=30),
                    verified_by="support",
                    verification="id card",
                    created_by="owner:test",
                    state=rr.COMPLETED,
                    completed_at=done,
                )
            )
        s.commit()
    first = client.get("/rights/requests").get_data(as_text=True)
    assert "REQ-DONE-22" in first and "REQ-DONE-03" in first and "REQ-DONE-02" not in first
    assert "Page 1 of 2" in first and "/rights/requests?page=2" in first
    second = client.get("/rights/requests?page=2").get_data(as_text=True)
    assert all(f"REQ-DONE-0{n}" in second for n in range(3)) and "REQ-DONE-03" not in second
    assert "Page 2 of 2" in second
