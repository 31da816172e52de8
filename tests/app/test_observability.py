"""Logs, request ids, metrics, readiness and alarms, as an operator sees them."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from app.observability import JsonFormatter, LogHandler, accept_request_id, configure_logging
from app.settings import load_settings
from tests.support.servers import Database, MotoKms, free_port, require_redis
from tests.support.world import World, assert_no_pii, build_world
from vault.alarms import AlarmMonitor, AlarmPolicy, AlarmStoreUnavailable, MemoryWindowStore, RedisWindowStore, Window
from vault.keys import KeyManager
from vault.models import AuditEvent, Order, utcnow
from vault.records import OrderStatus

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=4, statuses={2: OrderStatus.CANCELLED, 3: OrderStatus.SHIPPED})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def alarm_events(world: World, action: str) -> list[AuditEvent]:
    with world.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# -- request ids and logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("3f1c9a2e-8b7d-4c1e-9f00-0a1b2c3d4e5f", True),
        ("req.2026-11-01:abc_01", True),
        ("short", False),
        ("has space in it", False),
        ("x" * 129, False),
        ('{"json":"injection"}', False),
        (None, False),
    ],
)
def test_incoming_request_id_is_kept_only_if_well_formed(incoming: str | None, kept: bool) -> None:
    rid = accept_request_id(incoming)
    assert (rid == incoming) is kept
    assert 8 <= len(rid) <= 128


def test_every_response_carries_its_request_id(app: Any, world: World) -> None:
    client = app.test_client()
    r = client.get(world.url(0), headers={**world.auth(), "X-Request-ID": "abcdef12-request"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "abcdef12-request"
    refused = client.get("/readyz", environ_base={"REMOTE_ADDR": "198.51.100.4"}, headers={"X-Request-ID": "bad id"})
    assert refused.status_code == 403 and len(refused.headers["X-Request-ID"]) == 32  # a new one


def test_json_log_line_has_request_id_and_never_the_exception_message() -> None:
    record = logging.LogRecord("app.x", logging.ERROR, __file__, 1, "release failed for order %s", ("503-1",), None)
    try:
        raise ValueError("Quentin Zebulon Testbuyer, 4417 Marigold Testbuyer Lane")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.request_id = "rid-00000001"
    record.status = 500
    record.secret_field = "not whitelisted"
    line = JsonFormatter().format(record)
    doc = json.loads(line)
    assert doc["message"] == "release failed for order 503-1" and doc["request_id"] == "rid-00000001"
    assert doc["status"] == 500 and doc["exc_type"] == "ValueError" and doc["stack"]
    assert "secret_field" not in doc
    assert_no_pii(line)


def test_each_record_is_written_once_whoever_set_up_the_root_logger_first(tmp_path: Any) -> None:
    """gunicorn's config (deploy/gunicorn.conf.py) puts a LogHandler on the root logger before the app loads."""
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    early, stream = io.StringIO(), io.StringIO()
    root.addHandler(LogHandler(early))
    settings = load_settings({"env": "test", "log_format": "json", "instance_path": tmp_path})
    try:
        configure_logging(settings, stream=stream)
        configure_logging(settings, stream=stream)  # a second app in the process
        assert len([h for h in root.handlers if isinstance(h, LogHandler)]) == 1
        logging.getLogger("app.test").warning("one line")
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
        root.setLevel(level)
    assert early.getvalue() == ""
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["one line"]


def test_requests_are_logged_as_json_with_their_request_id(app: Any, world: World, tmp_path: Any) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(load_settings({"env": "test", "log_format": "json", "instance_path": tmp_path}), stream=stream)
    try:
        app.test_client().get(world.url(0), headers={**world.auth(), "X-Request-ID": "trace-12345678"})
    finally:
        for handler in [h for h in root.handlers if isinstance(h, LogHandler)]:
            root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request = next(d for d in lines if d.get("endpoint") == "api.get_label")
    assert request["request_id"] == "trace-12345678" and request["status"] == 200
    assert request["client_ip"] == "127.0.0.1" and request["duration_ms"] >= 0
    assert_no_pii(stream.getvalue(), "the JSON log")


# -- metrics ---------------------------------------------------------------------------------------------


def test_metrics_count_released_and_refused_labels(app: Any, world: World) -> None:
    client = app.test_client()
    released, cancelled = (
        sample("labelvault_labels_released_total", format="json"),
        sample("labelvault_labels_refused_total", reason="cancelled"),
    )
    invalid = sample("labelvault_labels_refused_total", reason="invalid-api-key")
    assert client.get(world.url(0), headers=world.auth()).status_code == 200
    assert client.get(world.url(2), headers=world.auth()).status_code == 409
    assert client.get(world.url(1), headers=world.auth("lv_0000_nope")).status_code == 401
    assert sample("labelvault_labels_released_total", format="json") == released + 1
    assert sample("labelvault_labels_refused_total", reason="cancelled") == cancelled + 1
    assert sample("labelvault_labels_refused_total", reason="invalid-api-key") == invalid + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert 'labelvault_labels_released_total{format="json"}' in text
    assert_no_pii(text, "/metrics")


