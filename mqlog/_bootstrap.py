"""Which broker a drop-in client talks to: ``bootstrap_servers`` -> :class:`Broker`.

The drop-in layers (``mqlog.kafka``, ``mqlog.confluent``, ``mqlog.aiokafka``) take
Kafka's ``bootstrap_servers``. Resolution, first match wins:

1. ``MQLOG_BOOTSTRAP`` in the environment: every address maps to it (so code and
   config written for a real cluster run unchanged against one store);
2. an address ``mqlog:///path/to/dir`` (or ``mqlog://relative/dir``): that directory,
   opened once per process and shared by every client naming it;
3. a broker installed by a test fixture (:func:`install`; the innermost one);
4. otherwise the process-wide default temporary broker, created on first use. Outside
   a fixture a warning is logged once: a second process would get a different broker.

Thread-safety: every function is thread-safe (one module lock).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .broker import Broker
from .broker import open as open_broker

__all__ = ["ENV", "SCHEME", "default_broker", "install", "resolve"]

log = logging.getLogger("mqlog.bootstrap")

ENV = "MQLOG_BOOTSTRAP"
SCHEME = "mqlog://"

_lock = threading.RLock()
_by_path: dict[str, Broker] = {}
_installed: list[Broker] = []
_default: Broker | None = None
_warned = False


def _addresses(bootstrap_servers: Any) -> list[str]:
    if bootstrap_servers is None:
        return []
    if isinstance(bootstrap_servers, str):
        return [a.strip() for a in bootstrap_servers.split(",") if a.strip()]
    try:
        return [str(a).strip() for a in bootstrap_servers]
    except TypeError:
        raise TypeError(
            f"bootstrap_servers must be a str or a list of str, got "
            f"{type(bootstrap_servers).__name__}") from None


def _open_path(path: str) -> Broker:
    real = os.path.realpath(path)
    broker = _by_path.get(real)
    if broker is None or broker.closed:
        broker = _by_path[real] = open_broker(real)
    return broker


def default_broker() -> Broker:
    """The process-wide temporary broker (created on first use)."""
    global _default
    with _lock:
        if _default is None or _default.closed:
            _default = open_broker()
        return _default


def resolve(bootstrap_servers: Any = None) -> Broker:
    """The broker a client configured with ``bootstrap_servers`` should use.

    Raises:
        TypeError: ``bootstrap_servers`` is neither a str nor a list of str.
        BrokerLockedError: an ``mqlog://`` directory is owned by another process.
    """
    global _warned
    env = os.environ.get(ENV)
    addresses = _addresses(env) if env else _addresses(bootstrap_servers)
    with _lock:
        for address in addresses:
            if address.startswith(SCHEME):
                path = address[len(SCHEME):]
                if not path:
                    raise ValueError(f"bootstrap address {address!r} names no directory: "
                                     "use mqlog:///absolute/path or mqlog://relative/path")
                return _open_path(path)
        if _installed:
            broker = _installed[-1]
            if not broker.closed:
                return broker
        if not _warned:
            _warned = True
            log.warning(
                "bootstrap_servers=%r has no mqlog:// address: using this process's "
                "temporary mqlog broker (it vanishes at exit, and another process gets a "
                "different one). Use 'mqlog:///path/to/dir' or set %s for a shared, "
                "durable store", bootstrap_servers, ENV)
        return default_broker()


@contextmanager
def install(broker: Broker) -> Iterator[Broker]:
    """Make ``broker`` the one addresses without ``mqlog://`` resolve to, inside the
    block (test fixtures). Nested installs stack; the innermost wins."""
    with _lock:
        _installed.append(broker)
    try:
        yield broker
    finally:
        with _lock:
            if broker in _installed:
                _installed.remove(broker)


def _close_all() -> None:
    with _lock:
        brokers = list(_by_path.values()) + ([_default] if _default is not None else [])
    for broker in brokers:
        try:
            broker.close()
        except Exception:  # exiting: nothing useful to do with it
            pass


atexit.register(_close_all)
