"""Every state-changing action, from the CLI and from the dashboard, appends its audit event.

Both tables are checked against what the app offers (the click command tree of ``app.cli`` and every POST
rule of ``app.url_map``), so a new command or route without an entry here fails: say which event it writes,
or why it changes no audited state. Each action then runs once against a real database, and the test
asserts the event it names was appended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import httpx
import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.cli import COMMANDS
from app.services import services
from connectors.carriers.registry import CARRIERS
from connectors.fake_amazon import FakeAmazon
from connectors.fake_ebay import FakeEbay
from connectors.fake_shopify import FakeShopify
from connectors.fake_tiktok import FakeTikTok
from connectors.fake_walmart import FakeWalmart
from tests.support.buyers import sample_label
from tests.support.carriers import SHIP_FROM_VALUES
from tests.support.dashboard import Seller, show_tracebacks
from tests.support.servers import Database
from tests.support.vault import sample_facts
from vault.carrier_accounts import connect_carrier_account
from vault.clients import create_client
from vault.marketplace_accounts import connect_account
from vault.models import (
    ApiClient,
    AuditEvent,
    CarrierAccount,
    LegalHold,
    MarketplaceAccount,
    Order,
    RightsRequestRow,
    Tenant,
    TenantKey,
    User,
    utcnow,
)
from vault.orders import store_order
from vault.records import OrderStatus
from vault.rights_requests import carry_out_sealed, open_request_from_marketplace
from vault.rotation import rotate_root


@pytest.fixture
def fake() -> Iterator[FakeAmazon]:
    """The marketplace the accounts connect to: connecting tries the credentials with one LWA exchange."""
    with FakeAmazon(speedup=5000) as marketplace:
        yield marketplace


@pytest.fixture
def fake_ebay() -> Iterator[FakeEbay]:
    """The fake eBay: connecting exchanges the seller's consent once; its consent page sends the seller back
    to the dashboard's callback."""
    with FakeEbay(seed=2, accept_url="http://localhost/accounts/ebay/callback") as marketplace:
        yield marketplace


@pytest.fixture
def shop() -> Iterator[FakeShopify]:
    """The fake Shopify the dashboard's Shopify connect form tries its token against."""
    with FakeShopify(speedup=500) as fake_shop:
        yield fake_shop


@pytest.fixture
def fake_walmart() -> Iterator[FakeWalmart]:
    """The fake Walmart: connecting tries the API key with one token exchange."""
    with FakeWalmart(seed=5) as marketplace:
        yield marketplace


@pytest.fixture
def fake_tiktok() -> Iterator[FakeTikTok]:
    """The fake TikTok Shop: connecting trades a one-time auth code for tokens."""
    with FakeTikTok(speedup=50, seed=5) as marketplace:
        yield marketplace


@pytest.fixture
def fakes(
    fake: FakeAmazon, fake_ebay: FakeEbay, shop: FakeShopify, fake_walmart: FakeWalmart, fake_tiktok: FakeTikTok
) -> dict[str, Any]:
    """Every platform's fake, by code."""
    return {"amazon": fake, "ebay": fake_ebay, "shopify": shop, "walmart": fake_walmart, "tiktok": fake_tiktok}


def _overrides(fakes: dict[str, Any]) -> str:
    """What the tests' operator allows: every fake's origin."""
    return ",".join(f.base_url for f in fakes.values())


@pytest.fixture
def dash_app(make_app: Any, shared_db: Database, fakes: dict[str, Any]) -> Any:
    """The dashboard app, its operator allowing the fakes' endpoints."""
    overrides = _overrides(fakes)
    return show_tracebacks(make_app(shared_db.app_url, marketplace_endpoint_overrides=overrides))


# --- the CLI -------------------------------------------------------------------------------------------

#: Commands that change no audited state, and why.
CLI_UNAUDITED = {
    "accounts list": "reads",
    "carriers list": "reads",
    "audit export": "copies the chain heads out of the database; the vault is unchanged",
    "audit verify": "reads",
    "clients list": "reads",
    "holds list": "reads",
    "rights request list": "reads",
    "tenants list": "reads",
    "users list": "reads",
    "vault status": "reads",
    "vault init": "schema migrations and the keyring file: no tenant or chain exists to change yet",
    "worker due": "reads",
    "worker run": "a long-running process; each job it runs (sync, retention.purge, keys.epoch) is its own",
    "worker beat": "a long-running scheduler that only queues jobs",
    "worker tick": "runs the due jobs once; each is audited by its own domain function",
    "shipments confirmations": "reads",
    "shipments confirm-due": "runs the due confirmations once; each is audited by confirm_due (shipment.confirm)",
    "shipments confirm-retry": "puts failed confirmations back in the queue: nothing is read or shared until each "
    "is made, and that is audited (shipment.confirm)",
    "sync run": "pulls orders in: the chain records access to label data and administration, not arrivals "
    "(the run's outcome is the account's last_sync)",
}

