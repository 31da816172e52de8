"""Run the fake eBay standalone: ``python -m connectors.fake_ebay --port 8500 --orders 200``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .marketplace import FULFILLMENT_DAILY_CALLS, FakeEbay


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print where it is and the app's and default seller's (fake) credentials, serve until
    interrupted."""
    parser = argparse.ArgumentParser(prog="python -m connectors.fake_ebay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8500, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=200, help="orders to generate for the default seller")
    parser.add_argument("--speedup", type=float, default=1.0, help="shorten every quota's day by this factor")
    parser.add_argument(
        "--daily-calls", type=int, default=FULFILLMENT_DAILY_CALLS, help="Fulfillment API calls per day"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every API and token call takes (default: 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated orders")
    args = parser.parse_args(argv)
    if args.speedup <= 0 or args.orders < 0 or args.daily_calls < 1:
        parser.error("--speedup and --daily-calls must be positive and --orders not negative")
    if not 0 <= args.latency <= 60:
        parser.error("--latency must be between 0 and 60 seconds")

    fake = FakeEbay(
        speedup=args.speedup,
        seed=args.seed,
        host=args.host,
        port=args.port,
        daily_calls=args.daily_calls,
        latency=args.latency,
    )
    if args.orders:
        fake.generate_orders(args.orders)
    fake.start()
    seller = fake.seller()
    print(f"API endpoint        {fake.base_url}")
    print(f"token URL           {fake.token_url}")
    print(f"consent URL         {fake.authorize_url}")
    print(f"control API         {fake.base_url}/_fake/stats")
    print(f"client id           {fake.app.client_id}")
    print(f"client secret       {fake.app.client_secret}")
    print(f"RuName              {fake.app.ru_name}")
    print(f"seller              {seller.username}")
    print(f"refresh token       {seller.refresh_token}")
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
