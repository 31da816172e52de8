"""``flask carriers add/list/remove``: the token from the environment, never argv; sealed, audited, shredded."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.support.servers import Database
from tests.support.world import World, build_world
from vault.carrier_accounts import unseal_carrier_credentials
from vault.keys import KeyManager
from vault.models import AuditEvent, CarrierAccount

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

TOKEN = "shippo_test_cli0token0value"
FROM = ["--from-name", "Dispatch", "--from-street", "215 Clayton St.", "--from-city", "San Francisco",
        "--from-state", "CA", "--from-postal-code", "94117", "--from-country", "us"]  # fmt: skip


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=1)


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url, marketplace_endpoint_overrides="http://127.0.0.1:8555")


def cli(app: Any, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=list(args), env=env, input=input)


def test_a_shippo_account_is_added_listed_and_removed(app: Any, world: World, keys: KeyManager) -> None:
    slug = world.tenant.slug
    added = cli(app, "carriers", "add", "shippo", "--tenant", slug, "--name", "Shippo", *FROM, "--test-mode",
                "--api-endpoint", "http://127.0.0.1:8555", env={"LABELVAULT_SHIPPO_API_TOKEN": TOKEN})  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added: shippo (test mode)" in added.output and TOKEN not in added.output
    listed = cli(app, "carriers", "list", "--tenant", slug)
    assert "Shippo test mode custom endpoint\tfrom US" in listed.output
    with world.session() as s:
        account = s.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == world.tenant.id)).one()
        assert unseal_carrier_credentials(s, keys=keys, account=account) == {"api_token": TOKEN}
        account_id = account.id
    removed = cli(app, "carriers", "remove", str(account_id), "--yes")
    assert removed.exit_code == 0 and f"carrier account {account_id} removed" in removed.output
    with world.session() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == world.tenant.id)).all()
    assert actions.count("carrier.connect") == 1 and actions.count("carrier.remove") == 1
    assert cli(app, "carriers", "remove", str(account_id), "--yes").exit_code != 0


def test_the_token_is_prompted_for_hidden_and_bad_settings_are_one_line_errors(app: Any, world: World) -> None:
    slug = world.tenant.slug
    prompted = cli(app, "carriers", "add", "shippo", "--tenant", slug, "--name", "S", *FROM, input=f"{TOKEN}\n")
    assert prompted.exit_code == 0 and TOKEN not in prompted.output
    endpoint = cli(app, "carriers", "add", "shippo", "--tenant", slug, "--name", "T", *FROM,
                   "--api-endpoint", "http://10.0.0.9", env={"LABELVAULT_SHIPPO_API_TOKEN": TOKEN})  # fmt: skip
    assert endpoint.exit_code != 0 and "endpoint is not allowed" in endpoint.output
    assert "Traceback" not in endpoint.output


def test_an_easypost_account_takes_the_credential_the_registry_names(app: Any, world: World, keys: KeyManager) -> None:
    slug = world.tenant.slug
    key = "EZTK0cli0key0value"
    added = cli(app, "carriers", "add", "easypost", "--tenant", slug, "--name", "EasyPost", *FROM, "--test-mode",
                env={"LABELVAULT_EASYPOST_API_KEY": key})  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added: easypost (test mode)" in added.output and key not in added.output
    assert "EasyPost test mode\tfrom US" in cli(app, "carriers", "list", "--tenant", slug).output
    with world.session() as s:
        account = s.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == world.tenant.id)).one()
        assert account.carrier == "easypost"
        assert unseal_carrier_credentials(s, keys=keys, account=account) == {"api_key": key}
    prompted = cli(app, "carriers", "add", "easypost", "--tenant", slug, "--name", "E2", *FROM, input=f"{key}\n")
    assert prompted.exit_code == 0 and key not in prompted.output and "EasyPost API key" in prompted.output
    help_text = cli(app, "carriers", "add", "--help").output
    assert "easypost" in help_text and "shippo" in help_text


AMAZON_ENV = {
    "LABELVAULT_AMAZONSHIPPING_CLIENT_ID": "amzn1.application-oa2-client.cli",
    "LABELVAULT_AMAZONSHIPPING_CLIENT_SECRET": "amzn1.oa2-cs.v1.cli-secret",
    "LABELVAULT_AMAZONSHIPPING_REFRESH_TOKEN": "Atzr|cli-refresh-token",
}


def test_an_amazon_shipping_account_is_added_with_its_lwa_grant_sealed(
    app: Any, world: World, keys: KeyManager
) -> None:
    slug = world.tenant.slug
    added = cli(app, "carriers", "add", "amazonshipping", "--tenant", slug, "--name", "Amazon", "--business-id",
                "AmazonShipping_UK", *FROM, "--api-endpoint", "http://127.0.0.1:8555", env=AMAZON_ENV)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added: amazonshipping" in added.output
    assert not any(v in added.output for v in AMAZON_ENV.values())
    assert "Amazon Shipping custom endpoint\tfrom US" in cli(app, "carriers", "list", "--tenant", slug).output
    with world.session() as s:
        account = s.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == world.tenant.id)).one()
        assert account.carrier == "amazonshipping"
        assert unseal_carrier_credentials(s, keys=keys, account=account) == {
            "client_id": AMAZON_ENV["LABELVAULT_AMAZONSHIPPING_CLIENT_ID"],
            "client_secret": AMAZON_ENV["LABELVAULT_AMAZONSHIPPING_CLIENT_SECRET"],
            "refresh_token": AMAZON_ENV["LABELVAULT_AMAZONSHIPPING_REFRESH_TOKEN"],
            "business_id": "AmazonShipping_UK",
        }
    prompted = cli(app, "carriers", "add", "amazonshipping", "--tenant", slug, "--name", "A2", *FROM,
                   input="client\nsecret-typed\ntoken-typed\n")  # fmt: skip
    assert prompted.exit_code == 0, prompted.output
    assert "secret-typed" not in prompted.output and "token-typed" not in prompted.output
    wrong = cli(app, "carriers", "add", "amazonshipping", "--tenant", slug, "--name", "A3", "--business-id", "X",
                *FROM, env=AMAZON_ENV)  # fmt: skip
    assert wrong.exit_code != 0 and "Traceback" not in wrong.output


MFN_ENV = {
    "LABELVAULT_AMAZONMFN_CLIENT_ID": "amzn1.application-oa2-client.mfn",
    "LABELVAULT_AMAZONMFN_CLIENT_SECRET": "amzn1.oa2-cs.v1.mfn-secret",
    "LABELVAULT_AMAZONMFN_REFRESH_TOKEN": "Atzr|mfn-refresh-token",
}


def test_an_amazon_merchant_fulfillment_account_is_added_with_its_region(
    app: Any, world: World, keys: KeyManager
) -> None:
    slug = world.tenant.slug
    added = cli(app, "carriers", "add", "amazonmfn", "--tenant", slug, "--name", "MFN", "--region", "eu",
                *FROM, "--api-endpoint", "http://127.0.0.1:8555", env=MFN_ENV)  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added: amazonmfn" in added.output and not any(v in added.output for v in MFN_ENV.values())
    assert "Amazon Merchant Fulfillment" in cli(app, "carriers", "list", "--tenant", slug).output
    with world.session() as s:
        account = s.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == world.tenant.id)).one()
        assert account.carrier == "amazonmfn"
        assert unseal_carrier_credentials(s, keys=keys, account=account) == {
            "client_id": MFN_ENV["LABELVAULT_AMAZONMFN_CLIENT_ID"],
            "client_secret": MFN_ENV["LABELVAULT_AMAZONMFN_CLIENT_SECRET"],
            "refresh_token": MFN_ENV["LABELVAULT_AMAZONMFN_REFRESH_TOKEN"],
            "region": "eu",
        }
    wrong = cli(app, "carriers", "add", "amazonmfn", "--tenant", slug, "--name", "M2", "--region", "xx",
                *FROM, env=MFN_ENV)  # fmt: skip
    assert wrong.exit_code != 0 and "Traceback" not in wrong.output


def test_an_amazon_shipping_account_takes_options_shows_and_changes_them(app: Any, world: World) -> None:
    slug = world.tenant.slug
    added = cli(app, "carriers", "add", "amazonshipping", "--tenant", slug, "--name", "Amazon", *FROM,
                "--option", "one_click=true", "--option", "dpi=300", env=AMAZON_ENV)  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = cli(app, "carriers", "list", "--tenant", slug).output
    assert "\tship_to_from_order=true one_click=true dpi=300" in listed
    with world.session() as s:
        account = s.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == world.tenant.id)).one()
        assert account.options == {"one_click": True, "dpi": 300}
        account_id = account.id
    shown = cli(app, "carriers", "options", str(account_id))
    assert shown.exit_code == 0 and "one_click=true\t" in shown.output and "idempotency key" in shown.output
    assert "ship_to_from_order=true (default)\t" in shown.output
    changed = cli(app, "carriers", "options", str(account_id), "--option", "ship_to_from_order=false",
                  "--option", "one_click=false")  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert f"carrier account {account_id} options set: ship_to_from_order=false one_click=false" in changed.output
    again = cli(app, "carriers", "options", str(account_id), "--option", "one_click=false")
    assert again.exit_code == 0 and "options unchanged" in again.output
    assert "ship_to_from_order=false one_click=false dpi=300" in cli(app, "carriers", "list", "--tenant", slug).output
    with world.session() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == world.tenant.id, AuditEvent.action == "carrier.options")
        ).all()
        connect = s.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == world.tenant.id, AuditEvent.action == "carrier.connect")
        ).one()
    assert [e.details["options"] for e in events] == [{"ship_to_from_order": False, "one_click": False}]  # type: ignore[index]
    assert connect.details["options"] == {"one_click": True, "dpi": 300}  # type: ignore[index]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("one_click=Atzr|leaked", "the Amazon Shipping option one_click takes true or false"),
        ("dpi=600", "the Amazon Shipping option dpi takes 203 or 300"),
        (
            "label_size=4x6",
            "has no option 'label_size' (its options: ship_to_from_order, one_click, dpi)",
        ),
        ("one_click", "--option takes NAME=VALUE"),
    ],
)
def test_a_bad_option_is_a_one_line_error_naming_it(app: Any, world: World, option: str, message: str) -> None:
    slug = world.tenant.slug
    added = cli(app, "carriers", "add", "amazonshipping", "--tenant", slug, "--name", "Amazon", *FROM,
                "--option", option, env=AMAZON_ENV)  # fmt: skip
    assert added.exit_code != 0 and message in added.output
    assert "Traceback" not in added.output and "Atzr" not in added.output
    with world.session() as s:
        assert s.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == world.tenant.id)).all() == []
    shippo = cli(app, "carriers", "add", "shippo", "--tenant", slug, "--name", "S", *FROM, "--option", "dpi=300",
                 env={"LABELVAULT_SHIPPO_API_TOKEN": TOKEN})  # fmt: skip
    assert shippo.exit_code != 0 and "Shippo has no option 'dpi' (its options: none)" in shippo.output
    added = cli(app, "carriers", "add", "shippo", "--tenant", slug, "--name", "S", *FROM,
                env={"LABELVAULT_SHIPPO_API_TOKEN": TOKEN})  # fmt: skip
    with world.session() as s:
        shippo_id = s.scalars(select(CarrierAccount.id).where(CarrierAccount.tenant_id == world.tenant.id)).one()
    changed = cli(app, "carriers", "options", str(shippo_id), "--option", option)
    assert changed.exit_code != 0 and "Traceback" not in changed.output and "Atzr" not in changed.output
    assert "Shippo takes no options" in cli(app, "carriers", "options", str(shippo_id)).output
