"""labelvault's Flask application: the label API, the seller dashboard and the operator CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response

from app import routing
from app.settings import Settings, load_settings


def create_app(config: dict[str, Any] | Settings | None = None) -> Flask:
    """Build the app from the environment (``LABELVAULT_*``); ``config`` overrides settings (tests).

    The request pipeline is declared here, once, in the order it runs; no other module adds to it or
    reorders it. Modules contribute plain functions, and ``init_app`` functions that only register routes,
    error handlers, extensions and commands.
    """
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.url_rule_class = routing.Rule  # routes may say head=False (app/routing.py): the label routes do
    app.config.update(
        SECRET_KEY=settings.secret_key or None, DEBUG=settings.debug, MAX_CONTENT_LENGTH=settings.max_request_bytes
    )
    if settings.key_provider == "local" and settings.production:
        logging.getLogger(__name__).warning("production mode with the local keyring (risk accepted by setting)")

    from app import (
        alarms,
        allowlist,
        bodies,
        cli,
        dashboard,
        errors,
        health,
        limits,
        logpaths,
        observability,
        refusals,
        security,
        services,
        webhooks,
    )
    from app.api import routes as api_routes
    from connectors import registry
    from vault import retention

    observability.configure_logging(settings)
    app.json = bodies.BoundedJSONProvider(app)  # JSON nested deeper than bodies.MAX_JSON_DEPTH is malformed: 400
    # Process-wide: each registered marketplace platform's rule (connectors.registry).
    retention.configure(
        delivery_allowance_days=settings.retention_delivery_allowance_days, rules=registry.retention_rules()
    )
    services.init_app(app, settings)
    security.init_app(app, settings)  # the browser session's cookie
    network = allowlist.NetworkPolicy.from_settings(settings)
    rate_limits = limits.init_app(app, settings)
    alarms.init_app(app, settings)

    # -- the request pipeline, in the order it runs -------------------------------------------------------
    # Outermost, around everything below: the request id, in every log line and in the response.
    app.wsgi_app = observability.RequestIdMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(observability.start_clock)  # the request's clock: refused requests are timed too
    app.before_request(network.check_request)  # client IP (trusted-proxy rule) → global allowlist
    app.before_request(rate_limits.limit_ip)  # the address's rate limit, before any authentication work
    app.before_request(bodies.check_size)  # a declared body above LABELVAULT_MAX_REQUEST_BYTES: 413
    # Then the route's view. The label API's (app/api): API key → client CIDRs → client rate limit → scope
    # (require_client) → the request's checks → lookup, eligibility, unseal, render, audit, commit. The
    # dashboard's pages (app/dashboard): its own session and CSRF hooks first, on its blueprint only.
    # A refusal anywhere above is audited and answered by app/refusals.py.
    _after_request_in_order(
        app,
        security.SecurityHeaders(settings),  # on every response, refusals included
        alarms.observe,  # label rates, ineligible orders and refusals feed the alarms
        observability.account,  # metrics and the request's log line, last: they see the final status
    )
    app.teardown_appcontext(services.close_session)

    # -- routes, error handlers, commands ---------------------------------------------------------------
    errors.init_app(app)
    refusals.init_app(app)
    health.init_app(app)
    api_routes.init_app(app)
    webhooks.init_app(app)  # POST /webhooks/shopify: signed by the platform, no API key, no dashboard session
    observability.init_app(app, settings)  # /metrics
    dashboard.init_app(app, settings)  # the seller dashboard: languages, pages
    cli.init_app(app)
    logpaths.init_app(app)  # werkzeug's access log names route patterns, after every route is added
    return app


def _after_request_in_order(app: Flask, *hooks: Callable[[Response], Response]) -> None:
    """Register after-request hooks to run in the order given (Flask runs the last registered first)."""
    for hook in reversed(hooks):
        app.after_request(hook)
