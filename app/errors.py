"""Every HTTP error is an RFC 9457 problem+json document: same shape everywhere, no stack trace, no PII."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from render.interfaces import RenderError
from vault.errors import DecryptionError, InvalidApiKey, KeyServiceUnavailable, NotEligible, NotFound, VaultError

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://labelvault.dev/problems/"


def problem(status: int, detail: str | None = None, *, kind: str | None = None, **extra: Any) -> Response:
    """Build a problem+json response. ``detail`` must never contain PII or secrets."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (kind or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    resp = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        resp = problem(exc.code or 500, exc.description if exc.code != 404 else None)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        if exc.code == 503:
            resp.headers["Retry-After"] = "5"
        return resp

    @app.errorhandler(NotFound)
    def _not_found(_exc: NotFound) -> Response:
        return problem(404)

    @app.errorhandler(NotEligible)
    def _not_eligible(exc: NotEligible) -> Response:
        # Only ever raised inside the client's own tenant, so saying why is no leak.
        return problem(409, "no label can be issued for this order now", kind="not-eligible", reason=exc.reason)

    @app.errorhandler(InvalidApiKey)
    def _invalid_key(_exc: InvalidApiKey) -> Response:
        resp = problem(401, "a valid API key is required", kind="invalid-api-key")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="labelvault"'
        return resp

    @app.errorhandler(RenderError)
    def _render_failed(_exc: RenderError) -> Response:
        # The message may describe the label's content; it stays out of the response and the log.
        log.warning("label could not be rendered (%s)", type(_exc).__name__)
        return problem(422, "the label can't be rendered in this format", kind="render-failed")

    @app.errorhandler(KeyServiceUnavailable)
    def _keys_down(_exc: KeyServiceUnavailable) -> Response:
        log.error("key service unavailable", extra={"path": request.path})
        resp = problem(503, "the key service is unavailable; nothing was released", kind="key-service-unavailable")
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(DecryptionError)
    def _decryption(_exc: DecryptionError) -> Response:
        log.error("sealed record could not be opened", extra={"path": request.path})
        return problem(500, "the label data could not be opened", kind="decryption-failed")

    @app.errorhandler(VaultError)
    def _vault(exc: VaultError) -> Response:
        log.error("vault error %s", type(exc).__name__, extra={"path": request.path})
        return problem(500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Log the type only: an exception's text may quote data it was handling.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return problem(500)
