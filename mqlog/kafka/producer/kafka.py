"""``KafkaProducer``: kafka-python 3.x's producer on an mqlog broker.

The producer takes kafka-python's keyword arguments and returns kafka-python's types;
underneath, one :class:`mqlog.Producer` does the work (batching, compression, acks,
idempotence, transactions). What happens here: configuration (kafka-python's keys and
defaults, its idempotence rules), serialization (kafka-python calls serializers for
``None`` too), custom partitioners, fault injection (``broker.faults``: an injected
"send" error fails the returned future, as a broker error would) and error translation
(:mod:`mqlog.kafka._translate`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

from ..._bootstrap import resolve as resolve_broker
from ...errors import InvalidConfigError, MqlogError
from ...records import TopicPartition
from .. import _config
from .._translate import translate, translated
from ..errors import IllegalStateError, UnknownTopicOrPartitionError
from ..partitioner import DefaultPartitioner
from ..serializer import serializer_call
from .future import FutureRecordMetadata

__all__ = ["KafkaProducer"]

log = logging.getLogger("mqlog.kafka")

_CLIENT_IDS = itertools.count(1)


class _Cluster:
    """The ``cluster`` argument of a kafka-python ``Partitioner``: topic metadata."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer

    def topics(self) -> set[str]:
        return set(self._producer._broker.topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        try:
            return self._producer._producer.partitions_for(topic)
        except MqlogError:
            return None

    available_partitions_for_topic = partitions_for_topic


def _idempotence(cfg: dict[str, Any], given: set[str], acks: int) -> bool:
    """kafka-python 3.x's rules: idempotence is on by default; a conflicting setting the
    user gave switches it off (with a warning) unless idempotence or transactions were
    asked for explicitly, which makes the conflict an error."""
    enabled = bool(cfg["enable_idempotence"])
    strict = "enable_idempotence" in given
    if strict and not enabled and cfg["transactional_id"]:
        raise _config.ConfigError(
            f"transactional_id={cfg['transactional_id']!r} needs enable_idempotence: "
            "remove enable_idempotence=False")
    if cfg["transactional_id"]:
        enabled = strict = True
    if not enabled:
        return False
    conflicts = []
    if "acks" in given and acks != -1:
        conflicts.append(f"acks={cfg['acks']!r}")
    if "retries" in given and cfg["retries"] == 0:
        conflicts.append("retries=0")
    if "max_in_flight_requests_per_connection" in given and \
            cfg["max_in_flight_requests_per_connection"] > 5:
        conflicts.append("max_in_flight_requests_per_connection="
                         f"{cfg['max_in_flight_requests_per_connection']!r}")
    if not conflicts:
        return True
    if strict:
        raise _config.ConfigError(
            f"enable_idempotence (or transactional_id) is incompatible with "
            f"{', '.join(conflicts)}: use acks='all', or drop idempotence")
    log.warning("KafkaProducer: idempotence disabled because %s conflicts with it "
                "(as kafka-python 3 does)", ", ".join(conflicts))
    return False


class KafkaProducer:
    """Publishes records to topics (kafka-python 3.x's ``KafkaProducer``).

    ``KafkaProducer`` is thread-safe: share one per process.

    Args:
        **configs: kafka-python 3.x's keyword arguments (see ``DEFAULT_CONFIG``).
            ``bootstrap_servers`` selects the broker: ``"mqlog:///path/to/dir"`` opens
            that store; any other value means the process-wide default temporary broker
            (or the one a test fixture installed); ``MQLOG_BOOTSTRAP`` overrides both.
            Network, security and metrics-plumbing keys are accepted and ignored.

    Raises:
        KafkaConfigurationError (also a ValueError): an unknown key or a bad value.
        NoBrokersAvailable: the ``mqlog://`` store is owned by another process.
    """

    DEFAULT_CONFIG = _config.PRODUCER_DEFAULTS

    def __init__(self, **configs: Any) -> None:
        self.config = cfg = _config.resolve("KafkaProducer", _config.PRODUCER_DEFAULTS,
                                            configs)
        if cfg["client_id"] is None:
            cfg["client_id"] = f"kafka-python-producer-{next(_CLIENT_IDS)}"
        acks = -1 if cfg["acks"] in ("all", "-1") else cfg["acks"]
        if acks not in (0, 1, -1, "0", "1") or isinstance(acks, bool):
            raise _config.ConfigError(f"acks={cfg['acks']!r} is not valid: use 0, 1 or "
                                      "'all' (-1)")
        acks = int(acks)
        idempotent = _idempotence(cfg, set(configs), acks)
        if idempotent:
            acks = -1
        self._key_serializer = serializer_call(cfg["key_serializer"], "serialize")
        self._value_serializer = serializer_call(cfg["value_serializer"], "serialize")
        partitioner = cfg["partitioner"]
        self._partition_fn = None  # a kafka-python 3 Partitioner's partition()
        core_partitioner = None  # a kafka-python 2 fn(key, all, available)
        if partitioner is not None and not isinstance(partitioner, DefaultPartitioner):
            if callable(getattr(partitioner, "partition", None)):
                self._partition_fn = partitioner.partition
            elif callable(partitioner):
                core_partitioner = partitioner
            else:
                raise _config.ConfigError(
                    f"partitioner={partitioner!r} is neither a Partitioner nor a function "
                    "(serialized_key, all_partitions, available_partitions)")
        self._cluster = _Cluster(self)
        self._auto_create = bool(cfg["allow_auto_create_topics"])
        self._metrics_enabled = bool(cfg["metrics_enabled"])
        self._core_args = dict(
            acks="all" if acks == -1 else acks,
            linger_ms=cfg["linger_ms"], batch_size=cfg["batch_size"],
            max_block_ms=cfg["max_block_ms"], compression_type=cfg["compression_type"],
            max_request_size=cfg["max_request_size"], partitioner=core_partitioner,
            enable_idempotence=idempotent, transactional_id=cfg["transactional_id"],
            transaction_timeout_ms=cfg["transaction_timeout_ms"],
            client_id=cfg["client_id"])
        try:
            self._bind(resolve_broker(cfg["bootstrap_servers"]))
        except InvalidConfigError as exc:
            raise _config.ConfigError(str(exc)) from exc
        except MqlogError as exc:
            raise translate(exc) from exc
        self._closed = False
        self._lock = threading.Lock()  # guards the metric counters
        self._follow_lock = threading.Lock()  # serialises moves to another test broker
        self._txn_ready = False  # init_transactions() succeeded (redone after a move)
        self._txn_open = False  # between begin_transaction() and commit/abort (no move)
        self._sent = 0
        self._failed = 0
        self._started = time.monotonic()

    def _bind(self, broker: Any) -> None:
        """Produce to ``broker`` with a new core producer (sets _broker, _producer,
        _faults and the test-broker epoch)."""
        # A broker the pytest plugin made has a serving_epoch (see _core()).
        self._epoch = getattr(broker, "serving_epoch", None)
        self._producer = broker.producer(**self._core_args)
        self._broker = broker
        self._faults = broker.faults

    def _core(self) -> Any:
        """The core producer, after following the pytest plugin to the broker it serves
        now when this producer was made on a test broker and the test changed.

        Why: apps keep one producer in a global (made at import, or lazily on first
        use); with a broker per test it would stay bound to a test broker that has
        been closed (or to the session broker) while the test asserts on its own.
        A producer with an open transaction stays where it is.
        """
        if self._epoch is not None and self._broker.serving_epoch != self._epoch \
                and not self._txn_open:
            with self._follow_lock:
                if self._broker.serving_epoch != self._epoch:
                    self._follow()
        return self._producer

    def _follow(self) -> None:
        old_broker, old = self._broker, self._producer
        epoch = old_broker.serving_epoch  # read first: a later change is seen next time
        broker = resolve_broker(self.config["bootstrap_servers"])
        if broker is old_broker:
            self._epoch = epoch
            return
        self._bind(broker)
        if self._epoch is not None:
            self._epoch = epoch
        if self._txn_ready:
            self._producer.init_transactions()
        try:
            old.close()  # writes what was sent to the old broker, if it is still open
        except MqlogError as exc:
            log.debug("closing the producer of the previous test broker: %s", exc)
        log.debug("%r moved from %r to %r", self, old_broker, broker)

    def __repr__(self) -> str:
        return (f"<KafkaProducer client_id={self.config['client_id']} "
                f"transactional_id={self.config['transactional_id']}>")

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def bootstrap_connected(self) -> bool:
        """Always True: the broker is in this process."""
        return not self._closed

    # -- sending ------------------------------------------------------------------

    def send(self, topic: str, value: Any = None, key: Any = None,
             headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
             timestamp_ms: int | None = None) -> FutureRecordMetadata:
        """Queue one record; returns a future of its :class:`RecordMetadata`.

        Keyed records go to ``murmur2(key) % partitions`` (Kafka's default), keyless ones
        stick to a partition per batch. Serializers are applied here, to ``None`` too.

        Raises:
            IllegalStateError: the producer is closed.
            ValueError: both key and value are None.
            TypeError: headers are not a list of (str, bytes); a serialized key or value
                is not bytes.
            MessageSizeTooLargeError: the record exceeds ``max_request_size`` or the
                topic's ``max.message.bytes``.
            KafkaTimeoutError: the buffer stayed full for ``max_block_ms``.

        Errors met while writing (and injected "send" faults) are set on the future.
        """
        if self._closed:
            raise IllegalStateError("KafkaProducer already closed!")
        try:
            core = self._core()  # first: it may move to another test broker (and faults)
        except MqlogError as exc:
            raise translate(exc) from exc
        if value is None and key is None:
            raise ValueError("Need at least one: key or value (a tombstone needs a key)")
        if headers is not None:
            if not isinstance(headers, list):
                raise TypeError(f"headers must be a list of (str, bytes) tuples, got "
                                f"{type(headers).__name__}")
            for item in headers:
                if not (isinstance(item, tuple) and len(item) == 2 and
                        isinstance(item[0], str) and isinstance(item[1], bytes)):
                    raise TypeError(f"header {item!r} must be a (str, bytes) tuple")
        key_bytes = key if self._key_serializer is None else \
            self._key_serializer(topic, headers or [], key)
        value_bytes = value if self._value_serializer is None else \
            self._value_serializer(topic, headers or [], value)
        if self._partition_fn is not None and partition is None:
            partition = self._partition_fn(topic, key, key_bytes, value, value_bytes,
                                           self._cluster)
        faults = self._faults
        if faults.armed:
            error, latency = faults.take("send")
            if latency:
                threading.Event().wait(latency)  # injected latency, not synchronisation
            if error is not None:
                return self._failed_future(error)
        if not self._auto_create and topic not in self._broker.topics():
            return self._failed_future(UnknownTopicOrPartitionError(
                f"topic {topic!r} does not exist and allow_auto_create_topics=False: "
                "create it first (KafkaAdminClient.create_topics)"))
        try:
            future = core.send(topic, value_bytes, key_bytes, headers or None,
                               partition, timestamp_ms)
        except MqlogError as exc:
            raise translate(exc) from exc
        self._sent += 1  # unlocked: an approximate metric, as kafka-python's
        return FutureRecordMetadata(future)

    def _failed_future(self, error: BaseException) -> FutureRecordMetadata:
        with self._lock:
            self._failed += 1
        return FutureRecordMetadata(None, translate(error))

    @translated
    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition numbers (auto-creating it if allowed)."""
        return self._core().partitions_for(topic)

    @translated
    def flush(self, timeout: float | None = None) -> None:
        """Send every queued record and wait until all are written.

        Raises:
            KafkaTimeoutError: not all written within ``timeout`` seconds.
        """
        self._core().flush(timeout)

    def close(self, timeout: float | None = None, null_logger: bool = False) -> None:
        """Flush (waiting up to ``timeout`` seconds) and release the producer. Idempotent.

        Raises:
            ValueError: a negative timeout.
            KafkaTimeoutError: queued records were not written within ``timeout``.
        """
        if self._closed:
            return
        if timeout is not None and timeout < 0:
            raise ValueError(f"Invalid timeout: {timeout}")
        self._closed = True
        try:
            self._producer.close(timeout)
        except MqlogError as exc:
            raise translate(exc) from exc
        finally:
            for key in ("key_serializer", "value_serializer"):
                close = getattr(self.config[key], "close", None)
                if callable(close):
                    close()

    def metrics(self, raw: bool = False) -> dict[str, dict[str, float]] | None:
        """Counters in kafka-python's shape ``{group: {name: value}}``; None when
        ``metrics_enabled=False``."""
        if not self._metrics_enabled:
            return None
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return {"producer-metrics": {
            "record-send-total": float(self._sent),
            "record-send-rate": self._sent / elapsed,
            "record-error-total": float(self._failed),
        }}

    # -- transactions ---------------------------------------------------------------

    @translated
    def init_transactions(self) -> None:
        """Register the ``transactional_id`` (fencing older producers that use it) and
        abort the transaction they left open. Call once, before the first transaction.

        Raises:
            IllegalStateError: no ``transactional_id``, or already initialised.
        """
        self._core().init_transactions()
        self._txn_ready = True

    @translated
    def begin_transaction(self) -> None:
        """Start a transaction: records sent until commit/abort belong to it.

        Raises:
            IllegalStateError: not initialised, or a transaction is already open.
            ProducerFencedError: a newer producer took the ``transactional_id``.
        """
        self._core().begin_transaction()
        self._txn_open = True

    @translated
    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any],
                                    group_metadata: Any = None,
                                    consumer_group_id: str | None = None) -> None:
        """Commit consumer offsets as part of the transaction.

        Args:
            offsets: ``{TopicPartition: OffsetAndMetadata}``, the next offsets to read.
            group_metadata: ``consumer.group_metadata()`` (the commit is refused if the
                consumer was fenced by a rebalance meanwhile) or the group id;
                ``consumer_group_id=`` is kafka-python 2.x's name for it.

        Raises:
            IllegalStateError: no open transaction.
            CommitFailedError: (at commit) the consumer lost its partitions.
        """
        group = group_metadata if group_metadata is not None else consumer_group_id
        if group is None:
            raise TypeError("send_offsets_to_transaction() needs the consumer's "
                            "group_metadata() (or its group id)")
        self._core().send_offsets_to_transaction(offsets, group)

    @translated
    def commit_transaction(self) -> None:
        """Write every record of the transaction, then commit it with its offsets.

        Raises:
            TransactionAbortableError, CommitFailedError: call abort_transaction().
            ProducerFencedError: a newer producer took the ``transactional_id``.
        """
        self._core().commit_transaction()
        self._txn_open = False

    @translated
    def abort_transaction(self) -> None:
        """Abort the transaction: ``read_committed`` consumers never see its records.

        Raises:
            IllegalStateError: no open transaction.
            ProducerFencedError: a newer producer took the ``transactional_id``.
        """
        self._core().abort_transaction()
        self._txn_open = False
