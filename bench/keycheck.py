"""API-key checks: an unknown key id against a known key id with a wrong secret, on the same database.

Both must cost the same, so that timing doesn't tell which key ids exist. Each case runs
:func:`vault.clients.authenticate` ``--n`` times per round (SQLite in a temporary directory, one tenant,
one client), ``--rounds`` rounds, the two cases taking turns; each case's fastest round counts, as timeit
advises.

``RESULT keycheck unknown_us=A wrong_secret_us=B ratio=R``: A and B are microseconds per check, R = A / B
(1.00 is the target; the database lookup dominates both).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from vault.clients import authenticate, create_client
from vault.db import make_engine, migrate
from vault.errors import InvalidApiKey
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.tenants import create_tenant


def _per_check_us(checks: list[Callable[[], None]], n: int, rounds: int) -> list[float]:
    """Microseconds per check of each case, its fastest round; the cases take turns round by round, so a
    noisy machine slows them alike."""
    best = [float("inf")] * len(checks)
    for _ in range(rounds):
        for i, check in enumerate(checks):
            start = time.perf_counter()
            for _ in range(n):
                check()
            best[i] = min(best[i], time.perf_counter() - start)
    return [b / n * 1e6 for b in best]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="checks per round and case")
    ap.add_argument("--rounds", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'keycheck.db'}")
        migrate(engine)
        keys = KeyManager(LocalKeyProvider(Path(tmp) / "keyring.json"))
        with Session(engine) as session:
            tenant = create_tenant(session, keys=keys, slug="bench", name="Bench Seller", actor="bench")
            issued = create_client(
                session, tenant=tenant, name="packing", scopes=["labels:issue"], cidrs=["10.20.0.0/24"], actor="bench"
            )
            session.commit()
            key_id = issued.key.split("_")[1]
            unknown = f"lv_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
            wrong = f"lv_{key_id}_{secrets.token_urlsafe(32)}"

            def attempt(key: str) -> Callable[[], None]:
                def run() -> None:
                    try:
                        authenticate(session, key=key)
                    except InvalidApiKey:
                        return
                    raise AssertionError("a bad key was accepted")

                return run

            _per_check_us([attempt(unknown), attempt(wrong)], 200, 1)  # warm the statement caches
            unknown_us, wrong_us = _per_check_us([attempt(unknown), attempt(wrong)], args.n, args.rounds)
        engine.dispose()
    print(f"unknown key id: {unknown_us:.1f} µs per check; wrong secret: {wrong_us:.1f} µs per check")
    ratio = unknown_us / wrong_us
    print(f"RESULT keycheck unknown_us={unknown_us:.1f} wrong_secret_us={wrong_us:.1f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
