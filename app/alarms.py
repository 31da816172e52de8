"""The alarms of vault/alarms.py wired to the HTTP side: every label response and every refusal feeds them.

After each request (:func:`observe`, an after-request hook ``create_app`` declares): a released label counts
toward its client's rate; a label refusal whose reason code (``g.refusal``, app/refusals.py) means an order
outside the eligible states counts toward the client's ``ineligible_orders`` window; a refused answer (401,
403, 404, 409, 429: a typed refusal or a plain HTTP error such as a scan of unknown paths) counts toward its
address's ``repeated_refusals`` window. A raised alarm becomes a metric
(``labelvault_alarms_total{kind}``), a warning log line and an audit event (``alarm.<kind>``), never
holding PII. Windows live in Redis when ``LABELVAULT_REDIS_URL`` is set, in memory otherwise. If the store
is down the event is not counted (``labelvault_alarm_store_errors_total``); the request is not affected.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from app.observability import ALARM_STORE_ERRORS, ALARMS, LABEL_ENDPOINT
from app.services import services
from app.settings import Settings
from vault.alarms import (
    Alarm,
    AlarmMonitor,
    AlarmPolicy,
    AlarmStoreUnavailable,
    MemoryWindowStore,
    RedisWindowStore,
    WindowStore,
    record_alarm,
)
from vault.release import client_actor

log = logging.getLogger(__name__)

#: Statuses that count as a refusal of the address (503 is the service's fault, not the client's).
REFUSAL_STATUSES = frozenset({401, 403, 404, 409, 429})


def make_store(settings: Settings) -> WindowStore:
    """Redis windows when a Redis URL is set (shared by all processes), process memory otherwise."""
    if not settings.redis_url:
        return MemoryWindowStore()
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return RedisWindowStore(client, prefix=settings.rate_limit_prefix)


def policy_from(settings: Settings) -> AlarmPolicy:
    return AlarmPolicy(
        window=settings.alarm_window,
        rate_window=settings.alarm_rate_window,
        rate_baseline=settings.alarm_rate_baseline,
        rate_factor=settings.alarm_rate_factor,
        rate_min=settings.alarm_rate_min,
        ineligible_threshold=settings.alarm_ineligible_threshold,
        refusal_threshold=settings.alarm_refusal_threshold,
        repeat_seconds=settings.alarm_repeat_seconds,
    )


def monitor(app: Flask | None = None) -> AlarmMonitor:
    """The app's alarm monitor."""
    mon: AlarmMonitor = (app or current_app).extensions["labelvault.alarms"]
    return mon


def raise_alarm(alarm: Alarm) -> None:
    """Count, log and audit a raised alarm (in a transaction of its own)."""
    ALARMS.labels(alarm.kind).inc()
    log.warning(
        "alarm %s: %s, %d in %d s (threshold %g)",
        alarm.kind,
        alarm.subject,
        alarm.count,
        alarm.window_seconds,
        alarm.threshold,
        extra={"kind": alarm.kind, "tenant_id": alarm.tenant_id},
    )
    try:
        with services().sessions() as session:
            record_alarm(session, alarm=alarm)
            session.commit()
    except SQLAlchemyError as exc:
        log.error("could not audit alarm %s (%s)", alarm.kind, type(exc).__name__)


_last_store_error = [0.0]


def _observe(response: Response) -> None:
    mon = monitor()
    status = response.status_code
    client = g.get("api_client")
    alarms: list[Alarm | None] = []
    if request.endpoint == LABEL_ENDPOINT and client is not None:
        refusal = g.get("refusal")
        if status == 200:
            alarms.extend(mon.label_released(tenant_id=client.tenant_id, client=client_actor(client)))
        elif refusal is not None:
            alarms.append(
                mon.ineligible_requested(tenant_id=client.tenant_id, client=client_actor(client), reason=refusal)
            )
    ip = g.get("client_ip")
    if status in REFUSAL_STATUSES and ip:
        alarms.append(mon.request_refused(ip=ip, tenant_id=None if client is None else client.tenant_id))
    for alarm in alarms:
        if alarm is not None:
            raise_alarm(alarm)


def observe(response: Response) -> Response:
    """After each request: feed the alarm windows; raise, count, log and audit what crosses a threshold."""
    try:
        _observe(response)
    except AlarmStoreUnavailable:
        ALARM_STORE_ERRORS.inc()
        now = time.monotonic()
        if now - _last_store_error[0] > 60:
            _last_store_error[0] = now
            log.error("alarm store unreachable: events are not being counted")
    except Exception as exc:  # an alarm must never fail the request it watches
        log.error("alarm check failed (%s)", type(exc).__name__)
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """The app's alarm monitor (``create_app`` puts :func:`observe` among the after-request hooks)."""
    app.extensions["labelvault.alarms"] = AlarmMonitor(make_store(settings), policy_from(settings))
