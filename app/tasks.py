"""The task queue: Celery with Redis as broker (``LABELVAULT_BROKER_URL``, default ``LABELVAULT_REDIS_URL``).

Why Celery rather than RQ: it has what this work needs built in and proven — late acknowledgement with
a Redis visibility timeout (a task whose worker was killed is delivered again to another worker), rejection
on a lost worker process, and a scheduler (beat) — where RQ would need extra packages and its own
scheduler. The jobs themselves are in app/worker.py, identical for the embedded scheduler.

Processes (deploy/compose.yaml, deploy/systemd/):

- ``celery -A app.tasks worker`` (or ``flask worker run``): runs tasks. ``acks_late``: a task's message is
  acknowledged only when the task ends, so a worker killed mid-task (SIGKILL, OOM, lost host) leaves it
  unacknowledged and Redis hands it to another worker after ``LABELVAULT_TASK_VISIBILITY_TIMEOUT``
  seconds; a killed pool process is requeued at once (``task_reject_on_worker_lost``). The sync engine's
  lease makes the second run resume from the last committed page (a dead holder's lease is taken over).
- ``celery -A app.tasks beat`` (or ``flask worker beat``): every ``LABELVAULT_WORKER_TICK_SECONDS`` queues
  :func:`dispatch`, which queues each due job once (syncs, purge, key epoch, and every
  ``LABELVAULT_CONFIRM_INTERVAL_SECONDS`` the shipment confirmations) (app/worker.py's claims, in Redis). Two beats by
  mistake queue nothing twice.

Results are not stored (``task_ignore_result``): nothing a task returns goes to Redis, so no data does.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask

from app.services import Services, services
from app.worker import CONFIRM, KEY_EPOCH, PURGE, SYNC, ConnectorCache, RedisGate, dispatch_due, run_job

log = logging.getLogger(__name__)

QUEUE = "labelvault"

celery_app = Celery("labelvault", set_as_current=False)
celery_app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    timezone="UTC",
    enable_utc=True,
)

_app_lock = threading.Lock()
_bound_pid = os.getpid()  # the process whose database connections the bound app's engine holds
_flask_app: Flask | None = None
#: This process's connectors, kept between an account's syncs (app/worker.py's ConnectorCache); every
#: thread of a thread-pool worker shares it.
connectors = ConnectorCache()


def _apply_settings(celery: Celery, app: Flask) -> None:
    settings = services(app).settings
    broker = settings.broker_url or settings.redis_url
    if not broker:
        raise RuntimeError(
            "the task queue needs Redis: set LABELVAULT_REDIS_URL (or LABELVAULT_BROKER_URL), "
            "or run the embedded scheduler (flask worker run --embedded)"
        )
    celery.conf.update(
        broker_url=broker,
        broker_transport_options={
            "visibility_timeout": settings.task_visibility_timeout,
            # Look for the unacknowledged tasks of dead workers every 10 s (default: every 100 s).
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
            "retry_on_timeout": True,
        },
        beat_schedule={
            "dispatch-due-jobs": {"task": "labelvault.dispatch", "schedule": settings.worker_tick_seconds},
        },
    )


@celery_app.on_configure.connect  # type: ignore[untyped-decorator]
def _configure(sender: Celery, **_: Any) -> None:
    # ``celery -A app.tasks:celery_app worker``: the settings come from the environment, like the web app's.
    _apply_settings(sender, flask_app())


def bind(app: Flask) -> Celery:
    """Configure the Celery app from ``app``'s settings; tasks of this process use ``app``'s services."""
    global _flask_app, _bound_pid
    _flask_app, _bound_pid = app, os.getpid()
    _apply_settings(celery_app, app)
    return celery_app


def bound(app: Flask) -> Celery:
    """The Celery app, configured from ``app`` unless it already is (e.g. the web app queueing a job).

    Without this, the first ``delay()`` in a web process would configure Celery from a second app built
    from the environment, not from the app serving the request.
    """
    if _flask_app is not app:
        bind(app)
    return celery_app


def flask_app() -> Flask:
    """The Flask app whose services the tasks use (built from the environment on first use)."""
    global _flask_app, _bound_pid
    if _flask_app is None:
        with _app_lock:
            if _flask_app is None:
                from app import create_app

                _flask_app, _bound_pid = create_app(), os.getpid()
    return _flask_app


def _services() -> Services:
    return services(flask_app())


def gate() -> RedisGate:
    """The claims of app/worker.py in the broker's Redis."""
    cache: dict[str, Any] = flask_app().extensions.setdefault("labelvault.tasks", {})
    if "gate" not in cache:
        import redis

        s = _services().settings
        client = redis.Redis.from_url(s.broker_url or s.redis_url, socket_connect_timeout=5, socket_timeout=5)
        cache["gate"] = RedisGate(client, prefix=s.rate_limit_prefix)
    found: RedisGate = cache["gate"]
    return found


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _after_fork(**_: Any) -> None:
    # A pool process must not share the parent's database connections (SQLAlchemy's fork rule). The solo
    # and thread pools send this signal too, in the process that owns them: nothing to drop there.
    if _flask_app is not None and os.getpid() != _bound_pid:
        services(_flask_app).engine.dispose(close=False)
    if os.getpid() != _bound_pid:
        connectors.clear(close=False)  # a parent's connectors (if it ran any syncs) are not this process's


