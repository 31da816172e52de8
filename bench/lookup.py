"""Person-lookup benchmark: find one person's orders by phone through the blind index, against decrypting
every record of the tenant to find the same person, in the same run on the same vault.

``python -m bench.lookup [--orders 1000000] [--lookups 200] [--database sqlite|URL]``

The vault is built fast, not through the sync: orders, sealed label records (one envelope per record,
sealed under the tenant key exactly as vault/labels.py seals them) and their blind-index entries are
inserted in bulk, 20,000 rows a transaction. The buyers are numbered people, each with three orders on
three marketplaces and two accounts of one, names drawn from a small pool (so names collide, as in life),
each with their own phone. A lookup gives the phone in another format than stored and opens only the
records the index matched; the scan opens every record, normalises its phone and compares.

Building 1,000,000 orders takes a few minutes (sealing and the phone normalisation dominate), the scan
about as long again. The last line: ``RESULT lookup orders=… p50_ms=… p99_ms=… vs_scan=…``
(targets p50 ≤ 5 ms, vs_scan ≥ 1000; vs_scan is the scan's time over the lookup's p50).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from vault.blind_index import PersonValues, digest, find_label_records, matches, normalise_phone, record_terms
from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import BlindIndexEntry, LabelRecordRow, MarketplaceAccount, Order
from vault.records import LABEL_SCHEMA_VERSION, LabelRecord
from vault.sealed import LABEL_RECORDS
from vault.tenants import create_tenant

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
MARKETPLACES = (("amazon", "JP store"), ("amazon", "US store"), ("shopify", "shop"), ("tiktok", "TikTok JP"))
FAMILY = ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato")
GIVEN = ("Hiroshi", "Yuki", "Akira", "Naoko", "Kenji", "Emi", "Takeshi", "Mai", "Satoshi", "Aiko", "Daisuke")
CHUNK = 20_000


def person_label(person: int) -> LabelRecord:
    """The ``person``-th buyer: a pooled name, their own mobile number (stored in national format), a postcode."""
    return LabelRecord(
        name=f"{FAMILY[person % len(FAMILY)]} {GIVEN[(person // len(FAMILY)) % len(GIVEN)]}",
        address_line1=f"{person % 97 + 1}-{person % 13 + 1} Jingumae",
        city="Shibuya-ku",
        postal_code=f"{150 + person % 50:03d}-{person % 10000:04d}",
        country_code="JP",
        phone=f"090-{person // 10000 % 10000:04d}-{person % 10000:04d}",
    )


def build(session: Session, keys: KeyManager, orders: int) -> int:
    """A tenant with ``orders`` sealed, indexed orders (three per person); returns the tenant id."""
    tenant = create_tenant(session, keys=keys, slug="bench-lookup", name="Lookup Seller", actor="bench")
    accounts = []
    for marketplace, name in MARKETPLACES:
        account = MarketplaceAccount(
            tenant_id=tenant.id, marketplace=marketplace, name=name, region="global", api_version="bench",
            marketplace_ids=[name],
        )  # fmt: skip
        session.add(account)
        accounts.append(account)
    session.commit()
    index_key = keys.index_keys.active(session, tenant.id)
    started = time.perf_counter()
    for start in range(0, orders, CHUNK):
        order_rows, record_rows, entry_rows = [], [], []
        for j in range(start, min(orders, start + CHUNK)):
            person, nth = divmod(j, 3)
            account = accounts[nth if nth < 2 else 2 + person % 2]  # three marketplaces, two Amazon accounts
            order_id = f"L-{j:08d}"
            order_rows.append(
                {"id": j + 1, "tenant_id": tenant.id, "account_id": account.id, "marketplace": account.marketplace,
                 "external_order_id": order_id, "status": "unshipped", "purchased_at": T0, "last_updated_at": T0}
            )  # fmt: skip
            label = person_label(person)
            context = LABEL_RECORDS.context(
                tenant.id, account.id, account.marketplace, order_id, LABEL_SCHEMA_VERSION, 1
            )
            sealed, version = keys.seal(session, tenant.id, context, label.to_bytes())
            record_rows.append(
                {"id": j + 1, "order_id": j + 1, "tenant_id": tenant.id, "schema_version": LABEL_SCHEMA_VERSION,
                 "tenant_key_version": version, "envelope": sealed}
            )  # fmt: skip
            entry_rows.extend(
                {"tenant_id": tenant.id, "label_record_id": j + 1, "index_version": index_key.version,
                 "term": term, "digest": digest(index_key.key, term, value)}
                for term, value in record_terms(label).items()
            )  # fmt: skip
        session.execute(insert(Order), order_rows)
        session.execute(insert(LabelRecordRow), record_rows)
        session.execute(insert(BlindIndexEntry), entry_rows)
        session.commit()
        done = min(orders, start + CHUNK)
        if done % 200_000 == 0 or done == orders:
            print(f"built {done} orders in {time.perf_counter() - started:.0f} s", flush=True)
    return tenant.id


def _records(session: Session, tenant_id: int, order_ids: list[int] | None):  # type: ignore[no-untyped-def]
    """The tenant's orders with their sealed records, in one query (all of them, or ``order_ids``)."""
    query = (
        select(
            Order.id, Order.account_id, Order.marketplace, Order.external_order_id,
            LabelRecordRow.version, LabelRecordRow.schema_version, LabelRecordRow.envelope,
        )
        .join(LabelRecordRow, LabelRecordRow.order_id == Order.id)
        .where(Order.tenant_id == tenant_id)
    )  # fmt: skip
    if order_ids is not None:
        query = query.where(Order.id.in_(order_ids))
    return session.execute(query.execution_options(yield_per=10_000))


