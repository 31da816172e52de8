"""The process-wide HTTP connection pools the marketplace connectors share.

Every account of a platform calls the same hosts, so a worker syncing thousands of accounts reuses a few dozen
kept-alive TLS connections instead of opening one per sync (a handshake and a CA bundle load each time: most
of a sync's CPU at fleet scale, ``bench.fleet``). Credentials and tokens travel per request, in headers and
bodies, never in a pool. One pool per process id, platform and timeouts: a forked pool process must not share
its parent's sockets. A pool is never closed by a client that borrowed it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

import httpx

#: Connections each pool keeps to a platform's hosts: at least as many as syncs run at once in a worker process
#: (``flask worker run --pool threads --concurrency N``), or the surplus queue for one.
SHARED_POOL_CONNECTIONS = 256

_pools: dict[tuple[int, str, float, float], httpx.Client] = {}
_lock = threading.Lock()


def shared_pool(
    platform: str, *, connect_timeout: float, read_timeout: float, headers: Mapping[str, str]
) -> httpx.Client:
    """This process's one connection pool for ``platform``'s calls with these timeouts (every phase bounded)."""
    key = (os.getpid(), platform, connect_timeout, read_timeout)
    with _lock:
        client = _pools.get(key)
        if client is None or client.is_closed:
            client = _pools[key] = httpx.Client(
                timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
                headers=dict(headers),
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=SHARED_POOL_CONNECTIONS, max_keepalive_connections=SHARED_POOL_CONNECTIONS
                ),
            )
        return client
