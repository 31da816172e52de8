"""``accounts add ebay`` and ``accounts reconsent``: the consent URL printed, the redirect's state checked,
the code exchanged once; markets, tenant and endpoints checked before the seller is sent anywhere; each
refusal is one line and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.fake_ebay import FakeEbay
from tests.support.servers import Database


@pytest.fixture
def fake() -> Iterator[FakeEbay]:
    with FakeEbay(seed=6) as marketplace:
        yield marketplace


def _env(fake: FakeEbay, **extra: str) -> dict[str, str]:
    app = fake.app
    values = {"CLIENT_ID": app.client_id, "CLIENT_SECRET": app.client_secret, "RU_NAME": app.ru_name, **extra}
    return {f"LABELVAULT_EBAY_{k}": v for k, v in values.items()}


def _add(fake: FakeEbay, *ids: str, tenant: str = "acme") -> list[str]:
    args = ["accounts", "add", "ebay", "--tenant", tenant, "--name", "eBay US", "--api-endpoint", fake.base_url]
    return args + [arg for m in ids for arg in ("--marketplace-id", m)]


def _runner(make_app: Any, db: Database, fake: FakeEbay) -> Any:
    runner = make_app(db.app_url, marketplace_endpoint_overrides=fake.base_url).test_cli_runner()
    assert runner.invoke(args=["tenants", "create", "acme", "--name", "Acme"]).exit_code == 0
    return runner


def _last_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    last = result.output.rstrip("\n").splitlines()[-1]
    assert last.startswith("Error: ") and "Traceback" not in result.output and "Aborted!" not in result.output
    return str(last)


def test_the_seller_s_code_connects_the_account_and_the_consent_s_end_is_shown(
    make_app: Any, fresh_db: Database, fake: FakeEbay
) -> None:
    runner = _runner(make_app, fresh_db, fake)
    result = runner.invoke(args=_add(fake, "EBAY_US"), env=_env(fake), input=fake.consent_code() + "\n")
    assert result.exit_code == 0, result.output
    consent = urlsplit(next(line for line in result.output.splitlines() if "/oauth2/authorize?" in line))
    query = parse_qs(consent.query)
    assert query["client_id"] == [fake.app.client_id] and query["redirect_uri"] == [fake.app.ru_name]
    assert "added: ebay, eBay.com; consent ends 20" in result.output
    assert fake.app.client_secret not in result.output
    listed = runner.invoke(args=["accounts", "list"]).output
    assert "acme/eBay US" in listed and "ebay global v1" in listed


def test_a_redirect_with_another_consent_s_state_is_refused_before_any_exchange(
    make_app: Any, fresh_db: Database, fake: FakeEbay
) -> None:
    runner = _runner(make_app, fresh_db, fake)
    forged = f"{fake.app.accept_url}?state=someone-elses&code={fake.consent_code()}"
    result = runner.invoke(args=_add(fake, "EBAY_US"), env=_env(fake), input=forged + "\n")
    assert "state is not this consent's" in _last_line_error(result)
    declined = runner.invoke(args=_add(fake, "EBAY_US"), env=_env(fake), input=f"{fake.app.accept_url}?x=1\n")
    assert "state is not this consent's" in _last_line_error(declined)
    assert fake.calls["oauthToken"] == 0
    assert "eBay US" not in runner.invoke(args=["accounts", "list"]).output


def test_bad_markets_tenants_and_missing_input_are_one_line_errors(
    make_app: Any, fresh_db: Database, fake: FakeEbay
) -> None:
    runner = _runner(make_app, fresh_db, fake)
    refused = runner.invoke(args=_add(fake, "EBAY_MARS"), env=_env(fake))
    assert "not an eBay marketplace id: 'EBAY_MARS'" in _last_line_error(refused)
    assert "oauth2/authorize" not in refused.output
    assert "nobody" in _last_line_error(runner.invoke(args=_add(fake, "EBAY_US", tenant="nobody"), env=_env(fake)))
    no_secret = {k: v for k, v in _env(fake).items() if not k.endswith("SECRET")}
    assert "LABELVAULT_EBAY_CLIENT_SECRET" in _last_line_error(runner.invoke(args=_add(fake, "EBAY_US"), env=no_secret))
    no_consent = runner.invoke(args=_add(fake, "EBAY_US"), env=_env(fake))
    assert "LABELVAULT_EBAY_CONSENT_REDIRECT" in _last_line_error(no_consent)
    bad_code = runner.invoke(args=_add(fake, "EBAY_US"), env=_env(fake, CONSENT_REDIRECT="v^1.1#stale"))
    assert "invalid_grant" in _last_line_error(bad_code) and "nothing was stored" in bad_code.output


def test_reconsent_renews_the_grant_of_an_ebay_account_only(make_app: Any, fresh_db: Database, fake: FakeEbay) -> None:
    runner = _runner(make_app, fresh_db, fake)
    added = runner.invoke(args=_add(fake, "EBAY_US"), env=_env(fake, CONSENT_REDIRECT=fake.consent_code()))
    assert added.exit_code == 0, added.output
    renewed = runner.invoke(
        args=["accounts", "reconsent", "eBay US"], env=_env(fake, CONSENT_REDIRECT=fake.consent_code())
    )
    assert renewed.exit_code == 0, renewed.output
    assert "consented again; consent ends 20" in renewed.output
    missing = runner.invoke(args=["accounts", "reconsent", "US store"], env=_env(fake))
    assert "0 live eBay accounts match 'US store'" in _last_line_error(missing)
