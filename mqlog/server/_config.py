"""The settings of one Kafka protocol server (no kio import: the CLI reads it)."""

from __future__ import annotations

import attrs

__all__ = ["ServerConfig"]


@attrs.frozen
class ServerConfig:
    """Settings of one server, fixed at start.

    Attributes:
        host: the address bound (and advertised in Metadata unless
            ``advertised_host`` is set).
        port: the port bound; 0 picks a free one (the handle reports the real one).
        allow_remote: binding a non-loopback address needs this explicit opt-in.
        max_request_bytes: largest request frame accepted (Kafka's
            ``socket.request.max.bytes``, default 100 MiB); larger frames close the
            connection (the rest of the stream cannot be trusted).
        advertised_host: the host clients are told to connect to (default ``host``).
        idle_timeout_s: a connection with no complete request for this long is closed
            (Kafka's ``connections.max.idle.ms``, default 10 min): reaps half-open peers.
        max_connections: connections beyond this are refused (closed at accept).
        node_id: the broker id announced in Metadata and FindCoordinator.
        cluster_id: the cluster id announced in Metadata.
    """

    host: str = "127.0.0.1"
    port: int = 9092
    allow_remote: bool = False
    max_request_bytes: int = 100 * 1024 * 1024
    advertised_host: str | None = None
    idle_timeout_s: float = 600.0
    max_connections: int = 1000
    node_id: int = 0
    cluster_id: str = "mqlog"
