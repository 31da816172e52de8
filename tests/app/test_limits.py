"""Rate limits: per IP before authentication, per client after it; Redis shared by workers; fail closed."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.servers import Database, Gunicorn, free_port, require_redis
from tests.support.world import World, assert_matches_openapi, assert_no_pii, build_world
from vault.audit import verify_chain
from vault.keys import KeyManager
from vault.models import AuditEvent, Order

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

LABEL_PATH = "/v1/labels/{marketplace}/{order_id}"


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=2)


def test_client_limit_answers_429_with_retry_after(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, rate_limit_client="3/minute")
    client = app.test_client()
    statuses = [client.get(f"/v1/labels/amazon/missing-{i}", headers=world.auth()).status_code for i in range(3)]
    assert statuses == [404, 404, 404]
    for _ in range(3):
        resp = client.get(world.url(0), headers=world.auth())
        assert resp.status_code == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert_matches_openapi(resp, LABEL_PATH)
    with Session(shared_db.engine) as s:
        limited = s.scalar(
            select(func.count()).where(
                AuditEvent.chain == f"tenant:{world.tenant.id}", AuditEvent.outcome == "refused:rate-limited"
            )
        )
        assert limited == 1  # audited once, not once per refused request
        assert s.get(Order, world.orders[0].id).labels_issued == 0  # type: ignore[union-attr]


def test_limit_is_per_client(make_app: Any, shared_db: Database, world: World, keys: KeyManager) -> None:
    app = make_app(shared_db.app_url, rate_limit_client="2/minute")
    _, other_key = world.add_client(keys)
    client = app.test_client()
    for _ in range(2):
        assert client.get(world.url(0), headers=world.auth()).status_code == 200
    assert client.get(world.url(0), headers=world.auth()).status_code == 429
    assert client.get(world.url(1), headers=world.auth(other_key)).status_code == 200


def test_ip_limit_comes_before_authentication(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, rate_limit_ip="2/minute")
    client = app.test_client()
    assert [client.get(world.url(0)).status_code for _ in range(2)] == [401, 401]
    third = client.get(world.url(0), headers=world.auth())
    assert third.status_code == 429  # even with a good key: the IP limit runs first
    assert 1 <= int(third.headers["Retry-After"]) <= 60  # until the address's minute window frees a request
    assert client.get("/healthz").status_code == 200  # liveness is never rate limited


def test_unreachable_redis_refuses_requests(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    resp = app.test_client().get(world.url(0), headers=world.auth())
    assert resp.status_code == 503 and resp.get_json()["type"].endswith("/rate-limit-unavailable")
    assert resp.headers["Retry-After"]
    assert_matches_openapi(resp, LABEL_PATH)
    # Probes and the metrics scrape are not rate limited, so they still answer when they are most needed.
    probes = app.test_client()
    assert [probes.get(path).status_code for path in ("/healthz", "/metrics")] == [200, 200]
    with Session(shared_db.engine) as s:
        assert s.get(Order, world.orders[0].id).labels_issued == 0  # type: ignore[union-attr]


@pytest.mark.redis
def test_redis_count_is_shared_between_apps(make_app: Any, shared_db: Database, world: World) -> None:
    settings = {
        "redis_url": require_redis(),
        "rate_limit_client": "3/minute",
        "rate_limit_prefix": f"t-{uuid.uuid4().hex}",
    }
    one, two = (make_app(shared_db.app_url, **settings).test_client() for _ in range(2))
    statuses = [c.get(world.url(0), headers=world.auth()).status_code for c in (one, two, one, two)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.redis
def test_counts_live_under_the_store_keys_of_earlier_versions(make_app: Any, shared_db: Database, world: World) -> None:
    import redis

    prefix = f"t-{uuid.uuid4().hex}"
    app = make_app(shared_db.app_url, redis_url=require_redis(), rate_limit_prefix=prefix)
    assert app.test_client().get(world.url(0), headers=world.auth()).status_code == 200
    store = redis.Redis.from_url(require_redis())
    keys = {k.decode() for k in store.keys(f"LIMITS:LIMITER/{prefix}/*")}
    # The keys flask-limiter gave these limits: workers of the previous release keep counting with these
    # while a rolling deploy replaces them, so one count holds throughout.
    assert keys == {
        f"LIMITS:LIMITER/{prefix}/ip:127.0.0.1/global/600/1/minute",
        f"LIMITS:LIMITER/{prefix}/client:{world.client.id}/api-client/1200/1/minute",
    }
    assert {int(store.get(k) or 0) for k in keys} == {1}
    store.delete(*keys)


@pytest.mark.slow
@pytest.mark.redis
def test_limit_holds_exactly_across_four_gunicorn_workers(
    fresh_db: Database, keys: KeyManager, keyring_path: Path, tmp_path: Path
) -> None:
    import httpx

    redis_url = require_redis()
    world = build_world(fresh_db, keys, n_orders=10)
    limit, attempts = 25, 80
    env = {
        "LABELVAULT_ENV": "test",
        "LABELVAULT_DATABASE_URL": fresh_db.app_url,
        "LABELVAULT_INSTANCE_PATH": str(keyring_path.parent),
        "LABELVAULT_REDIS_URL": redis_url,
        "LABELVAULT_RATE_LIMIT_PREFIX": f"t-{uuid.uuid4().hex}",
        "LABELVAULT_RATE_LIMIT_CLIENT": f"{limit}/hour",
        "LABELVAULT_LABEL_REISSUE_CAP": "1000",
    }
    log = tmp_path / "gunicorn.log"
    with Gunicorn(env, workers=4, log_path=log) as server, httpx.Client(base_url=server.url, timeout=30) as http:

        def fetch(i: int) -> int:
            return http.get(world.url(i % 10), headers=world.auth()).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(fetch, range(attempts)))
    assert statuses.count(200) == limit
    assert statuses.count(429) == attempts - limit
    with Session(fresh_db.engine) as s:
        assert sum(s.scalars(select(Order.labels_issued))) == limit
        chain = f"tenant:{world.tenant.id}"
        released = s.scalar(select(func.count()).where(AuditEvent.chain == chain, AuditEvent.outcome == "released"))
        assert released == limit
        assert verify_chain(s, chain=chain).ok
    assert_no_pii(log.read_text(errors="replace"), "gunicorn's log")
