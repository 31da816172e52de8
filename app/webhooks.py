"""Platforms' webhooks into the vault: ``POST /webhooks/shopify``, Shopify's mandatory privacy webhooks.

The route sits behind the network pipeline every path has (allowlist, address rate limit, body size:
app/__init__.py) but not behind the label API's key, and off the dashboard's blueprint, so no session or
CSRF token applies: the signature is the authentication. The raw body is checked against
``X-Shopify-Hmac-Sha256`` with the public app's client secret (``LABELVAULT_SHOPIFY_CLIENT_SECRET``) before
it is parsed; a bad signature is 401, a repeat delivery (same ``X-Shopify-Webhook-Id``) 200 without doing
anything again, a handled one 200 with counts only. What a delivery does (a rights request per tenant, in
vault/rights_requests.py's workflow) is connectors.shopify.webhooks'.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import IntegrityError

from app.services import db_session, services
from connectors.shopify import webhooks as shopify

log = logging.getLogger(__name__)

PATH = "/webhooks/shopify"


def _answer(status: int, **body: object) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def shopify_webhook() -> Response:
    """Verify, de-duplicate and carry out one privacy webhook delivery."""
    secret = services().settings.shopify_client_secret.get_secret_value()
    if not secret:
        return _answer(503, error="the Shopify app is not configured (LABELVAULT_SHOPIFY_CLIENT_SECRET)")
    body = request.get_data(cache=False)
    if not shopify.signature_valid(body, request.headers.get("X-Shopify-Hmac-Sha256"), secret):
        log.warning("shopify webhook refused: bad signature")
        return _answer(401, error="bad signature")
    topic = request.headers.get("X-Shopify-Topic")
    webhook_id = request.headers.get("X-Shopify-Webhook-Id")
    db = db_session()
    if webhook_id and len(webhook_id) <= 100 and shopify.already_handled(db, webhook_id):
        return _answer(200, duplicate=True)
    try:
        webhook = shopify.parse(topic, webhook_id, body)
    except shopify.WebhookRejected as exc:
        return _answer(400, error=str(exc))
    try:
        outcome = shopify.handle(db, keys=services().keys, webhook=webhook)
        db.commit()
    except IntegrityError:
        db.rollback()  # a concurrent repeat of this delivery committed first
        return _answer(200, duplicate=True)
    log.info(
        "shopify webhook %s handled: %d tenants, %d requests, %d exported, %d erased, %d held, %d awaiting the owner",
        webhook.topic,
        outcome.tenants,
        len(outcome.requests),
        outcome.exported,
        outcome.erased,
        outcome.held,
        outcome.awaiting_owner,
    )
    return _answer(200, duplicate=outcome.duplicate, tenants=outcome.tenants)


def init_app(app: Flask) -> None:
    """Register the webhook routes."""
    app.add_url_rule(PATH, endpoint="shopify_webhook", view_func=shopify_webhook, methods=["POST"])
