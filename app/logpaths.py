"""What a log line may say of a URL: its route pattern, never the path a client sent.

Some paths carry a secret: ``/invitation/<token>`` takes over the invited account with the token alone.
So the app's request line and error logs name the matched rule (``request.url_rule``, e.g.
``/invitation/<token>``), and a path no rule matched is logged as ``unrouted``, whatever it holds. The
same goes for the access logs of the servers in front of the app: werkzeug's development server logs its
request line through the ``werkzeug`` logger (:class:`RouteOnlyAccessLog` rewrites it to the rule), the
shipped gunicorn configuration writes no access log, and nginx logs a mapped path (deploy/nginx/nginx.conf).
"""

from __future__ import annotations

import logging
import re

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

#: How a log names a request that no route matched.
UNROUTED = "unrouted"
_ACCESS_FORMAT = '"%s" %s %s'  # werkzeug.serving.WSGIRequestHandler.log_request (after address and time)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours the request line on a terminal
_REQUEST_LINE = re.compile(r"^(?P<method>[A-Z]+) (?P<target>\S+) (?P<version>HTTP/\d(?:\.\d)?)$")


def route_of() -> str:
    """The route pattern of the request being served (inside a request context), or :data:`UNROUTED`."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNROUTED


def route_for(url_map: Map, method: str, target: str) -> str:
    """The pattern of the rule ``url_map`` matches for ``target`` (a request target), or :data:`UNROUTED`."""
    path = target.split("?", 1)[0]
    try:
        rule, _ = url_map.bind("localhost").match(path, method=method, return_rule=True)
    except RequestRedirect:
        return UNROUTED  # e.g. a missing trailing slash: the redirect target is the same secret path
    except HTTPException:
        return UNROUTED
    return rule.rule


class RouteOnlyAccessLog(logging.Filter):
    """Rewrites the request line of werkzeug's access log (``"GET /path HTTP/1.1" 200 -``) to the route
    pattern, so a secret in a path or a query string never reaches the log."""

    def __init__(self, url_map: Map) -> None:
        super().__init__()
        self.url_map = url_map

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        msg = record.msg
        if isinstance(msg, str) and msg.endswith(_ACCESS_FORMAT) and isinstance(args, tuple) and args:
            match = _REQUEST_LINE.match(_ANSI.sub("", str(args[0])))
            if match:
                route = route_for(self.url_map, match["method"], match["target"])
                record.args = (f"{match['method']} {route} {match['version']}", *args[1:])
            else:
                record.args = ("<request line withheld>", *args[1:])
        return True


def init_app(app: Flask) -> None:
    """Put :class:`RouteOnlyAccessLog` on the ``werkzeug`` logger (once per app)."""
    logger = logging.getLogger("werkzeug")
    logger.filters = [f for f in logger.filters if not isinstance(f, RouteOnlyAccessLog)]
    logger.addFilter(RouteOnlyAccessLog(app.url_map))
