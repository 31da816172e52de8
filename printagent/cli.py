"""``labelvault-print``: the packing station's command.

    labelvault-print key set --vault https://labels.example.com
    labelvault-print scan  --vault https://labels.example.com --printer zebra-1=zebra:10.0.5.21@300
    labelvault-print serve --vault ... --printer ... --listen 127.0.0.1:8631
    labelvault-print reprint --vault ... --printer ... amazon:503-1234567-1234567

``scan`` reads one order reference a line from standard input (a barcode scanner is a keyboard) until end of
input (Ctrl-D, or Ctrl-Z Enter on Windows), ``serve`` takes waves from a WMS on loopback until Ctrl-C, and
both end with the shift's summary line and an exit code (:class:`~printagent.agent.ExitCode`). Settings
also come from the environment (``LABELVAULT_PRINT_VAULT``, ``LABELVAULT_PRINT_PRINTERS`` as a
comma-separated list, ``LABELVAULT_PRINT_CA_BUNDLE``, ``LABELVAULT_PRINT_MARKETPLACE``); the API key from
the OS keyring or ``LABELVAULT_PRINT_API_KEY`` only (:mod:`printagent.credentials`).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from printagent.agent import Agent, ExitCode, StationRefused
from printagent.client import ConfigError, VaultClient, check_base_url
from printagent.credentials import ENV_KEY, KeyMissing, api_key, forget_key, store_key
from printagent.printers import CupsPrinter, Printer, ZebraPrinter
from printagent.refs import BadReference, parse_ref
from printagent.wave import WaveServer

_ZEBRA = re.compile(r"zebra:(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?(?:@(?P<dpi>\d+))?")
_CUPS = re.compile(r"cups:(?P<queue>[A-Za-z0-9_.-]+)(?:@(?P<fmt>pdf|png))?")


def parse_printer(spec: str, index: int) -> Printer:
    """``[NAME=]zebra:HOST[:PORT][@DPI]`` or ``[NAME=]cups:QUEUE[@pdf|png]`` as a printer."""
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = f"printer-{index + 1}", spec
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
        raise ConfigError("a printer's name is letters, digits, '.', '_' or '-'")
    if m := _ZEBRA.fullmatch(rest):
        port = int(m["port"] or 9100)
        if not 0 < port < 65536:
            raise ConfigError("a printer's port is 1 to 65535")
        try:
            return ZebraPrinter(name, m["host"].strip("[]"), port, dpi=int(m["dpi"] or 203))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if m := _CUPS.fullmatch(rest):
        return CupsPrinter(name, m["queue"], m["fmt"] or "pdf")
    raise ConfigError("a printer is NAME=zebra:HOST[:PORT][@203|@300] or NAME=cups:QUEUE[@pdf|@png]")


class _Parser(argparse.ArgumentParser):
    """argparse, exiting with :attr:`ExitCode.USAGE` (its own 2 would read as a printer problem)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="labelvault-print",
        description="Print labelvault shipping labels at a packing station: scans in, labels out.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def station(sub: argparse.ArgumentParser, printers: bool = True) -> None:
        sub.add_argument("--vault", default=os.environ.get("LABELVAULT_PRINT_VAULT"), help="the vault's URL")
        if printers:
            env_printers = [p for p in os.environ.get("LABELVAULT_PRINT_PRINTERS", "").split(",") if p]
            sub.add_argument(
                "--printer",
                action="append",
                dest="printers",
                help="NAME=zebra:HOST[:PORT][@DPI] or NAME=cups:QUEUE[@pdf|png]; repeat for a fallback printer",
            )
            sub.set_defaults(env_printers=env_printers)
            sub.add_argument("--ca-bundle", default=os.environ.get("LABELVAULT_PRINT_CA_BUNDLE"))
            sub.add_argument(
                "--marketplace",
                default=os.environ.get("LABELVAULT_PRINT_MARKETPLACE", "amazon"),
                help="the marketplace of a scanned bare order id (a label's barcode): default amazon",
            )
            sub.add_argument(
                "--printer-wait", type=float, default=60.0, help="seconds to wait for a printer to be ready"
            )

    key = commands.add_parser("key", help="store or remove the station's API key in the OS keyring")
    key.add_argument("action", choices=("set", "delete"))
    station(key, printers=False)
    scan = commands.add_parser("scan", help="print a label for each order reference read from standard input")
    station(scan)
    serve = commands.add_parser("serve", help="print the waves a WMS posts to a loopback endpoint")
    station(serve)
    serve.add_argument("--listen", default="127.0.0.1:8631", help="loopback HOST:PORT (default 127.0.0.1:8631)")
    reprint = commands.add_parser("reprint", help="deliberately print another label for orders already printed")
    station(reprint)
    reprint.add_argument("orders", nargs="+", help="marketplace:order-id (or an order id of --marketplace)")
    return parser


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """The console script: exits with the run's :class:`~printagent.agent.ExitCode`."""
    sys.exit(run(argv, stdin=stdin or sys.stdin, stdout=stdout or sys.stdout))


