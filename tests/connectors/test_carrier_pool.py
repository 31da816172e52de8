"""The carrier pool: one client per account, reused; a new one when the account's credentials or endpoint
change, the old one closed once its last borrower gives it back."""

from __future__ import annotations

from typing import Any

from connectors.carriers.interfaces import Carrier
from connectors.carriers.pool import CarrierPool
from vault.models import CarrierAccount


class _Client:
    """A carrier client that only counts (the pool never calls the carrier itself)."""

    carrier = "shippo"
    purchase_rate = 5.0

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def label(self, purchase: Any) -> Any:
        return ("label", self.secrets["api_token"])


def _token(client: Carrier) -> Any:
    """Which credentials the client behind a borrow was built with."""
    return client.label(None)[1]  # type: ignore[arg-type,index]


def _account(account_id: int = 1, endpoint: str | None = "http://127.0.0.1:1") -> CarrierAccount:
    return CarrierAccount(id=account_id, tenant_id=1, carrier="shippo", name="S", api_endpoint=endpoint, ship_from={})


def _pool() -> tuple[CarrierPool, list[_Client]]:
    built: list[_Client] = []

    def build(account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        client = _Client(secrets)
        built.append(client)
        return client  # type: ignore[return-value]

    return CarrierPool(build), built


def test_one_client_per_account_is_reused_and_borrowing_never_closes_it() -> None:
    pool, built = _pool()
    for _ in range(3):
        borrowed = pool(_account(), {"api_token": "t1"})
        assert _token(borrowed) == "t1"
        assert getattr(borrowed, "purchase_rate", None) == 5.0
        borrowed.close()
        borrowed.close()  # idempotent
    pool(_account(2), {"api_token": "t1"}).close()
    assert len(built) == 2 and pool.clients() == 2 and [c.closed for c in built] == [0, 0]
    pool.close()
    assert [c.closed for c in built] == [1, 1]


def test_new_credentials_or_endpoint_get_a_new_client_and_the_old_one_closes_after_its_last_borrower() -> None:
    pool, built = _pool()
    held = pool(_account(), {"api_token": "t1"})
    rotated = pool(_account(), {"api_token": "t2"})  # the credentials were rotated
    assert len(built) == 2 and _token(rotated) == "t2"
    assert built[0].closed == 0  # still in use by ``held``
    assert _token(held) == "t1"
    held.close()
    assert built[0].closed == 1 and built[1].closed == 0
    rotated.close()
    moved = pool(_account(endpoint="http://127.0.0.1:2"), {"api_token": "t2"})
    assert len(built) == 3 and built[1].closed == 1  # idle when replaced: closed at once
    moved.close()
    assert pool.clients() == 1
