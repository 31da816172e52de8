"""``accounts add amazon`` checks what it is given before it stores anything: the marketplace ids against
Amazon's table and the region, the endpoints against Amazon's own hosts and the operator's overrides, the
credentials with one LWA exchange; each refusal is one line. ``tenants create`` says the slug rule."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.fake_amazon import FakeAmazon
from tests.support.servers import Database


@pytest.fixture
def fake() -> Any:
    with FakeAmazon(speedup=5000, seed=5) as marketplace:
        yield marketplace


def _credentials(fake: FakeAmazon, **changes: str) -> dict[str, str]:
    s = fake.DEFAULT_SELLER
    values = {"CLIENT_ID": s.client_id, "CLIENT_SECRET": s.client_secret, "REFRESH_TOKEN": s.refresh_token, **changes}
    return {f"LABELVAULT_AMAZON_{k}": v for k, v in values.items()}


def _add(*ids: str, region: str = "na", endpoints: tuple[str, str] | None = None) -> list[str]:
    args = ["accounts", "add", "amazon", "--tenant", "acme", "--name", "US store", "--region", region]
    args += [arg for m in ids for arg in ("--marketplace-id", m)]
    if endpoints:
        args += ["--sp-api-endpoint", endpoints[0], "--lwa-endpoint", endpoints[1]]
    return args


def _runner(make_app: Any, db: Database, **settings: Any) -> Any:
    runner = make_app(db.app_url, **settings).test_cli_runner()
    assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
    return runner


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output and "Aborted!" not in result.output
    return str(result.output)


def test_an_account_is_added_after_its_checks_and_named_by_marketplace(
    make_app: Any, fresh_db: Database, fake: FakeAmazon
) -> None:
    runner = _runner(make_app, fresh_db, marketplace_endpoint_overrides=fake.base_url)
    ends = (fake.base_url, fake.lwa_url)
    refused = runner.invoke(args=_add("ATVPDKIKX0DER", "A1VC38T7YXB528", endpoints=ends), env=_credentials(fake))
    assert "Amazon.co.jp (JP, A1VC38T7YXB528) is in fe, not na" in _one_line_error(refused)
    refused = runner.invoke(args=_add("ATVPDKIKX0DE", endpoints=ends), env=_credentials(fake))
    assert "not an Amazon marketplace id: 'ATVPDKIKX0DE'" in _one_line_error(refused)
    assert fake.calls["lwaToken"] == 0
    wrong = _credentials(fake, REFRESH_TOKEN="Atzr|someone-elses")
    refused = runner.invoke(args=_add("ATVPDKIKX0DER", endpoints=ends), env=wrong)
    output = _one_line_error(refused)
    assert "the LWA credentials do not work" in output and "nothing was stored" in output
    assert not any(secret in output for secret in wrong.values())
    assert fake.calls["lwaToken"] == 1 and "US store" not in runner.invoke(args=["accounts", "list"]).output

    added = runner.invoke(args=_add("ATVPDKIKX0DER", endpoints=ends), env=_credentials(fake))
    assert added.exit_code == 0, added.output
    assert "Amazon.com (US, ATVPDKIKX0DER)" in added.output and fake.calls["lwaToken"] == 2
    listed = runner.invoke(args=["accounts", "list"]).output
    assert "acme/US store" in listed and "Amazon.com (US, ATVPDKIKX0DER)" in listed


def test_endpoints_the_operator_does_not_allow_are_refused_before_any_request(
    make_app: Any, fresh_db: Database, fake: FakeAmazon
) -> None:
    runner = _runner(make_app, fresh_db)  # no LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES
    result = runner.invoke(args=_add("ATVPDKIKX0DER", endpoints=(fake.base_url, fake.lwa_url)), env=_credentials(fake))
    assert "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES" in _one_line_error(result)
    assert fake.calls["lwaToken"] == 0 and sum(fake.calls.values()) == 0


def test_without_credentials_or_a_terminal_the_error_says_where_they_come_from(
    make_app: Any, fresh_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN"):
        monkeypatch.delenv(f"LABELVAULT_AMAZON_{name}", raising=False)
    runner = _runner(make_app, fresh_db)
    output = _one_line_error(runner.invoke(args=_add("ATVPDKIKX0DER"), input=""))
    assert "no client ID given: set LABELVAULT_AMAZON_CLIENT_ID or type it at the prompt" in output


@pytest.mark.parametrize("slug", ["Acme", "a_b", "ab"])
def test_a_bad_tenant_slug_is_refused_with_the_rule(make_app: Any, fresh_db: Database, slug: str) -> None:
    runner = make_app(fresh_db.app_url).test_cli_runner()
    output = _one_line_error(runner.invoke(args=["tenants", "create", slug, "--name", "Acme"]))
    assert "a tenant slug is 3 to 63 lowercase letters, digits and hyphens" in output
    assert slug not in runner.invoke(args=["tenants", "list"]).output.split()
