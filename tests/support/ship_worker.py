"""Label purchases in their own process, for the SIGKILL test: ``python -m tests.support.ship_worker ...``.

Buys a label for each of the tenant's orders in turn, each with the Idempotency-Key ``order-<id>`` (a
killed run's successor retries with the same keys, as a warehouse client would), against the fake carrier
the test runs (``--carrier shippo``, the default, or ``amazonshipping``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import select

from connectors.carriers.interfaces import CarrierError
from connectors.carriers.shipments import buy_shipment, key_hash
from tests.support.carriers import fast_amazon_carriers, fast_carriers, ship_request
from vault.db import make_engine, make_session_factory
from vault.errors import ShipmentError
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import Order


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--keyring", required=True)
    parser.add_argument("--tenant", type=int, required=True)
    parser.add_argument("--carrier", choices=("shippo", "amazonshipping"), default="shippo")
    args = parser.parse_args()
    sessions = make_session_factory(make_engine(args.db))
    keys = KeyManager(LocalKeyProvider(Path(args.keyring)))
    carriers = fast_amazon_carriers() if args.carrier == "amazonshipping" else fast_carriers()
    with sessions() as session:
        orders = list(session.scalars(select(Order).where(Order.tenant_id == args.tenant).order_by(Order.id)))
        print("ready", flush=True)  # imports done, database reached: the test's kill timer starts now
        for order in orders:
            try:
                buy_shipment(
                    session, keys=keys, carriers=carriers, tenant_id=args.tenant, client_id=None,
                    actor="client:crash", idempotency_key_hash=key_hash(f"order-{order.id}"),
                    request=ship_request(order),
                )  # fmt: skip
            except (ShipmentError, CarrierError) as exc:  # pending elsewhere, or unsettled: the next run's job
                print(type(exc).__name__, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
