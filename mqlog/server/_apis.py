"""Request dispatch for ``mqlog serve``: the registry of Kafka API handlers.

Every Kafka API the server answers is one *handler* registered here under its API key
with the inclusive range of versions it implements. The server (``_server.py``) decodes
the frame and header, looks the key up in :data:`REGISTRY`, decodes the body with kio's
schema for that (key, version), calls the handler, and encodes what it returns.
ApiVersions advertises exactly the registry (:func:`advertised_versions`), so a handler
that is registered is negotiated and one that is not is never offered.

How to add a handler
--------------------
1. Write it in the module that owns the concept (core APIs live in ``_handlers.py``,
   admin APIs in ``_admin.py``, transactions in ``_txn.py``, consumer groups and
   offsets in ``_groups.py``)::

       from kio.schema.heartbeat.v4 import HeartbeatResponse  # the version you build
       from ._apis import ApiKey, ConnectionContext, register, response_class

       @register(ApiKey.heartbeat, 0, 4)
       def heartbeat(ctx: ConnectionContext, request, api_version: int):
           Response = response_class(ApiKey.heartbeat, api_version)
           ...
           return Response(throttle_time=i32Timedelta.parse(timedelta(0)), error_code=...)

   ``request`` is the kio request object of exactly ``api_version`` (kio generates one
   class per version: ``kio.schema.<api>.v<N>.request``); return an instance of the
   response class of the *same* version — :func:`response_class` finds it. Fields that
   a version lacks simply do not exist on its class: build the keyword arguments from
   ``dataclasses.fields(Response)`` or branch on ``api_version``. Only register versions
   kio has schemas for and that you have tested with a real client.
2. Make sure the module is imported: it must be listed in :data:`HANDLER_MODULES`
   (``_groups`` already is). Registration happens at import; registering a key twice
   raises ``ValueError`` (catches copy-paste mistakes).
3. ApiVersions picks it up automatically: the advertised (min, max) is the registered
   range, and the server refuses (``UNSUPPORTED_VERSION`` error response, connection
   kept) any version outside it.

Threads and blocking
--------------------
The server is *threaded*: one thread per connection reads a request, runs its handler
and writes the response before reading the next, exactly as a Kafka broker processes
one request per connection at a time (so responses are in order by construction). The
broker underneath is thread-based (a writer thread, ``threading.Condition`` wake-ups,
blocking futures), so handlers call it directly and may block: a Fetch waits on its
connection's waiter for records in the partitions it asked for
(:meth:`ConnectionContext.data_waiter`), a JoinGroup waits for the rebalance. asyncio
was rejected because every broker call would hop to an executor anyway, and long polls
would need a thread-to-loop bridge for the condition; a blocked connection thread costs one idle
thread, and Kafka clients open only a few connections each. Rules for handlers:

* Bound every wait (the request's own timeout, e.g. ``max_wait_ms``,
  ``rebalance_timeout_ms``), and end it when ``ctx.stopping`` is set: at shutdown the
  server sets it, then wakes every data waiter and the group coordinator's waiters.
* Never hold a broker lock while waiting (STYLE.md rule 13).

Errors
------
* Per-partition / per-topic / per-group problems go in the response's own error-code
  fields, as Kafka does: use :func:`error_code_for` to map an mqlog exception to its
  Kafka :class:`ErrorCode` (unknown exceptions map to ``UNKNOWN_SERVER_ERROR``).
* A problem with the whole request: raise :class:`ApiError` (``ApiError(ErrorCode.
  invalid_request, "why")``). The server then answers with an error response for that
  request: the handler's own ``error_response(ctx, request, api_version, code)`` if one
  was registered (``@register(key, lo, hi, error_response=fn)``), otherwise a generic
  one built from the response schema (every ``error_code`` field set to the code, arrays
  empty). Any other exception from a handler is logged and answered the same way with
  ``UNKNOWN_SERVER_ERROR``; the connection stays open either way.
* Where Kafka answers by closing the connection (an acks=0 Produce that failed: the
  client gets no response, so the close is its only signal), raise
  :class:`CloseConnection`.
"""

from __future__ import annotations

import datetime
import enum
import importlib
import threading
from typing import Any, Callable

import attrs

try:
    from kio.index import load_request_schema, load_response_schema
    from kio.schema.errors import ErrorCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mqlog serve needs the 'kio' package (Kafka protocol schemas): "
        "pip install 'mqlog[serve]'") from exc

from .. import errors as _errors
from ._config import ServerConfig

