"""``accounts add walmart`` tries the API key once, stores the account only when it works, and refuses in one
line: a wrong key, an endpoint the operator does not allow, no key and no terminal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.fake_walmart import FakeWalmart
from tests.support.servers import Database


@pytest.fixture
def fake() -> Iterator[FakeWalmart]:
    with FakeWalmart(seed=5) as marketplace:
        yield marketplace


def _key(fake: FakeWalmart, **changes: str) -> dict[str, str]:
    s = fake.DEFAULT_SELLER
    values = {"CLIENT_ID": s.client_id, "CLIENT_SECRET": s.client_secret, **changes}
    return {f"LABELVAULT_WALMART_{k}": v for k, v in values.items()}


def _add(fake: FakeWalmart | None = None) -> list[str]:
    args = ["accounts", "add", "walmart", "--tenant", "acme", "--name", "Walmart US"]
    return args + (["--api-endpoint", fake.base_url] if fake else [])


def _runner(make_app: Any, db: Database, **settings: Any) -> Any:
    runner = make_app(db.app_url, **settings).test_cli_runner()
    assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
    return runner


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output and "Aborted!" not in result.output
    return str(result.output)


def test_a_walmart_account_is_added_once_its_key_works(make_app: Any, fresh_db: Database, fake: FakeWalmart) -> None:
    runner = _runner(make_app, fresh_db, marketplace_endpoint_overrides=fake.base_url)
    wrong = _key(fake, CLIENT_SECRET="not-the-secret")
    output = _one_line_error(runner.invoke(args=_add(fake), env=wrong))
    assert "the Walmart API key does not work" in output and "nothing was stored" in output
    assert "not-the-secret" not in output and "Walmart US" not in runner.invoke(args=["accounts", "list"]).output
    added = runner.invoke(args=_add(fake), env=_key(fake))
    assert added.exit_code == 0, added.output
    assert "added: walmart, Walmart.com (US)" in added.output and fake.calls["tokenAPI"] == 2
    assert "acme/Walmart US\twalmart us v3" in runner.invoke(args=["accounts", "list"]).output


def test_an_endpoint_the_operator_does_not_allow_is_refused_before_any_request(
    make_app: Any, fresh_db: Database, fake: FakeWalmart
) -> None:
    runner = _runner(make_app, fresh_db)
    output = _one_line_error(runner.invoke(args=_add(fake), env=_key(fake)))
    assert "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES" in output and sum(fake.calls.values()) == 0


def test_without_a_key_or_a_terminal_the_error_says_where_it_comes_from(
    make_app: Any, fresh_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CLIENT_ID", "CLIENT_SECRET"):
        monkeypatch.delenv(f"LABELVAULT_WALMART_{name}", raising=False)
    output = _one_line_error(_runner(make_app, fresh_db).invoke(args=_add(), input=""))
    assert "no Client ID given: set LABELVAULT_WALMART_CLIENT_ID or type it at the prompt" in output
