"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the app served on loopback.

One journey, as sellers would go through it: the first owner (made with ``flask users create``) enrols TOTP
and signs in, invites an operator who sets a password and enrols too; the owner connects the fake Amazon
marketplace, syncs, sees the orders masked, previews a label after a fresh second factor, creates a warehouse
client whose key then fetches a label from the label API, erases an order for a buyer, checks the audit
chain and switches to Chinese. After every step, the HTML of every open page is checked for the fake's buyer
names, streets and phones. Screenshots of each page go to ``out/screenshots/dashboard`` (or
``$LABELVAULT_SCREENSHOTS``); the test prints the folder.

TOTP codes change every 30 s and each is accepted once: instead of waiting, the dashboard's clock is moved
30 s ahead for each code (the server runs in this process).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from connectors.fake_amazon import FakeAmazon
from tests.support.browser import Journey, chromium, enrol, first_owner, totp_secret
from tests.support.buyers import MARKED_BUYERS
from tests.support.dashboard import PASSWORD, Authenticator, Clock, show_tracebacks, unique_email
from tests.support.servers import Database
from tests.support.world import PII_STRINGS
from vault.marketplace_accounts import connect_account
from vault.models import AuditEvent, Tenant, User
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus

pytestmark = pytest.mark.slow
#: The seller whose account the journey connects: Amazon.co.jp only, so one fe account syncs every order.
JP_SELLER = "A1JPSELLER"

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def screenshots() -> Path:
    folder = Path(os.environ.get("LABELVAULT_SCREENSHOTS") or REPO / "out" / "screenshots" / "dashboard")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture
def fake() -> Iterator[FakeAmazon]:
    with FakeAmazon(speedup=5000.0, seed=7) as marketplace:
        marketplace.add_seller(JP_SELLER, marketplace_ids=["A1VC38T7YXB528"])  # an account is one region's
        marketplace.generate_orders(14, seller=JP_SELLER, countries=("JP", "US", "GB", "CN"))
        yield marketplace


