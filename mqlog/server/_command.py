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

__all__ = ["add_arguments", "run"]

DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``mqlog serve`` (``--data`` comes from the common options)."""
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; others need --allow-remote)")
    p.add_argument("--port", type=int, default=9092, help="port to bind (default 9092)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address (there is no "
                        "authentication: anyone who can connect can read and write)")
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                   metavar="N", help="largest request accepted (default 100 MiB)")
    p.add_argument("--advertised-host", default=None, metavar="HOST",
                   help="host name clients are told to connect to (default: --host)")


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
            handle = serve(broker, args.host, args.port, allow_remote=args.allow_remote,
                           max_request_bytes=args.max_request_bytes,
                           advertised_host=getattr(args, "advertised_host", None))
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
