""" "Sync now" from the dashboard: queued on the task queue when there is one, else run in a thread here.

Either way the job is app/worker.py's ``run_job`` (the same as a scheduled sync): the sync engine's lease
keeps it from running twice at once for one account, and its result lands in the account's ``last_sync``,
which the accounts page shows.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, current_app

from app.services import services
from app.worker import SYNC, run_job

log = logging.getLogger(__name__)


def start_sync(account_id: int) -> None:
    """Start syncing one account in the background; returns at once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    svc = services(app)
    if svc.settings.broker_url or svc.settings.redis_url:
        from app import tasks

        tasks.bound(app)
        tasks.sync.delay(account_id)
        return
    pool: ThreadPoolExecutor = app.extensions["labelvault.dashboard-jobs"]
    pool.submit(_run, app, account_id)


def _run(app: Flask, account_id: int) -> None:
    try:
        with app.app_context():
            run_job(services(app), SYNC, account_id)
    except Exception as exc:  # the account's last_sync says what failed; the log says only the type
        log.error("dashboard sync of account %d failed (%s)", account_id, type(exc).__name__)


def init_app(app: Flask) -> None:
    app.extensions["labelvault.dashboard-jobs"] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dashboard-sync")
