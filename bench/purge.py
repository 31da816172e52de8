"""Purge of 1,000,000 due orders on PostgreSQL vs. a plain ``DELETE`` of the same label records.

Both runs start from the same freshly loaded, vacuumed tables in a schema of their own (dropped at the end):
one tenant, one account, ``--rows`` orders past their retention deadline, each with a label record holding a
dummy 304-byte envelope (the purge never decrypts, so real ciphertext would change nothing).

- purge: :func:`vault.retention.purge_due` as ``flask vault purge`` runs it: committed batches that claim
  orders with a conditional UPDATE (SKIP LOCKED), delete their label records, keep the stubs with
  ``erased_at`` and append one audit receipt per batch;
- baseline: a plain ``DELETE`` of the same due orders in one transaction, no stubs, no audit: their label
  records first (the foreign key requires it), then the order rows;
- for reference: a ``DELETE`` of the label records alone (also printed; the purge can't approach it, as
  stamping a million order stubs is itself an UPDATE of a million indexed rows).

``RESULT purge rows=N seconds=S vs_delete=X``: S is the purge's wall time, X = purge time / baseline time
(lower is better, target ≤ 3).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from vault import retention
from vault.db import make_engine, migrate

POSTGRES_URL = os.environ.get(
    "LABELVAULT_BENCH_POSTGRES_URL",
    os.environ.get("LABELVAULT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
T0 = datetime(2026, 9, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=90)


def populate(engine: Engine, rows: int) -> None:
    """Load ``rows`` due orders and their label records (INSERT ... SELECT generate_series), then VACUUM."""
    with engine.begin() as c:
        c.execute(
            text(
                "TRUNCATE label_records, audit_events, audit_heads, orders, marketplace_accounts, tenant_keys,"
                " tenants CASCADE"
            )
        )
        c.execute(
            text("INSERT INTO tenants (id, slug, name, created_at) VALUES (1, 'bench', 'Bench Seller', :t)"), {"t": T0}
        )
        c.execute(
            text(
                "INSERT INTO marketplace_accounts (id, tenant_id, marketplace, name, region, api_version,"
                " marketplace_ids, sandbox, sync_interval_seconds, created_at)"
                " VALUES (1, 1, 'amazon', 'JP', 'fe', '2026-01-01',"
                " '[\"A1VC38T7YXB528\"]', false, 900, :t)"
            ),
            {"t": T0},
        )
        c.execute(
            text(
                "INSERT INTO orders (tenant_id, account_id, marketplace, marketplace_id, external_order_id, status,"
                " fulfillment_channel, purchased_at, last_updated_at, ship_by, latest_delivery_at, delivered_at,"
                " retention_until, labels_issued, created_at, updated_at)"
                " SELECT 1, 1, 'amazon', 'A1VC38T7YXB528',"
                "  '503-' || lpad((g / 10000000)::text, 7, '0') || '-' || lpad((g % 10000000)::text, 7, '0'),"
                "  'shipped', 'MFN', :t, :t, :t + interval '2 days', :t + interval '7 days', :t + interval '5 days',"
                "  :t + interval '35 days' + (g % 86400) * interval '1 second', 1, :t, :t"
                " FROM generate_series(1, :n) AS g"
            ),
            {"t": T0, "n": rows},
        )
        c.execute(
            text(
                "INSERT INTO label_records (order_id, tenant_id, version, source, schema_version,"
                " tenant_key_version, envelope, created_at)"
                " SELECT id, 1, 1, 'marketplace', 1, 1, decode(repeat(md5(id::text), 19), 'hex'), :t FROM orders"
            ),
            {"t": T0},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE orders, label_records"))  # this schema's tables only (search_path)


def timed_delete(engine: Engine, rows: int, *, with_orders: bool) -> float:
    """Reload, then delete the due rows with plain DELETEs in one transaction; returns the seconds taken."""
    populate(engine, rows)
    due = "SELECT id FROM orders WHERE erased_at IS NULL AND retention_until <= :now"
    t = time.perf_counter()
    with engine.begin() as c:
        deleted = c.execute(text(f"DELETE FROM label_records WHERE order_id IN ({due})"), {"now": NOW}).rowcount
        if with_orders:
            deleted = c.execute(
                text("DELETE FROM orders WHERE erased_at IS NULL AND retention_until <= :now"), {"now": NOW}
            ).rowcount
    seconds = time.perf_counter() - t
    assert deleted == rows, deleted
    return seconds


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as c:
        return int(c.execute(text(sql)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="due orders to erase (default 1,000,000)")
    parser.add_argument("--batch-size", type=int, default=5000, help="purge batch size (default 5000)")
    args = parser.parse_args()

    schema = f"bench_purge_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(engine)

        t = time.perf_counter()
        populate(engine, args.rows)
        print(f"loaded {args.rows} due orders with label records in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            result = retention.purge_due(session, now=NOW, batch_size=args.batch_size)
        purge_s = time.perf_counter() - t
        assert result.erased == args.rows, result.erased
        assert count(engine, "SELECT count(*) FROM label_records") == 0
        assert count(engine, "SELECT count(*) FROM orders WHERE erased_at IS NULL") == 0
        print(f"purge: {result.erased} erased in {result.batches} batches, {purge_s:.2f} s", flush=True)

        delete_s = timed_delete(engine, args.rows, with_orders=True)
        print(f"baseline: plain DELETE of {args.rows} due orders and their label records, {delete_s:.2f} s")
        labels_only_s = timed_delete(engine, args.rows, with_orders=False)
        print(
            f"reference: plain DELETE of the label records alone, {labels_only_s:.2f} s"
            f" (purge / that = {purge_s / labels_only_s:.1f})",
            flush=True,
        )
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    print(f"RESULT purge rows={args.rows} seconds={purge_s:.1f} vs_delete={purge_s / delete_s:.2f}")


if __name__ == "__main__":
    main()