__all__ = [
    "HANDLER_MODULES",
    "REGISTRY",
    "Api",
    "ApiError",
    "ApiKey",
    "CloseConnection",
    "ConnectionContext",
    "ErrorCode",
    "Handler",
    "ServerConfig",
    "advertised_versions",
    "api_versions_response",
    "error_code_for",
    "load_handlers",
    "register",
    "request_class",
    "response_class",
]


class ApiKey(enum.IntEnum):
    """Kafka API keys the server knows by name (values from Kafka's message schemas)."""

    produce = 0
    fetch = 1
    list_offsets = 2
    metadata = 3
    offset_commit = 8
    offset_fetch = 9
    find_coordinator = 10
    join_group = 11
    heartbeat = 12
    leave_group = 13
    sync_group = 14
    describe_groups = 15
    list_groups = 16
    sasl_handshake = 17
    api_versions = 18
    create_topics = 19
    delete_topics = 20
    delete_records = 21
    init_producer_id = 22
    offset_for_leader_epoch = 23
    add_partitions_to_txn = 24
    add_offsets_to_txn = 25
    end_txn = 26
    txn_offset_commit = 28
    describe_configs = 32
    alter_configs = 33
    create_partitions = 37
    delete_groups = 42
    incremental_alter_configs = 44
    offset_delete = 47
    describe_cluster = 60
    describe_producers = 61
    describe_transactions = 65
    list_transactions = 66


class ConnectionContext:
    """What a handler may use: the broker, the server and this connection's identity.

    One context per connection, used only by that connection's thread (not
    thread-safe); ``stopping`` is shared by the whole server and set at shutdown.

    Attributes:
        broker: the :class:`mqlog.Broker` being served.
        config: the :class:`ServerConfig`.
        server: the running server object (``advertised_address()`` gives the
            (host, port) clients should use).
        peer: the client's (host, port).
        client_id: the ``client.id`` from the current request header (None if absent).
        client_software: (name, version) from ApiVersions v3+, or None.
        stopping: a ``threading.Event`` set when the server shuts down.
    """

    def __init__(self, broker: Any, config: ServerConfig, server: Any,
                 peer: tuple[str, int], stopping: threading.Event,
                 peer_gone: Callable[[], bool] | None = None) -> None:
        self.broker = broker
        self.config = config
        self.server = server
        self.peer = peer
        self.stopping = stopping
        self.client_id: str | None = None
        self.client_software: tuple[str, str] | None = None
        self._peer_gone = peer_gone
        self._waiter: Any = None  # this connection's wait for records (long polls)

    def peer_gone(self) -> bool:
        """Whether the client closed or reset this connection (checked without
        reading anything it sent). For handlers that hold a request for long (a
        JoinGroup): their answer would go nowhere. Only the connection's thread (the
        handler itself) may call it."""
        return self._peer_gone is not None and self._peer_gone()

    def __repr__(self) -> str:
        return f"<ConnectionContext peer={self.peer} client_id={self.client_id!r}>"

    def data_waiter(self, partitions: tuple) -> Any:
        """This connection's :class:`mqlog._wakeups.Waiter`, now watching
        ``partitions`` (PartitionLogs): a long-polling Fetch is woken by records in
        them, by broker-wide changes and by the server stopping."""
        wakeups = self.broker._wakeups
        if self._waiter is None:
            self._waiter = wakeups.waiter()
        wakeups.watch(self._waiter, partitions)
        return self._waiter

    def close(self) -> None:
        """Release what the connection holds in the broker (its waiter). Idempotent."""
        if self._waiter is not None:
            self.broker._wakeups.forget(self._waiter)
            self._waiter = None


Handler = Callable[[ConnectionContext, Any, int], Any]
ErrorResponder = Callable[[ConnectionContext, Any, int, ErrorCode], Any]


@attrs.frozen
class Api:
    """One registered API: its key, inclusive version range and handler."""

    api_key: int
    min_version: int
    max_version: int
    handler: Handler
    error_response: ErrorResponder | None = None


class ApiError(Exception):
    """Raised by a handler to fail the whole request with one Kafka error code."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}" if self.message else self.code.name


class CloseConnection(Exception):
    """Raised by a handler when Kafka's answer is to close the connection (after the
    request's effects, if any): the server sends nothing and closes it."""


#: api_key -> Api. Filled at import time of the modules in HANDLER_MODULES.
REGISTRY: dict[int, Api] = {}
_registry_lock = threading.Lock()  # guards REGISTRY writes and load_handlers()

#: Modules whose import registers handlers. ``_groups`` is optional until it lands.
HANDLER_MODULES = ("mqlog.server._handlers", "mqlog.server._admin", "mqlog.server._txn",
                   "mqlog.server._groups")
