"""Observability: structured JSON logs with request ids, Prometheus metrics at ``/metrics``, and the label
pipeline's outcome as metrics.

- Logs: one JSON object per line (``LABELVAULT_LOG_FORMAT=json``, the default in production) with the
  request id of the request being served. Messages are written not to contain PII (the modules that log
  promise it); the formatter adds only whitelisted fields, and of an exception only its type and the
  frames' file, line and function — never its message, which may quote the data it was handling.
- Request ids: an incoming ``X-Request-ID`` is kept only if well-formed (8-128 characters of
  ``[A-Za-z0-9._:-]``, e.g. a UUID from the proxy); otherwise a new one is made. The response carries it.
- Metrics: counters of released and refused labels (by format / refusal reason), HTTP requests, alarms,
  KMS calls and key-cache hits and misses (from :meth:`vault.keys.KeyManager.stats`); gauges read from the
  database at scrape time: sync lag per account and the purge backlog. Under gunicorn with
  ``PROMETHEUS_MULTIPROC_DIR`` set (deploy/gunicorn.conf.py does it), every worker's counters are summed.
  ``/metrics`` sits behind the global allowlist like every other path. No label value is ever PII: account
  and tenant ids, formats and reason codes only.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import select

from app.errors import problem_kind
from app.logpaths import route_of
from app.services import services
from app.settings import Settings
from vault.models import MarketplaceAccount, utcnow
from vault.retention import due_summary

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("labelvault_request_id", default=None)

#: The label endpoint whose outcome is counted (app/api/labels.py).
LABEL_ENDPOINT = "api.get_label"

# -- metrics (process-wide; summed over gunicorn workers in multiprocess mode) -------------------------

LABELS_RELEASED = Counter("labelvault_labels_released_total", "Labels released (committed and sent).", ["format"])
LABELS_REFUSED = Counter("labelvault_labels_refused_total", "Label requests refused, by reason.", ["reason"])
HTTP_REQUESTS = Counter("labelvault_http_requests_total", "HTTP requests served.", ["endpoint", "status"])
HTTP_DURATION = Histogram(
    "labelvault_http_request_duration_seconds",
    "Time to serve a request.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
KMS_CALLS = Counter("labelvault_kms_calls_total", "Calls to the root key provider (AWS KMS in production).")
KEY_CACHE_HITS = Counter("labelvault_key_cache_hits_total", "Tenant-key cache hits (no root key provider call).")
KEY_CACHE_MISSES = Counter("labelvault_key_cache_misses_total", "Tenant-key cache misses (a tenant key unwrapped).")
ALARMS = Counter("labelvault_alarms_total", "Alarms raised (also appended to the audit chain).", ["kind"])
ALARM_STORE_ERRORS = Counter("labelvault_alarm_store_errors_total", "Events not counted: the alarm store was down.")
TASKS = Counter("labelvault_tasks_total", "Background tasks run, by task and outcome.", ["task", "outcome"])


def multiprocess_dir() -> str | None:
    """The directory of multi-process metrics (gunicorn workers), if this process writes there."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# -- logging ---------------------------------------------------------------------------------------------

#: ``extra`` fields copied into JSON log lines; anything else a caller passes is left out.
LOG_FIELDS = (
    "method",
    "path",
    "endpoint",
    "status",
    "duration_ms",
    "client_ip",
    "tenant_id",
    "account_id",
    "task",
    "outcome",
    "kind",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and whitelisted extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            doc["request_id"] = rid
        for name in LOG_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it happened; its message may quote data, so it is left out.
            doc["exc_type"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            doc["stack"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)][-20:]
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human-readable format for development, with the request id and no exception messages."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", None) or request_id_var.get() or "-"
        exc_info, record.exc_info, exc_text, record.exc_text = record.exc_info, None, record.exc_text, None
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = exc_info, exc_text
        if exc_info and exc_info[0] is not None:
            frames = traceback.extract_tb(exc_info[2])[-5:]
            line += f" [{exc_info[0].__name__} at " + " < ".join(f"{f.filename}:{f.lineno}" for f in frames) + "]"
        return line


class LogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's one handler of labelvault's lines; :func:`configure_logging` replaces, never adds, one.

    deploy/gunicorn.conf.py puts one on the root logger too, so gunicorn's master logs the same way before
    the app is loaded; the app then replaces it rather than writing every line a second time.
    """


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Send the root logger's records to stderr in the configured format, through one handler (idempotent).

    ``auto`` is JSON in production and text elsewhere. In tests (``LABELVAULT_ENV=test`` with ``auto``) the
    root logger is left to pytest. Other handlers on the root logger (pytest's) are left alone.
    """
    fmt = settings.log_format
    if fmt == "auto":
        if settings.env == "test":
            return
        fmt = "json" if settings.production else "text"
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, LogHandler)]:
        root.removeHandler(old)
    handler = LogHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Alembic (1.16+) logs a line per built-in plugin it sets up, on every migration: noise at INFO.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


# -- request ids -----------------------------------------------------------------------------------------


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The incoming id if it is well-formed, else a new one (a client can't inject text into the logs)."""
    if value and _WELL_FORMED_ID.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """WSGI middleware: sets the request id for everything the request logs, and returns it in a header.

    Outermost, so the allowlist's and limiter's refusals, error handlers and teardown all log with it.
    """

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        rid = accept_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ["labelvault.request_id"] = rid
        token = request_id_var.set(rid)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, rid))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            return self.wsgi_app(environ, start)
        finally:
            request_id_var.reset(token)


