"""Background work: what is due, queueing each job once, the embedded scheduler, the task queue's settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import services
from app.worker import (
    CONFIRM,
    FAILED_SYNC_RETRY,
    KEY_EPOCH,
    PURGE,
    SYNC,
    ConnectorCache,
    EmbeddedScheduler,
    MemoryGate,
    RedisGate,
    connector_key,
    dispatch_due,
    due_accounts,
    run_job,
    run_sync,
    sync_batches,
    sync_claim,
)
from connectors.amazon import AmazonConnector, LwaCredentials
from connectors.fake_amazon import FakeAmazon
from connectors.registry import connector_for_account
from tests.support.amazon import add_amazon_account
from tests.support.servers import Database, require_redis
from vault.keys import KeyManager
from vault.marketplace_accounts import reseal_credentials
from vault.models import MarketplaceAccount, Order, utcnow
from vault.tenants import create_tenant


@pytest.fixture
def fake() -> Iterator[FakeAmazon]:
    with FakeAmazon(speedup=5000, seed=5) as marketplace:
        yield marketplace


@pytest.fixture
def world(fresh_db: Database, make_app: Any, fake: FakeAmazon) -> tuple[Any, int]:
    """An app on a database of its own, with one tenant and one Amazon account on the fake."""
    app = make_app(fresh_db.app_url, sync_speedup=fake.speedup, marketplace_endpoint_overrides=fake.base_url)
    keys: KeyManager = services(app).keys
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=keys, slug=f"w-{uuid.uuid4().hex[:6]}", name="Worker Seller", actor="test")
        account = add_amazon_account(s, keys, tenant, fake)
    return app, account.id


def _set_last_sync(app: Any, account_id: int, *, ago: timedelta, ok: bool, interval: int = 900) -> None:
    with services(app).sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        account.sync_interval_seconds = interval
        account.last_sync = {"ok": ok, "finished_at": (utcnow() - ago).isoformat()}
        s.commit()


def test_accounts_are_due_at_their_own_interval(world: tuple[Any, int]) -> None:
    app, account_id = world
    svc = services(app)
    assert due_accounts(svc) == [account_id]  # never synced
    _set_last_sync(app, account_id, ago=timedelta(minutes=10), ok=True, interval=900)
    assert due_accounts(svc) == []
    _set_last_sync(app, account_id, ago=timedelta(minutes=16), ok=True, interval=900)
    assert due_accounts(svc) == [account_id]
    # A failed sync is tried again sooner than a long interval.
    _set_last_sync(app, account_id, ago=FAILED_SYNC_RETRY + timedelta(seconds=1), ok=False, interval=86_400)
    assert due_accounts(svc) == [account_id]
    with svc.sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        account.removed_at = utcnow()
        s.commit()
    assert due_accounts(svc) == []


def test_each_due_job_is_queued_once(world: tuple[Any, int]) -> None:
    app, account_id = world
    svc = services(app)
    gate = MemoryGate()
    queued: list[tuple[str, int | None]] = []

    def tick() -> Any:
        return dispatch_due(svc, gate=gate, enqueue=lambda k, a: queued.append((k, a)), claim_seconds=600)

    first = tick()
    assert first.syncs == [account_id] and first.purge and first.key_epoch and first.confirm
    assert queued == [(SYNC, account_id), (PURGE, None), (KEY_EPOCH, None), (CONFIRM, None)]
    second = tick()  # still due, but queued already: nothing twice
    assert second.syncs == [] and not second.purge and not second.key_epoch and not second.confirm
    gate.release(sync_claim(account_id))  # the task ended (e.g. failed) and the account is still due
    assert tick().syncs == [account_id]


def test_a_failed_enqueue_frees_the_claim(world: tuple[Any, int]) -> None:
    app, account_id = world
    gate = MemoryGate()

    def broken(kind: str, account: int | None) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        dispatch_due(services(app), gate=gate, enqueue=broken, claim_seconds=600)
    assert gate.claim(sync_claim(account_id), seconds=1)


def test_a_crowded_tick_is_split_into_batches_that_keep_every_thread_busy() -> None:
    ids = list(range(1, 1001))
    assert sync_batches(ids[:64], spread=64, size=16) == [[i] for i in ids[:64]]  # up to spread: one each
    batches = sync_batches(ids[:65], spread=64, size=16)
    assert [len(b) for b in batches] == [2] * 32 + [1] and [i for b in batches for i in b] == ids[:65]
    batches = sync_batches(ids, spread=64, size=8)  # 1,000 due: capped at 8 per task, 125 tasks
    assert {len(b) for b in batches} == {8} and len(batches) == 125 and [i for b in batches for i in b] == ids
    assert sync_batches([], spread=64, size=16) == []


def _more_accounts(app: Any, fake: FakeAmazon, count: int) -> list[int]:
    with services(app).sessions() as s:
        tenant = create_tenant(
            s, keys=services(app).keys, slug=f"b-{uuid.uuid4().hex[:6]}", name="Batch Seller", actor="test"
        )
        keys = services(app).keys
        return [add_amazon_account(s, keys, tenant, fake, name=f"Amazon {i}").id for i in range(count)]


def test_many_due_syncs_are_queued_in_batches_each_account_once(
    world: tuple[Any, int], fake: FakeAmazon, fresh_db: Database, make_app: Any
) -> None:
    app, first = world
    ids = [first, *_more_accounts(app, fake, 6)]
    svc = services(make_app(fresh_db.app_url, sync_batch_spread=3, sync_batch_size=2))
    gate = MemoryGate()
    singles: list[int | None] = []
    batches: list[list[int]] = []

    def tick() -> Any:
        return dispatch_due(
            svc,
            gate=gate,
            enqueue=lambda k, a: singles.append(a) if k == SYNC else None,
            enqueue_syncs=batches.append,
            claim_seconds=600,
        )

    sent = tick()
    assert sorted(sent.syncs) == sorted(ids)
    # 7 due over a spread of 3: 3 per task wanted, capped at 2; the odd one out goes as a single sync.
    assert [len(b) for b in batches] == [2, 2, 2] and len(singles) == 1
    assert sorted([i for b in batches for i in b] + [a for a in singles if a is not None]) == sorted(ids)
    assert tick().syncs == []  # all still claimed: nothing twice
    gate.release(sync_claim(ids[3]))
    assert tick().syncs == [ids[3]] and singles[-1] == ids[3]


def test_a_failed_batch_enqueue_frees_the_claims_of_every_batch_not_sent(
    world: tuple[Any, int], fake: FakeAmazon, fresh_db: Database, make_app: Any
) -> None:
    app, first = world
    ids = [first, *_more_accounts(app, fake, 5)]
    svc = services(make_app(fresh_db.app_url, sync_batch_spread=2, sync_batch_size=3))
    gate = MemoryGate()
    sent: list[list[int]] = []

    def flaky(batch: list[int]) -> None:
        if sent:
            raise ConnectionError("broker down")
        sent.append(batch)

    with pytest.raises(ConnectionError):
        dispatch_due(svc, gate=gate, enqueue=lambda k, a: None, enqueue_syncs=flaky, claim_seconds=600)
    assert len(sent) == 1 and len(sent[0]) == 3
    for account_id in ids:  # the sent batch stays claimed (its task will run); the other is free again
        assert gate.claim(sync_claim(account_id), seconds=1) == (account_id not in sent[0])


def test_a_batch_task_syncs_each_account_and_one_failure_does_not_hold_up_the_rest(
    world: tuple[Any, int], fake: FakeAmazon, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import tasks

    app, first = world
    ids = [first, *_more_accounts(app, fake, 2)]
    gate = MemoryGate()
    for account_id in ids:
        assert gate.claim(sync_claim(account_id), seconds=600)
    real = tasks.run_job

    def run_job_failing_the_first(svc: Any, kind: str, account_id: int | None, **kw: Any) -> Any:
        if account_id == ids[0]:
            try:
                raise RuntimeError("a bug in one account's sync")
            finally:
                gate.release(sync_claim(account_id))  # as run_job does, whatever the outcome
        return real(svc, kind, account_id, **kw)

    monkeypatch.setattr(tasks, "gate", lambda: gate)
    monkeypatch.setattr(tasks, "run_job", run_job_failing_the_first)
    monkeypatch.setattr(tasks, "_flask_app", app)
    tasks.sync_batch.run(ids)
    with services(app).sessions() as s:
        synced = {
            a.id: bool(a.last_sync and a.last_sync.get("ok"))
            for a in s.scalars(select(MarketplaceAccount).where(MarketplaceAccount.id.in_(ids)))
        }
    assert synced == {ids[0]: False, ids[1]: True, ids[2]: True}
    for account_id in ids:  # every claim released: each account is queued again when due
        assert gate.claim(sync_claim(account_id), seconds=1)


def test_embedded_scheduler_syncs_due_accounts(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    fake.generate_orders(120)
    scheduler = EmbeddedScheduler(services(app), tick=0.05)
    done = scheduler.run_once()
    assert done.syncs == [account_id] and done.purge and done.key_epoch
    with services(app).sessions() as s:
        stored = set(s.scalars(select(Order.external_order_id).where(Order.account_id == account_id)))
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None and account.last_sync is not None and account.last_sync["ok"]
    assert stored == set(fake.orders())
    again = scheduler.run_once()  # nothing due any more
    assert again.syncs == [] and not again.purge


def test_embedded_scheduler_thread_starts_and_stops(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    fake.generate_orders(30)
    scheduler = EmbeddedScheduler(services(app), tick=0.05).start()
    try:
        import time

        deadline = time.monotonic() + 30
        while scheduler.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop(timeout=30)
    assert scheduler.runs >= 2
    with services(app).sessions() as s:
        assert s.scalar(select(func.count()).where(Order.account_id == account_id)) == 30


def test_a_sync_job_releases_its_claim_even_when_it_fails(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    gate = MemoryGate()
    assert gate.claim(sync_claim(account_id), seconds=600)
    fake.stop()  # the marketplace is unreachable: the sync fails
    assert run_job(services(app), SYNC, account_id, gate=gate) is None
    assert gate.claim(sync_claim(account_id), seconds=600)
    with services(app).sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None and account.last_sync is not None and account.last_sync["ok"] is False


def test_worker_cli_lists_due_accounts_and_runs_a_tick(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    fake.generate_orders(10)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["worker", "due"])
    assert result.exit_code == 0 and result.output.strip() == f"1 accounts due: {account_id}"
    result = runner.invoke(args=["worker", "tick"])
    assert result.exit_code == 0, result.output
    assert "synced 1 accounts" in result.output
    assert runner.invoke(args=["worker", "due"]).output.strip() == "0 accounts due"


@pytest.mark.redis
def test_redis_claims_are_shared() -> None:
    import redis

    prefix = f"lvtest-{uuid.uuid4().hex[:8]}"
    one = RedisGate(redis.Redis.from_url(require_redis()), prefix=prefix)
    two = RedisGate(redis.Redis.from_url(require_redis()), prefix=prefix)
    try:
        assert one.claim("sync:1", seconds=60)
        assert not two.claim("sync:1", seconds=60)
        one.release("sync:1")
        assert two.claim("sync:1", seconds=60)
    finally:
        two.release("sync:1")
        one.client.close()
        two.client.close()


def test_redis_claims_many_in_one_round_trip() -> None:
    import redis

    prefix = f"lvtest-{uuid.uuid4().hex[:8]}"
    gate = RedisGate(redis.Redis.from_url(require_redis()), prefix=prefix)
    try:
        assert gate.claim("sync:2", seconds=60)
        assert gate.claim_many(["sync:1", "sync:2", "sync:3"], seconds=60) == [True, False, True]
        assert gate.claim_many(["sync:1", "sync:3"], seconds=60) == [False, False]
        ttl = gate.client.ttl(gate.prefix + "sync:1")
        assert 0 < ttl <= 60
    finally:
        for n in ("sync:1", "sync:2", "sync:3"):
            gate.release(n)
        gate.client.close()


def test_task_queue_settings(make_app: Any, shared_db: Database) -> None:
    from app import tasks

    app = make_app(shared_db.app_url, redis_url="redis://127.0.0.1:6399/3", task_visibility_timeout=120)
    try:
        celery = tasks.bind(app)
        conf = celery.conf
        assert conf.broker_url == "redis://127.0.0.1:6399/3"
        assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
        assert conf.task_ignore_result  # nothing a task returns is kept in Redis
        assert conf.broker_transport_options["visibility_timeout"] == 120
        assert conf.beat_schedule["dispatch-due-jobs"]["task"] == "labelvault.dispatch"
        assert {
            "labelvault.sync", "labelvault.sync_batch", "labelvault.purge", "labelvault.key_epoch",
            "labelvault.confirm", "labelvault.dispatch",
        } <= set(celery.tasks)  # fmt: skip
        with pytest.raises(RuntimeError, match="embedded"):
            tasks.bind(make_app(shared_db.app_url))
    finally:
        tasks._flask_app = None


# -- connectors kept between syncs ---------------------------------------------------------------------------


def _stored_account(app: Any, account_id: int) -> MarketplaceAccount:
    with services(app).sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        s.expunge(account)
        return account


def _new_connector(app: Any, account_id: int) -> AmazonConnector:
    svc = services(app)
    with svc.sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        built = connector_for_account(
            s,
            keys=svc.keys,
            account=account,
            speedup=svc.settings.sync_speedup,
            endpoint_overrides=svc.settings.endpoint_overrides,
        )
    assert isinstance(built, AmazonConnector)
    return built


def test_a_kept_connector_reuses_its_access_token_across_syncs(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    fake.generate_orders(5)
    cache = ConnectorCache()
    for _ in range(3):
        assert run_sync(services(app), account_id, connectors=cache) is not None
    assert fake.calls["lwaToken"] == 1 and fake.calls["searchOrders"] == 3
    assert (cache.built, cache.reused, len(cache)) == (1, 2, 1)
    # Without a cache every sync builds a connector and exchanges its refresh token again.
    for _ in range(2):
        assert run_sync(services(app), account_id) is not None
    assert fake.calls["lwaToken"] == 3


def test_a_resealed_or_moved_account_gets_a_new_connector(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    svc = services(app)
    cache = ConnectorCache()
    assert run_sync(svc, account_id, connectors=cache) is not None
    before = connector_key(_stored_account(app, account_id), svc)
    with svc.sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        seller = fake.seller()
        secrets = LwaCredentials(seller.client_id, seller.client_secret, seller.refresh_token).as_secrets()
        reseal_credentials(s, keys=svc.keys, account=account, secrets=secrets)  # same secrets, new envelope
        s.commit()
    resealed = connector_key(_stored_account(app, account_id), svc)
    assert resealed != before
    # The kept connector was built from the old envelope: the next sync drops it and builds a new one.
    assert run_sync(svc, account_id, connectors=cache) is not None
    assert (cache.built, cache.reused, len(cache), fake.calls["lwaToken"]) == (2, 0, 1, 2)
    with svc.sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        account.api_version = "v0"  # another API version: another connector
        s.commit()
    assert connector_key(_stored_account(app, account_id), svc) != resealed


def test_a_failed_sync_drops_its_connector_and_a_removed_account_is_forgotten(
    world: tuple[Any, int], fake: FakeAmazon
) -> None:
    app, account_id = world
    svc = services(app)
    cache = ConnectorCache()
    assert run_sync(svc, account_id, connectors=cache) is not None and len(cache) == 1
    fake.inject(status=403, operation="searchOrders")  # refused: the connector may hold a bad token now
    assert run_job(svc, SYNC, account_id, connectors=cache) is None
    assert len(cache) == 0
    assert run_sync(svc, account_id, connectors=cache) is not None and len(cache) == 1
    assert fake.calls["lwaToken"] == 2  # built afresh after the failure
    with svc.sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        account.removed_at = utcnow()
        s.commit()
    assert run_sync(svc, account_id, connectors=cache) is None and len(cache) == 0


def test_kept_connectors_idle_out_and_the_cache_is_bounded(world: tuple[Any, int]) -> None:
    app, account_id = world
    now = [1000.0]
    cache = ConnectorCache(max_idle=60, max_size=2, clock=lambda: now[0])
    first, second, third = (_new_connector(app, account_id) for _ in range(3))
    cache.give_back(1, "k1", first)
    now[0] += 30
    cache.give_back(2, "k2", second)
    assert cache.take(1, "k1") is first  # lent out: not in the cache until given back
    assert cache.take(1, "k1") is None
    cache.give_back(1, "k1", first)
    cache.give_back(3, "k3", third)  # over max_size: the longest idle (account 2) goes
    assert len(cache) == 2 and cache.take(2, "k2") is None
    now[0] += 61  # both idled out
    assert cache.take(1, "k1") is None and len(cache) == 0
    with pytest.raises(ValueError, match="max_idle"):
        ConnectorCache(max_idle=0)


def test_the_embedded_scheduler_keeps_connectors_until_it_stops(world: tuple[Any, int], fake: FakeAmazon) -> None:
    app, account_id = world
    scheduler = EmbeddedScheduler(services(app), tick=0.05)
    assert scheduler.run_once().syncs == [account_id]
    assert len(scheduler.connectors) == 1
    scheduler.start()
    scheduler.stop(timeout=30)
    assert len(scheduler.connectors) == 0


def test_a_thread_pool_worker_needs_a_database_pool_as_large(make_app: Any, shared_db: Database) -> None:
    app = make_app(shared_db.app_url, redis_url="redis://127.0.0.1:6399/3", database_pool_size=8)
    result = app.test_cli_runner().invoke(args=["worker", "run", "--pool", "threads", "--concurrency", "64"])
    assert result.exit_code == 2
    assert "LABELVAULT_DATABASE_POOL_SIZE (now 8) plus LABELVAULT_DATABASE_MAX_OVERFLOW (now 10)" in result.output
    if shared_db.backend == "postgresql":
        assert services(app).engine.pool.size() == 8  # type: ignore[attr-defined]
