"""A sync run in its own process, for the SIGKILL tests: ``python -m tests.support.sync_worker ...``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from connectors.amazon import RetryPolicy, connector_for_account
from connectors.amazon.endpoints import USAGE_PLANS
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from vault.db import make_engine, make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.marketplace_accounts import endpoint_origin
from vault.models import MarketplaceAccount


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--keyring", required=True)
    parser.add_argument("--account", type=int, required=True)
    parser.add_argument("--speedup", type=float, required=True)
    parser.add_argument("--now", required=True, help="the marketplace's (frozen) clock")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now)
    sessions = make_session_factory(make_engine(args.db))
    keys = KeyManager(LocalKeyProvider(Path(args.keyring)))
    with sessions() as session:
        account = session.get(MarketplaceAccount, args.account)
        assert account is not None
        connector = connector_for_account(
            session,
            keys=keys,
            account=account,
            limiter=RateLimiter(USAGE_PLANS, speedup=args.speedup),
            retry=RetryPolicy(attempts=8, base_delay=1.0, read_timeout=5.0),
            speedup=args.speedup,
            clock=lambda: now,
            page_size=50,
            # The test's operator allows the fake the account points at.
            endpoint_overrides={
                endpoint_origin(url) or "" for url in (account.api_endpoint, account.token_endpoint) if url
            },
        )
    print("ready", flush=True)  # imports done, database reached: the test's kill timer starts now
    summary = sync_account(sessions, keys=keys, account=args.account, connector=connector, wait=30)
    print(json.dumps(summary.as_json()), flush=True)


if __name__ == "__main__":
    main()
