"""People's rights and the seller's own people in a real browser (Debian's Chromium driven by Playwright),
against the app served on loopback: the owner opens an access request for 王小明 by phone, sees his orders
on three marketplaces masked, confirms them, carries the request out and gets the JSON export as a download;
then, after a fresh second factor, opens "My data", corrects their name and e-mail address and downloads
their own export; last, erases a departed colleague's account from the users page. After every step the
HTML of the page is checked for the buyers' names, streets and phones.

The browser and the journey helpers are in tests/support/browser.py; the server starts as test_browser.py's.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.support.browser import Journey, chromium, enrol, first_owner
from tests.support.buyers import SHANGHAI
from tests.support.dashboard import Clock, show_tracebacks, unique_email
from tests.support.people import NAMESAKE, WANG_PHONES, WANG_SPELLINGS, person_world
from tests.support.servers import Database
from tests.support.world import PII_STRINGS
from vault.models import AuditEvent, Tenant, User

pytestmark = pytest.mark.slow
SENDER = ("--return-name", "Sakura Trading", "--return-line", "1-2-3 Minato", "--return-country", "JP")


@pytest.fixture
def server(make_app: Any, tmp_path: Path, clock: Clock) -> Iterator[tuple[str, Any]]:
    db = Database("sqlite", tmp_path)
    app = show_tracebacks(make_app(db.url))
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


def _pii() -> set[str]:
    values = {*PII_STRINGS, *WANG_PHONES, NAMESAKE.phone, SHANGHAI.address_line1, SHANGHAI.address_line2}
    return {v for v in values if v} | {s.strip() for s in WANG_SPELLINGS}


def test_a_rights_request_and_my_data_in_the_browser(
    server: tuple[str, Any],
    browser: Any,
    clock: Clock,
    tmp_path: Path,
) -> None:
    base, app = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    journey = Journey(base, shots, _pii())
    email, _ = first_owner(app.test_cli_runner(), "sakura", *SENDER)
    svc = app.extensions["labelvault"]
    with svc.sessions() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.slug == "sakura"))
        assert tenant is not None
        people = person_world(s, svc.keys, tenant)
    wang_orders = sorted(o.external_order_id for o in people.wang)

    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US", accept_downloads=True)
    owner = journey.open(context)
    totp = enrol(journey, owner, email, clock)
    owner.click("text=I have stored them")
    owner.wait_for_url(base + "/")

    # -- an access request for a person, found by phone in another format -------------------------------------
    journey.go(owner, "/rights/requests")
    owner.select_option("select[name=kind]", "access")
    owner.fill("input[name=reference]", "ticket 8123")
    owner.fill("input[name=phone]", "+86 138-0013-8000")
    owner.fill("input[name=verified_by]", "support: K. Tanaka")
    owner.fill("input[name=verification]", "photo ID checked on a call")
    journey.shot(owner, "rights-request-new")
    owner.get_by_role("button", name="Open request and find matches").click()
    owner.wait_for_url(re.compile(r"/rights/requests/\d+$"))
    journey.check()
    rows = owner.get_by_test_id("matches").locator("tbody tr")
    shown = sorted(row.locator("td").nth(3).inner_text().strip() for row in rows.all())
    assert shown == wang_orders  # his four orders, on three marketplaces and two Amazon accounts; nothing else
    assert all("*" in t for t in rows.all_inner_texts())  # masked
    journey.shot(owner, "rights-request-matches")
    for box in owner.get_by_test_id("matches").locator("input[name=order]").all():
        box.check()
    owner.get_by_role("button", name="Confirm the checked orders").click()
    owner.wait_for_load_state()
    assert "4 orders confirmed." in owner.content()
    journey.shot(owner, "rights-request-confirmed")
    with owner.expect_download() as info:
        owner.get_by_role("button", name="Carry out on the confirmed orders").click()
    export = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert sorted(o["order"]["order_id"] for o in export["orders"]) == wang_orders
    assert {o["shipping_label_data"]["phone"] for o in export["orders"]} == set(WANG_PHONES)

    # -- My data, after a fresh second factor: correct the name and e-mail address ----------------------------
    clock.advance(6 * 60)  # the sign-in's second factor is no longer fresh
    journey.go(owner, "/profile")
    owner.get_by_test_id("my-data").click()
    owner.wait_for_url(re.compile(r"/reauth"))
    owner.fill("input[name=code]", totp.code())
    owner.click("button[type=submit]:not([name])")
    owner.wait_for_url(re.compile(r"/profile/data$"))
    assert email in owner.get_by_test_id("data-held").inner_text()
    journey.shot(owner, "my-data")
    new_email = unique_email("aiko.sato")
    form = owner.get_by_test_id("correct-form")
    form.locator("input[name=display_name]").fill("Aiko Sato 佐藤愛子")
    form.locator("input[name=email]").fill(new_email)
    form.get_by_role("button", name="Save corrections").click()
    owner.wait_for_url(re.compile(r"/profile/data$"))
    assert "Corrected: E-mail address, Name." in owner.content()
    held = owner.get_by_test_id("data-held").inner_text()
    assert new_email in held and "Aiko Sato 佐藤愛子" in held and email not in held
    journey.shot(owner, "my-data-corrected")
    with owner.expect_download() as info:
        owner.get_by_test_id("export").click()
    mine = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert (mine["user"]["email"], mine["user"]["display_name"]) == (new_email, "Aiko Sato 佐藤愛子")

    # -- the owner erases a departed colleague's account from the users page -----------------------------------
    departed = unique_email("departed")
    made = app.test_cli_runner().invoke(
        args=["users", "create", "--tenant", "sakura", "--email", departed, "--name", "Ken Left", "--role", "operator"],
        input="a long enough password\na long enough password\n",
    )
    assert made.exit_code == 0, made.output
    journey.go(owner, "/users")
    row = owner.get_by_test_id("users").locator("tr", has_text=departed)
    row.get_by_role("link", name="Data").click()
    owner.wait_for_url(re.compile(r"/users/\d+/data$"))
    assert departed in owner.get_by_test_id("data-held").inner_text()
    journey.shot(owner, "user-data")
    form = owner.get_by_test_id("erase-form")
    form.locator("input[name=confirm]").fill(departed)
    form.get_by_role("button", name="Erase the account").click()
    owner.wait_for_url(re.compile(r"/users$"))
    assert "account data is erased" in owner.content() and departed not in owner.content()
    journey.shot(owner, "users-after-erase")

    with svc.sessions() as s:
        user = s.scalar(select(User).where(User.email == new_email))
        assert user is not None
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id)).all()
        blob = json.dumps([[e.actor, e.details] for e in events], ensure_ascii=False)
    assert "user.data.correct" in {e.action for e in events}
    assert "user.data.erase" in {e.action for e in events}
    assert new_email not in blob and email not in blob and departed not in blob and "Aiko Sato" not in blob
    print(f"{journey.shots} screenshots in {shots}")
