"""``KafkaConsumer``: kafka-python 3.x's consumer on an mqlog broker.

One :class:`mqlog.Consumer` does the work (positions, fetching, the group protocol,
commits). What happens here: kafka-python's configuration and argument checks (its
exceptions for its mistakes), deserialization (kafka-python calls deserializers for
``None`` too), assignor classes mapped to mqlog's assignor names, fault injection
(``broker.faults``: "poll" errors raise from ``poll()``/iteration, "commit" errors from
``commit()`` or reach ``commit_async`` callbacks) and error translation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable, Iterable

from ..._bootstrap import resolve as resolve_broker
from ...consumer import ConsumerRebalanceListener
from ...errors import InvalidConfigError, MqlogError
from ...records import ConsumerGroupMetadata, ConsumerRecord, OffsetAndMetadata, TopicPartition
from .. import _config
from .._translate import translate, translated
from ..coordinator.assignors.abstract import AbstractPartitionAssignor
from ..errors import IllegalStateError
from ..future import Future
from ..serializer import serializer_call

__all__ = ["KafkaConsumer"]

log = logging.getLogger("mqlog.kafka")

_ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")
_ONE_WAY = ("You must choose only one way to configure your consumer: (1) subscribe to "
            "specific topics by name, (2) subscribe to topics matching a regex pattern, "
            "(3) assign itself specific topic-partitions.")
_new_record = tuple.__new__


def _assignor_names(strategies: Any) -> tuple[str, ...] | None:
    """kafka-python's assignor classes (or their names) -> mqlog's assignor names."""
    if strategies is None:
        return None
    if isinstance(strategies, (str, type)) or not isinstance(strategies, Iterable):
        strategies = (strategies,)
    names = []
    for s in strategies:
        name = s if isinstance(s, str) else getattr(s, "name", None)
        if name not in _ASSIGNORS or not (
                isinstance(s, str) or isinstance(s, AbstractPartitionAssignor) or
                (isinstance(s, type) and issubclass(s, AbstractPartitionAssignor))):
            raise _config.ConfigError(
                f"partition_assignment_strategy entry {s!r} is not supported: use "
                "RangePartitionAssignor, RoundRobinPartitionAssignor, "
                "StickyPartitionAssignor or CooperativeStickyAssignor (from "
                "kafka.coordinator.assignors.*), or their names; custom kafka-python "
                "assignors cannot run on mqlog's coordinator")
        names.append(name)
    if not names:
        raise _config.ConfigError("partition_assignment_strategy is empty: name one")
    return tuple(names)


def _reset_policy(value: Any) -> str:
    """kafka-python's handling: old names are mapped, unknown ones mean 'none'."""
    old = {"smallest": "earliest", "largest": "latest"}
    if value in old:
        log.warning("use auto_offset_reset=%r (%r is deprecated)", old[value], value)
        return old[value]
    if value not in ("earliest", "latest", "none"):
        log.warning("unrecognized auto_offset_reset=%r: using 'none' (as kafka-python "
                    "does); use 'earliest' or 'latest'", value)
        return "none"
    return value


def _check_tp(*partitions: Any) -> None:
    for tp in partitions:
        if not isinstance(tp, TopicPartition):
            raise TypeError(f"partition {tp!r} must be a TopicPartition namedtuple")


