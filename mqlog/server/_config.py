"""The settings of one Kafka protocol server (no kio import: the CLI reads it)."""

from __future__ import annotations

import math

import attrs

__all__ = ["ServerConfig"]

_MIB = 1024 * 1024


@attrs.frozen(kw_only=True)
class ServerConfig:
    """Settings of one server, fixed at start and checked once, here.

    Kafka's broker setting each one mirrors is named in brackets; mqlog takes seconds
    where Kafka takes milliseconds.

    Attributes:
        host: the address bound (and advertised in Metadata unless
            ``advertised_host`` is set).
        port: the port bound; 0 picks a free one (the handle reports the real one).
        allow_remote: binding a non-loopback address needs this explicit opt-in.
        max_request_bytes: largest request frame accepted (``socket.request.max.bytes``,
            default 100 MiB); larger frames close the connection (the rest of the
            stream cannot be trusted).
        queued_max_request_bytes: bytes of requests read but not yet processed, across
            all connections (``queued.max.request.bytes``, default 100 MiB). When it is
            used up, connections stop reading (the peers' sends back up into TCP)
            until handled requests give memory back; nothing is dropped. A request
            larger than this alone is refused like one over ``max_request_bytes``.
        fetch_max_bytes: the most record bytes one Fetch response carries, whatever the
            request asks for (``fetch.max.bytes``, default 55 MiB); the first batch of
            a response still goes out whole when it alone is larger (KIP-74). Bounds
            the memory a Fetch takes: a response is built in memory before it is sent.
        advertised_host: the host clients are told to connect to (default ``host``).
        idle_timeout_s: a connection with no complete request for this long is closed,
            also when it is in the middle of sending one (``connections.max.idle.ms``,
            default 10 min): reaps half-open peers and clients that trickle bytes.
        max_connections: connections beyond this are refused: closed as soon as they
            are accepted, with a log line (``max.connections``, default 1000), so a
            flood of connections cannot take every thread.
        max_rebalance_timeout_s: the longest a JoinGroup is held waiting for the other
            members (default 300 s, the clients' default ``max.poll.interval.ms``). A
            client's ``rebalance_timeout_ms`` above it counts as this; when it passes,
            the request is answered ``REBALANCE_IN_PROGRESS`` and the client rejoins.
        transactional_id_expiration_s: a transactional id whose producer sent nothing
            for this long is forgotten by the server
            (``transactional.id.expiration.ms``, default 7 days).
        node_id: the broker id announced in Metadata and FindCoordinator.
        cluster_id: the cluster id announced in Metadata.

    Raises:
        ValueError: a value out of range (the message names it and the valid range).
        TypeError: an unknown field.
    """

    host: str = "127.0.0.1"
    port: int = 9092
    allow_remote: bool = False
    max_request_bytes: int = 100 * _MIB
    queued_max_request_bytes: int = 100 * _MIB
    fetch_max_bytes: int = 55 * _MIB
    advertised_host: str | None = None
    idle_timeout_s: float = 600.0
    max_connections: int = 1000
    max_rebalance_timeout_s: float = 300.0
    transactional_id_expiration_s: float = 7 * 24 * 3600.0
    node_id: int = 0
    cluster_id: str = "mqlog"

    def __attrs_post_init__(self) -> None:
        for name in ("max_request_bytes", "queued_max_request_bytes", "fetch_max_bytes"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1024:
                raise ValueError(f"{name}={value!r} must be an int of at least 1024")
        for name in ("idle_timeout_s", "max_rebalance_timeout_s",
                     "transactional_id_expiration_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < math.inf:
                raise ValueError(f"{name}={value!r} must be a finite number of seconds "
                                 "> 0")
        if not _is_int(self.max_connections) or self.max_connections < 1:
            raise ValueError(f"max_connections={self.max_connections!r} must be an int "
                             ">= 1")
        if not _is_int(self.port) or not 0 <= self.port <= 65535:
            raise ValueError(f"port={self.port!r} must be an int from 0 to 65535 (0 "
                             "picks a free port)")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)
