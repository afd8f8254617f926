"""confluent-kafka's ``Producer`` over an mqlog broker.

``produce()`` hands the record to an mqlog :class:`~mqlog.producer.Producer` and
returns at once. As in librdkafka, every produced record yields a *delivery report*,
and reports are served — the ``on_delivery(err, msg)`` callbacks run — only inside
:meth:`Producer.poll`, :meth:`Producer.flush` (and the transactional calls), in the
thread that calls them, never on the broker's writer thread. ``len(producer)``
counts records not yet reported (written or not), and ``queue.buffering.max.messages``
bounds it: beyond it ``produce()`` raises ``BufferError``, until ``poll()``/``flush()``
serve reports.

Errors follow librdkafka: bad arguments raise from ``produce()`` (``TypeError``,
``KafkaException``), failed writes reach the delivery callback as ``err``; a failure
injected with ``broker.faults.fail_next("send", ...)`` also arrives there.

How reports are made: each produced record's pending report joins a queue in
produce order, holding mqlog's future for the record; ``poll()``/``flush()`` serve the
reports at the head of the queue whose futures are done (waiting on the head's future
when asked to wait). Nothing is registered on the futures, so the writer thread never
touches this layer (and ``produce()`` costs one future plus one queue entry).

Lock order: ``Producer._serve_lock`` (taking reports off the queue) is never held while
calling into mqlog's producer or a user callback.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable

from .. import errors as _errors
from .._bootstrap import resolve
from ..records import OffsetAndMetadata
from ..records import TopicPartition as _CoreTP
from . import _config
from ._metadata import ClusterMetadata, cluster_id, cluster_metadata
from ._partitioners import Partitioner
from ._types import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Message,
    TopicPartition,
)
from .error import KafkaError, KafkaException, exception, to_kafka_error

__all__ = ["Producer"]

log = logging.getLogger("mqlog.confluent")

_monotonic = time.monotonic
_now_ns = time.time_ns
_CLOSED = "Producer has been closed"


# mqlog producers whose drop-in Producer was garbage-collected without close() (many
# confluent-kafka programs never call it). The finaliser only appends (it may run in any
# thread, inside a collection, even on the writer thread holding its locks); the next
# Producer() closes them from an application thread, flushing what they still hold.
_orphans: list[Any] = []


def _close_orphans() -> None:
    while _orphans:
        try:
            core = _orphans.pop()
        except IndexError:  # another thread took the last one
            return
        try:
            core.close()
        except _errors.MqlogError as exc:
            log.warning("closing a producer that was dropped without close(): %s", exc)


def _deadline(timeout: float | None) -> float | None:
    """Monotonic deadline for a confluent timeout (None or negative: wait forever)."""
    if timeout is None or timeout < 0:
        return None
    return _monotonic() + timeout


def _payload(value: Any, what: str) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, memoryview) and value.readonly:
        return value.tobytes()
    if isinstance(value, (bytearray, memoryview)):
        raise TypeError(f"{what} must be a read-only bytes-like object (bytes), not "
                        f"{type(value).__name__}: pass bytes({what})")
    raise TypeError(f"a bytes-like object is required for the {what}, not "
                    f"'{type(value).__name__}': encode it (or use a SerializingProducer "
                    "pattern) first")


def _headers(headers: Any) -> list[tuple[str, bytes | None]] | None:
    if headers is None:
        return None
    if isinstance(headers, dict):
        items = list(headers.items())
    elif isinstance(headers, list):
        items = headers
    else:
        raise TypeError(f"expected headers to be dict or list of (key, value) tuples, not "
                        f"{type(headers).__name__}")
    out = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"expected headers to be dict or list of (key, value) tuples, "
                            f"got the item {item!r}")
        name, value = item
        if not isinstance(name, str):
            raise TypeError(f"expected header key to be str, not {type(name).__name__}")
        if isinstance(value, str):
            value = value.encode()
        elif value is not None and not isinstance(value, bytes):
            raise TypeError(f"expected header value to be None, binary, or unicode string, "
                            f"not {type(value).__name__}")
        out.append((name, value))
    return out or None


class _Delivery:
    """One produced record's pending delivery report: mqlog's future for it, or the
    outcome already decided (an injected or refused send)."""

    __slots__ = ("callback", "topic", "partition", "key", "value", "timestamp", "start",
                 "future", "outcome")

    def __init__(self, callback: Callable | None, topic: str, partition: int,
                 key: bytes | None, value: bytes | None, timestamp: int) -> None:
        self.callback = callback
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.start = _monotonic()
        self.future: Any = None
        self.outcome: BaseException | None = None  # the failure decided at produce()

    def done(self) -> bool:
        future = self.future
        return future is None or future.is_done


class Producer:
    """Asynchronous producer with confluent-kafka's API (``confluent_kafka.Producer``).

    ``Producer`` is thread-safe: ``produce()`` may be called from many threads; the
    delivery callbacks run in whichever thread calls ``poll()`` or ``flush()``.

    Args:
        config: a dict of librdkafka properties (``bootstrap.servers``, ``acks``,
            ``linger.ms``, ``partitioner``, ``queue.buffering.max.messages``,
            ``enable.idempotence``, ``transactional.id``, ``on_delivery``...; see
            docs/dropin-confluent-kafka.md). ``bootstrap.servers`` selects the mqlog
            broker (``mqlog:///path``, or the test's / process's temporary broker).
        **kwargs: more properties, merged over ``config``.

    Raises:
        TypeError: ``config`` is not a dict, or a callback is not callable.
        KafkaException: ``_INVALID_ARG`` for an unknown property or bad value.
    """

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        conf = _config.parse(config, kwargs, "P")
        _close_orphans()
        self._conf = conf
        self._logger: logging.Logger = conf.get("logger") or log
        try:
            self._broker = resolve(conf.get("metadata.broker.list"))
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, "Failed to create producer: ")) from exc
        transactional_id = conf.get("transactional.id") or None
        idempotent = conf.get("enable.idempotence", False) or transactional_id is not None
        acks = conf.get("request.required.acks", -1)
        if idempotent and "request.required.acks" in conf and acks != -1:
            raise exception("_INVALID_ARG", "`acks` must be set to `all` when "
                            "`enable.idempotence` is true (or transactional.id is set)")
        codec = conf.get("compression.codec", "none")
        self._partitioner = Partitioner(conf.get("partitioner", "consistent_random"),
                                        conf.get("sticky.partitioning.linger.ms", 10))
        core_conf: dict[str, Any] = dict(
            acks="all" if acks < 0 or acks > 1 else acks,
            linger_ms=conf.get("queue.buffering.max.ms", 5),
            batch_size=conf.get("batch.size", 1000000),
            # Our own count raises BufferError; the byte bound is mqlog's buffer, and
            # produce() must never block on it (max_block_ms=0 -> BufferError).
            buffer_memory=conf.get("queue.buffering.max.kbytes", 1048576) * 1024,
            max_block_ms=0,
            compression_type=None if codec in ("none", "inherit") else codec,
            partitioner=self._partitioner,
            max_request_size=conf.get("message.max.bytes", 1000000),
            enable_idempotence=idempotent,
            transactional_id=transactional_id,
            client_id=conf.get("client.id", "rdkafka"),
        )
        if "transaction.timeout.ms" in conf:
            core_conf["transaction_timeout_ms"] = conf["transaction.timeout.ms"]
        self._core_conf = core_conf
        try:
            self._bind(self._broker)
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, "Failed to create producer: ")) from exc
        self._follow_lock = threading.Lock()  # serialises moves to another test broker
        self._txn_ready = False  # init_transactions() succeeded (redone after a move)
        self._txn_open = False  # between begin_transaction() and commit/abort (no move)
        self._max_messages = conf.get("queue.buffering.max.messages", 100000)
        self._default_callback = conf.get("on_delivery")
        self._only_errors = conf.get("delivery.report.only.error", False)
        self._auto_create = conf.get("allow.auto.create.topics", True)
        # Pending reports in produce order (appends are atomic, from any thread);
        # _serve_lock makes "look at the head, take it off" one step for servers.
        self._queue: deque[_Delivery] = deque()
        self._serve_lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _orphans.append, self._core)

    def _bind(self, broker: Any) -> None:
        """Produce to ``broker`` with a new core producer (sets _broker, _core, _faults
        and the test-broker epoch)."""
        # A broker the pytest plugin made has a serving_epoch (see _current()).
        self._epoch = getattr(broker, "serving_epoch", None)
        self._core = broker.producer(**self._core_conf)
        self._broker = broker
        self._faults = broker.faults
        self._ts_types: dict[str, int] = {}

    def _current(self) -> Any:
        """The core producer, after following the pytest plugin to the broker it serves
        now when this producer was made on a test broker and the test changed.

        Why: apps keep one producer in a global (made at import, or on first use);
        with a broker per test it would stay bound to a test broker that has been
        closed (or to the session broker) while the test asserts on its own. A
        producer with an open transaction stays where it is.

        Raises:
            KafkaException: the broker now served cannot be opened.
        """
        if self._epoch is not None and self._broker.serving_epoch != self._epoch \
                and not self._txn_open:
            with self._follow_lock:
                if self._broker.serving_epoch != self._epoch:
                    try:
                        self._follow()
                    except _errors.MqlogError as exc:
                        raise KafkaException(to_kafka_error(exc)) from exc
        return self._core

    def _follow(self) -> None:
        old_broker, old = self._broker, self._core
        epoch = old_broker.serving_epoch  # read first: a later change is seen next time
        broker = resolve(self._conf.get("metadata.broker.list"))
        if broker is old_broker:
            self._epoch = epoch
            return
        self._bind(broker)
        if self._epoch is not None:
            self._epoch = epoch
        if self._txn_ready:
            self._core.init_transactions()
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _orphans.append, self._core)
        try:
            old.close()  # writes what was produced to the old broker, if still open
        except _errors.MqlogError as exc:
            self._logger.debug("closing the producer of the previous test broker: %s", exc)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<mqlog.confluent.Producer {self._core.client_id} {state} queued={len(self)}>"

    def __len__(self) -> int:
        """Records produced whose delivery report has not been served yet."""
        return len(self._queue)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(_CLOSED)

    # -- producing --------------------------------------------------------------------

    def produce(self, topic: str, value: Any = None, key: Any = None, partition: int = -1,
                on_delivery: Callable[[KafkaError | None, Message], Any] | None = None,
                callback: Callable[[KafkaError | None, Message], Any] | None = None,
                timestamp: int = 0, headers: Any = None) -> None:
        """Queue one record; its delivery report is served by a later ``poll()``/``flush()``.

        Args:
            topic: topic name (created on first use when the broker allows it).
            value, key: bytes, str (UTF-8 encoded) or None.
            partition: explicit partition, or -1 to use the configured partitioner.
            on_delivery, callback: ``fn(err, msg)`` for this record's report (``callback``
                wins if both are given); default: the config's ``on_delivery``.
            timestamp: CreateTime in ms since the epoch; 0 means now.
            headers: a dict or a list of ``(str, bytes | str | None)`` pairs.

        Raises:
            BufferError: ``queue.buffering.max.messages`` records await their reports
                (serve them with ``poll()``), or mqlog's buffer is full.
            KafkaException: ``_UNKNOWN_PARTITION`` (no such partition),
                ``MSG_SIZE_TOO_LARGE``, ``_UNKNOWN_TOPIC`` (auto-creation off),
                ``_STATE`` (transactional producer outside a transaction), ``_FENCED``.
            TypeError: a value, key, header, partition or callback of the wrong type.
            RuntimeError: the producer is closed.
        """
        if self._closed:
            raise RuntimeError(_CLOSED)
        if not isinstance(topic, str):
            raise TypeError(f"argument 1 must be str, not {type(topic).__name__}")
        value = _payload(value, "value")
        key = _payload(key, "key")
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"'{type(partition).__name__}' object cannot be interpreted as "
                            "an integer (partition)")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise TypeError(f"'{type(timestamp).__name__}' object cannot be interpreted as "
                            "an integer (timestamp)")
        cb = callback if callback is not None else on_delivery
        if cb is None:
            cb = self._default_callback
        elif not callable(cb):
            raise TypeError("on_delivery expects a callable")
        hdrs = _headers(headers)
        if partition < -1:
            raise exception("_UNKNOWN_PARTITION",
                            "Unable to produce message: Local: Unknown partition")
        if self._max_messages and len(self._queue) >= self._max_messages:
            raise BufferError("Local: Queue full")
        delivery = _Delivery(cb, topic, partition, key, value,
                             timestamp or _now_ns() // 1_000_000)
        self._send(delivery, hdrs)  # raises, or sets the future or the outcome
        self._queue.append(delivery)

    def _send(self, delivery: _Delivery, headers: Any) -> None:
        """Hand the record to mqlog (setting ``delivery.future``), or decide its
        outcome now (a failure the delivery report will carry); else raise."""
        core = self._current()  # first: it may move to another test broker (and faults)
        if self._faults.armed:
            error, latency = self._faults.take("send")
            if latency:
                threading.Event().wait(latency)  # injected latency, not synchronisation
            if error is not None:
                delivery.outcome = error  # reported as a broker error would be
                return
        self._partitioner.for_topic(delivery.topic)
        try:
            delivery.future = core.send(
                delivery.topic, delivery.value, delivery.key, headers,
                None if delivery.partition < 0 else delivery.partition, delivery.timestamp)
        except (_errors.InvalidTopicError, _errors.InvalidRecordError) as exc:
            # The broker refuses these in Kafka: librdkafka reports them per record.
            delivery.outcome = exc
        except _errors.MessageSizeTooLargeError as exc:
            raise exception("MSG_SIZE_TOO_LARGE",
                            f"Unable to produce message: Broker: Message size too large "
                            f"({exc})") from exc
        except _errors.UnknownTopicOrPartitionError as exc:
            if delivery.partition >= 0:
                raise exception("_UNKNOWN_PARTITION", "Unable to produce message: Local: "
                                f"Unknown partition ({exc})") from exc
            raise exception("_UNKNOWN_TOPIC",
                            f"Unable to produce message: Local: Unknown topic ({exc})") from exc
        except _errors.KafkaTimeoutError as exc:
            raise BufferError(f"Local: Queue full ({exc})") from exc
        except _errors.ClosedError as exc:
            raise RuntimeError(f"{_CLOSED} ({exc})") from exc
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, "Unable to produce message: ")) from exc

    def produce_batch(self, topic: str, messages: list[dict[str, Any]], partition: int = -1,
                      on_delivery: Callable | None = None) -> int:
        """Produce many records; returns how many were queued.

        Each dict may hold ``value``, ``key``, ``partition``, ``timestamp`` and
        ``callback``; one that cannot be queued gets an ``_error`` entry (a
        ``KafkaError``) and is skipped, as in confluent-kafka.

        Raises:
            TypeError: ``messages`` is not a list of dicts.
        """
        if not isinstance(messages, list):
            raise TypeError(f"messages must be a list, not {type(messages).__name__}")
        queued = 0
        for m in messages:
            if not isinstance(m, dict):
                raise TypeError(f"each message must be a dict, got {type(m).__name__}")
            try:
                self.produce(topic, m.get("value"), m.get("key"), m.get("partition", partition),
                             on_delivery=m.get("callback", on_delivery),
                             timestamp=m.get("timestamp", 0))
            except KafkaException as exc:
                m["_error"] = exc.args[0]
            except BufferError as exc:
                m["_error"] = KafkaError(KafkaError._QUEUE_FULL, str(exc))
            else:
                queued += 1
        return queued

    # -- delivery reports -------------------------------------------------------------

    def _timestamp_type(self, topic: str) -> int:
        kind = self._ts_types.get(topic)
        if kind is None:
            info = self._broker.topics().get(topic)
            log_append = info is not None and \
                info.config.get("message.timestamp.type") == "LogAppendTime"
            kind = self._ts_types[topic] = \
                TIMESTAMP_LOG_APPEND_TIME if log_append else TIMESTAMP_CREATE_TIME
        return kind

    def _report(self, d: _Delivery) -> None:
        """Serve one (done) delivery report: build its message, call its callback."""
        if d.callback is None:
            return
        future = d.future
        if future is None:
            outcome = d.outcome
        else:
            outcome = future.exception
            if outcome is None:
                if self._only_errors:
                    return
                outcome = future.get(0)
        if isinstance(outcome, BaseException):
            err = to_kafka_error(outcome, timeout_name="_MSG_TIMED_OUT")
            msg = Message(d.topic, d.partition, None, d.key, d.value, None, err,
                          (TIMESTAMP_CREATE_TIME, d.timestamp))
        else:
            err = None
            offset = outcome.offset
            msg = Message(d.topic, outcome.partition, offset if offset >= 0 else None, d.key,
                          d.value, None, None,
                          (self._timestamp_type(d.topic), outcome.timestamp),
                          _monotonic() - d.start)
        d.callback(err, msg)

    def _serve(self, deadline: float | None, wait: bool = True) -> int:
        """Serve the reports whose outcome is known, in produce order; with ``wait``,
        first wait (until ``deadline``) for the oldest one if none is ready."""
        served = 0
        queue = self._queue
        while True:
            with self._serve_lock:
                head = queue[0] if queue else None
                ready = head is not None and head.done()
                if ready:
                    queue.popleft()
            if ready:
                served += 1
                self._report(head)  # a raising callback propagates, as in confluent-kafka
                continue
            if served or not wait or head is None or not self._wait_for(head, deadline):
                return served

    @staticmethod
    def _wait_for(d: _Delivery, deadline: float | None) -> bool:
        """Block until ``d``'s record is written (True) or ``deadline`` passes."""
        if d.future is None:
            return True
        remaining = None if deadline is None else deadline - _monotonic()
        if remaining is not None and remaining <= 0:
            return False
        try:
            d.future.get(remaining)
        except Exception:  # a failed write is an outcome too; a timeout is checked below
            pass
        return d.future.is_done

    def poll(self, timeout: float | None = None) -> int:
        """Serve delivery reports (callbacks run in this thread).

        Waits up to ``timeout`` seconds (None or -1: forever) for a first report, then
        serves every report available. With no report pending it returns at once
        (librdkafka would wait out the timeout for other events; mqlog has none).

        Returns:
            The number of reports served.

        Raises:
            RuntimeError: the producer is closed.
            Exception: whatever a delivery callback raised (later reports stay queued).
        """
        self._check_open()
        return self._serve(_deadline(timeout))

    def _seal(self) -> None:
        """Make mqlog write every open batch now (no linger)."""
        try:
            self._core.flush(0)
        except _errors.KafkaTimeoutError:
            pass  # sealed; the writes complete in the background
        except _errors.ClosedError as exc:
            raise RuntimeError(f"{_CLOSED} ({exc})") from exc

    def flush(self, timeout: float | None = None) -> int:
        """Write every queued record and serve every delivery report.

        Args:
            timeout: seconds to wait at most (None or -1: forever).

        Returns:
            The number of records still awaiting their report (0 when all were served).

        Raises:
            RuntimeError: the producer is closed.
            Exception: whatever a delivery callback raised.
        """
        self._check_open()
        deadline = _deadline(timeout)
        # Wait for mqlog's writes first: with acks=0 the reports are ready before the
        # records are written, and flush() must still mean "written".
        try:
            self._current().flush(
                None if deadline is None else max(0.0, deadline - _monotonic()))
        except _errors.KafkaTimeoutError:
            pass  # the reports below say what is still pending
        except _errors.ClosedError as exc:
            raise RuntimeError(f"{_CLOSED} ({exc})") from exc
        while True:
            self._serve(None, wait=False)
            queue = self._queue
            if not queue:
                return 0
            if not self._wait_for(queue[0], deadline):
                self._serve(None, wait=False)
                return len(self._queue)

    def purge(self, in_queue: bool = True, in_flight: bool = True,
              blocking: bool = True) -> None:
        """librdkafka drops unsent records here; mqlog has no send queue to drop from:
        records already produced are written (their reports say so). With ``blocking``
        this waits for those writes. Serve the reports with ``poll()`` afterwards."""
        self._check_open()
        if blocking:
            try:
                self._core.flush()
            except _errors.MqlogError as exc:
                raise KafkaException(to_kafka_error(exc)) from exc
        else:
            self._seal()

    # -- metadata -----------------------------------------------------------------------

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """Cluster metadata: every topic, or just ``topic`` (created first when
        ``allow.auto.create.topics`` and the broker allow it).

        Raises:
            KafkaException: the broker is closed.
            RuntimeError: the producer is closed.
        """
        self._check_open()
        self._current()
        try:
            return cluster_metadata(self._broker, topic, self._auto_create)
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc)) from exc

    def cluster_id(self, timeout: float = -1) -> str:
        """The cluster id (stable per mqlog store directory)."""
        self._check_open()
        return cluster_id(self._broker)

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted and ignored: mqlog has no authentication."""

    # -- transactions -------------------------------------------------------------------

    def _txn_call(self, what: str, fn: Callable[[], Any],
                  abortable: tuple[type, ...] = ()) -> Any:
        self._check_open()
        if self._core.transactional_id is None:
            raise exception("_NOT_CONFIGURED",
                            f"{what}: the Transactional API requires transactional.id to be "
                            "configured")
        try:
            return fn()
        except abortable as exc:
            raise KafkaException(to_kafka_error(exc, f"{what}: ",
                                                txn_requires_abort=True)) from exc
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, f"{what}: ")) from exc

    def init_transactions(self, timeout: float | None = None) -> None:
        """Register ``transactional.id``, fencing older producers and aborting what they
        left open. Call once, before ``begin_transaction()``.

        Raises:
            KafkaException: ``_NOT_CONFIGURED`` without ``transactional.id``; ``_STATE``
                if already initialised.
        """
        self._txn_call("init_transactions", lambda: self._current().init_transactions(timeout))
        self._txn_ready = True

    def begin_transaction(self) -> None:
        """Start a transaction.

        Raises:
            KafkaException: ``_STATE`` (not initialised, or one is open), ``_FENCED``.
        """
        self._txn_call("begin_transaction", lambda: self._current().begin_transaction())
        self._txn_open = True

    def send_offsets_to_transaction(self, positions: list[TopicPartition],
                                    group_metadata: Any, timeout: float | None = None) -> None:
        """Commit consumer offsets (the next offsets to read) with the transaction.

        Logical offsets (< 0) are ignored; with no valid offset nothing happens.

        Raises:
            KafkaException: ``_STATE`` (no transaction); with ``txn_requires_abort()``
                when the consumer lost the partitions (fenced by a rebalance).
        """
        offsets = {_CoreTP(tp.topic, tp.partition): OffsetAndMetadata(
            tp.offset, tp.metadata or "", -1) for tp in positions if tp.offset >= 0}
        if not offsets:
            return
        self._txn_call("send_offsets_to_transaction",
                       lambda: self._core.send_offsets_to_transaction(offsets, group_metadata),
                       (_errors.CommitFailedError,))

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Write every record of the transaction and commit it (serving delivery
        reports, as librdkafka's flush inside it does).

        Raises:
            KafkaException: with ``txn_requires_abort()`` when a record or the offsets
                failed (call ``abort_transaction()``); ``retriable()`` on timeout;
                ``fatal()`` when fenced.
        """
        self._txn_call("commit_transaction", lambda: self._core.commit_transaction(timeout),
                       (_errors.TransactionAbortableError, _errors.CommitFailedError))
        self._txn_open = False
        self._serve(None, wait=False)

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Abort the transaction: read_committed consumers never see its records.

        Raises:
            KafkaException: ``_STATE`` (no transaction), ``_FENCED``.
        """
        self._txn_call("abort_transaction", lambda: self._core.abort_transaction(timeout))
        self._txn_open = False
        self._serve(None, wait=False)

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # confluent-kafka 2.13+: leaving the block flushes (serving every delivery
        # report) and closes; an exception in the block is not suppressed.
        self.close()

    def close(self, timeout: float | None = None) -> bool:
        """Abort an open transaction, flush (serving reports) and release the producer.

        Idempotent. Returns True, as confluent-kafka's.
        """
        if self._closed:
            return True
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._finalizer.detach()
            try:
                self._core.close(timeout)
            except _errors.MqlogError as exc:
                self._logger.warning("closing the producer: %s", exc)
        return True
