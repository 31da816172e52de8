"""Run the fake marketplace standalone: ``python -m connectors.fake_amazon --port 8400 --orders 200``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .marketplace import FakeAmazon


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print where it is and the default seller's (fake) credentials, serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m connectors.fake_amazon", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8400, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=200, help="orders to generate for the default seller")
    parser.add_argument("--speedup", type=float, default=1.0, help="multiply every rate limit by this factor")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every call takes before its answer (default: 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated orders")
    parser.add_argument("--sandbox", action="store_true", help="serve only Amazon's static sandbox examples")
    args = parser.parse_args(argv)

    fake = FakeAmazon(
        speedup=args.speedup,
        seed=args.seed,
        sandbox=args.sandbox,
        host=args.host,
        port=args.port,
        latency=args.latency,
    )
    if args.orders and not args.sandbox:
        fake.generate_orders(args.orders)
    fake.start()
    seller = fake.DEFAULT_SELLER
    print(f"SP-API endpoint     {fake.base_url}")
    print(f"LWA token URL       {fake.lwa_url}")
    print(f"control API         {fake.base_url}/_fake/stats")
    print(f"selling partner id  {seller.selling_partner_id}")
    print(f"marketplace ids     {','.join(seller.marketplace_ids)}")
    print(f"client id           {seller.client_id}")
    print(f"client secret       {seller.client_secret}")
    print(f"refresh token       {seller.refresh_token}")
    print(f"orders              {len(fake.orders())}, speedup {args.speedup:g}, sandbox {args.sandbox}")
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
