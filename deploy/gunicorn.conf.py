"""gunicorn settings for labelvault: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Every value can be overridden by the environment (GUNICORN_*) without editing this file. Workers are
independent processes (no preload: each opens its own database connections); each loads the label font
once after forking (``render.warm_up``), so no label request pays for it. Prometheus counters of all
workers are summed through PROMETHEUS_MULTIPROC_DIR, emptied at start and cleaned when a worker exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Must be set before any worker imports prometheus_client (workers inherit the master's environment).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "labelvault-metrics"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)

wsgi_app = "wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Threads per worker: label requests wait on the database most of the time; rendering holds the GIL briefly.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (bounded memory growth); jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "2000"))
limit_request_line = 4094
limit_request_fields = 50
proc_name = "labelvault"
# The app logs one JSON line per request with its request id (app/observability.py): no access log here,
# whose default format would repeat the URL and the addresses without the request id.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# labelvault reads X-Forwarded-For itself (LABELVAULT_TRUSTED_PROXIES, app/allowlist.py); gunicorn only
# uses this for the URL scheme. Same proxies, so both agree on who the proxy is.
forwarded_allow_ips = os.environ.get("LABELVAULT_TRUSTED_PROXIES") or "127.0.0.1"

if os.environ.get("LABELVAULT_LOG_FORMAT", "auto") == "json" or (
    os.environ.get("LABELVAULT_LOG_FORMAT", "auto") == "auto" and os.environ.get("LABELVAULT_ENV") == "production"
):
    # The root logger's handler is the app's own (app.observability.LogHandler): when the app loads in the
    # worker, configure_logging replaces it instead of adding a second one (each line once, not twice).
    logconfig_dict: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.observability.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "app": {"class": "app.observability.LogHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["app"], "level": loglevel.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }


def on_starting(server: Any) -> None:
    """Master start: empty the metrics directory (files of a previous run would be summed in)."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700, parents=True)


def post_fork(server: Any, worker: Any) -> None:
    """A new worker: load the label renderers' font before the first request."""
    try:
        from render import warm_up

        warm_up()
    except Exception as exc:  # a missing font fails PDF labels, not the worker (readiness shows the rest)
        logging.getLogger("gunicorn.error").warning("label renderer warm-up failed (%s)", type(exc).__name__)


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: drop its live gauges from the summed metrics (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
