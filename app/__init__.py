"""labelvault's Flask application: the label API, the seller dashboard and the operator CLI."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from app.settings import Settings, load_settings


def create_app(config: dict[str, Any] | Settings | None = None) -> Flask:
    """Build the app from the environment (``LABELVAULT_*``); ``config`` overrides settings (tests)."""
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(SECRET_KEY=settings.secret_key or None, DEBUG=settings.debug)
    if settings.key_provider == "local" and settings.production:
        logging.getLogger(__name__).warning("production mode with the local keyring (risk accepted by setting)")

    from app import cli, errors, health, services
    from vault import retention

    retention.configure(delivery_allowance_days=settings.retention_delivery_allowance_days)  # process-wide rules
    services.init_app(app, settings)
    errors.init_app(app)
    health.init_app(app)
    from app import allowlist, api, limits, openapi

    allowlist.init_app(app, settings)  # first of all request hooks: client IP → global allowlist
    limits.init_app(app, settings)  # then the IP rate limit; the client limit runs after the key (app/auth.py)
    api.init_app(app)
    openapi.init_app(app)
    from app import alarms, observability

    observability.init_app(app, settings)  # logs, request ids, /metrics (its clock starts before the allowlist)
    alarms.init_app(app, settings)
    from app import dashboard

    dashboard.init_app(app, settings)  # the seller dashboard: security headers, CSRF, languages, pages
    cli.init_app(app)
    return app