# -- per-request accounting -------------------------------------------------------------------------------


def start_clock() -> None:
    """First of the before-request hooks: time the request, refused ones included."""
    g.lv_started = time.perf_counter()


def _format_of(response: Response) -> str:
    return {"application/json": "json", "application/zpl": "zpl", "application/pdf": "pdf", "image/png": "png"}.get(
        response.mimetype or "", "other"
    )


def account(response: Response) -> Response:
    """Last of the after-request hooks: count the request and its label outcome, and log its line.

    A refused label counts under its refusal's reason code (``g.refusal``, set by app/refusals.py); a label
    request that failed without a refusal (a malformed request, a failure of the service) under its HTTP
    status's problem kind, e.g. ``bad-request``.
    """
    started = g.get("lv_started")
    endpoint = request.endpoint or "unrouted"
    status = response.status_code
    try:
        duration = time.perf_counter() - started if started is not None else 0.0
        if request.endpoint != "observability.metrics":
            HTTP_REQUESTS.labels(endpoint, str(status)).inc()
            HTTP_DURATION.labels(endpoint).observe(duration)
        if endpoint == LABEL_ENDPOINT:
            if status == 200:
                LABELS_RELEASED.labels(_format_of(response)).inc()
            else:
                LABELS_REFUSED.labels(g.get("refusal") or problem_kind(status)).inc()
        sync_key_stats(current_app)
        log.info(
            "%s %s %s",
            request.method,
            route_of(),
            status,
            extra={
                "method": request.method,
                "path": route_of(),  # the pattern: a path may carry a secret (app/logpaths.py)
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "client_ip": g.get("client_ip"),
            },
        )
    except Exception as exc:  # accounting must never turn a served request into an error
        log.warning("request accounting failed (%s)", type(exc).__name__)
    return response


_key_stats_lock = threading.Lock()


def sync_key_stats(app: Flask, *, min_interval: float = 1.0) -> None:
    """Add the key manager's new KMS calls and cache hits/misses to the counters (at most once a second)."""
    state: dict[str, Any] = app.extensions.setdefault("labelvault.key_stats", {"at": 0.0, "last": (0, 0, 0)})
    now = time.monotonic()
    if now - state["at"] < min_interval:
        return
    with _key_stats_lock:
        if now - state["at"] < min_interval:
            return
        state["at"] = now
        stats = services(app).keys.stats()
        current = (stats.provider_calls, stats.hits, stats.misses)
        for counter, new, old in zip(
            (KMS_CALLS, KEY_CACHE_HITS, KEY_CACHE_MISSES), current, state["last"], strict=True
        ):
            if new > old:
                counter.inc(new - old)
        state["last"] = current


# -- /metrics ---------------------------------------------------------------------------------------------


class VaultCollector:
    """Gauges read from the database at scrape time: sync lag per account, purge backlog."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        svc = services(self.app)
        now = utcnow()
        lag = GaugeMetricFamily(
            "labelvault_sync_lag_seconds",
            "How far behind the marketplace an account's synced orders are (now minus its sync cursor).",
            labels=["tenant", "account"],
        )
        failing = GaugeMetricFamily(
            "labelvault_sync_failing", "1 if the account's last sync failed.", labels=["tenant", "account"]
        )
        backlog = GaugeMetricFamily("labelvault_purge_backlog_orders", "Orders past retention, not yet erased.")
        held = GaugeMetricFamily("labelvault_purge_held_orders", "Orders past retention kept by a legal hold.")
        with svc.sessions() as session:
            rows = session.execute(
                select(
                    MarketplaceAccount.tenant_id,
                    MarketplaceAccount.id,
                    MarketplaceAccount.sync_cursor,
                    MarketplaceAccount.created_at,
                    MarketplaceAccount.last_sync,
                ).where(MarketplaceAccount.removed_at.is_(None))
            ).all()
            due = due_summary(session, now=now)
        for tenant_id, account_id, cursor, created, last in rows:
            since = cursor or created
            lag.add_metric([str(tenant_id), str(account_id)], max(0.0, (now - since).total_seconds()))
            ok = (last or {}).get("ok", True)
            failing.add_metric([str(tenant_id), str(account_id)], 0.0 if ok else 1.0)
        backlog.add_metric([], float(sum(d.due for d in due)))
        held.add_metric([], float(sum(d.held for d in due)))
        yield lag
        yield failing
        yield backlog
        yield held


class _Scrape:
    """What one scrape collects: this process's (or all workers') counters, plus the database gauges."""

    def __init__(self, collectors: Iterable[Any]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


bp = Blueprint("observability", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition of every metric (behind the global allowlist)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sync_key_stats(app, min_interval=0.0)
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        process: Any = registry
    else:
        process = REGISTRY
    try:
        body = generate_latest(_Scrape([process, VaultCollector(app)]))
    except Exception as exc:
        # The database gauges failed (e.g. the database is down): still serve the process counters.
        log.warning("metrics: database gauges unavailable (%s)", type(exc).__name__)
        body = generate_latest(_Scrape([process]))
    resp = Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0])
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask, settings: Settings) -> None:
    """``/metrics``, unless switched off (``create_app`` puts :func:`start_clock` and :func:`account` in the
    pipeline)."""
    if settings.metrics_enabled:
        app.register_blueprint(bp)
