"""``flask rights request ...`` and ``flask rights reindex`` end to end (own database): a person found on
three marketplaces by phone, confirmed by order id, erased exactly as confirmed; a marketplace's notice
entered by its order ids; a marketplace request's sealed export fetched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import services
from tests.support.people import person_world
from tests.support.servers import Database
from vault import rights_requests
from vault.models import AuditEvent, Order, RightsRequestRow
from vault.tenants import create_tenant


@pytest.fixture
def world(make_app: Any, fresh_db: Database) -> Any:
    app = make_app(fresh_db.app_url)
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=services(app).keys, slug="cli-people", name="CLI Seller", actor="test")
        people = person_world(s, services(app).keys, tenant)
    return app, people, fresh_db


def run(app: Any, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=input, catch_exceptions=False)


def test_open_match_confirm_and_erase_a_person_from_the_command_line(world: Any) -> None:
    app, people, db = world
    person = json.dumps({"phone": "138 0013 8000", "phone_region": "CN"})
    opened = run(app, "rights", "request", "open", "--tenant", "cli-people", "--kind", "erasure",
                 "--reference", "REQ-7", "--verified-by", "owner", "--verification", "ID card",
                 "--jurisdiction", "eu", "--person", "-", input=person)  # fmt: skip
    assert opened.exit_code == 0, opened.output
    request_id = opened.output.split()[1]
    listed = run(app, "rights", "request", "list", "--tenant", "cli-people")
    assert "REQ-7" in listed.output and "erasure" in listed.output and "\tseller\t" in listed.output
    found = run(app, "rights", "request", "matches", "--tenant", "cli-people", "--id", request_id)
    assert found.exit_code == 0 and "13800138000" not in found.output and "xiaoming" not in found.output.lower()
    ids = [line.split("\t")[0] for line in found.output.splitlines()]
    assert sorted(map(int, ids)) == sorted(o.id for o in people.wang)
    confirm = ["--order", ids[0], "--order", ids[1]]
    assert (
        run(app, "rights", "request", "confirm", "--tenant", "cli-people", "--id", request_id, *confirm).exit_code == 0
    )
    done = run(app, "rights", "request", "carry-out", "--tenant", "cli-people", "--id", request_id)
    assert done.exit_code == 0 and "2 orders done" in done.output
    with Session(db.engine) as s:
        erased = set(s.scalars(select(Order.id).where(Order.erased_at.is_not(None))))
    assert erased == {int(ids[0]), int(ids[1])}


def test_a_bad_person_file_is_a_one_line_error(world: Any) -> None:
    app, _, _ = world
    bad = run(app, "rights", "request", "open", "--tenant", "cli-people", "--kind", "access", "--reference", "R",
              "--verified-by", "o", "--verification", "v", "--person", "-", input='["x"]')  # fmt: skip
    assert bad.exit_code != 0 and "JSON object" in bad.output
    unreadable = run(app, "rights", "request", "open", "--tenant", "cli-people", "--kind", "access", "--reference",
                     "R", "--verified-by", "o", "--verification", "v", "--person", "-",
                     input='{"phone": "12345"}')  # fmt: skip
    assert unreadable.exit_code != 0 and "can't be read" in unreadable.output


def test_reindex_with_rotation_reports_what_it_did(world: Any) -> None:
    app, _, _ = world
    out = run(app, "rights", "reindex", "--tenant", "cli-people", "--rotate")
    assert (
        out.exit_code == 0 and "index key version 2 is active" in out.output and "15 records re-indexed" in out.output
    )


def test_a_marketplace_notice_from_the_command_line_locks_in_its_orders(world: Any) -> None:
    app, people, db = world
    named = [people.wang[0].external_order_id, people.others[0].external_order_id]  # both on Amazon accounts
    opened = run(app, "rights", "request", "notice", "--tenant", "cli-people", "--marketplace", "amazon",
                 "--notice-id", "AMZ-DEL-9", "--notice-date", "2026-01-05", "--jurisdiction", "eu",
                 "--order", named[0], "--orders", "-", input=f"{named[1]}\n\nZZ-404\n")  # fmt: skip
    assert opened.exit_code == 0, opened.output
    assert "from Amazon's notice: 2 of 3 orders found, due 2026-02-04" in opened.output
    request_id = opened.output.split()[1]
    listed = run(app, "rights", "request", "list", "--tenant", "cli-people").output
    assert "AMZ-DEL-9" in listed and "\tAmazon\t" in listed and "marketplace:" not in listed
    done = run(app, "rights", "request", "carry-out", "--tenant", "cli-people", "--id", request_id)
    assert done.exit_code == 0 and "2 orders done" in done.output
    with Session(db.engine) as s:
        erased = set(s.scalars(select(Order.external_order_id).where(Order.erased_at.is_not(None))))
    assert erased == set(named)


def test_a_bad_notice_is_a_one_line_error_and_opens_nothing(world: Any) -> None:
    app, _, db = world
    base = ["rights", "request", "notice", "--tenant", "cli-people", "--marketplace", "amazon", "--notice-id", "N-1"]
    bad = run(app, *base, "--notice-date", "2026-01-05", "--order", "not an order id")
    assert bad.exit_code != 0 and "1 of the 1 order ids are not Amazon order ids" in bad.output
    empty = run(app, *base, "--notice-date", "2026-01-05")
    assert empty.exit_code != 0 and "names no Amazon order ids" in empty.output
    future = run(app, *base, "--notice-date", "2999-01-05", "--order", "W-0")
    assert future.exit_code != 0 and "in the future" in future.output
    with Session(db.engine) as s:
        assert s.scalars(select(RightsRequestRow)).first() is None


def test_the_sealed_export_of_a_marketplace_request_is_fetched_and_audited(world: Any) -> None:
    app, people, db = world
    svc = services(app)
    order = people.wang[2]  # the Shopify one
    with Session(db.engine, expire_on_commit=False) as s:
        row = rights_requests.open_request_from_marketplace(
            s, keys=svc.keys, tenant_id=order.tenant_id, marketplace="shopify", kind=rights_requests.ACCESS,
            reference="shopify:data_request:5", actor="shopify-webhook", order_ids=[order.external_order_id],
        )  # fmt: skip
        rights_requests.carry_out_sealed(
            s, keys=svc.keys, tenant_id=order.tenant_id, request_id=row.id, actor="shopify-webhook",
            account_id=order.account_id, source="shopify:customers/data_request",
        )  # fmt: skip
        s.commit()
    out = run(app, "rights", "request", "export", "--tenant", "cli-people", "--id", str(row.id), "--output", "-")
    assert out.exit_code == 0, out.output
    assert [o["order"]["order_id"] for o in json.loads(out.output)["orders"]] == [order.external_order_id]
    with Session(db.engine) as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "rights.export-fetched")).one()
    other = run(app, "rights", "request", "open", "--tenant", "cli-people", "--kind", "access", "--reference", "R",
                "--verified-by", "o", "--verification", "v", "--person", "-", input='{"name": "nobody"}')  # fmt: skip
    none = run(app, "rights", "request", "export", "--tenant", "cli-people", "--id", other.output.split()[1],
               "--output", "-")  # fmt: skip
    assert none.exit_code != 0 and "no sealed export" in none.output