_loaded = False


def register(api_key: int, min_version: int, max_version: int, *,
             error_response: ErrorResponder | None = None) -> Callable[[Handler], Handler]:
    """Decorator: register ``handler`` for ``api_key`` versions min..max (inclusive).

    Raises:
        ValueError: the key is registered already, or kio has no request/response
            schema for one of the versions.
    """
    if not 0 <= min_version <= max_version:
        raise ValueError(f"bad version range {min_version}..{max_version} for API "
                         f"{api_key}: need 0 <= min <= max")
    for v in range(min_version, max_version + 1):
        try:
            load_request_schema(api_key, v)
            load_response_schema(api_key, v)
        except Exception as exc:  # kio raises its own index errors
            raise ValueError(f"kio has no schema for API {api_key} version {v}: register "
                             "only versions kio can decode") from exc

    def deco(handler: Handler) -> Handler:
        with _registry_lock:
            if api_key in REGISTRY:
                raise ValueError(f"API {api_key} is registered twice "
                                 f"({REGISTRY[api_key].handler.__qualname__} and "
                                 f"{handler.__qualname__})")
            REGISTRY[api_key] = Api(api_key, min_version, max_version, handler,
                                    error_response)
        return handler

    return deco


def load_handlers() -> dict[int, Api]:
    """Import every module in :data:`HANDLER_MODULES` once; return the registry."""
    global _loaded
    with _registry_lock:
        if _loaded:
            return REGISTRY
        _loaded = True
    for name in HANDLER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside it is a real error
                raise
    return REGISTRY


def advertised_versions() -> list[tuple[int, int, int]]:
    """(api_key, min_version, max_version) for every registered API, sorted by key."""
    load_handlers()
    return sorted((a.api_key, a.min_version, a.max_version) for a in REGISTRY.values())


def api_versions_response(version: int, code: ErrorCode = ErrorCode.none) -> Any:
    """The ApiVersions response of ``version`` advertising the registry."""
    cls = load_response_schema(ApiKey.api_versions, version)
    entry = importlib.import_module(cls.__module__).ApiVersion
    entries = tuple(entry(api_key=k, min_version=lo, max_version=hi)
                    for k, lo, hi in advertised_versions())
    kwargs: dict[str, Any] = {"error_code": code, "api_keys": entries}
    if version >= 1:
        kwargs["throttle_time"] = datetime.timedelta(0)
    return cls(**kwargs)


def request_class(api_key: int, api_version: int) -> type:
    """The kio request class of an API version."""
    return load_request_schema(api_key, api_version)


def response_class(api_key: int, api_version: int) -> type:
    """The kio response class of an API version."""
    return load_response_schema(api_key, api_version)


_ERROR_CODES: tuple[tuple[type[BaseException], ErrorCode], ...] = (
    (_errors.UnknownTopicOrPartitionError, ErrorCode.unknown_topic_or_partition),
    (_errors.InvalidTopicError, ErrorCode.invalid_topic_exception),
    (_errors.TopicExistsError, ErrorCode.topic_already_exists),
    (_errors.InvalidConfigError, ErrorCode.invalid_config),
    (_errors.InvalidPartitionsError, ErrorCode.invalid_partitions),
    (_errors.InvalidRecordError, ErrorCode.invalid_record),
    (_errors.MessageSizeTooLargeError, ErrorCode.message_too_large),
    (_errors.OffsetOutOfRangeError, ErrorCode.offset_out_of_range),
    (_errors.InconsistentGroupProtocolError, ErrorCode.inconsistent_group_protocol),
    (_errors.FencedInstanceIdError, ErrorCode.fenced_instance_id),
    (_errors.ProducerFencedError, ErrorCode.producer_fenced),
    (_errors.OutOfOrderSequenceNumberError, ErrorCode.out_of_order_sequence_number),
    (_errors.CommitFailedError, ErrorCode.illegal_generation),
    (_errors.KafkaTimeoutError, ErrorCode.request_timed_out),
    (_errors.DiskFullError, ErrorCode.kafka_storage_error),
    (_errors.CorruptStoreError, ErrorCode.kafka_storage_error),
    (_errors.ClosedError, ErrorCode.kafka_storage_error),
)


def error_code_for(exc: BaseException) -> ErrorCode:
    """The Kafka error code for an exception raised by the broker (or ApiError)."""
    if isinstance(exc, ApiError):
        return exc.code
    for cls, code in _ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return ErrorCode.unknown_server_error