#: Each state-changing command, in the order the scenario runs them, with the audit action it appends.
CLI_AUDITED = {
    "tenants create": "tenant.create",
    "tenants return-address": "tenant.return_address",
    "accounts add amazon": "account.connect",
    "carriers add shippo": "carrier.connect",
    "carriers add easypost": "carrier.connect",
    "carriers add amazonshipping": "carrier.connect",
    "carriers add amazonmfn": "carrier.connect",
    "carriers options": "carrier.options",
    "carriers remove": "carrier.remove",
    "users create": "user.create",
    "users unlock": "user.unlock",
    "users reset-second-factor": "user.second-factor",
    "users disable": "user.disable",
    "users data export": "user.data.access",
    "users data correct": "user.data.correct",
    "users data erase": "user.data.erase",
    "clients create": "client.create",
    "clients allow": "client.allow",
    "clients revoke": "client.revoke",
    "holds add": "hold.place",
    "holds release": "hold.release",
    "labels grant-reprint": "label.grant-reprint",
    "rights access": "rights.access",
    "rights correct": "rights.correction",
    "rights erase": "rights.erasure",
    "rights request open": "rights.request.open",
    "rights request matches": "rights.request.match",
    "rights request confirm": "rights.request.confirm",
    "rights request carry-out": "rights.request.complete",
    "rights request notice": "rights.request.open",
    "rights request export": "rights.export-fetched",
    "rights reindex": "index_key.reindex",
    "vault retention-policy": "retention.policy",
    "vault purge": "retention.purge",
    "vault rotate": "key.rotate",
    "vault destroy-key": "key.destroy",
    "vault epoch": "keys.epoch",
    "vault destroy-root": "key.destroy-root",
    "vault backup": "backup.create",
    "vault restore": "backup.restore",
    "accounts add ebay": "account.connect",
    "accounts reconsent": "account.reconsent",
    "accounts remove": "account.remove",
    "accounts add shopify": "account.connect",
    "accounts add walmart": "account.connect",
    "accounts add tiktok": "account.connect",
}


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += command_paths(command, (*path, name))
        else:
            out.append(" ".join((*path, name)))
    return out


def test_every_cli_command_is_in_one_table() -> None:
    commands = set(command_paths(click.Group(commands=COMMANDS)))
    assert not set(CLI_AUDITED) & set(CLI_UNAUDITED)
    assert commands == set(CLI_AUDITED) | set(CLI_UNAUDITED)


