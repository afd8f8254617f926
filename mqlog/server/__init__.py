"""``mqlog serve``: the Kafka wire protocol on an mqlog broker.

Any Kafka client (kafka-python, confluent-kafka/librdkafka, aiokafka, Java, Go...)
connects by address and shares topics, offsets and groups with in-process mqlog
producers and consumers. Start it with ``broker.serve(host, port)`` (in-process, e.g.
a test fixture) or ``mqlog serve --data DIR`` (a process). See ``docs/serve.md``.

Layout: ``_server`` (sockets, framing, dispatch, shutdown), ``_apis`` (the handler
registry and how to add one), ``_codec`` (headers, framing, generic error responses),
``_guard`` (length checks before decoding), ``_varint`` (Kafka's varints),
``_decoder`` (produced RecordBatch v2 into columns), ``_encoder`` (stored batches as
RecordBatch v2 for Fetch, and the cache of encodings),
``_appender`` (produced batches into the broker's writer), ``_handlers`` (core APIs),
``_admin`` (topic and config administration), ``_txn`` (transactional producers),
``_groups`` (consumer-group and offset handlers), ``_group_bridge`` (wire members on
the GroupCoordinator, consumer-protocol blobs), ``_command`` (the CLI command),
``_config`` (:class:`ServerConfig`).
"""

from __future__ import annotations

from typing import Any

from ._config import ServerConfig

__all__ = ["ServerConfig", "ServerHandle", "serve"]


class ServerHandle:
    """A running server of one broker, returned by ``broker.serve()``.

    Thread-safe. ``close()`` stops the server (in-flight requests finish first) but not
    the broker; it is idempotent, and the handle is a context manager.

    Attributes:
        host, port: the address bound (port is the real one when 0 was asked for).
        bootstrap_servers: ``"host:port"``, ready for any Kafka client's config.
    """

    def __init__(self, server: Any) -> None:
        self._server = server

    @property
    def host(self) -> str:
        return self._server.address[0]

    @property
    def port(self) -> int:
        return self._server.address[1]

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address

    @property
    def bootstrap_servers(self) -> str:
        host, port = self._server.advertised_address()
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def closed(self) -> bool:
        return self._server.closed

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, close connections.

        Args:
            timeout: seconds to wait for in-flight requests.
        """
        self._server.close(timeout)

    def _mark_closed(self, reason: str) -> None:
        """Called by the broker after its close (or in a forked child): nothing to do;
        ``close()`` already ran or the threads did not survive the fork."""

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "serving"
        return f"<mqlog.server.ServerHandle {self.bootstrap_servers} {state}>"


def serve(broker: Any, host: str = "127.0.0.1", port: int = 9092, **opts: Any
          ) -> ServerHandle:
    """Serve ``broker`` over the Kafka protocol in background threads.

    Args:
        broker: an open, writable :class:`mqlog.Broker`.
        host: address to bind; a non-loopback address needs ``allow_remote=True``.
        port: port to bind; 0 picks a free one (see ``handle.port``).
        **opts: the other :class:`ServerConfig` fields (``allow_remote``,
            ``max_request_bytes``, ``queued_max_request_bytes``, ``fetch_max_bytes``,
            ``advertised_host``, ``idle_timeout_s``, ``max_connections``,
            ``max_rebalance_timeout_s``, ``transactional_id_expiration_s``).

    Returns:
        A :class:`ServerHandle`; ``handle.close()`` stops serving.

    Raises:
        ImportError: the ``kio`` package is missing (``pip install 'mqlog[serve]'``).
        ValueError: a bad option, or a non-loopback host without allow_remote.
        TypeError: an unknown option.
        OSError: the address cannot be bound.
    """
    from ._server import KafkaServer

    broker._check_writable()
    try:
        config = ServerConfig(host=host, port=port, **opts)
    except TypeError as exc:
        raise TypeError(f"unknown serve() option: {exc}; the options are the fields of "
                        "mqlog.server.ServerConfig") from None
    server = KafkaServer(broker, config)
    server.start()
    handle = ServerHandle(server)
    # broker.close() stops the server first. The broker holds its handles weakly, so the
    # running server keeps the handle alive (its threads reference the server).
    server.handle = handle
    broker._register(handle)
    return handle
