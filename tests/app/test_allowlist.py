"""The IP allowlist: trusted-proxy rule, spoofing attempts, the client's own CIDRs, refusal auditing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.servers import Database
from tests.support.world import World, assert_no_pii, build_world
from vault.keys import KeyManager
from vault.models import AuditEvent

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

ATTACKER = "198.51.100.66"  # the address the attacker really has
GOOD = "203.0.113.5"  # inside the global allowlist and the client's CIDRs
PROXY, EDGE = "10.0.0.1", "10.0.0.2"  # trusted proxies: EDGE → PROXY → app
FORBIDDEN = {"type": "https://labelvault.dev/problems/forbidden", "title": "Forbidden", "status": 403}


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, cidrs=["203.0.113.0/24", "2001:db8:5::/48"])


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(
        shared_db.app_url,
        global_allowlist="203.0.113.0/24,2001:db8:5::/48",
        trusted_proxies=f"{PROXY}/32,{EDGE}/32",
        rate_limit_prefix=f"t-{id(shared_db)}-allowlist",
    )


def get(
    app: Any, world: World, peer: str, headers: list[tuple[str, str]] | None = None, path: str | None = None
) -> Any:
    return app.test_client().get(
        path or world.url(0),
        headers=[*world.auth().items(), *(headers or [])],
        environ_base={"REMOTE_ADDR": peer},
    )


SPOOFS = {
    "xff-direct": (ATTACKER, [("X-Forwarded-For", GOOD)]),
    "forwarded-direct": (ATTACKER, [("Forwarded", f"for={GOOD}")]),
    "x-real-ip-direct": (ATTACKER, [("X-Real-IP", GOOD)]),
    "all-three-direct": (ATTACKER, [("X-Forwarded-For", GOOD), ("Forwarded", f"for={GOOD}"), ("X-Real-IP", GOOD)]),
    "several-xff-direct": (ATTACKER, [("X-Forwarded-For", GOOD), ("X-Forwarded-For", GOOD)]),
    "forged-leftmost-via-proxy": (PROXY, [("X-Forwarded-For", f"{GOOD}, {ATTACKER}")]),
    "several-xff-via-proxy": (PROXY, [("X-Forwarded-For", GOOD), ("X-Forwarded-For", ATTACKER)]),
    "forwarded-via-proxy": (PROXY, [("X-Forwarded-For", ATTACKER), ("Forwarded", f"for={GOOD}")]),
    "x-real-ip-via-proxy": (PROXY, [("X-Forwarded-For", ATTACKER), ("X-Real-IP", GOOD)]),
    "proxy-ip-forged-by-client": (EDGE, [("X-Forwarded-For", f"{GOOD}, {PROXY}, {ATTACKER}")]),
    "chain-with-one-extra-hop": (EDGE, [("X-Forwarded-For", f"{GOOD}, 192.0.2.44, {PROXY}")]),
    "chain-attacker-behind-two-proxies": (EDGE, [("X-Forwarded-For", f"{GOOD}, {ATTACKER}, {PROXY}")]),
    "mapped-ipv6-attacker-peer": (f"::ffff:{ATTACKER}", [("X-Forwarded-For", GOOD)]),
    "mapped-ipv6-in-xff": (PROXY, [("X-Forwarded-For", f"{GOOD}, ::ffff:{ATTACKER}")]),
    "zone-id-in-xff": (PROXY, [("X-Forwarded-For", f"{GOOD}%eth0")]),
    "zone-id-ipv6-in-xff": (PROXY, [("X-Forwarded-For", "2001:db8:5::1%1")]),
    "zone-id-peer": ("fe80::1%eth0", []),
    "leading-zeros-in-xff": (PROXY, [("X-Forwarded-For", "203.000.113.005")]),
    "leading-zero-octet-in-xff": (PROXY, [("X-Forwarded-For", "0203.0.113.5")]),
    "octal-looking-peer": ("0313.0.113.5", []),
    "port-in-xff": (PROXY, [("X-Forwarded-For", f"{GOOD}:443")]),
    "brackets-in-xff": (PROXY, [("X-Forwarded-For", "[2001:db8:5::1]")]),
    "unknown-in-xff": (PROXY, [("X-Forwarded-For", "unknown")]),
    "empty-entry-in-xff": (PROXY, [("X-Forwarded-For", f"{GOOD},,")]),
    "hostname-in-xff": (PROXY, [("X-Forwarded-For", "localhost")]),
    "integer-ip-in-xff": (PROXY, [("X-Forwarded-For", "3405803781")]),
    "whitespace-smuggling": (PROXY, [("X-Forwarded-For", f"{ATTACKER}\t{GOOD}")]),
    # Three trusted proxies where LABELVAULT_TRUSTED_PROXY_HOPS (2) says there are at most two: not our chain.
    "more-trusted-hops-than-configured": (EDGE, [("X-Forwarded-For", f"{GOOD}, {EDGE}, {PROXY}")]),
}


@pytest.mark.parametrize(("peer", "headers"), list(SPOOFS.values()), ids=list(SPOOFS))
def test_spoofing_attempts_are_refused(app: Any, world: World, peer: str, headers: list[tuple[str, str]]) -> None:
    resp = get(app, world, peer, headers)
    assert resp.status_code == 403
    assert resp.get_json() == FORBIDDEN
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("peer", "headers"),
    [
        (GOOD, []),
        (f"::ffff:{GOOD}", []),  # IPv4-mapped IPv6 is matched as the IPv4 address it maps
        ("2001:db8:5::17", []),
        (PROXY, [("X-Forwarded-For", f"{ATTACKER}, {GOOD}")]),  # leftmost is the client's own claim, ignored
        (EDGE, [("X-Forwarded-For", f"{ATTACKER}, {GOOD}, {PROXY}")]),  # two trusted hops skipped
        (PROXY, [("X-Forwarded-For", ATTACKER), ("X-Forwarded-For", GOOD)]),  # joined; rightmost counts
    ],
    ids=["direct", "mapped-ipv6", "ipv6", "via-proxy", "via-two-proxies", "several-xff-via-proxy"],
)
def test_genuine_clients_pass(app: Any, world: World, peer: str, headers: list[tuple[str, str]]) -> None:
    resp = get(app, world, peer, headers)
    assert resp.status_code == 200, resp.get_json()


def test_the_trusted_hop_bound_is_a_setting(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(
        shared_db.app_url,
        global_allowlist="203.0.113.0/24",
        trusted_proxies=f"{PROXY}/32,{EDGE}/32",
        trusted_proxy_hops=3,
        rate_limit_prefix=f"t-{id(shared_db)}-hops",
    )
    assert get(app, world, EDGE, [("X-Forwarded-For", f"{GOOD}, {EDGE}, {PROXY}")]).status_code == 200
    four = get(app, world, EDGE, [("X-Forwarded-For", f"{GOOD}, {PROXY}, {EDGE}, {PROXY}")])
    assert four.status_code == 403


def test_headers_from_an_untrusted_peer_are_never_read(app: Any, world: World) -> None:
    # A genuine allowlisted client whose own XFF names an outside address is judged by its socket.
    assert get(app, world, GOOD, [("X-Forwarded-For", ATTACKER)]).status_code == 200


def test_refusal_says_nothing_about_what_is_behind_it(app: Any, world: World) -> None:
    bodies = [
        get(app, world, ATTACKER, path=path).get_data()
        for path in (world.url(0), "/v1/labels/amazon/no-such-order", "/no/such/route", "/v1/openapi.json", "/readyz")
    ]
    head = app.test_client().head("/v1/audit/head", environ_base={"REMOTE_ADDR": ATTACKER})
    post = app.test_client().post(world.url(0), environ_base={"REMOTE_ADDR": ATTACKER})
    assert len(set(bodies)) == 1 and head.status_code == post.status_code == 403
    assert_no_pii(bodies[0].decode())


def test_liveness_is_open_to_loopback_only(app: Any) -> None:
    client = app.test_client()
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 403
    # Readiness is not excepted, and loopback is not in this app's allowlist.
    assert client.get("/readyz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403


def test_client_cidrs_must_pass_too(app: Any, world: World, keys: KeyManager) -> None:
    _, key = world.add_client(keys, cidrs=["203.0.113.128/25"])
    resp = app.test_client().get(world.url(0), headers=world.auth(key), environ_base={"REMOTE_ADDR": GOOD})
    assert resp.status_code == 403 and resp.get_json() == FORBIDDEN
    _, nowhere = world.add_client(keys, cidrs=[])
    resp = app.test_client().get(world.url(0), headers=world.auth(nowhere), environ_base={"REMOTE_ADDR": GOOD})
    assert resp.status_code == 403


def test_client_cidrs_alone_are_not_enough(make_app: Any, shared_db: Database, keys: KeyManager) -> None:
    # The client allows 198.51.100.0/24, the global allowlist doesn't: refused before the key is even read.
    world = build_world(shared_db, keys, cidrs=["198.51.100.0/24"])
    app = make_app(shared_db.app_url, global_allowlist="203.0.113.0/24")
    resp = app.test_client().get(world.url(0), headers=world.auth(), environ_base={"REMOTE_ADDR": ATTACKER})
    assert resp.status_code == 403


def test_refusals_are_audited_without_flooding(app: Any, world: World, shared_db: Database) -> None:
    flooder = "198.51.100.201"
    # Other modules may record their own events about the same address (e.g. an alarm); count refusals.
    refusals_from_flooder = (AuditEvent.ip == flooder, AuditEvent.outcome == "refused:not-allowlisted")
    with Session(shared_db.engine) as s:
        before = s.scalar(select(func.count()).where(*refusals_from_flooder)) or 0
    for _ in range(40):
        assert get(app, world, flooder).status_code == 403
    with Session(shared_db.engine) as s:
        events = s.scalars(select(AuditEvent).where(*refusals_from_flooder)).all()
    assert len(events) - before == 1
    event = events[-1]
    assert (event.chain, event.actor, event.outcome) == ("platform", "anonymous", "refused:not-allowlisted")
