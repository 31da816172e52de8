"""The demo: labelvault's main job end to end on the embedded defaults.

SQLite and a local keyring under ``instance/demo/`` (made fresh each run), the bundled fake Amazon
marketplace on loopback, then: connect a seller's Amazon accounts (one per region), sync their orders into the vault,
give a packing station an API key, and fetch a shipping label through the HTTP API as JSON, ZPL and PDF,
every release in the audit chain; then connect the bundled fake Shippo carrier and buy the carrier's own
label for an order from a carrier-label-only station, which never sees the address. Run it with
``./scripts/demo`` (or ``python -m app.demo``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from app import create_app
from app.settings import ROOT
from connectors.amazon import API_V2026, LwaCredentials
from connectors.amazon.accounts import connect_amazon_account
from connectors.amazon.marketplaces import MARKETPLACES
from connectors.amazon.marketplaces import label as marketplace_label
from connectors.carriers.registry import SHIPPO
from connectors.ebay.accounts import EbayApp, connect_ebay_account
from connectors.fake_amazon import FakeAmazon
from connectors.fake_ebay import FakeEbay
from connectors.fake_shippo import DEFAULT_TOKEN as SHIPPO_TOKEN
from connectors.fake_shippo import FakeShippo
from connectors.fake_shopify import FakeShopify
from connectors.fake_tiktok import FakeTikTok
from connectors.fake_walmart import FakeWalmart
from connectors.registry import connector_for_account
from connectors.shopify.accounts import connect_shopify_account
from connectors.shopify.tokens import ShopifyToken
from connectors.sync import SyncProgress, sync_account
from connectors.tiktok.accounts import connect_tiktok_account
from connectors.walmart.accounts import connect_walmart_account
from connectors.walmart.client import WalmartCredentials
from printagent.demo import print_via_agent
from vault.audit import chain_for, verify_chain
from vault.carrier_accounts import connect_carrier_account
from vault.clients import SHIPMENTS_BUY, create_client
from vault.db import migrate
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy
from vault.models import LabelRecordRow, MarketplaceAccount, Order, Tenant
from vault.tenants import create_tenant, set_return_address

#: How the audit chain names the demo's own administration (the tenant, the account, the client).
DEMO_ACTOR = "operator:demo"
#: The demo seller's warehouse, where its parcels leave from (the fake carrier quotes US domestic rates).
DEMO_SHIP_FROM = {"name": "Demo Cross-Border Trading", "street1": "215 Clayton St.", "city": "San Francisco",
                  "state": "CA", "postal_code": "94117", "country_code": "US"}  # fmt: skip


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """The app on a loopback port in a background thread, as a warehouse would reach it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


class _More:
    """The optional marketplaces (``--all-marketplaces``): eBay, TikTok Shop and Walmart, each on its fake."""

    def __init__(self, stack: ExitStack) -> None:
        self.ebay = stack.enter_context(FakeEbay(speedup=500, seed=7))
        self.tiktok = stack.enter_context(FakeTikTok(speedup=500, seed=7))
        self.walmart = stack.enter_context(FakeWalmart(speedup=500, seed=7))

    @property
    def origins(self) -> list[str]:
        return [self.ebay.base_url, self.tiktok.base_url, self.walmart.base_url]

    def connect(self, s: Session, *, keys: KeyManager, tenant_id: int, orders: int, overrides: Any) -> list[int]:
        """Orders on each fake, then one account per platform connected as a seller would (audited)."""
        self.ebay.generate_orders(orders)
        self.tiktok.generate_orders(orders, platform_shipped_every=4)
        self.walmart.generate_orders(orders)
        app = self.ebay.app
        ebay = connect_ebay_account(
            s, keys=keys, tenant_id=tenant_id, name="eBay US", marketplace_ids=["EBAY_US"],
            app=EbayApp(app.client_id, app.client_secret, app.ru_name), code=self.ebay.consent_code(),
            api_endpoint=self.ebay.base_url, token_endpoint=self.ebay.token_url, endpoint_overrides=overrides,
            actor=DEMO_ACTOR,
        )  # fmt: skip
        tiktok = connect_tiktok_account(
            s, keys=keys, tenant_id=tenant_id, name="TikTok Shop", app_key=self.tiktok.app.app_key,
            app_secret=self.tiktok.app.app_secret, auth_code=self.tiktok.authorize(),
            api_endpoint=self.tiktok.base_url, token_endpoint=self.tiktok.auth_url, endpoint_overrides=overrides,
            actor=DEMO_ACTOR,
        )  # fmt: skip
        seller = self.walmart.DEFAULT_SELLER
        walmart = connect_walmart_account(
            s, keys=keys, tenant_id=tenant_id, name="Walmart US",
            credentials=WalmartCredentials(seller.client_id, seller.client_secret),
            api_endpoint=self.walmart.base_url, endpoint_overrides=overrides, actor=DEMO_ACTOR,
        )  # fmt: skip
        return [ebay.id, tiktok.id, walmart.id]