def _claim_seconds() -> float:
    s = _services().settings
    # Held while queued and running; a task lost with its message frees the account after this long.
    return s.task_visibility_timeout * 2 + 600


@celery_app.task(name="labelvault.dispatch", acks_late=False)  # type: ignore[untyped-decorator]
def dispatch() -> dict[str, Any]:
    """Queue every due job once (the beat calls this every tick)."""
    with flask_app().app_context():
        sent = dispatch_due(
            _services(), gate=gate(), enqueue=_enqueue, claim_seconds=_claim_seconds(), enqueue_syncs=_enqueue_syncs
        )
    return {"syncs": sent.syncs, "purge": sent.purge, "key_epoch": sent.key_epoch, "confirm": sent.confirm}


def _enqueue(kind: str, account_id: int | None) -> None:
    if kind == SYNC:
        sync.delay(account_id)
    elif kind == PURGE:
        purge.delay()
    elif kind == KEY_EPOCH:
        key_epoch.delay()
    elif kind == CONFIRM:
        confirm.delay()


def _enqueue_syncs(account_ids: list[int]) -> None:
    sync_batch.delay(account_ids)


@celery_app.task(name="labelvault.sync", bind=True)  # type: ignore[untyped-decorator]
def sync(self: Task[Any, Any], account_id: int) -> None:
    """Sync one account (idempotent; resumes from the last committed page after a crash)."""
    with flask_app().app_context():
        run_job(_services(), SYNC, account_id, gate=gate(), connectors=connectors)


@celery_app.task(name="labelvault.sync_batch")  # type: ignore[untyped-decorator]
def sync_batch(account_ids: list[int]) -> None:
    """Sync several accounts one after another (a tick that found many due; app/worker.py's sync_batches).

    Each account's claim is released as its sync ends, and one account's failure does not hold up the
    others. A worker killed mid-batch has the task delivered again (late acknowledgement): the accounts synced
    already are synced again, quickly (nothing new), or skipped if another run holds them.
    """
    with flask_app().app_context():
        for account_id in account_ids:
            try:
                run_job(_services(), SYNC, int(account_id), gate=gate(), connectors=connectors)
            except Exception as exc:  # logged by type only, like every job's failure; the batch goes on
                log.error("sync of account %s failed (%s)", account_id, type(exc).__name__, extra={"task": SYNC})


@celery_app.task(name="labelvault.purge")  # type: ignore[untyped-decorator]
def purge() -> None:
    """Erase the orders past their retention deadline (idempotent; concurrent runs take disjoint batches)."""
    with flask_app().app_context():
        run_job(_services(), PURGE, None)


@celery_app.task(name="labelvault.key_epoch")  # type: ignore[untyped-decorator]
def key_epoch() -> None:
    """Run the key-epoch job (idempotent; one run at a time by an advisory lock)."""
    with flask_app().app_context():
        run_job(_services(), KEY_EPOCH, None)


@celery_app.task(name="labelvault.confirm")  # type: ignore[untyped-decorator]
def confirm() -> None:
    """Tell marketplaces the orders shipped whose labels were bought (idempotent; each row leased by one run)."""
    with flask_app().app_context():
        run_job(_services(), CONFIRM, None)