def run(argv: Sequence[str] | None, *, stdin: TextIO, stdout: TextIO) -> int:
    """The command line run; one-line errors on stderr, the exit code returned."""
    args = _parser().parse_args(argv)
    try:
        if not args.vault:
            raise ConfigError("name the vault with --vault URL or LABELVAULT_PRINT_VAULT")
        vault = check_base_url(args.vault)
        if args.command == "key":
            return _key(args.action, vault, stdout)
        printers = [parse_printer(spec, i) for i, spec in enumerate(args.printers or args.env_printers)]
        if not printers:
            raise ConfigError("name at least one printer with --printer (or LABELVAULT_PRINT_PRINTERS)")
        client = VaultClient(vault, api_key(vault), ca_bundle=args.ca_bundle)
        agent = Agent(
            client, printers, out=stdout, default_marketplace=args.marketplace, printer_wait=args.printer_wait
        )
        server = _wave_server(agent, args.listen) if args.command == "serve" else None
    except (ConfigError, KeyMissing) as exc:
        print(f"labelvault-print: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        if args.command == "scan":
            for line in stdin:
                if line.strip():
                    agent.scan(line)
        elif server is not None:
            stdout.write(f"LISTENING {server.url}/v1/wave (Ctrl-C ends the shift)\n")
            stdout.flush()
            try:
                server.serve_forever()
            finally:
                server.server_close()
        else:
            for text in args.orders:
                try:
                    agent.print_order(parse_ref(text, args.marketplace), reprint=True)
                except BadReference as exc:
                    agent.reject(exc)
    except StationRefused:
        print("labelvault-print: the vault refused this station; check its API key, address and scope",
              file=sys.stderr)  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        stdout.write(agent.summary() + "\n")
        stdout.flush()
        agent.close()
        client.close()
    return agent.exit_code


def _wave_server(agent: Agent, listen: str) -> WaveServer:
    host, _, port = listen.rpartition(":")
    try:
        return WaveServer(agent, host.strip("[]") or "127.0.0.1", int(port))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"can't listen on {listen}: {exc}") from None


def _key(action: str, vault: str, stdout: TextIO) -> int:
    if action == "delete":
        found = forget_key(vault)
        stdout.write(f"{'removed the' if found else 'there was no'} API key for {vault} from the OS keyring\n")
        return ExitCode.OK
    key = getpass.getpass(f"API key for {vault} (not shown): ").strip()
    if not key or any(c.isspace() for c in key):
        raise ConfigError("the API key is empty or contains whitespace")
    store_key(vault, key)
    stdout.write(f"stored the API key for {vault} in the OS keyring; {ENV_KEY} overrides it when set\n")
    return ExitCode.OK