def _open(session: Session, keys: KeyManager, tenant_id: int, row: Any) -> LabelRecord:
    context = LABEL_RECORDS.context(
        tenant_id, row.account_id, row.marketplace, row.external_order_id, row.schema_version, row.version
    )
    return LabelRecord.from_bytes(keys.open(session, tenant_id, context, row.envelope))


def lookup(session: Session, keys: KeyManager, tenant_id: int, phone: str) -> list[int]:
    """Find the person by phone through the index and open (only) the matched records, re-checking each."""
    person = PersonValues(phone=phone, phone_region="JP")
    found = find_label_records(session, index_keys=keys.index_keys, tenant_id=tenant_id, person=person)
    return sorted(
        row.id for row in _records(session, tenant_id, found) if matches(_open(session, keys, tenant_id, row), person)
    )


def scan(session: Session, keys: KeyManager, tenant_id: int, phone: str) -> list[int]:
    """Find the same person the only way without an index: open every record of the tenant and compare."""
    wanted = normalise_phone(phone, "JP")
    found = []
    for row in _records(session, tenant_id, None):
        record = _open(session, keys, tenant_id, row)
        if normalise_phone(record.phone, record.country_code) == wanted:
            found.append(row.id)
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lookup", description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--database", default="sqlite", help="sqlite (a fresh temporary file) or a database URL")
    args = parser.parse_args()
    if args.orders < 3 or args.lookups < 1:
        parser.error("--orders must be at least 3 and --lookups at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'lookup.db'}" if args.database == "sqlite" else args.database
        engine = make_engine(url)
        migrate(engine)
        sessions = make_session_factory(engine)
        keys = KeyManager(LocalKeyProvider(Path(tmp) / "keyring.json"), max_uses=10**9)
        with sessions() as session:
            tenant_id = build(session, keys, args.orders)
            people = args.orders // 3
            rng = random.Random(19)
            chosen = [rng.randrange(people) for _ in range(args.lookups)]
            timings = []
            for person in chosen:
                phone = f"+81 90 {person // 10000 % 10000:04d} {person % 10000:04d}"  # stored as 090-…-…
                began = time.perf_counter()
                found = lookup(session, keys, tenant_id, phone)
                timings.append(time.perf_counter() - began)
                assert found == [3 * person + 1, 3 * person + 2, 3 * person + 3], (person, found)
            timings.sort()
            p50 = statistics.median(timings)
            p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
            target = chosen[0]
            phone = f"+81 90 {target // 10000 % 10000:04d} {target % 10000:04d}"
            began = time.perf_counter()
            scanned = scan(session, keys, tenant_id, phone)
            scan_seconds = time.perf_counter() - began
            assert scanned == lookup(session, keys, tenant_id, phone), "the scan and the index disagree"
        engine.dispose()
    print(f"lookups: {args.lookups}, each finding 3 orders of one person; scan: {scan_seconds:.1f} s")
    print(
        f"RESULT lookup orders={args.orders} p50_ms={p50 * 1000:.2f} p99_ms={p99 * 1000:.2f} "
        f"vs_scan={scan_seconds / p50:.0f}"
    )


if __name__ == "__main__":
    main()