def _count(app: Any, action: str) -> int:
    with services(app).sessions() as s:
        return int(s.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def test_every_state_changing_cli_command_appends_its_event(
    make_app: Any,
    fresh_db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fakes: dict[str, Any],
) -> None:
    fake, fake_ebay, shop = fakes["amazon"], fakes["ebay"], fakes["shopify"]
    walmart, tiktok = fakes["walmart"], fakes["tiktok"]
    app = make_app(fresh_db.app_url, marketplace_endpoint_overrides=_overrides(fakes))
    monkeypatch.setenv("LABELVAULT_SHOPIFY_TOKEN", shop.DEFAULT_TOKEN)
    monkeypatch.setenv("LABELVAULT_WALMART_CLIENT_ID", walmart.DEFAULT_SELLER.client_id)
    monkeypatch.setenv("LABELVAULT_WALMART_CLIENT_SECRET", walmart.DEFAULT_SELLER.client_secret)
    monkeypatch.setenv("LABELVAULT_TIKTOK_APP_KEY", tiktok.app.app_key)
    monkeypatch.setenv("LABELVAULT_TIKTOK_APP_SECRET", tiktok.app.app_secret)

    def tiktok_authorised() -> None:  # the seller authorised the app on TikTok: the code its redirect carries
        monkeypatch.setenv("LABELVAULT_TIKTOK_AUTH_CODE", tiktok.authorize())

    svc = services(app)
    runner = app.test_cli_runner()
    monkeypatch.setenv("LABELVAULT_USER_PASSWORD", "correct horse battery staple")
    seller = fake.DEFAULT_SELLER
    for env, value in (
        ("CLIENT_ID", seller.client_id),
        ("CLIENT_SECRET", seller.client_secret),
        ("REFRESH_TOKEN", seller.refresh_token),
    ):
        monkeypatch.setenv(f"LABELVAULT_AMAZON_{env}", value)
    for env, value in (
        ("CLIENT_ID", fake_ebay.app.client_id),
        ("CLIENT_SECRET", fake_ebay.app.client_secret),
        ("RU_NAME", fake_ebay.app.ru_name),
    ):
        monkeypatch.setenv(f"LABELVAULT_EBAY_{env}", value)

    def ebay_consent() -> None:  # the seller agreed on eBay's page: the code its redirect carries
        monkeypatch.setenv("LABELVAULT_EBAY_CONSENT_REDIRECT", fake_ebay.consent_code())

    kept, erased = (f"amazon:{sample_facts(i).external_order_id}" for i in (1, 2))
    state: dict[str, str] = {}

    def seed_orders() -> None:
        with svc.sessions() as s:
            account = s.scalars(select(MarketplaceAccount)).one()
            # cancelled: the purge erases it
            store_order(
                s, keys=svc.keys, account=account, facts=sample_facts(0, OrderStatus.CANCELLED), label=sample_label(0)
            )
            for i in (1, 2):
                store_order(s, keys=svc.keys, account=account, facts=sample_facts(i), label=sample_label(i))
            s.commit()

    def sealed_export() -> None:  # what Shopify's customers/data_request leaves: a sealed access export
        with svc.sessions() as s:
            order = s.scalars(select(Order).where(Order.external_order_id == kept.partition(":")[2])).one()
            row = open_request_from_marketplace(
                s, keys=svc.keys, tenant_id=order.tenant_id, marketplace="amazon", kind="access",
                reference="shopify:data_request:1", actor="test", order_ids=[order.external_order_id],
            )  # fmt: skip
            carry_out_sealed(
                s, keys=svc.keys, tenant_id=order.tenant_id, request_id=row.id, actor="test",
                account_id=order.account_id, source="shopify:customers/data_request",
            )  # fmt: skip
            s.commit()
            state["sealed"] = str(row.id)

    def carrier_id(carrier: str | None = None) -> str:
        with svc.sessions() as s:
            ids = select(CarrierAccount.id).order_by(CarrierAccount.id)
            return str(s.scalars(ids.where(CarrierAccount.carrier == carrier) if carrier else ids).first())

    def hold_id() -> str:
        with svc.sessions() as s:
            return str(s.scalars(select(LegalHold.id)).one())

    def age_retired_keys() -> None:  # the key cache's max age has passed since the rotation
        with svc.sessions() as s:
            s.execute(update(TenantKey).values(retired_at=utcnow() - timedelta(days=1)))
            s.commit()

    def age_active_keys() -> None:  # an epoch is due
        with svc.sessions() as s:
            s.execute(update(TenantKey).values(created_at=utcnow() - timedelta(days=3650)))
            s.commit()

    def retire_root() -> None:  # the root key in use is rotated out, so the old one may go
        state["old_root"] = svc.keys.provider.current_key_id()
        with svc.sessions() as s:
            rotate_root(s, keys=svc.keys, actor="test", new_key=True)

    person = tmp_path / "person.json"
    person.write_text(json.dumps({"name": sample_label(1).name}))
    address = tmp_path / "address.json"
    address.write_text(json.dumps(sample_label(5).as_dict()))
    backup = tmp_path / "vault.backup"
    request = ["--request-id", "R-1", "--verified-by", "support lead"]
    email = "operator@acme.example"
    scenario: dict[str, tuple[Callable[[], None] | None, Callable[[], list[str]]]] = {
        "tenants create": (None, lambda: ["acme", "--name", "Acme"]),
        "tenants return-address": (None, lambda: ["acme", "--name", "Acme", "--line", "1 Road", "--country", "CN"]),
        "accounts add amazon": (
            None,
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "US",
                "--region",
                "na",
                "--marketplace-id",
                "ATVPDKIKX0DER",
                "--sp-api-endpoint",
                fake.base_url,
                "--lwa-endpoint",
                fake.lwa_url,
            ],
        ),
        "carriers add shippo": (
            lambda: monkeypatch.setenv("LABELVAULT_SHIPPO_API_TOKEN", "shippo_test_audit"),
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "Shippo",
                "--from-name",
                "Acme",
                "--from-street",
                "1 Road",
                "--from-city",
                "Austin",
                "--from-postal-code",
                "73301",
                "--from-country",
                "US",
            ],
        ),
        "carriers add easypost": (
            lambda: monkeypatch.setenv("LABELVAULT_EASYPOST_API_KEY", "EZTKaudit"),
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "EasyPost",
                "--from-name",
                "Acme",
                "--from-street",
                "1 Road",
                "--from-city",
                "Austin",
                "--from-postal-code",
                "73301",
                "--from-country",
                "US",
            ],
        ),
        "carriers add amazonshipping": (
            lambda: [
                monkeypatch.setenv(f"LABELVAULT_AMAZONSHIPPING_{name}", f"audit-{name.lower()}")
                for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN")
            ],
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "Amazon Shipping",
                "--business-id",
                "AmazonShipping_US",
                "--from-name",
                "Acme",
                "--from-street",
                "1 Road",
                "--from-city",
                "Austin",
                "--from-postal-code",
                "73301",
                "--from-country",
                "US",
            ],
        ),
        "carriers add amazonmfn": (
            lambda: [
                monkeypatch.setenv(f"LABELVAULT_AMAZONMFN_{name}", f"audit-{name.lower()}")
                for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN")
            ],
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "Amazon MFN",
                "--region",
                "na",
                "--from-name",
                "Acme",
                "--from-street",
                "1 Road",
                "--from-city",
                "Austin",
                "--from-postal-code",
                "73301",
                "--from-country",
                "US",
            ],
        ),
        "carriers options": (None, lambda: [carrier_id("amazonshipping"), "--option", "one_click=true"]),
        "carriers remove": (None, lambda: [carrier_id(), "--yes"]),
        "users create": (seed_orders, lambda: ["--tenant", "acme", "--email", email, "--role", "operator"]),
        "users unlock": (None, lambda: [email]),
        "users reset-second-factor": (None, lambda: [email, "--yes"]),
        "users disable": (None, lambda: [email]),
        "users data export": (None, lambda: [email, "--by", email, "--out", str(tmp_path / "user.json")]),
        "users data correct": (None, lambda: [email, "--by", email]),
        "users data erase": (None, lambda: [email, "--by", email, "--yes"]),
        "clients create": (None, lambda: ["acme", "Station", "--cidr", "203.0.113.0/28"]),
        "clients allow": (None, lambda: ["acme", "Station", "198.51.100.0/29"]),
        "clients revoke": (None, lambda: ["acme", "Station"]),
        "holds add": (
            None,
            lambda: [
                "--tenant",
                "acme",
                "--order",
                kept,
                "--reason",
                "case 7",
                "--owner",
                "legal",
                "--until",
                "2099-01-01",
            ],
        ),
        "holds release": (None, lambda: [hold_id(), "--tenant", "acme"]),
        "labels grant-reprint": (None, lambda: ["--tenant", "acme", kept, "--reason", "printer jam"]),
        "rights access": (
            None,
            lambda: ["--tenant", "acme", "--order", kept, *request, "--output", str(tmp_path / "x")],
        ),
        "rights correct": (None, lambda: ["--tenant", "acme", "--order", kept, *request, "--address", str(address)]),
        "rights erase": (None, lambda: ["--tenant", "acme", "--order", erased, *request]),
        "rights request open": (
            None,
            lambda: [
                "--tenant",
                "acme",
                "--kind",
                "erasure",
                "--reference",
                "R-2",
                "--verified-by",
                "support lead",
                "--verification",
                "ID card seen",
                "--person",
                str(person),
            ],
        ),
        "rights request matches": (None, lambda: ["--tenant", "acme", "--id", "1"]),
        "rights request confirm": (None, lambda: ["--tenant", "acme", "--id", "1"]),
        "rights request carry-out": (None, lambda: ["--tenant", "acme", "--id", "1"]),
        "rights request notice": (
            None,
            lambda: [
                *("--tenant", "acme", "--marketplace", "amazon", "--notice-id", "AMZ-1"),
                *("--notice-date", "2026-01-05", "--order", kept.partition(":")[2]),
            ],
        ),
        "rights request export": (
            sealed_export,
            lambda: ["--tenant", "acme", "--id", state["sealed"], "--output", str(tmp_path / "sealed.json")],
        ),
        "rights reindex": (None, lambda: ["--tenant", "acme"]),
        "vault retention-policy": (None, lambda: ["--tenant", "acme", "--days", "20"]),
        "vault purge": (None, lambda: []),
        "vault rotate": (None, lambda: ["--tenant", "acme"]),
        "vault destroy-key": (age_retired_keys, lambda: ["--tenant", "acme", "--version", "1"]),
        "vault epoch": (age_active_keys, lambda: []),
        "vault destroy-root": (retire_root, lambda: [state["old_root"]]),
        "vault backup": (None, lambda: [str(backup)]),
        "vault restore": (None, lambda: [str(backup), "--yes"]),
        "accounts add ebay": (
            ebay_consent,
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "eBay",
                "--marketplace-id",
                "EBAY_US",
                "--api-endpoint",
                fake_ebay.base_url,
            ],
        ),
        "accounts reconsent": (ebay_consent, lambda: ["eBay"]),
        "accounts remove": (None, lambda: ["US", "--yes"]),
        "accounts add shopify": (
            None,
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "Shop",
                "--shop",
                shop.DEFAULT_SHOP.domain,
                "--api-endpoint",
                shop.base_url,
            ],
        ),
        "accounts add walmart": (
            None,
            lambda: ["--tenant", "acme", "--name", "Walmart US", "--api-endpoint", walmart.base_url],
        ),
        "accounts add tiktok": (
            tiktok_authorised,
            lambda: [
                "--tenant",
                "acme",
                "--name",
                "TikTok",
                "--api-endpoint",
                tiktok.base_url,
                "--token-endpoint",
                tiktok.auth_url,
            ],
        ),
    }
    assert list(scenario) == list(CLI_AUDITED)
    prompted = {"users data correct": "Departed Operator\n\n"}  # new name, e-mail kept: read at a prompt
    for path, (prepare, args) in scenario.items():
        if prepare:
            prepare()
        action = CLI_AUDITED[path]
        before = _count(app, action)
        result = runner.invoke(args=[*path.split(), *args()], input=prompted.get(path))
        assert result.exit_code == 0, f"{path}: {result.output}"
        assert _count(app, action) > before, f"{path} appended no {action} event"
    # the read-only commands leave the chain as it is
    total = _count_all(app)
    for args in (
        ["accounts", "list"],
        ["carriers", "list"],
        ["clients", "list"],
        ["holds", "list"],
        ["tenants", "list"],
        ["vault", "status"],
        ["users", "list", "--tenant", "acme"],
        ["audit", "verify"],
        ["worker", "due"],
    ):
        assert runner.invoke(args=args).exit_code == 0, args
    assert _count_all(app) == total
    shop.stop()


