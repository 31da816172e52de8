"""``flask clients create/list/revoke/allow``: keys shown once, stored hashed, every change audited."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.servers import Database
from tests.support.world import World, build_world
from vault.clients import hash_key
from vault.keys import KeyManager
from vault.models import ApiClient, AuditEvent

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

KEY = re.compile(r"^lv_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=1)


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url)


def cli(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def chain(world: World) -> list[AuditEvent]:
    with world.session() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.chain == f"tenant:{world.tenant.id}").order_by(AuditEvent.seq)
            )
        )


def test_client_lifecycle(app: Any, world: World) -> None:
    slug = world.tenant.slug
    created = cli(
        app,
        "clients",
        "create",
        slug,
        "Osaka printer",
        "--cidr",
        "127.0.0.1",
        "--with-phone",
        "--phone-countries",
        "jp",
        "--expires-in-days",
        "30",
    )
    assert created.exit_code == 0, created.output
    (key,) = KEY.findall(created.output)
    with world.session() as s:
        row = s.scalar(
            select(ApiClient).where(ApiClient.tenant_id == world.tenant.id, ApiClient.name == "Osaka printer")
        )
        assert row is not None and row.key_hash == hash_key(key) and key not in str(row.__dict__)
        assert row.profile == {"fields": sorted(row.profile["fields"]), "phone_countries": ["JP"]}
        assert "phone" in row.profile["fields"] and row.expires_at is not None
    http = app.test_client()
    ship_to = http.get(world.url(0), headers=world.auth(key)).get_json()["ship_to"]
    assert "phone" in ship_to  # order 0 goes to Japan

    listed = cli(app, "clients", "list", "--tenant", slug)
    assert listed.exit_code == 0 and "Osaka printer" in listed.output and "active until" in listed.output
    assert key not in listed.output and row.key_hash not in listed.output
    assert "from 127.0.0.1" in listed.output  # last use

    moved = cli(app, "clients", "allow", slug, row.key_id, "203.0.113.0/28", "--remove", "127.0.0.1")
    assert moved.exit_code == 0 and "203.0.113.0/28" in moved.output
    assert http.get(world.url(0), headers=world.auth(key)).status_code == 403  # no longer from loopback
    cli(app, "clients", "allow", slug, "Osaka printer", "127.0.0.1")
    assert http.get(world.url(0), headers=world.auth(key)).status_code == 200

    revoked = cli(app, "clients", "revoke", slug, "Osaka printer")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert http.get(world.url(0), headers=world.auth(key)).status_code == 401
    assert "revoked" in cli(app, "clients", "list").output
    assert "was revoked already" in cli(app, "clients", "revoke", slug, row.key_id).output

    actions = [(e.action, e.actor.split(":")[0]) for e in chain(world)]
    assert [a for a, _ in actions if a.startswith("client.")] == [
        "client.create",  # the world's own client
        "client.create",
        "client.allow",
        "client.allow",
        "client.revoke",
    ]
    assert all(key not in str(e.details) for e in chain(world))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cidr", "0.0.0.0/0"], "too broad"),
        (["--cidr", "10.0.0.0/8"], "too broad"),
        (["--cidr", "10.0.0.1/24"], "host bits"),
        (["--cidr", "010.0.0.0/24"], "not a plain"),
        (["--fields", "name,city"], "must release"),
        (["--fields", "name,address_line1,city,country_code,email"], "unknown label fields"),
        (["--phone-countries", "Japan"], "ISO 3166"),
        (["--printer-font", "E:X.TTF^XZ"], "printer font"),
        (["--printer-font", "E:X.TTF\n"], "printer font"),
        (["--scope", "root"], "Invalid value"),
    ],
)
def test_create_refuses_bad_settings(app: Any, world: World, args: list[str], message: str) -> None:
    result = cli(app, "clients", "create", world.tenant.slug, "bad", *args)
    assert result.exit_code != 0 and message in result.output
    with Session(world.db.engine) as s:
        assert (
            s.scalar(select(ApiClient).where(ApiClient.tenant_id == world.tenant.id, ApiClient.name == "bad")) is None
        )


def test_broad_ranges_need_the_explicit_flag(app: Any, world: World) -> None:
    result = cli(app, "clients", "create", world.tenant.slug, "wide", "--cidr", "10.0.0.0/8", "--accept-broad-cidr")
    assert result.exit_code == 0, result.output


def test_unknown_tenant_and_client(app: Any, world: World) -> None:
    assert "no tenant with slug" in cli(app, "clients", "create", "nobody", "x").output
    assert "has no client" in cli(app, "clients", "revoke", world.tenant.slug, "ghost").output


def test_create_with_a_printer_font_keeps_the_default_fields(app: Any, world: World) -> None:
    result = cli(app, "clients", "create", world.tenant.slug, "kanji printer", "--printer-font", "E:ANMDJ.TTF")
    assert result.exit_code == 0, result.output
    with Session(world.db.engine) as s:
        client = s.scalar(
            select(ApiClient).where(ApiClient.tenant_id == world.tenant.id, ApiClient.name == "kanji printer")
        )
        assert client is not None and client.profile is not None
        assert client.profile["printer_font"] == "E:ANMDJ.TTF" and "phone" not in client.profile["fields"]
