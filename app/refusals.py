"""Refused requests: recorded and audited here, once, from the reason code the refusing error carries.

Every step of the pipeline that refuses raises a :class:`~vault.errors.Refusal` whose ``reason`` is set where
it is raised: the network check (app/allowlist.py), the rate limits (app/limits.py), the body's size
(app/bodies.py), the API key, the client's CIDRs and scope (app/api/auth.py), and the label API's order
lookup, eligibility, key service, unsealing and rendering (app/api/labels.py, :mod:`vault.release`). No view
audits anything itself: the refusal propagates to :func:`handle`, which

1. notes the reason on the request (``g.refusal``) for the after-request hooks: the metrics
   (app/observability.py) and the alarms (app/alarms.py) read it there;
2. appends the refusal to the audit chain (:func:`vault.release.record_refusal`), at most once per address
   and reason per ``LABELVAULT_REFUSAL_AUDIT_INTERVAL`` for the refusals an outsider can repeat at will;
3. answers with the refusal's problem document (:func:`app.errors.refusal_response`).

A batch's per-order refusals don't refuse the request: :func:`vault.release.record_batch` audits them with
the batch's releases in one append, from the same reason codes.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from app.errors import RateLimitUnavailable, refusal_response
from app.limits import throttle
from app.observability import LABEL_ENDPOINT
from app.services import services
from vault.errors import Refusal, RefusalReason
from vault.release import RELEASE_ACTION, client_actor, record_refusal

log = logging.getLogger(__name__)

#: The blueprint of the label API (``/v1``): its refusals are audited, whatever their kind.
API_BLUEPRINT = "api"
#: Refusals of the gates in front of every path: audited on every path, the dashboard's included.
GATES = frozenset(
    {
        RefusalReason.MALFORMED_ADDRESS,
        RefusalReason.NOT_ALLOWLISTED,
        RefusalReason.RATE_LIMITED,
        RefusalReason.RATE_LIMIT_UNAVAILABLE,
        RefusalReason.BODY_TOO_LARGE,
    }
)
#: Refusals an outsider can repeat at will (no valid key needed, or one used from the wrong network):
#: audited at most once per address and reason per interval, so a flood can't flood the audit chain.
THROTTLED = frozenset(
    {
        RefusalReason.MALFORMED_ADDRESS,
        RefusalReason.NOT_ALLOWLISTED,
        RefusalReason.RATE_LIMITED,
        RefusalReason.INVALID_API_KEY,
        RefusalReason.CLIENT_CIDR,
        RefusalReason.BODY_TOO_LARGE,
    }
)
#: Not audited: the service's own outage of the store the audit would be throttled with, not a decision.
UNAUDITED = frozenset({RefusalReason.RATE_LIMIT_UNAVAILABLE})
#: At most this many refusals per minute are audited in all, whatever the number of addresses refused.
REFUSAL_AUDITS_PER_MINUTE = 120


def handle(exc: Refusal) -> Response:
    """The error handler of every refusal: note its reason, audit it, answer it (see the module docstring)."""
    # A domain error a dashboard page lets through is that page's error, not a refusal of the label API
    # (the dashboard audits its own actions); the gates' refusals are refusals on every path.
    if request.blueprint == API_BLUEPRINT or exc.reason in GATES:
        g.refusal = exc.reason
        if exc.reason not in UNAUDITED:
            audit(exc.reason)
    return refusal_response(exc)


def _may_audit(reason: RefusalReason, tenant_id: int | None) -> bool:
    settings = services().settings
    who = g.get("client_ip") or "unknown"
    try:
        return throttle(f"refusal:{tenant_id}:{reason}:{who}", settings.refusal_audit_interval) and throttle(
            "refusal:all", 60, REFUSAL_AUDITS_PER_MINUTE
        )
    except RateLimitUnavailable:
        return False  # the limiter's own check refuses with 503; a dead store must not let a flood through


def audit(reason: RefusalReason) -> None:
    """Append the current request's refusal to the audit chain (the client's tenant's, else the platform's).

    The refused order, when the request names a well-formed one, is ``g.label_order`` (set by the label
    view). A refusal stands even if its event can't be written; that failure is logged.
    """
    client = g.get("api_client")
    tenant_id = None if client is None else client.tenant_id
    if reason in THROTTLED and not _may_audit(reason, tenant_id):
        return
    log.info("refused %s: %s from %s", request.endpoint or "unrouted", reason, g.get("client_ip") or "unknown")
    marketplace, order_id = g.get("label_order") or (None, None)
    try:
        with services().sessions() as session:
            record_refusal(
                session,
                tenant_id=tenant_id,
                actor="anonymous" if client is None else client_actor(client),
                reason=reason,
                ip=g.get("client_ip"),
                action=RELEASE_ACTION if request.endpoint == LABEL_ENDPOINT else "request",
                marketplace=marketplace,
                order_id=order_id,
                details={"endpoint": request.endpoint},
            )
            session.commit()
    except SQLAlchemyError as exc:
        log.error("could not audit a refusal (%s); the request was refused all the same", type(exc).__name__)


def init_app(app: Flask) -> None:
    """Answer every refusal through :func:`handle`."""
    app.register_error_handler(Refusal, handle)
