"""The loopback endpoint a warehouse management system posts a wave to.

``POST /v1/wave`` with ``{"orders": ["amazon:503-...", {"marketplace": "amazon", "order_id": "503-..."}, ...]}``
(1 to 500 references, at most 256 KiB) prints them in order through the same jobs as scans and answers
``{"results": [{"order": "amazon:503-...", "outcome": "printed"}, ...], "exit_code": N}`` (the exit code
the same run of scans would have, :class:`~printagent.agent.ExitCode`); ``GET /v1/shift`` answers the
shift's counts. The endpoint binds to loopback only, answers only requests that name a loopback host (no
DNS rebinding) and takes only ``application/json`` (which a web page can't send cross-origin without a
preflight this endpoint never answers): whoever can reach it can print, not read, labels, and it answers
with order references and outcomes, never a label. It logs nothing per request.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from printagent.agent import Agent, ExitCode, Outcome, StationRefused
from printagent.refs import BadReference, OrderRef, parse_ref

MAX_BODY = 256 * 1024
MAX_ORDERS = 500


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WaveServer(ThreadingHTTPServer):
    """The endpoint on ``host:port`` (loopback only) for one agent."""

    daemon_threads = True

    def __init__(self, agent: Agent, host: str = "127.0.0.1", port: int = 8631) -> None:
        if not (host == "localhost" or _loopback(host)):
            raise ValueError("the wave endpoint listens on loopback only (127.0.0.1 or ::1)")
        self.agent = agent
        super().__init__((host, port), _WaveHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="wave-endpoint", daemon=True)
        thread.start()
        return thread


class _WaveHandler(BaseHTTPRequestHandler):
    server: WaveServer
    server_version = "labelvault-print"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # nothing per request

    def do_GET(self) -> None:
        if not self._from_this_machine():
            return
        if self.path != "/v1/shift":
            self._send(404, {"error": "not found: POST /v1/wave or GET /v1/shift"})
            return
        agent = self.server.agent
        self._send(200, {"counts": {o.value: agent.counts[o] for o in Outcome}, "exit_code": agent.exit_code})

    def do_POST(self) -> None:
        if self.path != "/v1/wave":
            self._send(404, {"error": "not found: POST /v1/wave or GET /v1/shift"})
            return
        if not self._from_this_machine():
            return
        # A web page the packer opens can post a form to loopback, but not JSON (that needs a CORS preflight,
        # which this endpoint never answers): so no website can make the station print.
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._send(415, {"error": "the wave must be sent as application/json"})
            return
        try:
            refs = self._refs()
        except ValueError as exc:
            self._send(400, {"error": str(exc)})
            return
        agent = self.server.agent
        results: list[dict[str, str]] = []
        outcomes: Counter[Outcome] = Counter()
        for ref in refs:
            if isinstance(ref, BadReference):
                outcome = agent.reject(ref)
                results.append({"order": "", "outcome": outcome.value, "error": str(ref)})
            else:
                try:
                    outcome = agent.print_order(ref)
                except StationRefused as exc:
                    outcomes[Outcome.STATION] += 1
                    results.append({"order": str(ref), "outcome": Outcome.STATION.value, "reason": str(exc)})
                    break
                results.append({"order": str(ref), "outcome": outcome.value})
            outcomes[outcome] += 1
        self._send(200, {"results": results, "exit_code": ExitCode.of(outcomes)})

    def _from_this_machine(self) -> bool:
        """Whether the request names this endpoint by a loopback host: a DNS-rebound name (a website's domain
        pointed at 127.0.0.1) is refused."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host == "localhost" or _loopback(host):
            return True
        self._send(403, {"error": "the wave endpoint answers requests for 127.0.0.1, ::1 or localhost only"})
        return False

    def _refs(self) -> list[OrderRef | BadReference]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            raise ValueError(f"the body must be a JSON wave of at most {MAX_BODY} bytes")
        try:
            payload = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the body is not JSON") from None
        orders = payload.get("orders") if isinstance(payload, dict) else None
        if not isinstance(orders, list) or not 1 <= len(orders) <= MAX_ORDERS:
            raise ValueError(f'the body must be {{"orders": [...]}} with 1 to {MAX_ORDERS} order references')
        refs: list[OrderRef | BadReference] = []
        default = self.server.agent.default_marketplace
        for item in orders:
            if isinstance(item, dict) and isinstance(item.get("marketplace"), str):
                text = f"{item['marketplace']}:{item.get('order_id', '')}"
            elif isinstance(item, str):
                text = item
            else:
                raise ValueError('each order is "marketplace:order-id" or {"marketplace": ..., "order_id": ...}')
            try:
                refs.append(parse_ref(text, default))
            except BadReference as exc:
                refs.append(exc)
        return refs

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)
