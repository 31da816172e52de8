"""A sync run in its own process, for the SIGKILL tests: ``python -m tests.support.sync_worker ...``.

The connector is built as the account's platform harness builds one from the stored account alone
(tests.support.contract.Harness.worker_connector), so the same worker serves every platform's test.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from connectors.sync import sync_account
from tests.support.harnesses import harness
from vault.db import make_engine, make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
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
        connector = harness(account.marketplace).worker_connector(session, keys, account, speedup=args.speedup, now=now)
    print("ready", flush=True)  # imports done, database reached: the test's kill timer starts now
    summary = sync_account(sessions, keys=keys, account=args.account, connector=connector, wait=30)
    print(json.dumps(summary.as_json()), flush=True)


if __name__ == "__main__":
    main()
