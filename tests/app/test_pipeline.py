"""The request pipeline: declared once, in create_app, and run in that order; refusals carry their reason code
from where they are raised to the audit chain, the metrics and the alarms."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from app.errors import problem
from tests.support.servers import Database
from tests.support.world import World, build_world
from vault.clients import ADMIN
from vault.keys import KeyManager
from vault.models import AuditEvent, Order
from vault.records import OrderStatus

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

APP = Path(__file__).resolve().parents[2] / "app"
OUTSIDER = "198.51.100.9"
STATION = "203.0.113.5"


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=3, cidrs=["203.0.113.0/24"], statuses={2: OrderStatus.CANCELLED})


def refusals(world: World, outcome: str, ip: str | None = None) -> list[AuditEvent]:
    with world.session() as s:
        query = select(AuditEvent).where(AuditEvent.outcome == outcome).order_by(AuditEvent.id)
        if ip is not None:
            query = query.where(AuditEvent.ip == ip)
        return list(s.scalars(query))


def refused_metric(reason: str) -> float:
    return REGISTRY.get_sample_value("labelvault_labels_refused_total", {"reason": reason}) or 0.0


# -- the order ---------------------------------------------------------------------------------------------


def test_create_app_declares_the_hooks_in_pipeline_order(make_app: Any, shared_db: Database) -> None:
    from app import alarms, bodies, observability
    from app.allowlist import NetworkPolicy
    from app.limits import rate_limits
    from app.security import SecurityHeaders
    from app.services import close_session

    app = make_app(shared_db.app_url)
    clock, network, ip_limit, body_size = app.before_request_funcs[None]
    assert clock == observability.start_clock
    assert network.__func__ is NetworkPolicy.check_request and ip_limit == rate_limits(app).limit_ip
    assert body_size == bodies.check_size
    # Flask runs after-request hooks last-registered first: this is the order they run in.
    security_headers, *rest = reversed(app.after_request_funcs[None])
    assert isinstance(security_headers, SecurityHeaders) and rest == [alarms.observe, observability.account]
    assert app.teardown_appcontext_funcs == [close_session] and not app.teardown_request_funcs.get(None)
    # Blueprints keep their own hooks to their own pages.
    assert set(app.before_request_funcs) == {None, "dashboard"}


def _hook_uses(path: Path) -> list[str]:
    """Where a module touches the app's request hooks: registers one, or edits Flask's lists of them."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr.endswith(("_request_funcs", "_appcontext_funcs")):
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno} {node.attr}")
        hooks = ("before_request", "after_request", "teardown_request", "teardown_appcontext")
        if isinstance(node, ast.Attribute) and node.attr in hooks:
            receiver = node.value
            # A blueprint's own hooks (``@bp.before_request``) apply to its pages only and can't reorder the app's.
            if not (isinstance(receiver, ast.Name) and receiver.id == "bp"):
                found.append(f"{path.relative_to(APP.parent)}:{node.lineno} {node.attr}")
    return found


def test_no_module_but_the_factory_adds_to_or_reorders_the_pipeline() -> None:
    factory = APP / "__init__.py"
    elsewhere = [use for path in sorted(APP.rglob("*.py")) if path != factory for use in _hook_uses(path)]
    assert elsewhere == []
    declared = _hook_uses(factory)
    assert declared and not any("_funcs" in use for use in declared)  # registered, never spliced


def test_a_refused_address_never_reaches_the_limiter_or_the_key_check(
    make_app: Any, shared_db: Database, world: World
) -> None:
    from app.limits import rate_limits

    app = make_app(
        shared_db.app_url,
        global_allowlist="203.0.113.0/24",
        rate_limit_ip="2/minute",
        rate_limit_prefix=f"t-{id(world)}",
    )
    client = app.test_client()
    outsider = {"environ_base": {"REMOTE_ADDR": OUTSIDER}}
    # Three times the limit, with a wrong key: always the network's bare 403, never the limit's 429 or the
    # key's 401, and the address's count in the store is untouched.
    for _ in range(6):
        resp = client.get(world.url(0), headers=world.auth("lv_0000_wrong"), **outsider)
        assert resp.status_code == 403 and resp.get_json()["type"].endswith("/forbidden")
    limits = rate_limits(app)
    for item in limits.ip:
        stats = limits.strategy.get_window_stats(item, limits.prefix, f"ip:{OUTSIDER}", "global")
        assert stats.remaining == item.amount
    assert refusals(world, "refused:not-allowlisted", OUTSIDER) and not refusals(
        world, "refused:invalid-api-key", OUTSIDER
    )
    # From inside the allowlist: the limit counts first, then the key is checked.
    station = {"environ_base": {"REMOTE_ADDR": STATION}}
    assert [client.get(world.url(0), headers=world.auth("lv_0000_wrong"), **station).status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]


