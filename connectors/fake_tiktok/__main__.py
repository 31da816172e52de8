"""Run the fake TikTok Shop standalone: ``python -m connectors.fake_tiktok --port 8410 --orders 200``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .marketplace import FakeTikTok


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print where it is, the (fake) app credentials and a fresh auth code; serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m connectors.fake_tiktok", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8410, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=200, help="orders to generate in the first shop")
    parser.add_argument("--platform-shipped-every", type=int, default=5, help="every k-th order ships with TikTok")
    parser.add_argument("--speedup", type=float, default=1.0, help="multiply every rate limit by this factor")
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated orders")
    args = parser.parse_args(argv)

    fake = FakeTikTok(speedup=args.speedup, seed=args.seed, host=args.host, port=args.port)
    if args.orders:
        fake.generate_orders(args.orders, platform_shipped_every=args.platform_shipped_every)
    fake.start()
    print(f"Open API endpoint   {fake.base_url}")
    print(f"token service       {fake.auth_url}/api/v2/token/get")
    print(f"control API         {fake.base_url}/_fake/stats")
    print(f"app key             {fake.app.app_key}")
    print(f"app secret          {fake.app.app_secret}")
    print(f"auth code           {fake.authorize()}  (one use, 10 minutes; POST /_fake/authorize for another)")
    for shop in fake.shops:
        print(f"shop                {shop.name} ({shop.region}) cipher {shop.cipher}")
    print(f"orders              {len(fake.orders())}, speedup {args.speedup:g}")
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
