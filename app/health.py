"""Liveness and readiness endpoints.

``/healthz`` (liveness): the process answers; nothing else is checked, so a database or KMS outage never
gets healthy processes restarted. Local probes need no allowlist entry (app/allowlist.py).

``/readyz`` (readiness): the process can serve labels now: the database answers, Redis answers (when
configured: rate limits and the task queue fail closed without it), and the root key is usable (the local
keyring loads; AWS KMS answers an Encrypt of a probe, reused for ``LABELVAULT_READINESS_CACHE_SECONDS`` so
probes cost few KMS calls). 503 when any is down, with each check's state and the error's type only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from sqlalchemy import text

from app.services import db_session, services
from vault.keyproviders import LocalKeyProvider

bp = Blueprint("health", __name__)

#: Encryption context of the readiness probe (KMS logs it in CloudTrail; it holds no data).
PROBE_CONTEXT = {"labelvault:purpose": "readiness-probe"}


@bp.get("/healthz")
def liveness() -> tuple[Response, int]:
    """The process is up (no dependencies checked)."""
    return jsonify(status="ok"), 200


def _check_database() -> None:
    db_session().execute(text("SELECT 1"))


def _check_redis() -> None:
    settings = services().settings
    url = settings.redis_url or settings.broker_url
    if not url:
        return
    cache: dict[str, Any] = current_app.extensions.setdefault("labelvault.health", {})
    client = cache.get("redis")
    if client is None:
        import redis

        client = cache["redis"] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    client.ping()


_kms_lock = threading.Lock()


def _check_keys() -> None:
    svc = services()
    provider = svc.keys.provider
    if isinstance(provider, LocalKeyProvider):
        provider.current_key_id()
        return
    cache: dict[str, Any] = current_app.extensions.setdefault("labelvault.health", {})
    ttl = svc.settings.readiness_cache_seconds
    with _kms_lock:
        checked = cache.get("kms_ok_at")
        if checked is not None and time.monotonic() - checked < ttl:
            return
        provider.wrap(b"\0", context=PROBE_CONTEXT)
        cache["kms_ok_at"] = time.monotonic()


CHECKS = {"database": _check_database, "redis": _check_redis, "keys": _check_keys}


@bp.get("/readyz")
def readiness() -> tuple[Response, int]:
    """The process can serve: database, Redis (if configured) and the root key all answer."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # readiness reports, it doesn't raise
            results[name] = type(exc).__name__
            if name == "database":
                db_session().rollback()
    ok = all(v == "ok" for v in results.values())
    return jsonify(status="ok" if ok else "unavailable", **results), 200 if ok else 503


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