def test_the_client_limit_runs_after_the_key_and_its_networks_before_the_scope(
    make_app: Any, shared_db: Database, world: World, keys: KeyManager
) -> None:
    app = make_app(shared_db.app_url, global_allowlist="203.0.113.0/24,198.51.100.0/24", rate_limit_client="1/minute")
    client = app.test_client()
    _, admin_key = world.add_client(keys, scopes=[ADMIN], cidrs=["203.0.113.0/24"])
    at = {"environ_base": {"REMOTE_ADDR": STATION}}
    elsewhere = {"environ_base": {"REMOTE_ADDR": OUTSIDER}}
    # Outside the client's own networks: refused before its limit is counted, however often.
    assert {client.get(world.url(0), headers=world.auth(admin_key), **elsewhere).status_code for _ in range(3)} == {403}
    # Inside them: counted, then the missing scope refuses; once the limit is used up, the limit answers.
    assert (
        client.get(world.url(0), headers=world.auth(admin_key), **at).get_json()["type"].endswith("/insufficient-scope")
    )
    assert client.get(world.url(0), headers=world.auth(admin_key), **at).status_code == 429


# -- reasons: set where raised, read by audit, metrics and alarms ------------------------------------------


@pytest.fixture
def bodiless(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals answered with their status only: what reaches the audit, the metrics and the alarms can't
    come from the response."""
    import app.refusals

    answer = app.refusals.refusal_response
    monkeypatch.setattr(app.refusals, "refusal_response", lambda exc: problem(answer(exc).status_code))


@pytest.mark.usefixtures("bodiless")
@pytest.mark.parametrize(
    ("case", "reason", "status"),
    [
        ("cancelled-order", "cancelled", 409),
        ("missing-order", "not-found", 404),
        ("wrong-key", "invalid-api-key", 401),
        ("moved-ciphertext", "unreadable", 500),
    ],
)
def test_the_refusals_reason_reaches_the_audit_chain_and_the_metrics(
    make_app: Any, shared_db: Database, world: World, case: str, reason: str, status: int
) -> None:
    app = make_app(shared_db.app_url, global_allowlist="203.0.113.0/24")
    path, key = world.url(2 if case == "cancelled-order" else 0), world.key
    if case == "missing-order":
        path = "/v1/labels/amazon/503-0000000-0000000"
    elif case == "wrong-key":
        key = "lv_0000_wrong"
    elif case == "moved-ciphertext":
        with world.session() as s:  # order 1's envelope under order 0: it must not open there
            first, second = (s.get(Order, o.id) for o in world.orders[:2])
            assert first is not None and second is not None and first.label and second.label
            first.label.envelope = second.label.envelope
            s.commit()
    before = refused_metric(reason)
    resp = app.test_client().get(path, headers=world.auth(key), environ_base={"REMOTE_ADDR": STATION})
    assert resp.status_code == status and "reason" not in resp.get_json()
    assert refused_metric(reason) == before + 1
    (event,) = refusals(world, f"refused:{reason}", STATION)[-1:]
    assert event.action == "label.release"
    if case in ("cancelled-order", "moved-ciphertext"):  # a well-formed order reference is audited with it
        order = world.orders[2 if case == "cancelled-order" else 0]
        assert event.order_ref == f"amazon:{order.external_order_id}"


@pytest.mark.usefixtures("bodiless")
def test_the_refusals_reason_reaches_the_ineligible_orders_alarm(
    make_app: Any, shared_db: Database, world: World
) -> None:
    app = make_app(shared_db.app_url, global_allowlist="203.0.113.0/24", alarm_ineligible_threshold=2)
    client = app.test_client()
    for _ in range(2):
        assert client.get(world.url(2), headers=world.auth(), environ_base={"REMOTE_ADDR": STATION}).status_code == 409
    with world.session() as s:
        raised = s.scalar(
            select(func.count()).where(
                AuditEvent.action == "alarm.ineligible_orders", AuditEvent.tenant_id == world.tenant.id
            )
        )
    assert raised == 1
