""" "Sync now" on a dashboard that has a task queue: the job goes to Redis, and a Celery worker runs it."""

from __future__ import annotations

import fcntl
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from app import tasks
from connectors.fake_amazon import FakeAmazon
from tests.support.amazon import add_amazon_account
from tests.support.dashboard import Clock, Seller, post
from tests.support.servers import Database, require_redis
from vault.models import MarketplaceAccount, Order, Tenant
from vault.tenants import create_tenant

pytestmark = pytest.mark.redis


@pytest.fixture
def fake() -> Any:
    marketplace = FakeAmazon(speedup=500, seed=5).start()
    marketplace.generate_orders(40)
    yield marketplace
    marketplace.stop()


@pytest.fixture
def queue_turn() -> Iterator[None]:
    """The two parametrised runs share one Redis queue (Celery keeps its first broker connection for the
    process, so a second database would not be used), and two xdist workers may run them at once: they take
    turns, so neither empties or takes the other's job."""
    with open(Path(tempfile.gettempdir()) / "labelvault-celery-queue-test.lock", "w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        yield


@pytest.mark.usefixtures("queue_turn")
def test_sync_now_is_queued_and_a_celery_worker_runs_it(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeAmazon, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.contrib.testing.worker import start_worker

    monkeypatch.setattr(tasks, "_flask_app", None)  # restored afterwards: the queue is bound to this test's app

    url = require_redis()
    broker = url.rsplit("/", 1)[0] + "/9"  # a database of its own: no other test's worker takes the job
    queue = redis_lib.Redis.from_url(broker)
    queue.delete(tasks.QUEUE)
    app = make_app(
        shared_db.app_url, redis_url=url, broker_url=broker, rate_limit_prefix=f"t-{uuid.uuid4().hex[:8]}",
        sync_speedup=500.0, marketplace_endpoint_overrides=fake.base_url,
    )  # fmt: skip
    svc = app.extensions["labelvault"]
    with svc.sessions() as s:
        tenant = create_tenant(
            s, keys=svc.keys, slug=f"queue-{uuid.uuid4().hex[:8]}", name="Queue Seller", actor="test"
        )
        s.commit()
        s.expunge(tenant)
    seller = Seller(app, tenant, clock)
    with svc.sessions() as s:
        account_id = add_amazon_account(s, svc.keys, s.get(Tenant, tenant.id), fake).id  # type: ignore[arg-type]
    user, auth = seller.user()
    assert auth is not None
    client = app.test_client()
    seller.login(client, user, auth)

    try:
        resp = post(client, f"/accounts/{account_id}/sync")
        assert resp.status_code == 302
        assert queue.llen(tasks.QUEUE) == 1  # queued for a worker, not run in the web process
        with svc.sessions() as s:
            assert s.scalar(select(func.count()).where(Order.account_id == account_id)) == 0

        with start_worker(tasks.celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            deadline = time.monotonic() + 60
            while True:
                with svc.sessions() as s:
                    account = s.get(MarketplaceAccount, account_id)
                    assert account is not None
                    if account.last_sync and account.last_sync.get("ok"):
                        break
                assert time.monotonic() < deadline, "the worker did not sync the account"
                time.sleep(0.2)
        with svc.sessions() as s:
            stored = set(s.scalars(select(Order.external_order_id).where(Order.account_id == account_id)))
        assert stored == set(fake.orders())
        assert "ok" in client.get("/accounts").get_data(as_text=True).lower()
    finally:
        queue.delete(tasks.QUEUE)
        queue.close()
