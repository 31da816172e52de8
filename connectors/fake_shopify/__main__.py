"""Run the fake Shopify standalone: ``python -m connectors.fake_shopify --port 8500 --orders 200``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .shop import FakeShopify


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print where it is and the default shop's (fake) credentials, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m connectors.fake_shopify", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8500, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=200, help="orders to generate for the default shop")
    parser.add_argument("--speedup", type=float, default=1.0, help="multiply every bucket's restore rate by this")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every GraphQL and token call takes (default: 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated orders")
    args = parser.parse_args(argv)
    if args.speedup <= 0 or args.orders < 0:
        parser.error("--speedup must be positive and --orders not negative")
    if not 0 <= args.latency <= 60:
        parser.error("--latency must be between 0 and 60 seconds")

    fake = FakeShopify(speedup=args.speedup, seed=args.seed, host=args.host, port=args.port, latency=args.latency)
    if args.orders:
        fake.generate_orders(args.orders)
    fake.start()
    app = fake.DEFAULT_APP
    print(f"GraphQL endpoint    {fake.graphql_url}")
    print(f"OAuth authorize     {fake.base_url}/admin/oauth/authorize")
    print(f"control API         {fake.base_url}/_fake/stats")
    print(f"shop                {fake.DEFAULT_SHOP.domain}")
    print(f"admin API token     {fake.DEFAULT_TOKEN}")
    print(f"public app id       {app.client_id}")
    print(f"public app secret   {app.client_secret}")
    print(f"orders              {len(fake.orders())}, speedup {args.speedup:g}, latency {args.latency:g} s")
    print("Ctrl-C to stop.", flush=True)

    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
