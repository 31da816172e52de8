"""Run the fake Walmart standalone: ``python -m connectors.fake_walmart --port 8500 --orders 200``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .marketplace import FakeWalmart


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print where it is and the default seller's (fake) API key, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m connectors.fake_walmart", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8500, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=200, help="orders to generate for the default seller")
    parser.add_argument("--speedup", type=float, default=1.0, help="multiply every API's refill rate by this")
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated orders")
    parser.add_argument(
        "--orders-per-minute",
        type=int,
        default=None,
        help="All orders' limit instead of Walmart's documented 5000 requests a minute",
    )
    args = parser.parse_args(argv)

    limits = {"getAllOrders": args.orders_per_minute} if args.orders_per_minute else None
    fake = FakeWalmart(speedup=args.speedup, seed=args.seed, host=args.host, port=args.port, rate_limits=limits)
    if args.orders:
        fake.generate_orders(args.orders)
    fake.start()
    seller = fake.DEFAULT_SELLER
    print(f"API endpoint   {fake.base_url}")
    print(f"token URL      {fake.token_url}")
    print(f"control API    {fake.base_url}/_fake/stats")
    print(f"seller id      {seller.seller_id}")
    print(f"client id      {seller.client_id}")
    print(f"client secret  {seller.client_secret}")
    rate, burst = fake.rate_limit("getAllOrders")
    print(f"orders         {len(fake.orders())}, speedup {args.speedup:g}, All orders {burst}/min ({rate:g}/s)")
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