def run(instance: Path, orders: int, *, all_marketplaces: bool = False) -> int:
    """The demo, with the fake Shippo carrier and Shopify serving throughout (and, if asked, eBay, TikTok Shop
    and Walmart)."""
    with ExitStack() as stack:
        shippo = stack.enter_context(FakeShippo())
        shopify = stack.enter_context(FakeShopify(speedup=500, seed=7))
        more = _More(stack) if all_marketplaces else None
        return _run(instance, orders, shippo, shopify, more)


def _run(instance: Path, orders: int, shippo: FakeShippo, shopify: FakeShopify, more: _More | None) -> int:
    for noisy in ("alembic", "werkzeug"):  # the demo narrates; migration and request chatter is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    shutil.rmtree(instance, ignore_errors=True)
    out = instance / "labels"
    out.mkdir(parents=True)

    step(f"starting the fake Amazon marketplace with {orders} orders (US, GB, DE, FR, JP, CN buyers)")
    with FakeAmazon(speedup=500, seed=7) as fake:
        fake.generate_orders(orders)
        seller = fake.DEFAULT_SELLER
        print(f"SP-API {fake.base_url}   LWA {fake.lwa_url}")
        # The operator allows the fake's origin: a tenant could not point an account at it.
        overrides = ",".join([fake.base_url, shippo.base_url, shopify.base_url, *(more.origins if more else [])])
        settings = {"instance_path": instance, "env": "development", "marketplace_endpoint_overrides": overrides}
        app = create_app(settings)
        svc = app.extensions["labelvault"]

        step("labelvault: setting up the vault (SQLite + local keyring)")
        migrate(svc.engine)
        keys = svc.keys
        print(f"database  {svc.settings.database_url}")
        print(f"keyring   {svc.settings.keyring_path} (mode 0600), root key {keys.provider.current_key_id()}")

        step("connecting the seller's Amazon accounts, one per region (credentials checked, then sealed)")
        by_region: dict[str, list[str]] = {}
        for marketplace_id in seller.marketplace_ids:
            by_region.setdefault(MARKETPLACES[marketplace_id].region, []).append(marketplace_id)
        with svc.sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="demo-seller", name="Demo Cross-Border Trading", actor=DEMO_ACTOR)
            set_return_address(
                s, tenant=tenant, name="Demo Cross-Border Trading", country_code="CN", actor=DEMO_ACTOR,
                lines=["Bldg 3, 88 Keyuan Rd", "Nanshan District, Shenzhen 518057"],
            )  # fmt: skip
            account_ids = []
            for region, ids in by_region.items():
                account = connect_amazon_account(
                    s,
                    keys=keys,
                    tenant_id=tenant.id,
                    name=f"Amazon {region.upper()}",
                    region=region,
                    api_version=API_V2026,
                    marketplace_ids=ids,
                    credentials=LwaCredentials(seller.client_id, seller.client_secret, seller.refresh_token),
                    sp_api_endpoint=fake.base_url,
                    lwa_endpoint=fake.lwa_url,
                    endpoint_overrides=svc.settings.endpoint_overrides,
                    actor=DEMO_ACTOR,
                )
                account_ids.append(account.id)
                print(f"account {account.id} ({region}): {', '.join(marketplace_label(m) for m in ids)}")
            s.commit()
            tenant_id = tenant.id

        for account_id in account_ids:
            step(f"syncing account {account_id}'s orders into the vault")
            with svc.sessions() as s:
                acc = s.get(MarketplaceAccount, account_id)
                assert acc is not None
                connector = connector_for_account(
                    s, keys=keys, account=acc, speedup=500, endpoint_overrides=svc.settings.endpoint_overrides
                )

            def show(p: SyncProgress) -> None:
                print(f"  page {p.pages}: {p.orders} orders so far", flush=True)

            try:
                summary = sync_account(svc.sessions, keys=keys, account=account_id, connector=connector, progress=show)
            finally:
                connector.close()
            print(
                f"orders: {summary.orders_new} new, {summary.orders_updated} updated, "
                f"{summary.orders_unchanged} unchanged | calls {summary.calls}, throttled {summary.throttled} | "
                f"{summary.seconds:.1f} s"
            )

    step(f"a second marketplace: the seller's Shopify shop (the fake Admin GraphQL API) with {orders // 2} orders")
    shopify.generate_orders(orders // 2)
    extra_ids: list[int] = []
    with svc.sessions() as s:
        if more is not None:
            extra_ids = more.connect(
                s, keys=keys, tenant_id=tenant_id, orders=orders // 2, overrides=svc.settings.endpoint_overrides
            )
        shop_account = connect_shopify_account(
            s, keys=keys, tenant_id=tenant_id, name="Shopify store", shop=shopify.DEFAULT_SHOP.domain,
            token=ShopifyToken(shopify.DEFAULT_TOKEN), api_endpoint=shopify.base_url,
            endpoint_overrides=svc.settings.endpoint_overrides, actor=DEMO_ACTOR,
        )  # fmt: skip
        s.commit()
        shop_account_id = shop_account.id
        connector = connector_for_account(
            s, keys=keys, account=shop_account, speedup=500, endpoint_overrides=svc.settings.endpoint_overrides
        )
    print(f"account {shop_account_id} (shopify): {shopify.DEFAULT_SHOP.domain}, Admin API token checked, then sealed")
    try:
        summary = sync_account(svc.sessions, keys=keys, account=shop_account_id, connector=connector)
    finally:
        connector.close()
    print(f"orders: {summary.orders_new} new | GraphQL calls {summary.calls}, throttled {summary.throttled}")
    for account_id in extra_ids:
        with svc.sessions() as s:
            acc = s.get_one(MarketplaceAccount, account_id)
            name, platform = acc.name, acc.marketplace
            connector = connector_for_account(
                s, keys=keys, account=acc, speedup=500, endpoint_overrides=svc.settings.endpoint_overrides
            )
        try:
            summary = sync_account(svc.sessions, keys=keys, account=account_id, connector=connector)
        finally:
            connector.close()
        print(f"{name} ({platform}): {summary.orders_new} orders synced in {summary.calls} calls")

    with svc.sessions() as s:
        sealed = s.scalars(select(LabelRecordRow).limit(1)).one()
        order = s.scalars(
            select(Order)
            .join(LabelRecordRow)
            .where(Order.tenant_id == tenant_id, Order.status == "unshipped")
            .order_by((Order.marketplace_id == "A1VC38T7YXB528").desc(), Order.id)  # a Japanese order if any
            .limit(1)
        ).one()
        shop_order = s.scalars(
            select(Order)
            .join(LabelRecordRow)
            .where(Order.account_id == shop_account_id, Order.status == "unshipped")
            .order_by(Order.id)
            .limit(1)
        ).one()
        shop_ref = (shop_order.marketplace, shop_order.external_order_id)
        extra_refs = [
            (o.marketplace, o.external_order_id)
            for account_id in extra_ids
            for o in s.scalars(
                select(Order)
                .join(LabelRecordRow)
                .where(Order.account_id == account_id, Order.status == "unshipped")
                .order_by(Order.id)
                .limit(1)
            )
        ]
        wave = [
            f"{o.marketplace}:{o.external_order_id}"
            for o in s.scalars(
                select(Order)
                .join(LabelRecordRow)
                .where(Order.tenant_id == tenant_id, Order.status == "unshipped", Order.id != order.id)
                .order_by(Order.id)
                .limit(3)
            )
        ]
        print(f"sealed label record: {len(sealed.envelope)} bytes of AES-256-GCM envelope, no plaintext stored")

        step("issuing an API key to a packing station allowed from 127.0.0.1 only")
        issued = create_client(
            s, tenant=s.get_one(Tenant, tenant_id), name="packing-station-1", scopes=["labels:issue"],
            cidrs=["127.0.0.1/32"], actor=DEMO_ACTOR,
        )  # fmt: skip
        s.commit()
        key, marketplace, order_id = issued.key, order.marketplace, order.external_order_id
        print(f"client packing-station-1, key {key[:12]}… (shown once, stored only as a hash)")

    step(f"the packing station asks the label API for order {order_id}")
    with serve(app) as base, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        url = f"/v1/labels/{marketplace}/{order_id}"
        refused = httpx.get(base + url)
        print(f"GET {url} without a key -> {refused.status_code} {refused.headers['content-type']}")
        label = http.get(url, headers={"Accept": "application/json"})
        label.raise_for_status()
        print(f"GET {url} -> {label.status_code}, Cache-Control: {label.headers.get('cache-control')}")
        print("\n".join("   " + line for line in label.json().get("address_lines", [])))
        files = {}
        for fmt, suffix in (("zpl", "zpl"), ("pdf", "pdf")):
            r = http.get(url, params={"format": fmt})
            r.raise_for_status()
            path = out / f"{order_id}.{suffix}"
            path.write_bytes(r.content)
            files[fmt] = path

        shop_url = f"/v1/labels/{shop_ref[0]}/{shop_ref[1]}"
        shop_label = http.get(shop_url, params={"format": "zpl"})
        shop_label.raise_for_status()
        files["shopify"] = out / f"shopify-{shop_ref[1]}.zpl"
        files["shopify"].write_bytes(shop_label.content)
        print(f"GET {shop_url}?format=zpl -> {shop_label.status_code}: the Shopify order's label, same API, same audit")
        for platform, extra_id in extra_refs:
            extra = http.get(f"/v1/labels/{platform}/{extra_id}", params={"format": "zpl"})
            extra.raise_for_status()
            (out / f"{platform}-{extra_id}.zpl").write_bytes(extra.content)
            print(f"GET /v1/labels/{platform}/{extra_id}?format=zpl -> {extra.status_code}")

    step("connecting the seller's Shippo account (the fake carrier): the vault buys carrier labels itself")
    with svc.sessions() as s:
        carrier = connect_carrier_account(
            s, keys=keys, tenant_id=tenant_id, carrier=SHIPPO.code, name="Shippo", test_mode=True,
            secrets={"api_token": SHIPPO_TOKEN}, ship_from=DEMO_SHIP_FROM, api_endpoint=shippo.base_url,
            endpoints=EndpointPolicy(api=SHIPPO.api_hosts, overrides=svc.settings.endpoint_overrides),
            actor=DEMO_ACTOR,
        )  # fmt: skip
        station = create_client(
            s, tenant=s.get_one(Tenant, tenant_id), name="shipping-station-1", scopes=["labels:issue", SHIPMENTS_BUY],
            cidrs=["127.0.0.1/32"], actor=DEMO_ACTOR,
        )  # fmt: skip
        s.commit()
        print(f"carrier account {carrier.id}: Shippo (test mode) at {shippo.base_url}")
        print("client shipping-station-1: carrier labels only (the default once a carrier is configured)")

    step(f"the shipping station buys the carrier's label for order {order_id}")
    with serve(app) as base, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {station.key}"}) as http:
        denied = http.get(f"/v1/labels/{marketplace}/{order_id}")
        kind = denied.json()["type"].rsplit("/", 1)[-1]
        print(f"GET /v1/labels/{marketplace}/{order_id} -> {denied.status_code} {kind}: it never reads the address")
        body = {"marketplace": marketplace, "order_id": order_id, "service": "cheapest", "format": "pdf",
                "parcel": {"weight_g": 850, "length_mm": 300, "width_mm": 200, "height_mm": 120}}  # fmt: skip
        bought = http.post("/v1/shipments", json=body, headers={"Idempotency-Key": f"demo-{order_id}"})
        bought.raise_for_status()
        shipment = bought.json()
        cost = shipment["cost"]
        print(f"POST /v1/shipments -> {bought.status_code}: {shipment['provider']} {shipment['service']}, "
              f"tracking {shipment['tracking_number']}, {cost['amount']} {cost['currency']}")  # fmt: skip
        again = http.post("/v1/shipments", json=body, headers={"Idempotency-Key": f"demo-{order_id}"})
        times = sum(shippo.purchases_by_metadata().values())
        print(f"the same request again -> shipment {again.json()['id']}; the carrier sold {times} label")
        printed = http.get(f"/v1/shipments/{shipment['id']}/label")
        printed.raise_for_status()
        files["carrier"] = out / f"{order_id}-carrier.pdf"
        files["carrier"].write_bytes(printed.content)

    step(f"the packing station scans {len(wave)} more orders: labelvault-print sends each to its Zebra printer")
    with serve(app) as base:
        print(print_via_agent(base, key, wave, out=sys.stdout))

    with svc.sessions() as s:
        report = verify_chain(s, chain=chain_for(tenant_id))
    step("done")
    state = "intact" if report.ok else f"BROKEN: {report.reason}"
    print(f"audit chain of demo-seller: {report.checked} events, {state}")
    print(f"ZPL label (Zebra, 203 dpi): {files['zpl']}")
    print(f"Shopify order (ZPL):        {files['shopify']}")
    print(f"PDF label (4x6 in):         {files['pdf']}")
    print(f"carrier label (Shippo PDF): {files['carrier']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instance", type=Path, default=ROOT / "instance" / "demo", help="demo folder (made fresh)")
    ap.add_argument("--orders", type=int, default=60, help="orders the fake marketplace generates")
    ap.add_argument(
        "--all-marketplaces", action="store_true", help="also sync eBay, TikTok Shop and Walmart (each on its fake)"
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    code = run(args.instance, args.orders, all_marketplaces=args.all_marketplaces)
    print(f"(demo took {time.perf_counter() - t0:.1f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