def _count_all(app: Any) -> int:
    with services(app).sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


# --- the dashboard and the label API -------------------------------------------------------------------

#: POST routes that change no audited state, and why.
POST_UNAUDITED = {
    "/accounts/<int:account_id>/sync": "queues the account's sync job, which pulls orders in (see `sync run`)",
    "/audit/verify": "reads the chain and shows the result",
    "/accounts/ebay": "keeps a state nonce in the session and sends the seller to eBay's consent page; the "
    "callback's POST connects the account",
    "/accounts/<int:account_id>/ebay/reconsent": "the same for an account's new consent; the callback's POST "
    "seals the new grant",
    "/accounts/shopify/install": "starts a Shopify install (a state nonce in the session) and redirects to the "
    "shop; the callback, a GET, connects the account audited as account.connect (tests/app/dashboard)",
    "/webhooks/shopify": "Shopify's signed privacy webhook, not a seller's form: each order it touches is audited "
    "by vault.rights and each delivery as shopify.webhook (tests/app/test_shopify_webhooks.py)",
}


@dataclass
class Dash:
    """The dashboard world of one run: an owner signed in on ``owner``, the ids the steps make."""

    seller: Seller
    owner: FlaskClient
    owner_user: User
    owner_totp: Any
    other: FlaskClient
    ids: dict[str, Any] = field(default_factory=dict)


