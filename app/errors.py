"""Every HTTP error is an RFC 9457 problem+json document: same shape everywhere, no stack trace, no PII.

Also the refusals the HTTP side raises itself (the network check, the rate limits, the API client's CIDRs and
scope), beside the vault's (:mod:`vault.errors`): each carries its
:class:`~vault.errors.RefusalReason`. :func:`refusal_response` is the answer to every refusal; app/refusals.py
records and audits the refusal before answering with it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from app.logpaths import route_of
from connectors.carriers.interfaces import AddressRejected, CarrierError
from render.interfaces import RenderError
from vault.errors import (
    CarrierLabelOnly,
    DecryptionError,
    InvalidApiKey,
    KeyServiceUnavailable,
    LabelNotRendered,
    NotEligible,
    NotFound,
    Refusal,
    RefusalReason,
    ReissueCapReached,
    ShipmentError,
    VaultError,
)

log = logging.getLogger(__name__)

#: The HTTP status of each carrier failure (connectors/carriers/interfaces.py); any other is a 502.
_CARRIER_STATUS = {
    "carrier-unavailable": 503,
    "address-rejected": 422,
    "no-matching-rate": 422,
    "rate-changed": 409,
    "void-refused": 409,
    "purchase-uncertain": 503,
}

PROBLEM_TYPE = "https://labelvault.dev/problems/"


class NetworkRefused(Refusal):
    """The address may not connect: outside the global allowlist, unreadable, or outside the client's CIDRs.

    Always the same bare 403, whatever the path, so it tells nothing about what is behind it.
    """

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__(f"network refused: {reason}")
        self.reason = reason


class RateLimited(Refusal):
    """A rate limit is used up; ``retry_after`` seconds until its window frees a request."""

    reason = RefusalReason.RATE_LIMITED

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limit exceeded")
        self.retry_after = retry_after


class RateLimitUnavailable(Refusal):
    """The rate-limit store can't be reached: requests are refused (a limiter that can't count is none)."""

    reason = RefusalReason.RATE_LIMIT_UNAVAILABLE


class MissingScope(Refusal):
    """The API key is valid but lacks the scope the route needs."""

    reason = RefusalReason.SCOPE

    def __init__(self, scope: str) -> None:
        super().__init__(f"this API key lacks the {scope!r} scope")
        self.scope = scope


class BodyTooLarge(Refusal):
    """The request body is larger than ``LABELVAULT_MAX_REQUEST_BYTES`` (app/bodies.py)."""

    reason = RefusalReason.BODY_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def problem_kind(status: int) -> str:
    """The problem type's last segment for an HTTP status without a kind of its own, e.g. ``not-found``."""
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def problem(status: int, detail: str | None = None, *, kind: str | None = None, **extra: Any) -> Response:
    """Build a problem+json response. ``detail`` must never contain PII or secrets."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (kind or problem_kind(status)),
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    resp = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def refusal_response(exc: Refusal) -> Response:
    """The answer to a refusal: its status, problem type and headers."""
    match exc:
        case NetworkRefused():
            return problem(403)  # no detail: the same for every path
        case InvalidApiKey():
            # One answer to a missing, malformed, unknown, wrong, revoked or expired key.
            resp = problem(401, "a valid API key is required", kind="invalid-api-key")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="labelvault"'
            return resp
        case MissingScope():
            return problem(403, str(exc), kind="insufficient-scope")
        case RateLimited():
            resp = problem(429, "rate limit exceeded; retry later", kind="rate-limited")
            resp.headers["Retry-After"] = str(exc.retry_after)
            return resp
        case RateLimitUnavailable():
            log.error("rate-limit store unreachable; refusing requests (fail closed)")
            resp = problem(503, "rate limiting is unavailable; retry later", kind="rate-limit-unavailable")
            resp.headers["Retry-After"] = "5"
            return resp
        case ReissueCapReached():
            # The client's own count: how many labels were issued for the order, of how many it may have.
            detail = f"{exc.issued} of {exc.cap} labels were issued for this order; an owner can grant a reprint"
            return problem(409, detail, kind="not-eligible", reason=exc.reason, issued=exc.issued, cap=exc.cap)
        case CarrierLabelOnly():
            return problem(403, str(exc), kind="carrier-label-only")
        case BodyTooLarge():
            return problem(413, f"the request body may be at most {exc.limit} bytes", kind="body-too-large")
        case NotEligible():
            # Only ever raised inside the client's own tenant, so saying why is no leak.
            return problem(409, "no label can be issued for this order now", kind="not-eligible", reason=exc.reason)
        case NotFound():
            return problem(404)
        case LabelNotRendered():
            log.warning("label could not be rendered (%s)", type(exc.__cause__).__name__)
            return problem(422, "the label can't be rendered in this format", kind="render-failed")
        case KeyServiceUnavailable():
            log.error("key service unavailable", extra={"path": route_of()})
            resp = problem(503, "the key service is unavailable; nothing was released", kind="key-service-unavailable")
            resp.headers["Retry-After"] = "30"
            return resp
        case DecryptionError():
            log.error("sealed record could not be opened", extra={"path": route_of()})
            return problem(500, "the label data could not be opened", kind="decryption-failed")
    log.error("refusal %s without an answer of its own", type(exc).__name__)
    return problem(500)


def init_app(app: Flask) -> None:
    """The problem document of every error that isn't a refusal (app/refusals.py answers those)."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        resp = problem(exc.code or 500, exc.description if exc.code != 404 else None)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        if exc.code == 503:
            resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(RenderError)
    def _render_failed(exc: RenderError) -> Response:
        # A renderer failing outside the label API (e.g. the dashboard's preview). The message may describe
        # the label's content; it stays out of the response and the log.
        log.warning("label could not be rendered (%s)", type(exc).__name__)
        return problem(422, "the label can't be rendered in this format", kind="render-failed")

    @app.errorhandler(ShipmentError)
    def _shipment(exc: ShipmentError) -> Response:
        resp = problem(exc.status, str(exc), kind=exc.code)
        if exc.status == 503:
            resp.headers["Retry-After"] = str(getattr(exc, "retry_after", None) or 5)
        return resp

    @app.errorhandler(CarrierError)
    def _carrier(exc: CarrierError) -> Response:
        # The carrier's failure, in its words' code only: its messages never carry PII (connectors/carriers).
        status = _CARRIER_STATUS.get(exc.code, 502)
        extra = {"reasons": list(exc.reasons)} if isinstance(exc, AddressRejected) else {}
        resp = problem(status, str(exc), kind=exc.code, **extra)
        if status == 503:
            resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(VaultError)
    def _vault(exc: VaultError) -> Response:
        log.error("vault error %s", type(exc).__name__, extra={"path": route_of()})
        return problem(500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Log the type only: an exception's text may quote data it was handling.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, route_of())
        return problem(500)