class KafkaConsumer:
    """Reads records from topics (kafka-python 3.x's ``KafkaConsumer``).

    A consumer is used by one thread at a time, as in kafka-python.

    Args:
        *topics: topics to subscribe to (group management when ``group_id`` is set).
        **configs: kafka-python 3.x's keyword arguments (see ``DEFAULT_CONFIG``);
            ``bootstrap_servers`` selects the broker as for ``KafkaProducer``.
            Network, security, fetch-sizing and metrics-plumbing keys are accepted and
            ignored.

    Raises:
        KafkaConfigurationError: an unknown key or a bad value.
        NoBrokersAvailable: the ``mqlog://`` store is owned by another process.
    """

    DEFAULT_CONFIG = _config.CONSUMER_DEFAULTS

    def __init__(self, *topics: str, **configs: Any) -> None:
        self.config = cfg = _config.resolve("KafkaConsumer", _config.CONSUMER_DEFAULTS,
                                            configs)
        if not cfg["fetch_max_wait_ms"] < cfg["request_timeout_ms"] < \
                cfg["connections_max_idle_ms"]:
            raise _config.ConfigError(
                f"connections_max_idle_ms ({cfg['connections_max_idle_ms']}) must be larger "
                f"than request_timeout_ms ({cfg['request_timeout_ms']}) which must be "
                f"larger than fetch_max_wait_ms ({cfg['fetch_max_wait_ms']})")
        if cfg["group_instance_id"] is not None and cfg["group_id"] is None:
            raise _config.ConfigError("group_instance_id requires group_id")
        if cfg["isolation_level"] not in ("read_uncommitted", "read_committed"):
            raise _config.ConfigError(
                f"Unrecognized isolation_level {cfg['isolation_level']!r}: use "
                "'read_uncommitted' or 'read_committed'")
        callback = cfg["default_offset_commit_callback"]
        if callback is not None and not callable(callback):
            raise _config.ConfigError(
                f"default_offset_commit_callback={callback!r} is not callable")
        self._key_deserializer = serializer_call(cfg["key_deserializer"], "deserialize")
        self._value_deserializer = serializer_call(cfg["value_deserializer"], "deserialize")
        self._metrics_enabled = bool(cfg["metrics_enabled"])
        try:
            self._broker = resolve_broker(cfg["bootstrap_servers"])
            self._consumer = self._broker.consumer(
                group_id=cfg["group_id"], client_id=cfg["client_id"],
                auto_offset_reset=_reset_policy(cfg["auto_offset_reset"]),
                enable_auto_commit=cfg["enable_auto_commit"],
                auto_commit_interval_ms=cfg["auto_commit_interval_ms"],
                max_poll_records=cfg["max_poll_records"],
                max_poll_interval_ms=cfg["max_poll_interval_ms"],
                session_timeout_ms=cfg["session_timeout_ms"],
                heartbeat_interval_ms=cfg["heartbeat_interval_ms"],
                partition_assignment_strategy=_assignor_names(
                    cfg["partition_assignment_strategy"]),
                isolation_level=cfg["isolation_level"],
                consumer_timeout_ms=_config.timeout_ms(cfg["consumer_timeout_ms"],
                                                       "consumer_timeout_ms"),
                group_instance_id=cfg["group_instance_id"])
        except InvalidConfigError as exc:
            raise _config.ConfigError(str(exc)) from exc
        except MqlogError as exc:
            raise translate(exc) from exc
        self._faults = self._broker.faults
        self._closed = False
        # Commits failed by an injected fault: (future, offsets, callback, error), handed
        # to their callbacks in the next poll()/commit()/close(), as real results are.
        self._failed_commits: list[tuple[Future, dict, Any, BaseException]] = []
        self._consumed = 0  # metrics; the consumer is used by one thread at a time
        self._polls = 0
        self._commits = 0
        self._started = time.monotonic()
        if topics:
            self.subscribe(list(topics))

    def __repr__(self) -> str:
        return (f"<KafkaConsumer client_id={self._consumer.client_id} "
                f"group_id={self.config['group_id']}>")

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        # As kafka-python: an exception may mean the last record was not processed,
        # so its offset is not committed.
        self.close(autocommit=exc_type is None)

    def bootstrap_connected(self) -> bool:
        """Always True: the broker is in this process."""
        return not self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise IllegalStateError("KafkaConsumer is closed")

    # -- subscription and assignment ------------------------------------------------

    @translated
    def subscribe(self, topics: Sequence[str] = (), pattern: str | None = None,
                  listener: ConsumerRebalanceListener | None = None) -> None:
        """Subscribe to a list of topics, or to a regex ``pattern`` (group management).

        Raises:
            ValueError: neither topics nor pattern.
            IllegalStateError: both, or the consumer uses ``assign()``.
            TypeError: topics is a str or not a sequence; listener is not a
                ``ConsumerRebalanceListener``.
        """
        self._check_open()
        if not topics and not pattern:
            raise ValueError("Must provide topics or pattern")
        if topics and pattern:
            raise IllegalStateError(_ONE_WAY)
        if pattern is None and (isinstance(topics, str) or not isinstance(topics, Sequence)):
            raise TypeError(f"Topics must be a list (or non-str sequence), got {topics!r}")
        if listener is not None and not isinstance(listener, ConsumerRebalanceListener):
            raise TypeError("listener must be a ConsumerRebalanceListener (from "
                            "kafka.consumer.subscription_state or mqlog.kafka)")
        self._consumer.subscribe(list(topics), pattern=pattern, listener=listener)

    def subscription(self) -> set[str] | None:
        """The subscribed topics (those matching the pattern), or None."""
        return self._consumer.subscription()

    @translated
    def unsubscribe(self) -> None:
        """Leave the group (committing first with auto-commit) and drop all partitions."""
        self._check_open()
        self._consumer.unsubscribe()

    @translated
    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read exactly these partitions, without group management (an empty list
        unsubscribes).

        Raises:
            IllegalStateError: the consumer is subscribed.
            UnknownTopicOrPartitionError: a partition does not exist.
        """
        self._check_open()
        if not partitions:
            self._consumer.unsubscribe()
            return
        self._consumer.assign(list(partitions))

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return self._consumer.assignment()

    # -- positions ------------------------------------------------------------------

    def _assigned(self, partitions: tuple, allow_all: bool) -> tuple:
        _check_tp(*partitions)
        assigned = self._consumer.assignment()
        if not partitions and allow_all:
            if not assigned:
                raise ValueError("No partitions are currently assigned")
            return ()
        for tp in partitions:
            if tp not in assigned:
                raise ValueError(f"Unassigned partition: {tp}")
        return partitions

    @translated
    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset returned for ``partition``.

        Raises:
            TypeError: not a TopicPartition. ValueError: offset not an int >= 0, or the
                partition is not assigned.
        """
        self._check_open()
        _check_tp(partition)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"Offset must be int >= 0, got {offset!r}")
        self._assigned((partition,), allow_all=False)
        self._consumer.seek(partition, offset)

    @translated
    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the oldest stored offset of the partitions (default: all assigned).

        Raises:
            ValueError: a partition is not assigned, or none is.
        """
        self._check_open()
        self._consumer.seek_to_beginning(*self._assigned(partitions, allow_all=True))

    @translated
    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the end of the partitions (default: all assigned).

        Raises:
            ValueError: a partition is not assigned, or none is.
        """
        self._check_open()
        self._consumer.seek_to_end(*self._assigned(partitions, allow_all=True))

    @translated
    def position(self, partition: TopicPartition, timeout_ms: float | None = None) -> int:
        """The offset of the next record this consumer will return for ``partition``.

        Raises:
            IllegalStateError: the partition is not assigned.
            NoOffsetForPartitionError: no committed offset and auto_offset_reset='none'.
        """
        self._check_open()
        _check_tp(partition)
        if partition not in self._consumer.assignment():
            raise IllegalStateError(f"Partition {partition} is not assigned")
        return self._consumer.position(partition)

    @translated
    def highwater(self, partition: TopicPartition) -> int:
        """The offset the next record written to ``partition`` will get (for a
        ``read_committed`` consumer: the last stable offset).

        Raises:
            IllegalStateError: the partition is not assigned.
        """
        _check_tp(partition)
        if partition not in self._consumer.assignment():
            raise IllegalStateError(f"Partition {partition} is not assigned")
        return self._consumer.end_offsets([partition])[partition]

    @translated
    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records from these partitions until :meth:`resume`."""
        _check_tp(*partitions)
        self._consumer.pause(*partitions)

    @translated
    def resume(self, *partitions: TopicPartition) -> None:
        """Return records from these partitions again."""
        _check_tp(*partitions)
        self._consumer.resume(*partitions)

    def paused(self) -> set[TopicPartition]:
        """The partitions paused with :meth:`pause`."""
        return self._consumer.paused()

    @translated
    def beginning_offsets(self, partitions: Iterable[TopicPartition],
                          timeout_ms: float | None = None) -> dict[TopicPartition, int]:
        """The first offset still stored, per partition."""
        return self._consumer.beginning_offsets(list(partitions))

    @translated
    def end_offsets(self, partitions: Iterable[TopicPartition],
                    timeout_ms: float | None = None) -> dict[TopicPartition, int]:
        """The offset the next record will get, per partition (read_committed: the last
        stable offset)."""
        return self._consumer.end_offsets(list(partitions))

    @translated
    def offsets_for_times(self, timestamps: dict[TopicPartition, int],
                          timeout_ms: float | None = None) -> dict[TopicPartition, Any]:
        """Per partition, the earliest ``OffsetAndTimestamp`` at or after the timestamp
        (None when there is none).

        Raises:
            ValueError: a negative timestamp.
        """
        for tp, ts in timestamps.items():
            if ts < 0:
                raise ValueError(f"The target time for partition {tp} is {ts}. The target "
                                 "time cannot be negative.")
        return self._consumer.offsets_for_times({tp: int(ts) for tp, ts in timestamps.items()})

    # -- metadata ---------------------------------------------------------------------

    @translated
    def topics(self) -> set[str]:
        """Every topic of the broker."""
        return set(self._broker.topics())

    @translated
    def partitions_for_topic(self, topic: str) -> set[int]:
        """The topic's partition numbers (empty if it does not exist)."""
        info = self._broker.topics().get(topic)
        return set() if info is None else set(range(info.partitions))

    # -- fetching ---------------------------------------------------------------------

    def _check_poll_fault(self) -> None:
        if self._faults.armed:
            try:
                self._faults.check("poll")
            except MqlogError as exc:
                raise translate(exc) from exc

    def poll(self, timeout_ms: float = 0, max_records: int | None = None,
             update_offsets: bool = True) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Fetch records, waiting up to ``timeout_ms`` for some.

        Returns:
            ``{TopicPartition: [ConsumerRecord, ...]}``; empty if none arrived in time.

        Raises:
            ValueError: negative timeout or max_records <= 0. TypeError: max_records not
                an int.
            IllegalStateError: the consumer is closed, or has no subscription or
                assignment.
            NoOffsetForPartitionError, OffsetOutOfRangeError: no valid position and
                ``auto_offset_reset='none'``.
            KafkaError: an error injected with ``broker.faults.fail_next("poll", ...)``.
        """
        if timeout_ms < 0:
            raise ValueError("Timeout must not be negative")
        if max_records is None:
            max_records = self.config["max_poll_records"]
        if not isinstance(max_records, int) or isinstance(max_records, bool):
            raise TypeError(f"max_records must be an integer, got {max_records!r}")
        if max_records <= 0:
            raise ValueError(f"max_records must be positive, got {max_records}")
        self._check_open()
        self._deliver_failed_commits()
        self._check_poll_fault()
        try:
            result = self._consumer.poll(timeout_ms, max_records, update_offsets)
        except MqlogError as exc:
            raise translate(exc) from exc
        self._polls += 1
        if result:
            result = {tp: list(map(self._kafka_record, recs)) for tp, recs in result.items()}
            self._consumed += sum(map(len, result.values()))
        return result

    def _kafka_record(self, r: ConsumerRecord) -> ConsumerRecord:
        """The record as kafka-python hands it out: deserialized, and headers a list
        (mqlog gives records without headers the shared empty tuple)."""
        kd, vd = self._key_deserializer, self._value_deserializer
        headers = r[8] or []
        return _new_record(ConsumerRecord, (
            r[0], r[1], r[2], r[3], r[4], r[5],
            r[6] if kd is None else kd(r[0], headers, r[6]),
            r[7] if vd is None else vd(r[0], headers, r[7]),
            headers, r[9], r[10], r[11], r[12]))

    def __iter__(self) -> KafkaConsumer:
        return self

    def __next__(self) -> ConsumerRecord:
        """The next record; stops after ``consumer_timeout_ms`` without one (never, by
        default), or when the consumer is closed."""
        if self._closed:
            raise StopIteration("KafkaConsumer closed")
        # A fault is due when the consumer is about to fetch, not for records it holds.
        # (_iter_buffer: the core consumer's records fetched but not yet handed out.)
        if self._faults.armed and not getattr(self._consumer, "_iter_buffer", None):
            self._deliver_failed_commits()
            self._check_poll_fault()
        try:
            record = self._consumer.__next__()
        except MqlogError as exc:
            raise translate(exc) from exc
        self._consumed += 1
        return self._kafka_record(record)

    # -- committing -------------------------------------------------------------------

    def _require_group(self) -> None:
        if self.config["group_id"] is None:
            raise IllegalStateError("Requires group_id: create the consumer with "
                                    "group_id='...' to commit offsets")

    def _take_commit_fault(self) -> BaseException | None:
        if not self._faults.armed:
            return None
        error, latency = self._faults.take("commit")
        if latency:
            threading.Event().wait(latency)  # injected latency, not synchronisation
        return None if error is None else translate(error)

    def _deliver_failed_commits(self) -> None:
        while self._failed_commits:
            future, offsets, callback, error = self._failed_commits.pop(0)
            future.failure(error)
            if callback is not None:
                _call_commit_callback(callback, offsets, error)

    @translated
    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata] | None = None,
               timeout_ms: float | None = None) -> None:
        """Commit offsets (default: the current positions) for ``group_id``; blocks.

        A committed offset is the next offset to read: ``last processed + 1``.

        Raises:
            IllegalStateError: no ``group_id``.
            CommitFailedError: the group rebalanced and the partitions belong to
                another member (or the error injected for "commit").
        """
        self._check_open()
        self._require_group()
        self._deliver_failed_commits()
        error = self._take_commit_fault()
        if error is not None:
            raise error
        self._consumer.commit(offsets)
        self._commits += 1

    @translated
    def commit_async(self, offsets: dict[TopicPartition, OffsetAndMetadata] | None = None,
                     callback: Callable[[dict, Any], Any] | None = None) -> Future:
        """Commit without waiting. ``callback(offsets, exception_or_None)`` runs in a
        later ``poll()``/``commit()``/``close()`` of this consumer.

        Returns:
            A :class:`~mqlog.kafka.future.Future` completed when the callback runs.

        Raises:
            IllegalStateError: no ``group_id``.
        """
        self._check_open()
        self._require_group()
        callback = callback or self.config["default_offset_commit_callback"]
        future = Future()
        error = self._take_commit_fault()
        if error is not None:
            self._failed_commits.append(
                (future, offsets if offsets is not None else self._positions(), callback,
                 error))
            return future

        def done(committed: dict, exc: BaseException | None) -> None:
            exc = None if exc is None else translate(exc)
            if exc is None:
                future.success(None)
            else:
                future.failure(exc)
            if callback is not None:
                _call_commit_callback(callback, committed, exc)

        self._consumer.commit_async(offsets, callback=done)
        self._commits += 1
        return future

    def _positions(self) -> dict[TopicPartition, OffsetAndMetadata]:
        out = {}
        for tp in self._consumer.assignment():
            try:
                out[tp] = OffsetAndMetadata(self._consumer.position(tp), "", -1)
            except MqlogError:
                continue  # no valid position: nothing to commit for it
        return out

    @translated
    def committed(self, partition: TopicPartition, metadata: bool = False,
                  timeout_ms: float | None = None) -> Any:
        """The offset ``group_id`` committed for ``partition`` (an ``OffsetAndMetadata``
        with ``metadata=True``), or None.

        Raises:
            IllegalStateError: no ``group_id``. TypeError: not a TopicPartition.
        """
        self._check_open()
        self._require_group()
        _check_tp(partition)
        return self._consumer.committed(partition, metadata=metadata)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """This member's group identity, for ``send_offsets_to_transaction``."""
        if self.config["group_id"] is None:
            return ConsumerGroupMetadata(None)  # type: ignore[arg-type]
        try:
            return self._consumer.group_metadata()
        except MqlogError as exc:
            raise translate(exc) from exc

    # -- lifecycle ----------------------------------------------------------------------

    def metrics(self, raw: bool = False) -> dict[str, dict[str, float]] | None:
        """Counters in kafka-python's shape ``{group: {name: value}}``; None when
        ``metrics_enabled=False``."""
        if not self._metrics_enabled:
            return None
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return {
            "consumer-fetch-manager-metrics": {
                "records-consumed-total": float(self._consumed),
                "records-consumed-rate": self._consumed / elapsed,
                "fetch-total": float(self._polls),
            },
            "consumer-coordinator-metrics": {
                "commit-total": float(self._commits),
                "assigned-partitions": float(len(self._consumer.assignment())),
            },
        }

    def close(self, autocommit: bool = True, timeout_ms: float | None = None) -> None:
        """Close the consumer: commit positions first (when ``enable_auto_commit`` and
        ``autocommit``), leave the group, run pending commit callbacks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._deliver_failed_commits()
            self._consumer.close(autocommit=autocommit)
        except MqlogError as exc:
            raise translate(exc) from exc
        finally:
            for key in ("key_deserializer", "value_deserializer"):
                close = getattr(self.config[key], "close", None)
                if callable(close):
                    close()


def _call_commit_callback(callback: Callable[[dict, Any], Any], offsets: dict,
                          error: BaseException | None) -> None:
    try:
        callback(offsets, error)
    except Exception:  # as kafka-python: a raising commit callback is logged
        log.exception("offset commit callback %r raised", callback)