def _post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    with client.session_transaction() as s:
        token = s.get("csrf")
    if token is None:
        html = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]  # type: ignore[index]
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kw)


def _account_id(d: Dash) -> int:
    with d.seller.session() as s:
        return int(s.scalars(select(MarketplaceAccount.id).where(MarketplaceAccount.name == "Dash store")).one())


def _client_key(d: Dash) -> str:
    with d.seller.session() as s:
        return str(s.scalars(select(ApiClient.key_id).where(ApiClient.name == "Dash station")).one())


def _carrier(d: Dash) -> tuple[str, dict[str, Any]]:
    """The dashboard's add form of the first carrier in the registry, its credentials made up (connecting
    doesn't call the carrier)."""
    platform = next(iter(CARRIERS.values()))
    form = {c: platform.choices[c][1] if c in platform.choices else "made-up" for c in platform.credentials}
    ship_from = {"from_name": "Dash Ltd", "from_street": "1 Dock Rd", "from_city": "Shenzhen"}
    ship_from |= {"from_postal_code": "518000", "from_country": "CN"}
    return "/carriers", {"carrier": platform.code, "name": "Dash carrier", **form, **ship_from}


def _carrier_id(d: Dash) -> int:
    with d.seller.session() as s:
        return int(s.scalars(select(CarrierAccount.id).where(CarrierAccount.name == "Dash carrier")).one())


def _carrier_options(d: Dash) -> tuple[str, dict[str, Any]]:
    """An Amazon Shipping account (connected directly: its options are what is posted), one_click turned on."""
    platform = CARRIERS["amazonshipping"]
    with d.seller.session() as s:
        account = connect_carrier_account(
            s, keys=d.seller.keys, tenant_id=d.seller.tenant.id, carrier=platform.code, name="Dash Amazon",
            secrets={"client_id": "x", "client_secret": "y", "refresh_token": "z"}, ship_from=SHIP_FROM_VALUES,
            actor="test",
        )  # fmt: skip
        s.commit()
        return f"/carriers/{account.id}/options", {"one_click": "on", "ship_to_from_order": "on", "dpi": "300"}


def _hold(d: Dash) -> int:
    with d.seller.session() as s:
        return int(s.scalars(select(LegalHold.id).where(LegalHold.tenant_id == d.seller.tenant.id)).one())


def _rights_open(d: Dash) -> tuple[str, dict[str, Any]]:
    form = {"kind": "erasure", "reference": "R-4", "name": "Nobody Known", "verified_by": "lead", "verification": "id"}
    return "/rights/requests", form


def _rights_notice(d: Dash) -> tuple[str, dict[str, Any]]:
    form = {"marketplace": "amazon", "kind": "erasure", "notice_id": "AMZ-5", "notice_date": "2026-01-05"}
    return "/rights/requests/notice", form | {"order_ids": d.ids["order"]}


def _sealed_export(d: Dash) -> tuple[str, dict[str, Any]]:
    """What Shopify's customers/data_request leaves: an access request carried out, its export sealed."""
    with d.seller.session() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == d.ids["order"])).one()
        row = open_request_from_marketplace(
            s, keys=d.seller.keys, tenant_id=order.tenant_id, marketplace="amazon", kind="access",
            reference="shopify:data_request:2", actor="test", order_ids=[order.external_order_id],
        )  # fmt: skip
        carry_out_sealed(
            s, keys=d.seller.keys, tenant_id=order.tenant_id, request_id=row.id, actor="test",
            account_id=order.account_id, source="shopify:customers/data_request",
        )  # fmt: skip
        s.commit()
        return f"/rights/requests/{row.id}/export", {}


def _last_request(d: Dash) -> str:
    with d.seller.session() as s:
        rid = s.scalars(
            select(RightsRequestRow.id)
            .where(RightsRequestRow.tenant_id == d.seller.tenant.id)
            .order_by(RightsRequestRow.id.desc())
        ).first()
    return f"/rights/requests/{rid}"


def _invite(d: Dash) -> tuple[str, dict[str, Any]]:
    return "/users/invite", {"email": "invitee@seller.example", "display_name": "", "role": "operator"}