def test_metrics_show_key_cache_and_kms_calls(app: Any, world: World) -> None:
    client = app.test_client()
    hits = sample("labelvault_key_cache_hits_total")
    for i in (0, 1):
        assert client.get(world.url(i), headers=world.auth()).status_code == 200
    client.get("/metrics")  # brings the counters up to date
    assert sample("labelvault_key_cache_hits_total") + sample("labelvault_key_cache_misses_total") >= hits + 2
    assert "labelvault_kms_calls_total" in client.get("/metrics").get_data(as_text=True)


def test_metrics_show_sync_lag_and_purge_backlog(app: Any, world: World) -> None:
    with world.session() as s:
        s.execute(update(Order).where(Order.id == world.orders[1].id).values(retention_until=utcnow() - timedelta(1)))
        s.commit()
    text = app.test_client().get("/metrics").get_data(as_text=True)
    lag = next(
        line
        for line in text.splitlines()
        if line.startswith(f'labelvault_sync_lag_seconds{{account="{world.account.id}",')
    )
    assert float(lag.split()[-1]) >= 0
    backlog = next(line for line in text.splitlines() if line.startswith("labelvault_purge_backlog_orders "))
    assert float(backlog.split()[-1]) >= 1


def test_metrics_are_behind_the_allowlist(app: Any) -> None:
    client = app.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.50"}).status_code == 403
    assert client.get("/metrics").status_code == 200


def test_metrics_can_be_switched_off(make_app: Any, shared_db: Database) -> None:
    app = make_app(shared_db.app_url, metrics_enabled=False)
    assert app.test_client().get("/metrics").status_code == 404


# -- readiness -------------------------------------------------------------------------------------------


def test_readiness_checks_database_redis_and_keys(make_app: Any, shared_db: Database) -> None:
    app = make_app(shared_db.app_url)
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.json == {"status": "ok", "database": "ok", "redis": "ok", "keys": "ok"}
    down = make_app(shared_db.app_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    r = down.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["redis"] == "ConnectionError" and r.json["database"] == "ok"


@pytest.mark.redis
def test_readiness_with_redis(make_app: Any, shared_db: Database) -> None:
    app = make_app(shared_db.app_url, redis_url=require_redis())
    assert app.test_client().get("/readyz").json["redis"] == "ok"


def test_readiness_fails_when_kms_is_down(make_app: Any, shared_db: Database, moto_kms: MotoKms) -> None:
    kms = MotoKms()
    settings = {
        "key_provider": "aws-kms",
        "kms_key_id": kms.key_id,
        "kms_region": kms.region,
        "kms_endpoint_url": kms.endpoint,
        "readiness_cache_seconds": 0,
    }
    app = make_app(shared_db.app_url, **settings)
    client = app.test_client()
    assert client.get("/readyz").json["keys"] == "ok"
    kms.stop()
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["keys"] == "KeyServiceUnavailable"


# -- alarms ----------------------------------------------------------------------------------------------


def test_unusual_label_rate_raises_one_audited_alarm(make_app: Any, shared_db: Database, keys: KeyManager) -> None:
    world = build_world(shared_db, keys, n_orders=6)
    app = make_app(shared_db.app_url, alarm_rate_min=3, alarm_rate_factor=2.0)
    client = app.test_client()
    before = sample("labelvault_alarms_total", kind="unusual_rate")
    for i in range(5):
        assert client.get(world.url(i), headers=world.auth()).status_code == 200
    events = [e for e in alarm_events(world, "alarm.unusual_rate") if e.tenant_id == world.tenant.id]
    assert len(events) == 1  # raised at the third label, then held back for the repeat period
    event = events[0]
    assert event.actor == "system:alarms" and event.details["subject"] == f"client:{world.client.key_id}"
    assert event.details["count"] == 3 and event.order_ref is None
    assert sample("labelvault_alarms_total", kind="unusual_rate") == before + 1


def test_requests_for_ineligible_orders_raise_an_alarm(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, alarm_ineligible_threshold=3)
    client = app.test_client()
    for i in (2, 3, 2):  # cancelled, shipped, cancelled
        assert client.get(world.url(i), headers=world.auth()).status_code == 409
    events = [e for e in alarm_events(world, "alarm.ineligible_orders") if e.tenant_id == world.tenant.id]
    assert len(events) == 1 and events[0].details["count"] == 3


def test_repeated_refusals_from_one_address_raise_an_alarm(make_app: Any, shared_db: Database) -> None:
    app = make_app(shared_db.app_url, alarm_refusal_threshold=4, global_allowlist="0.0.0.0/0",
                       accept_broad_cidr_risk=True)  # fmt: skip
    client = app.test_client()
    ip = "192.0.2.77"
    with app.app_context():
        from app.services import services

        with services().sessions() as s:
            start = s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0
    for _ in range(6):
        r = client.get("/v1/labels/amazon/503-0000000-0000000", environ_base={"REMOTE_ADDR": ip},
                       headers={"Authorization": "Bearer lv_0_wrong"})  # fmt: skip
        assert r.status_code == 401
    with app.app_context(), services().sessions() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.id > start, AuditEvent.action == "alarm.repeated_refusals")
        ).all()
        mine = [e for e in events if e.ip == ip]
    assert len(mine) == 1 and mine[0].details == {
        "subject": f"ip:{ip}",
        "count": 4,
        "threshold": 4,
        "window_seconds": 600,
    }


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_usual_traffic_raises_no_rate_alarm_but_a_burst_does() -> None:
    clock = _Clock()
    policy = AlarmPolicy(rate_window=300, rate_baseline=3600, rate_factor=3.0, rate_min=50, repeat_seconds=60)
    monitor = AlarmMonitor(MemoryWindowStore(clock), policy, clock=clock)
    # An hour of steady work: 20 labels per 5 minutes.
    for _ in range(12 * 20):
        assert monitor.label_released(tenant_id=1, client="client:a") == []
        clock.now += 15
    # Then 100 labels in a minute: five times the usual 5-minute volume.
    alarms = []
    for _ in range(100):
        alarms.extend(monitor.label_released(tenant_id=1, client="client:a"))
        clock.now += 0.6
    raised = alarms
    assert len(raised) == 1 and raised[0].kind == "unusual_rate" and raised[0].count >= 60


