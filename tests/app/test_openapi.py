"""The OpenAPI 3.1 document: valid, complete, and true to what the API answers (checked by schemathesis)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.servers import Database
from tests.support.world import World, assert_no_pii, build_world
from vault.keys import KeyManager

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=2)


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url, rate_limit_ip="100000/minute", rate_limit_client="100000/minute")


def test_document_is_valid_openapi_3_1(app: Any) -> None:
    resp = app.test_client().get("/v1/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_api_route_is_documented(app: Any) -> None:
    doc = app.test_client().get("/v1/openapi.json").get_json()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/v1/") or rule.endpoint.startswith("health.")):
            continue  # the dashboard's HTML pages are not part of the API
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in doc["paths"], f"{path} is not documented"
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
            assert method.lower() in doc["paths"][path], f"{method} {path} is not documented"


def load_schema(app: Any) -> Any:
    """The served document, loaded by schemathesis over WSGI (as loopback: its client sets no REMOTE_ADDR)."""
    inner = app.wsgi_app

    def from_loopback(environ: dict[str, Any], start_response: Any) -> Any:
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return inner(environ, start_response)

    app.wsgi_app = from_loopback
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", app)


# schemathesis' pytest plugin doesn't run under pytest 9 yet, so its strategies are driven with hypothesis here.
@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_schemathesis_finds_no_5xx_and_no_schema_breaks(app: Any, world: World, with_key: bool) -> None:
    schema = load_schema(app)
    headers = world.auth() if with_key else {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert "GET /v1/labels/{marketplace}/{order_id}" in {op.label for op in operations}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40 if with_key else 15, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            assert_no_pii(response.text, "a response")

        exercise()