def _accept(d: Dash) -> tuple[str, dict[str, Any]]:
    d.other = d.owner.application.test_client()
    pw = "another long passphrase"
    return f"/invitation/{d.ids['invite']}", {"password": pw, "password2": pw}


def _enrol(d: Dash) -> tuple[str, dict[str, Any]]:
    html = d.other.get("/enrol").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([^<]+)<', html)[1].replace(" ", "")  # type: ignore[index]
    d.seller.clock.advance(30)
    return "/enrol", {"code": pyotp.TOTP(secret).at(d.seller.clock())}


def _invitee(d: Dash) -> int:
    with d.seller.session() as s:
        return int(s.scalars(select(User.id).where(User.email == "invitee@seller.example")).one())


def _wrong_password(d: Dash) -> tuple[str, dict[str, Any]]:
    d.other = d.owner.application.test_client()
    return "/login", {"email": d.owner_user.email, "password": "not the password at all"}


def _code(d: Dash) -> tuple[str, dict[str, Any]]:
    d.other = d.owner.application.test_client()
    resp = _post(d.other, "/login", {"email": d.owner_user.email, "password": "correct horse battery staple"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return "/login/code", {"code": d.owner_totp.code()}


def _erase_self(d: Dash) -> tuple[str, dict[str, Any]]:
    """A viewer signs in on the other client and erases their own account (which signs them out)."""
    user, totp = d.seller.user("viewer")
    assert totp is not None
    d.other = d.owner.application.test_client()
    d.seller.login(d.other, user, totp)
    return "/profile/data/erase", {"confirm": user.email}


def _batch(d: Dash) -> tuple[str, dict[str, Any]]:
    return "/v1/labels/batch", {}


Step = tuple[str, str, Callable[[Dash], tuple[str, dict[str, Any]]], str]


#: (rule, who posts: the owner or the other client, the request, the audit action), in the order they run.
def _ebay_consent(d: Dash) -> tuple[str, dict[str, Any]]:
    """Start an eBay connect, agree on the fake eBay's consent page, come back: the callback's form."""
    fake: FakeEbay = d.ids["fake_ebay"]
    form = {"name": "Dash eBay", "marketplace_ids": "EBAY_US", "client_id": fake.app.client_id}
    form |= {"ru_name": fake.app.ru_name, "api_endpoint": fake.base_url, "token_endpoint": fake.token_url}
    started = _post(d.owner, "/accounts/ebay", form)
    back = parse_qs(urlsplit(httpx.get(started.headers["Location"]).headers["Location"]).query)
    return "/accounts/ebay/callback", {
        "state": back["state"][0],
        "code": back["code"][0],
        "client_secret": fake.app.client_secret,
    }


POST_AUDITED: list[Step] = [
    (
        "/shipping/print",
        "owner",
        lambda d: ("/shipping/print", {"order": f"amazon:{d.ids['order']}", "format": "pdf"}),
        "label.release",
    ),
    (
        "/settings/return-address",
        "owner",
        lambda d: (
            "/settings/return-address",
            {"name": "Dash Ltd", "line": ["1 Dock Rd", "Shenzhen"], "country": "CN"},
        ),
        "tenant.return_address",
    ),
    (
        "/settings/time-zone",
        "owner",
        lambda d: ("/settings/time-zone", {"time_zone": "Asia/Tokyo"}),
        "tenant.time_zone",
    ),
    (
        "/accounts",
        "owner",
        lambda d: (
            "/accounts",
            {
                "name": "Dash store",
                "region": "na",
                "api_version": "2026-01-01",
                "marketplace_ids": "ATVPDKIKX0DER",
                "client_id": FakeAmazon.DEFAULT_SELLER.client_id,
                "client_secret": FakeAmazon.DEFAULT_SELLER.client_secret,
                "refresh_token": FakeAmazon.DEFAULT_SELLER.refresh_token,
                "sp_api_endpoint": d.ids["fake"],
                "lwa_endpoint": d.ids["fake"] + "/auth/o2/token",
            },
        ),
        "account.connect",
    ),
    (
        "/accounts/shopify",
        "owner",
        lambda d: (
            "/accounts/shopify",
            {
                "name": "Dash shop",
                "shop": FakeShopify.DEFAULT_SHOP.domain,
                "access_token": FakeShopify.DEFAULT_TOKEN,
                "api_endpoint": d.ids["shop"],
            },
        ),
        "account.connect",
    ),
    (
        "/accounts/<int:account_id>/remove",
        "owner",
        lambda d: (f"/accounts/{_account_id(d)}/remove", {"confirm": "Dash store"}),
        "account.remove",
    ),
    ("/accounts/ebay/callback", "owner", _ebay_consent, "account.connect"),
    (
        "/accounts/connect/walmart",
        "owner",
        lambda d: (
            "/accounts/connect/walmart",
            {
                "name": "Dash Walmart",
                "client_id": d.ids["walmart"].DEFAULT_SELLER.client_id,
                "client_secret": d.ids["walmart"].DEFAULT_SELLER.client_secret,
                "api_endpoint": d.ids["walmart"].base_url,
            },
        ),
        "account.connect",
    ),
    (
        "/accounts/tiktok",
        "owner",
        lambda d: (
            "/accounts/tiktok",
            {
                "name": "Dash TikTok",
                "app_key": d.ids["tiktok"].app.app_key,
                "app_secret": d.ids["tiktok"].app.app_secret,
                "auth_code": d.ids["tiktok"].authorize(),
                "api_endpoint": d.ids["tiktok"].base_url,
                "token_endpoint": d.ids["tiktok"].auth_url,
            },
        ),
        "account.connect",
    ),
    ("/clients", "owner", lambda d: ("/clients", {"name": "Dash station", "cidrs": "203.0.113.0/28"}), "client.create"),
    (
        "/clients/<key_id>/cidrs",
        "owner",
        lambda d: (f"/clients/{_client_key(d)}/cidrs", {"cidrs": "198.51.100.0/29"}),
        "client.allow",
    ),
    (
        "/clients/<key_id>/profile",
        "owner",
        lambda d: (f"/clients/{_client_key(d)}/profile", {"fields": ["phone"]}),
        "client.profile",
    ),
    ("/clients/<key_id>/revoke", "owner", lambda d: (f"/clients/{_client_key(d)}/revoke", {}), "client.revoke"),
    ("/carriers", "owner", _carrier, "carrier.connect"),
    ("/carriers/<int:account_id>/options", "owner", _carrier_options, "carrier.options"),
    (
        "/carriers/<int:account_id>/remove",
        "owner",
        lambda d: (f"/carriers/{_carrier_id(d)}/remove", {"confirm": "Dash carrier"}),
        "carrier.remove",
    ),
    ("/retention/policy", "owner", lambda d: ("/retention/policy", {"days": "20"}), "retention.policy"),
    (
        "/retention/holds",
        "owner",
        lambda d: ("/retention/holds", {"reason": "case 7", "owner": "legal", "ends_on": "2099-01-01"}),
        "hold.place",
    ),
    (
        "/retention/holds/<int:hold_id>/release",
        "owner",
        lambda d: (f"/retention/holds/{_hold(d)}/release", {}),
        "hold.release",
    ),
    (
        "/orders/<marketplace>/<order_id>/reprint",
        "owner",
        lambda d: (f"/orders/amazon/{d.ids['order']}/reprint", {"reason": "printer jam"}),
        "label.grant-reprint",
    ),
    (
        "/rights/<kind>",
        "owner",
        lambda d: ("/rights/access", {"order_id": d.ids["order"], "request_id": "R-1", "verified_by": "lead"}),
        "rights.access",
    ),
    (
        "/rights/<kind>",
        "owner",
        lambda d: (
            "/rights/correction",
            {
                "order_id": d.ids["order"],
                "request_id": "R-2",
                "verified_by": "lead",
                **{k: v for k, v in sample_label(9).as_dict().items() if v},
            },
        ),
        "rights.correction",
    ),
    (
        "/rights/<kind>",
        "owner",
        lambda d: ("/rights/erasure", {"order_id": d.ids["order"], "request_id": "R-3", "verified_by": "lead"}),
        "rights.erasure",
    ),
    ("/rights/requests", "owner", _rights_open, "rights.request.open"),
    (
        "/rights/requests/<int:request_id>/confirm",
        "owner",
        lambda d: (f"{_last_request(d)}/confirm", {}),
        "rights.request.confirm",
    ),
    (
        "/rights/requests/<int:request_id>/carry-out",
        "owner",
        lambda d: (f"{_last_request(d)}/carry-out", {}),
        "rights.request.complete",
    ),
    ("/rights/requests/notice", "owner", _rights_notice, "rights.request.open"),
    ("/rights/requests/<int:request_id>/export", "owner", _sealed_export, "rights.export-fetched"),
    ("/users/invite", "owner", _invite, "user.invite"),
    ("/invitation/<token>", "other", _accept, "user.accept-invitation"),
    ("/enrol", "other", _enrol, "user.second-factor"),
    (
        "/users/<int:user_id>/<action>",
        "owner",
        lambda d: (f"/users/{_invitee(d)}/role", {"role": "viewer"}),
        "user.role",
    ),
    ("/users/<int:user_id>/<action>", "owner", lambda d: (f"/users/{_invitee(d)}/unlock", {}), "user.unlock"),
    (
        "/users/<int:user_id>/<action>",
        "owner",
        lambda d: (f"/users/{_invitee(d)}/reset-second-factor", {}),
        "user.second-factor",
    ),
    ("/users/<int:user_id>/<action>", "owner", lambda d: (f"/users/{_invitee(d)}/disable", {}), "user.disable"),
    (
        "/users/<int:user_id>/data/correct",
        "owner",
        lambda d: (f"/users/{_invitee(d)}/data/correct", {"display_name": "Left", "email": "invitee@seller.example"}),
        "user.data.correct",
    ),
    (
        "/users/<int:user_id>/data/erase",
        "owner",
        lambda d: (f"/users/{_invitee(d)}/data/erase", {"confirm": "invitee@seller.example"}),
        "user.data.erase",
    ),
    ("/users/allowlist", "owner", lambda d: ("/users/allowlist", {"cidrs": "127.0.0.1/32"}), "dashboard.allowlist"),
    ("/profile/recovery-codes", "owner", lambda d: ("/profile/recovery-codes", {}), "user.recovery-codes"),
    (
        "/profile/data/correct",
        "owner",
        lambda d: ("/profile/data/correct", {"display_name": "Dash Owner", "email": d.owner_user.email}),
        "user.data.correct",
    ),
    ("/reauth", "owner", lambda d: ("/reauth", {"code": d.owner_totp.code()}), "user.reauth"),
    ("/language", "owner", lambda d: ("/language", {"locale": "zh_Hans", "next": "/"}), "user.locale"),
    ("/login", "other", _wrong_password, "user.sign-in"),
    ("/login/code", "other", _code, "user.sign-in"),
    ("/profile/data/erase", "other", _erase_self, "user.data.erase"),
    (
        "/profile/password",
        "owner",
        lambda d: (
            "/profile/password",
            {
                "current": "correct horse battery staple",
                "new": "a brand new passphrase",
                "new2": "a brand new passphrase",
            },
        ),
        "user.password",
    ),
    ("/logout", "owner", lambda d: ("/logout", {}), "user.sign-out"),
    ("/v1/labels/batch", "other", _batch, "label.release"),
    # A shipment for an order the tenant doesn't have, and a void of a shipment it doesn't have: refused,
    # and the refusal audited (the purchases themselves: tests/app/test_shipments.py, against the fake carrier).
    ("/v1/shipments", "other", lambda d: ("/v1/shipments", {}), "request"),
    ("/v1/shipments/<shipment_id>/void", "other", lambda d: ("/v1/shipments/999999/void", {}), "request"),
    # A wave naming an order the tenant doesn't have: that order refused, and the refusal audited.
    ("/v1/shipments/batch", "other", lambda d: ("/v1/shipments/batch", {}), "shipment.purchase"),
]


def test_every_post_route_is_in_one_table(dash_app: Any) -> None:
    rules = {r.rule for r in dash_app.url_map.iter_rules() if "POST" in (r.methods or ())}
    audited = {rule for rule, *_ in POST_AUDITED}
    assert not audited & set(POST_UNAUDITED)
    assert rules == audited | set(POST_UNAUDITED)


def _tenant_count(d: Dash, action: str) -> int:
    with d.seller.session() as s:
        tid = d.seller.tenant.id
        where = (AuditEvent.tenant_id == tid) | AuditEvent.tenant_id.is_(None)
        return int(s.scalar(select(func.count()).where(AuditEvent.action == action, where)) or 0)


def test_every_post_route_appends_its_event(seller: Seller, fakes: dict[str, Any]) -> None:
    fake = fakes["amazon"]
    app = seller.app
    owner_user, totp = seller.user("owner")
    assert totp is not None
    owner = app.test_client()
    seller.login(owner, owner_user, totp)
    ids = {"fake": fake.base_url, "fake_ebay": fakes["ebay"], "shop": fakes["shopify"].base_url}
    ids |= {"walmart": fakes["walmart"], "tiktok": fakes["tiktok"]}
    d = Dash(seller, owner, owner_user, totp, app.test_client(), ids)
    with seller.session() as s:
        account = connect_account(
            s,
            keys=seller.keys,
            tenant_id=seller.tenant.id,
            marketplace="amazon",
            name="Orders",
            region="na",
            api_version="2026-01-01",
            marketplace_ids=["ATVPDKIKX0DER"],
            secrets={"k": "v"},
            actor="test",
        )
        facts = sample_facts(40)
        store_order(s, keys=seller.keys, account=account, facts=facts, label=sample_label(40))
        tenant = s.get_one(Tenant, seller.tenant.id)
        batch_client = create_client(
            s,
            tenant=tenant,
            name="Batch",
            scopes=["labels:issue", "shipments:buy"],
            cidrs=["127.0.0.1/32"],
            actor="test",
        )
        s.commit()
    d.ids["order"] = facts.external_order_id
    for rule, who, build, action in POST_AUDITED:
        path, data = build(d)
        client = d.owner if who == "owner" else d.other
        before = _tenant_count(d, action)
        if rule == "/v1/labels/batch":
            body = {"orders": [{"marketplace": "amazon", "order_id": "no-such-order"}]}
            headers = {"Authorization": f"Bearer {batch_client.key}"}
            resp = client.post(path, json=body, headers=headers)
        elif rule.startswith("/v1/shipments"):
            parcel = {"weight_g": 500, "length_mm": 100, "width_mm": 100, "height_mm": 100}
            body = {"marketplace": "amazon", "order_id": "no-such-order", "parcel": parcel}
            if rule == "/v1/shipments/batch":
                body = {"shipments": [{**body, "order_id": "111-1111111-1111111"}]}
            headers = {"Authorization": f"Bearer {batch_client.key}", "Idempotency-Key": "audit-1"}
            resp = client.post(path, json=body, headers=headers)
        else:
            resp = _post(client, path, data)
        assert resp.status_code < 500, f"{path}: {resp.status_code}"
        if rule == "/users/invite":
            d.ids["invite"] = re.search(r"/invitation/([\w-]+)", resp.get_data(as_text=True))[1]  # type: ignore[index]
        assert _tenant_count(d, action) > before, f"POST {path} appended no {action} event ({resp.status_code})"
