"""``mqlog serve``: run the Kafka protocol server on a store until SIGTERM/SIGINT.

Shutdown order: stop accepting and finish in-flight requests (``handle.close()``),
then close the broker (flushes producers, stops the writer, closes LMDB), so no request
is cut off and the store is closed cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, TextIO

from ._config import ServerConfig

__all__ = ["add_arguments", "run"]

_DEFAULTS = ServerConfig()
#: The options that map one to one onto ServerConfig fields: (flag, field, type, help).
_TUNING = (
    ("--max-request-bytes", "max_request_bytes", int, "N",
     "largest request accepted (default 100 MiB; Kafka's socket.request.max.bytes)"),
    ("--queued-max-request-bytes", "queued_max_request_bytes", int, "N",
     "bytes of requests read but not yet handled, all connections together; at the "
     "limit connections stop reading until memory is freed (default 100 MiB; Kafka's "
     "queued.max.request.bytes)"),
    ("--fetch-max-bytes", "fetch_max_bytes", int, "N",
     "most record bytes in one Fetch response, whatever the client asks (default "
     "55 MiB; Kafka's fetch.max.bytes)"),
    ("--idle-timeout-s", "idle_timeout_s", float, "S",
     "close connections with no complete request for this long (default 600; Kafka's "
     "connections.max.idle.ms)"),
    ("--max-connections", "max_connections", int, "N",
     "refuse connections beyond this many (default 1000; Kafka's max.connections)"),
    ("--max-rebalance-timeout-s", "max_rebalance_timeout_s", float, "S",
     "longest a JoinGroup is held; clients' rebalance timeouts above it count as it "
     "(default 300)"),
    ("--transactional-id-expiration-s", "transactional_id_expiration_s", float, "S",
     "forget transactional ids unused for this long (default 604800, 7 days; Kafka's "
     "transactional.id.expiration.ms)"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``mqlog serve`` (``--data`` comes from the common options)."""
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; others need --allow-remote)")
    p.add_argument("--port", type=int, default=9092, help="port to bind (default 9092)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address (there is no "
                        "authentication: anyone who can connect can read and write)")
    p.add_argument("--advertised-host", default=None, metavar="HOST",
                   help="host name clients are told to connect to (default: --host)")
    for flag, field, kind, metavar, text in _TUNING:
        p.add_argument(flag, type=kind, default=getattr(_DEFAULTS, field),
                       metavar=metavar, help=text)


def run(args: argparse.Namespace, out: TextIO = sys.stdout,
        ready: threading.Event | None = None, stop: threading.Event | None = None) -> int:
    """Serve ``args.data`` until SIGTERM/SIGINT (or ``stop`` is set); returns 0.

    Args:
        ready: set once the server listens (tests).
        stop: an event that ends serving like a signal would (tests; default: a new
            one set by the signal handlers).

    Raises:
        MqlogError: the store cannot be opened (locked by another process...).
        OSError: the address cannot be bound.
        ValueError: a bad option (non-loopback host without --allow-remote...).
    """
    from .. import open as open_broker
    from . import serve

    if not getattr(args, "data", None):
        print("mqlog: error: mqlog serve needs the store directory: --data DIR (or "
              "MQLOG_DATA)", file=sys.stderr)
        return 2
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        broker = open_broker(args.data)
        try:
            tuning = {field: getattr(args, field) for _, field, *_ in _TUNING
                      if hasattr(args, field)}
            handle = serve(broker, args.host, args.port, allow_remote=args.allow_remote,
                           advertised_host=getattr(args, "advertised_host", None),
                           **tuning)
            print(f"mqlog serving {args.data} on {handle.bootstrap_servers} (Kafka "
                  "protocol); stop with Ctrl-C or SIGTERM", file=out, flush=True)
            if ready is not None:
                ready.set()
            stop.wait()
            print("mqlog serve: stopping (finishing in-flight requests)", file=out,
                  flush=True)
            handle.close()
        finally:
            broker.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("mqlog serve: stopped", file=out, flush=True)
    return 0