@pytest.fixture
def server(make_app: Any, tmp_path: Path, clock: Clock, fake: FakeAmazon) -> Iterator[tuple[str, Any]]:
    db = Database("sqlite", tmp_path)
    app = show_tracebacks(make_app(db.url, sync_speedup=5000.0, marketplace_endpoint_overrides=fake.base_url))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", app
    httpd.shutdown()
    thread.join(5)
    db.drop()


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def test_seller_journey(
    server: tuple[str, Any], fake: FakeAmazon, browser: Any, clock: Clock, screenshots: Path
) -> None:
    base, app = server
    journey = Journey(base, screenshots, fake.buyer_pii_strings())
    runner = app.test_cli_runner()
    slug = "sakura-trading"
    sender = ["--return-name", "Sakura Trading", "--return-line", "1-2-3 Minato", "--return-country", "JP"]
    assert runner.invoke(args=["tenants", "create", slug, "--name", "Sakura Trading 桜商事", *sender]).exit_code == 0
    owner_email = unique_email("owner")
    result = runner.invoke(
        args=["users", "create", "--tenant", slug, "--email", owner_email, "--name", "Aiko Owner"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output

    # -- the owner signs in for the first time: password, then TOTP enrolment with the QR code ---------------
    owner = journey.open(browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US"))
    journey.go(owner, "/")
    assert "/login" in owner.url
    journey.shot(owner, "login")
    owner.fill("input[name=email]", owner_email)
    owner.fill("input[name=password]", PASSWORD)
    owner.click("button[type=submit]:not([name])")
    owner.wait_for_url(re.compile(r"/enrol$"))
    assert owner.locator("svg.qr").count() == 1
    journey.shot(owner, "enrol-totp")
    owner_totp = Authenticator(totp_secret(owner), clock)
    owner.fill("input[name=code]", owner_totp.code())
    owner.click("button[type=submit]:not([name])")
    assert owner.get_by_test_id("recovery-codes").locator("code").count() == 10
    journey.shot(owner, "recovery-codes")
    owner.click("text=I have stored them")
    owner.wait_for_url(base + "/")
    journey.shot(owner, "overview-empty")

    # -- the owner invites an operator, who sets a password and enrols -----------------------------------------
    journey.go(owner, "/users")
    operator_email = unique_email("operator")
    owner.fill("input[name=email]", operator_email)
    owner.fill("input[name=display_name]", "Ken Operator")
    owner.select_option("select[name=role]:not([aria-label])", "operator")
    owner.get_by_role("button", name="Create invitation link").click()
    invite_url = owner.locator("#invite-url").inner_text()
    journey.shot(owner, "users-invite")

    operator = journey.open(browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US"))
    operator.goto(invite_url)
    journey.check()
    journey.shot(operator, "invitation")
    operator.fill("input[name=password]", PASSWORD + " 2")
    operator.fill("input[name=password2]", PASSWORD + " 2")
    operator.click("button[type=submit]:not([name])")
    operator.wait_for_url(re.compile(r"/enrol$"))
    operator_totp = Authenticator(totp_secret(operator), clock)
    operator.fill("input[name=code]", operator_totp.code())
    operator.click("button[type=submit]:not([name])")
    operator.click("text=I have stored them")
    operator.wait_for_url(base + "/")
    assert "Ken Operator" in operator.content()

    # -- the owner connects the fake marketplace and syncs ------------------------------------------------------
    seller = fake.seller(JP_SELLER)
    journey.go(owner, "/accounts")
    owner.fill("input[name=name]", "Amazon JP")
    owner.select_option("select[name=region]", "fe")
    owner.fill("input[name=marketplace_ids]", ",".join(seller.marketplace_ids))
    owner.fill("input[name=client_id]", seller.client_id)
    owner.fill("input[name=client_secret]", seller.client_secret)
    owner.fill("input[name=refresh_token]", seller.refresh_token)
    owner.click("text=Advanced")
    owner.fill("input[name=sp_api_endpoint]", fake.base_url)
    owner.fill("input[name=lwa_endpoint]", fake.lwa_url)
    journey.shot(owner, "accounts-connect-form")
    # The Amazon section's own button: every platform's connect section has one.
    amazon_form = owner.locator("form", has=owner.locator("input[name=refresh_token]"))
    amazon_form.get_by_role("button", name="Connect account").click()
    assert "connected" in owner.content()
    assert seller.client_secret not in owner.content() and seller.refresh_token not in owner.content()
    owner.get_by_role("button", name="Sync now").click()
    for _ in range(60):
        if owner.get_by_test_id("sync-summary").count():
            break
        owner.wait_for_timeout(500)
        journey.go(owner, "/accounts")
    assert owner.get_by_test_id("sync-summary").count(), owner.locator("article.account").inner_text()
    summary = owner.get_by_test_id("sync-summary").inner_text()
    assert re.search(r"\b\d+ new\b", summary), summary
    journey.shot(owner, "accounts-synced")

    # -- orders, masked --------------------------------------------------------------------------------------
    journey.go(owner, "/orders")
    rows = owner.get_by_test_id("orders").locator("tbody tr")
    assert rows.count() >= 10
    masked = owner.locator("td.masked").all_inner_texts()
    assert any("*" in m for m in masked)
    journey.shot(owner, "orders")
    journey.go(operator, "/orders")  # the operator sees them masked too

    with app.extensions["labelvault"].sessions() as s:
        from vault.models import Order

        unshipped = [
            o.external_order_id
            for o in s.scalars(select(Order).where(Order.status == "unshipped", Order.erased_at.is_(None)))
            if o.label is not None
        ]
    assert len(unshipped) >= 2, "the fake's orders should include unshipped ones"
    preview_order, erase_order = unshipped[0], unshipped[1]

    # -- a label preview, after a fresh second factor -----------------------------------------------------------
    clock.advance(6 * 60)  # the sign-in's second factor is no longer fresh
    journey.go(owner, f"/orders/amazon/{preview_order}")
    journey.shot(owner, "order-detail")
    owner.click("text=Preview label")
    owner.wait_for_url(re.compile(r"/reauth"))
    journey.shot(owner, "reauth")
    owner.fill("input[name=code]", owner_totp.code())
    owner.click("button[type=submit]:not([name])")
    owner.wait_for_url(re.compile(r"/preview$"))
    image = owner.get_by_test_id("label-preview")
    image.wait_for()
    owner.wait_for_function("document.querySelector('[data-testid=label-preview]').naturalWidth > 0")
    assert owner.evaluate("document.querySelector('[data-testid=label-preview]').naturalWidth") == 576
    journey.shot(owner, "label-preview")
    with app.extensions["labelvault"].sessions() as s:
        previews = s.scalars(select(AuditEvent).where(AuditEvent.action == "label.preview")).all()
        assert [(e.purpose, e.order_ref) for e in previews] == [("label-preview", f"amazon:{preview_order}")]

    # -- a warehouse client, and its key against the label API ---------------------------------------------
    journey.go(owner, "/clients")
    owner.fill("input[name=name]", "Osaka packing line 2")
    owner.fill("input[name=cidrs]", "127.0.0.1/32")
    journey.shot(owner, "clients-new")
    owner.get_by_role("button", name="Create client and show its key").click()
    assert owner.locator("#new-api-key").count(), owner.content()[:3000]
    key = owner.locator("#new-api-key").inner_text()
    assert key.startswith("lv_")
    journey.shot(owner, "clients-key-shown")
    request = urllib.request.Request(
        f"{base}/v1/labels/amazon/{preview_order}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        label = json.loads(resp.read())
    assert label, "the label API released the label"
    journey.go(owner, "/clients")
    assert key not in owner.content()  # shown once only

    # -- a buyer's erasure request -------------------------------------------------------------------------
    journey.go(owner, f"/rights?order_id={erase_order}")
    journey.shot(owner, "rights")
    form = owner.get_by_test_id("erasure-form")
    form.locator("input[name=request_id]").fill("ticket 4711")
    form.locator("input[name=verified_by]").fill("support: K. Tanaka")
    form.locator("button[type=submit]").click()
    owner.wait_for_url(re.compile(rf"/orders/amazon/{erase_order}$"))
    assert "erased" in owner.content()
    assert owner.get_by_test_id("masked-summary").inner_text() == "—"
    journey.shot(owner, "order-erased")

    # -- audit log, retention, overview ---------------------------------------------------------------------
    journey.go(owner, "/audit")
    owner.get_by_role("button", name="Verify chain").click()
    assert "Chain intact" in owner.get_by_test_id("chain-status").inner_text()
    journey.shot(owner, "audit")
    journey.go(owner, "/retention")
    journey.shot(owner, "retention")
    journey.go(owner, "/")
    owner.locator("#activity-chart svg").wait_for()
    journey.shot(owner, "overview")

    # -- Chinese -------------------------------------------------------------------------------------------
    owner.click("button[name=locale][value=zh_Hans]")
    owner.wait_for_url(base + "/")
    assert owner.locator("html").get_attribute("lang") == "zh-Hans"
    assert "概览" in owner.content()
    journey.shot(owner, "overview-zh")
    journey.go(owner, "/orders")
    journey.shot(owner, "orders-zh")
    journey.go(owner, "/accounts")
    journey.shot(owner, "accounts-zh")
    # Remembered on the user: a new browser session after signing in again is in Chinese too.
    journey.go(operator, "/clients")
    journey.shot(operator, "clients-operator")
    journey.check()
    print(f"{journey.shots} screenshots in {screenshots}")


#: Where the lead picks up this branch's screenshots (outside the repository).
LEAD_SHOTS = Path("/tmp/i15-shots")


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Screenshots go under the test's tmp dir; a copy of each goes to LEAD_SHOTS/<test> at the end."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    copy = LEAD_SHOTS / request.node.name.split("[")[0]
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder, copy)
    print(f"\nscreenshots: {folder} (copied to {copy})")


def _no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_return_address_onboarding(server: tuple[str, Any], browser: Any, clock: Clock, shots: Path) -> None:
    base, app = server
    journey = Journey(base, shots, set(PII_STRINGS))
    runner = app.test_cli_runner()
    email, said = first_owner(runner, "sakura")
    assert "empty FROM block" in said  # no terminal and no address given: created, with the warning
    owner = journey.open(browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US"))
    enrol(journey, owner, email, clock)
    owner.click("text=I have stored them")
    owner.wait_for_url(re.compile(r"/welcome/return-address"))
    assert "empty FROM block" in owner.get_by_test_id("skip-note").inner_text()
    journey.shot(owner, "welcome-return-address")
    owner.click("text=Skip for now")
    owner.wait_for_url(base + "/")
    assert owner.get_by_test_id("return-address-missing").is_visible()
    journey.shot(owner, "overview-return-address-missing")
    owner.click("text=Add it in Settings")
    owner.wait_for_url(re.compile(r"/settings$"))
    form = owner.get_by_test_id("return-address")
    form.locator("input[name=name]").fill("Sakura Trading 桜商事")
    lines = form.locator("input[name=line]")
    lines.nth(0).fill("深圳市南山区科技园 1 号")
    lines.nth(1).fill("Shenzhen 518057")
    form.locator("input[name=country]").fill("CN")
    journey.shot(owner, "settings-return-address")
    form.get_by_role("button", name="Save return address").click()
    assert "Return address saved" in owner.content()
    journey.go(owner, "/")
    assert owner.get_by_test_id("return-address-missing").count() == 0
    journey.shot(owner, "overview-with-return-address")
    with app.extensions["labelvault"].sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.return_address")).one()
        assert event.actor.startswith("user:")
    journey.go(owner, "/audit")
    assert "Return address changed" in owner.content()
    journey.shot(owner, "audit-return-address")


def test_daily_print_run(server: tuple[str, Any], browser: Any, clock: Clock, shots: Path) -> None:
    base, app = server
    journey = Journey(base, shots, set(PII_STRINGS))
    runner = app.test_cli_runner()
    address = ["--return-name", "Sakura Trading", "--return-line", "1-2-3 Minato", "--return-country", "JP"]
    email, _ = first_owner(runner, "sakura", *address)
    svc = app.extensions["labelvault"]
    now = datetime.now(UTC)
    with svc.sessions() as s:
        tenant = s.scalars(select(Tenant).where(Tenant.slug == "sakura")).one()
        account = connect_account(
            s, keys=svc.keys, tenant_id=tenant.id, marketplace="amazon", name="Amazon JP", region="fe",
            api_version="2026-01-01", marketplace_ids=["A1VC38T7YXB528"], secrets={"k": "v"}, actor="test",
        )  # fmt: skip
        due = [now - timedelta(hours=5), now - timedelta(hours=1), now + timedelta(minutes=5)]
        for i, (ship_by, buyer) in enumerate(zip(due, MARKED_BUYERS, strict=False)):
            facts = OrderFacts(
                marketplace="amazon", external_order_id=f"503-4400000-{i:07d}", status=OrderStatus.UNSHIPPED,
                purchased_at=now - timedelta(days=2), last_updated_at=now - timedelta(days=1), ship_by=ship_by,
                marketplace_id=["A1VC38T7YXB528", "ATVPDKIKX0DER", "A1VC38T7YXB528"][i],
            )  # fmt: skip
            store_order(s, keys=svc.keys, account=account, facts=facts, label=buyer)
        s.commit()
    owner = journey.open(browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US"))
    totp = enrol(journey, owner, email, clock)
    owner.click("text=I have stored them")
    owner.wait_for_url(base + "/")  # the tenant has a return address: no onboarding step
    journey.go(owner, "/settings")
    owner.select_option("select[name=time_zone]", "Asia/Tokyo")
    owner.get_by_role("button", name="Save time zone").click()
    assert "Time zone saved" in owner.content()
    journey.go(owner, "/shipping")
    rows = owner.locator("tr[data-testid=ship-overdue], tr[data-testid=ship-today]")
    assert rows.count() == len(MARKED_BUYERS)
    assert set(owner.get_by_test_id("marketplace").all_inner_texts()) <= {"Amazon.co.jp", "Amazon.com"}
    assert "Asia/Tokyo" in owner.content()
    journey.shot(owner, "print-run")
    owner.select_option("select[name=format]", "pdf")
    with owner.expect_download() as download:
        owner.get_by_role("button", name="Print selected labels").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    with svc.sessions() as s:
        released = s.scalars(select(AuditEvent).where(AuditEvent.action == "label.release")).all()
        assert len(released) == len(MARKED_BUYERS) and all(e.outcome == "released" for e in released)
        user_id = s.scalars(select(User.id).where(User.email == email)).one()
        assert {e.actor for e in released} == {f"user:{user_id}"}
    journey.go(owner, "/audit")
    journey.shot(owner, "audit-print-run")
    owner.click("button[name=locale][value=zh_Hans]")
    owner.wait_for_url(re.compile(r"/audit"))
    assert "已发放面单" in owner.content() and "已发放" in owner.content()
    journey.shot(owner, "audit-print-run-zh")
    journey.go(owner, "/shipping")
    journey.shot(owner, "print-run-zh")

    # -- the same pages on a phone: the menu folds behind a button, nothing overflows -----------------------
    signed_in = owner.context.storage_state()
    phone = journey.open(browser.new_context(viewport={"width": 390, "height": 844}, storage_state=signed_in))
    journey.go(phone, "/shipping")
    assert phone.locator("[data-menu-button]").is_visible() and not phone.locator("#main-nav").is_visible()
    assert _no_horizontal_overflow(phone)
    journey.shot(phone, "phone-print-run")
    phone.locator("[data-menu-button]").click()
    assert phone.locator("#main-nav").is_visible()
    assert phone.locator("[data-menu-button]").get_attribute("aria-expanded") == "true"
    journey.shot(phone, "phone-menu-open")
    order = "503-4400000-0000000"
    clock.advance(6 * 60)
    journey.go(phone, f"/orders/amazon/{order}/preview")
    phone.wait_for_url(re.compile(r"/reauth"))
    phone.fill("input[name=code]", totp.code())
    phone.click("button[type=submit]:not([name])")
    phone.wait_for_url(re.compile(r"/preview$"))
    phone.wait_for_function("document.querySelector('[data-testid=label-preview]').naturalWidth > 0")
    box = phone.get_by_test_id("label-preview").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert _no_horizontal_overflow(phone)
    journey.shot(phone, "phone-label-preview")