class _CountingStore(MemoryWindowStore):
    """The memory store, counting its writes; ``down`` makes it fail like an unreachable Redis."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__(clock)
        self.writes = 0
        self.down = False

    def hit(self, counts: Any, *, now: float, also: Any = (), amount: int = 1) -> list[int]:
        if self.down:
            raise AlarmStoreUnavailable("down")
        self.writes += 1
        return super().hit(counts, now=now, also=also, amount=amount)


def test_releases_far_below_the_floor_are_written_once_a_second_and_none_is_lost() -> None:
    clock = _Clock()
    store = _CountingStore(clock)
    monitor = AlarmMonitor(store, AlarmPolicy(rate_min=50), clock=clock, flush_seconds=1.0)
    for _ in range(30):  # 30 releases in 0.3 s, two clients
        monitor.label_released(tenant_id=1, client="client:a")
        monitor.label_released(tenant_id=2, client="client:b")
        clock.now += 0.01
    assert store.writes == 1  # the first release flushed; the other 59 are held until the next second
    clock.now += 1
    store.down = True
    with pytest.raises(AlarmStoreUnavailable):
        monitor.label_released(tenant_id=1, client="client:a")  # due: writing both clients fails...
    store.down = False
    clock.now += 1
    monitor.label_released(tenant_id=2, client="client:b")  # ...and the next flush writes all that was held
    recent = Window(AlarmPolicy().rate_window)
    assert store.total("rate:client:a:recent", recent, now=clock.now) == 31
    assert store.total("rate:client:b:recent", recent, now=clock.now) == 31


def test_near_the_floor_every_release_is_written_and_checked() -> None:
    clock = _Clock()
    store = _CountingStore(clock)
    monitor = AlarmMonitor(store, AlarmPolicy(rate_min=10, rate_factor=1.0), clock=clock, flush_seconds=60)
    raised = [monitor.label_released(tenant_id=1, client="client:a") for _ in range(12)]
    # The first release, then each from the 10th (1 known + 9 held reaches the floor), and the raised alarm.
    assert store.writes == 1 + 3 + 1
    assert [len(r) for r in raised].index(1) == 9  # the 10th release raises the alarm, not a second later
    assert raised[9][0].count == 10


def _exercise(store: Any, clock: _Clock) -> None:
    window = Window(100, buckets=10)
    counts = [store.hit([("n", window)], now=clock.now)[0] for _ in range(5)]
    assert counts == [1, 2, 3, 4, 5]
    clock.now += 50
    assert store.hit([("n", window)], now=clock.now) == [6]
    clock.now += 60  # the first five are out of the window now
    assert store.hit([("n", window)], now=clock.now) == [2]
    assert store.once("x", seconds=60) and not store.once("x", seconds=60)
    # Counted under a second window without reading it; read later without counting.
    day = Window(1000, buckets=10)
    assert store.hit([("n", window)], now=clock.now, also=[("d", day)]) == [3]
    assert store.hit([], now=clock.now, also=[("d", day), ("n", window)]) == []
    assert store.total("d", day, now=clock.now) == 2 and store.total("n", window, now=clock.now) == 4
    assert store.total("d", day, now=clock.now + 1000) == 0 and store.total("unknown", day, now=clock.now) == 0


def test_memory_window_store_slides() -> None:
    clock = _Clock()
    _exercise(MemoryWindowStore(clock), clock)


@pytest.mark.redis
def test_redis_window_store_slides_and_is_shared() -> None:
    import uuid

    import redis

    client = redis.Redis.from_url(require_redis())
    prefix = f"lvtest-{uuid.uuid4().hex[:8]}"
    try:
        clock = _Clock()
        _exercise(RedisWindowStore(client, prefix=prefix), clock)
        other = RedisWindowStore(redis.Redis.from_url(require_redis()), prefix=prefix)
        assert other.hit([("n", Window(100, buckets=10))], now=clock.now) == [5]
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
