"""confluent-kafka's ``Consumer`` over an mqlog broker.

An mqlog :class:`~mqlog.consumer.Consumer` does the fetching and the group protocol;
this layer gives it librdkafka's shape:

* ``poll()`` returns one :class:`Message` (``consume()`` a list), handed out of fetched
  chunks one by one (:mod:`._fetcher`). A partition's *position* (``position()``) is
  the offset after the last message returned; with ``enable.auto.offset.store`` (the
  default) that is also the *stored* offset ``commit()`` and auto-commit commit
  (:mod:`._commits`).
* Events come back as messages whose ``error()`` is set, as librdkafka delivers
  them: ``_PARTITION_EOF`` (with ``enable.partition.eof``) each time a partition's end
  is reached, ``_AUTO_OFFSET_RESET`` (``auto.offset.reset=error`` with no valid
  position; the partition then stops until assigned again), ``UNKNOWN_TOPIC_OR_PART``
  for a subscribed topic that does not exist, and what
  ``broker.faults.fail_next("poll", ...)`` injected.
* Callbacks run in the thread that calls ``poll()``/``consume()``/``close()``:
  ``on_assign``/``on_revoke``/``on_lost(consumer, partitions)`` during rebalances,
  ``on_commit(err, partitions)`` for asynchronous and automatic commits. An exception
  raised by one propagates out of that call, as in confluent-kafka.

Auto-commit (``enable.auto.commit``) commits the stored offsets every
``auto.commit.interval.ms`` from ``poll()``/``consume()`` (librdkafka uses a background
timer), when partitions are revoked (after ``on_revoke``, so offsets it stores are
included) and on ``close()``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from typing import Any, Callable

from .. import errors as _errors
from .._bootstrap import resolve
from ..consumer import ConsumerRebalanceListener
from ..records import TopicPartition as _CoreTP
from . import _config
from ._commits import Commits
from ._fetcher import FETCH_RECORDS, Fetcher
from ._metadata import ClusterMetadata, cluster_id, cluster_metadata
from ._types import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    Message,
    TopicPartition,
    event_message,
    tp_with,
)
from .error import KafkaException, error, exception, to_kafka_error

__all__ = ["Consumer"]

log = logging.getLogger("mqlog.confluent")

_monotonic = time.monotonic
_CLOSED = "Consumer closed"
_FOREVER_CHUNK = 3600.0  # an infinite wait is a loop of waits this long
_RESET = {"smallest": "earliest", "earliest": "earliest", "beginning": "earliest",
          "largest": "latest", "latest": "latest", "end": "latest", "error": "none"}
_STRATEGIES = ("range", "roundrobin", "cooperative-sticky")


def _deadline(timeout: float | None) -> float | None:
    if timeout is None or timeout < 0:
        return None
    return _monotonic() + timeout


def _remaining(deadline: float | None) -> float:
    if deadline is None:
        return _FOREVER_CHUNK
    return max(0.0, deadline - _monotonic())


def _tp_list(partitions: Any, what: str = "partitions") -> list[TopicPartition]:
    if not isinstance(partitions, (list, tuple)) or not all(
            isinstance(tp, TopicPartition) for tp in partitions):
        raise TypeError(f"{what} must be a list of TopicPartition, got {partitions!r:.80}")
    return list(partitions)


class _Rebalance(ConsumerRebalanceListener):
    """Passes mqlog's rebalance callbacks to the drop-in consumer (weakly held, so a
    consumer dropped without ``close()`` is still collected)."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = weakref.ref(consumer)

    def on_partitions_assigned(self, assigned: list) -> None:
        c = self._consumer()
        if c is not None:
            c._on_assigned(assigned)

    def on_partitions_revoked(self, revoked: list) -> None:
        c = self._consumer()
        if c is not None:
            c._on_revoked(revoked, lost=False)

    def on_partitions_lost(self, lost: list) -> None:
        c = self._consumer()
        if c is not None:
            c._on_revoked(lost, lost=True)


class Consumer:
    """High-level consumer with confluent-kafka's API (``confluent_kafka.Consumer``).

    A consumer is used by one thread at a time (its callbacks run in that thread).

    Args:
        config: a dict of librdkafka properties; ``group.id`` is required.
            ``bootstrap.servers`` selects the mqlog broker; ``auto.offset.reset``,
            ``enable.auto.commit``, ``auto.commit.interval.ms``,
            ``enable.auto.offset.store``, ``enable.partition.eof``,
            ``isolation.level`` (default ``read_committed``, as librdkafka),
            ``partition.assignment.strategy``, ``session.timeout.ms``,
            ``max.poll.interval.ms``, ``group.instance.id`` and ``on_commit`` have
            their librdkafka meaning (docs/dropin-confluent-kafka.md).
        **kwargs: more properties, merged over ``config``.

    Raises:
        ValueError: no ``group.id``.
        TypeError: ``config`` is not a dict, or a callback is not callable.
        KafkaException: ``_INVALID_ARG`` for an unknown property or a bad value.
    """

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        conf = _config.parse(config, kwargs, "C")
        group_id = conf.get("group.id")
        if not group_id:
            raise ValueError("Failed to create consumer: group.id must be set")
        strategies = [s.strip() for s in conf.get(
            "partition.assignment.strategy", "range,roundrobin").split(",") if s.strip()]
        for s in strategies or [""]:
            if s not in _STRATEGIES:
                raise exception("_INVALID_ARG", f"Unsupported partition.assignment.strategy: "
                                f"{s!r}: use range, roundrobin or cooperative-sticky")
        self._logger: logging.Logger = conf.get("logger") or log
        self._reset = _RESET[conf.get("auto.offset.reset", "largest")]
        try:
            self._broker = resolve(conf.get("metadata.broker.list"))
            self._core = self._broker.consumer(
                group_id=group_id,
                client_id=conf.get("client.id", "rdkafka"),
                auto_offset_reset=self._reset,
                enable_auto_commit=False,  # auto-commit of *stored* offsets is done here
                max_poll_records=FETCH_RECORDS,
                max_poll_interval_ms=conf.get("max.poll.interval.ms", 300000),
                session_timeout_ms=conf.get("session.timeout.ms", 45000),
                heartbeat_interval_ms=conf.get("heartbeat.interval.ms", 3000),
                partition_assignment_strategy=strategies,
                isolation_level=conf.get("isolation.level", "read_committed"),
                group_instance_id=conf.get("group.instance.id") or None,
            )
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, "Failed to create consumer: ")) from exc
        self._faults = self._broker.faults
        self._auto_commit = conf.get("enable.auto.commit", True)
        self._commit_interval = conf.get("auto.commit.interval.ms", 5000) / 1000.0
        self._next_auto_commit = _monotonic() + self._commit_interval
        self._auto_store = conf.get("enable.auto.offset.store", True)
        self._eof_enabled = conf.get("enable.partition.eof", False)
        self._auto_create = conf.get("allow.auto.create.topics", False)
        self._commits = Commits(self._core, self._faults, conf.get("on_commit"), self._logger)
        self._fetch = Fetcher(self._core, self._commits.stored, self._auto_store)
        self._on_assign: Callable | None = None
        self._on_revoke: Callable | None = None
        self._on_lost: Callable | None = None
        self._subscribed = False
        self._rebalancing = False  # inside on_assign/on_revoke/on_lost
        self._callback_error: BaseException | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<mqlog.confluent.Consumer group={self._core.group_id!r} {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(_CLOSED)

    def _forget(self, keys: Any) -> None:
        keys = [tuple(k) for k in keys]
        self._fetch.forget(keys)
        for k in keys:
            self._commits.forget(k)

    # -- subscription and assignment --------------------------------------------------

    def subscribe(self, topics: list[str], on_assign: Callable | None = None,
                  on_revoke: Callable | None = None, on_lost: Callable | None = None) -> None:
        """Subscribe to topics (names starting with ``^`` are regular expressions),
        replacing any earlier subscription; partitions are assigned inside ``poll()``.

        Args:
            topics: topic names and/or ``^regex`` patterns.
            on_assign, on_revoke, on_lost: ``fn(consumer, partitions)``. Without
                ``on_lost``, lost partitions go to ``on_revoke``.

        Raises:
            TypeError: ``topics`` is not a list of str; a callback is not callable.
            KafkaException: ``_INVALID_ARG`` for an empty list.
            RuntimeError: the consumer is closed.
        """
        self._check_open()
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise TypeError("expected list of topic unicode strings")
        for name, cb in (("on_assign", on_assign), ("on_revoke", on_revoke),
                         ("on_lost", on_lost)):
            if cb is not None and not callable(cb):
                raise TypeError(f"{name} expects a callable")
        if not topics:
            raise exception("_INVALID_ARG", "subscribe() needs at least one topic")
        if not self._subscribed and self._core.assignment():
            self._reset_assignment([])
        names = [t for t in topics if not t.startswith("^")]
        patterns = [t for t in topics if t.startswith("^")]
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
        listener = _Rebalance(self)
        try:
            if patterns:
                regex = "|".join([f"(?:{p})" for p in patterns] +
                                 [f"(?:{re.escape(n)}\\Z)" for n in names])
                self._core.subscribe(pattern=regex, listener=listener)
            else:
                self._core.subscribe(names, listener=listener)
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc, "Subscribe failed: ")) from exc
        self._subscribed = True
        existing = self._broker.topics()
        for name in names:
            if name not in existing:
                self._fetch.events.append(event_message(
                    error("UNKNOWN_TOPIC_OR_PART", f"Subscribed topic not available: {name}: "
                          "Broker: Unknown topic or partition"), topic=name))

    def unsubscribe(self) -> None:
        """Leave the group (``on_revoke`` runs first) and drop the subscription."""
        self._check_open()
        if self._subscribed:
            self._core.unsubscribe()
            self._subscribed = False
            self._fetch.buffer.clear()
        self._raise_callback_error()

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read exactly these partitions, each from its ``offset`` (``OFFSET_INVALID``/
        ``OFFSET_STORED``: the committed offset, else ``auto.offset.reset``).

        Inside ``on_assign`` it sets the start offsets of the assigned partitions.

        Raises:
            KafkaException: ``_UNKNOWN_PARTITION`` for a partition that does not exist;
                ``_STATE`` when subscribed (outside ``on_assign``).
            TypeError: not a list of TopicPartition.
        """
        self._check_open()
        tps = _tp_list(partitions)
        if self._rebalancing:
            current = self._core.assignment()
            self._fetch.start_at([tp for tp in tps if (tp.topic, tp.partition) in current])
            return
        if self._subscribed:
            raise exception("_STATE", "assign() on a subscribed consumer: call "
                            "unsubscribe() first, or assign() inside on_assign")
        self._reset_assignment(tps)

    def _reset_assignment(self, tps: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in tps]
        self._fetch.buffer.clear()
        self._forget(list(self._core.assignment()) + keys)
        try:
            self._core.assign([])  # a new assignment fetches from committed offsets
            self._core.assign([_CoreTP(*k) for k in keys])
        except _errors.UnknownTopicOrPartitionError as exc:
            raise exception("_UNKNOWN_PARTITION", f"assign() failed: {exc}") from exc
        self._fetch.start_at(tps)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        """Add partitions to the assignment (each from its ``offset``).

        Raises:
            KafkaException: ``_CONFLICT`` for a partition already assigned,
                ``_INVALID_ARG`` for duplicates, ``_UNKNOWN_PARTITION``.
        """
        self._check_open()
        tps = _tp_list(partitions)
        keys = [(tp.topic, tp.partition) for tp in tps]
        if len(set(keys)) != len(keys):
            raise exception("_INVALID_ARG", "incremental_assign() got duplicate partitions")
        current = self._core.assignment()
        if self._rebalancing:  # cooperative on_assign: mqlog already added them
            self._fetch.start_at([tp for tp, k in zip(tps, keys) if k in current])
            return
        for tp, k in zip(tps, keys):
            if k in current:
                raise exception("_CONFLICT", f"{tp.topic} [{tp.partition}] is already part "
                                "of the current assignment")
        if self._subscribed:
            raise exception("_STATE", "incremental_assign() on a subscribed consumer "
                            "works inside on_assign only")
        self._forget(keys)
        try:
            self._core.assign(sorted(current) + [_CoreTP(*k) for k in keys])
        except _errors.UnknownTopicOrPartitionError as exc:
            raise exception("_UNKNOWN_PARTITION",
                            f"incremental_assign() failed: {exc}") from exc
        self._fetch.start_at(tps)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        """Remove partitions from the assignment.

        Raises:
            KafkaException: ``_INVALID_ARG`` for a partition not assigned.
        """
        self._check_open()
        tps = _tp_list(partitions)
        keys = {(tp.topic, tp.partition) for tp in tps}
        if self._rebalancing:  # mqlog releases them itself
            return
        current = self._core.assignment()
        for tp in tps:
            if (tp.topic, tp.partition) not in current:
                raise exception("_INVALID_ARG", f"{tp.topic} [{tp.partition}] can't be "
                                "unassigned since it is not in the current assignment")
        if self._subscribed:
            raise exception("_STATE", "incremental_unassign() on a subscribed consumer "
                            "works inside on_revoke/on_lost only")
        self._fetch.drop(keys, rewind=False)
        self._forget(keys)
        self._core.assign(sorted(tp for tp in current if tp not in keys))

    def unassign(self) -> None:
        """Drop the whole assignment (manual assignment; a no-op inside callbacks)."""
        self._check_open()
        if self._rebalancing or self._subscribed:
            return
        self._reset_assignment([])

    def assignment(self) -> list[TopicPartition]:
        """The partitions currently assigned."""
        self._check_open()
        return [TopicPartition(t, p) for t, p in sorted(self._core.assignment())]

    # -- rebalance callbacks (called by mqlog inside poll) ----------------------------

    def _call(self, fn: Callable | None, partitions: list) -> None:
        if fn is None:
            return
        self._rebalancing = True
        try:
            fn(self, [TopicPartition(t, p) for t, p in partitions])
        except Exception as exc:  # re-raised from poll(), as confluent-kafka does
            if self._callback_error is None:
                self._callback_error = exc
        finally:
            self._rebalancing = False

    def _on_assigned(self, partitions: list) -> None:
        for k in partitions:
            self._fetch.restart(tuple(k))
        self._call(self._on_assign, partitions)

    def _on_revoked(self, partitions: list, lost: bool) -> None:
        keys = {tuple(k) for k in partitions}
        self._fetch.drop(keys, rewind=False)
        self._call(self._on_lost if lost and self._on_lost is not None else self._on_revoke,
                   partitions)
        if not lost and self._auto_commit:
            offsets = self._commits.uncommitted(self._core.assignment(), keys)
            if offsets:
                try:
                    self._commits.commit_now(offsets)
                except KafkaException as exc:
                    self._logger.warning("auto-commit before revocation failed: %s", exc)
        self._forget(keys)

    def _raise_callback_error(self) -> None:
        exc = self._callback_error
        if exc is not None:
            self._callback_error = None
            raise exc

    # -- consuming ----------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> Message | None:
        """The next message or event, waiting up to ``timeout`` seconds (None or -1:
        forever); None when nothing came in time. Check ``msg.error()`` first.

        Raises:
            RuntimeError: the consumer is closed.
            Exception: whatever a callback raised.
        """
        self._check_open()
        out = self._consume(1, _deadline(timeout), wait_full=False)
        return out[0] if out else None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Up to ``num_messages`` messages/events; waits until that many arrived or
        ``timeout`` seconds passed (-1: forever).

        Raises:
            ValueError: ``num_messages`` outside 0..1000000.
            RuntimeError: the consumer is closed.
            Exception: whatever a callback raised.
        """
        self._check_open()
        if not isinstance(num_messages, int) or isinstance(num_messages, bool) or \
                not 0 <= num_messages <= 1000000:
            raise ValueError("num_messages must be between 0 and 1000000 (1M)")
        if num_messages == 0:
            return []
        return self._consume(num_messages, _deadline(timeout), wait_full=True)

    def _consume(self, n: int, deadline: float | None, wait_full: bool) -> list[Message]:
        out: list[Message] = []
        if self._faults.armed:
            err, latency = self._faults.take("poll")
            if latency:
                threading.Event().wait(latency)  # injected latency, not synchronisation
            if err is not None:
                return [event_message(to_kafka_error(err))]
        self._housekeeping()
        fetch = self._fetch
        while True:
            fetch.take(out, n)
            if len(out) >= n or (out and not wait_full):
                break
            if self._fetch_step(0.0):
                continue
            if self._eof_enabled and fetch.check_eof():
                continue
            remaining = _remaining(deadline)
            if remaining <= 0:
                break
            self._fetch_step(remaining)
        self._housekeeping()
        return out

    def _fetch_step(self, wait: float) -> bool:
        idle = not self._subscribed and not self._core.assignment()
        try:
            got = self._fetch.fetch(wait, idle)
        except _errors.ClosedError as exc:
            raise RuntimeError(f"{_CLOSED} ({exc})") from exc
        self._raise_callback_error()
        return got

    def _housekeeping(self) -> None:
        """Run the auto-commit timer; report finished async commits to ``on_commit``."""
        if self._auto_commit and _monotonic() >= self._next_auto_commit:
            self._next_auto_commit = _monotonic() + self._commit_interval
            offsets = self._commits.uncommitted(self._core.assignment())
            if offsets:  # nothing new: silent, as librdkafka's timer
                self._commits.commit_later(offsets)
        if self._commits.pending:
            self._commits.serve(wait=False)

    # -- positions ----------------------------------------------------------------------

    def seek(self, partition: TopicPartition) -> None:
        """Fetch ``partition`` from its ``offset`` next (absolute or logical).

        Raises:
            KafkaException: ``_UNKNOWN_PARTITION`` for a partition of a topic not read,
                ``_STATE`` for an unassigned one of a topic read, or one stopped by
                ``auto.offset.reset=error`` (as librdkafka).
        """
        self._check_open()
        if not isinstance(partition, TopicPartition):
            raise TypeError(f"seek() takes a TopicPartition, got {partition!r:.60}")
        k = (partition.topic, partition.partition)
        assigned = self._core.assignment()
        if k not in assigned or k in self._fetch.stalled:
            # librdkafka: a partition of a topic it reads is known but has no fetch
            # position (_STATE); any other is unknown to it.
            known = any(tp[0] == k[0] for tp in assigned)
            raise exception("_STATE" if known else "_UNKNOWN_PARTITION",
                            f"Failed to seek to offset {partition.offset}: Local: "
                            f"{'Erroneous state' if known else 'Unknown partition'} "
                            f"({k[0]} [{k[1]}] has no fetch position: assign() it first)")
        self._fetch.drop({k}, rewind=False)
        off = partition.offset
        if off in (OFFSET_INVALID, OFFSET_STORED):  # the committed offset, else the reset
            committed = self._core.committed(_CoreTP(*k))
            if committed is not None:
                off = committed
            elif self._reset == "none":
                self._fetch.stall(k, f"no committed offset for {k[0]} [{k[1]}]")
                return
            else:
                off = OFFSET_BEGINNING if self._reset == "earliest" else OFFSET_END
        self._fetch.start_at([TopicPartition(k[0], k[1], off)])

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Per partition, the offset after the last message returned (``OFFSET_INVALID``
        before the first one, and after a ``seek()``)."""
        self._check_open()
        position = self._fetch.position
        return [TopicPartition(tp.topic, tp.partition,
                               position.get((tp.topic, tp.partition), OFFSET_INVALID))
                for tp in _tp_list(partitions)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Stop fetching these partitions (unassigned ones are ignored) until ``resume``."""
        self._check_open()
        keys = {(tp.topic, tp.partition) for tp in _tp_list(partitions)}
        keys &= {tuple(tp) for tp in self._core.assignment()}
        self._fetch.drop(keys, rewind=True)
        for k in keys:
            self._fetch.paused.add(k)
            self._core.pause(_CoreTP(*k))

    def resume(self, partitions: list[TopicPartition]) -> None:
        """Fetch paused partitions again."""
        self._check_open()
        current = self._core.assignment()
        for tp in _tp_list(partitions):
            k = (tp.topic, tp.partition)
            self._fetch.paused.discard(k)
            if k in current and k not in self._fetch.stalled:
                self._core.resume(_CoreTP(*k))

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float | None = None,
                              cached: bool = False) -> tuple[int, int]:
        """``(low, high)``: the first offset stored and the offset after the last one
        (for ``read_committed``, the last stable offset), as librdkafka.

        Raises:
            KafkaException: ``_UNKNOWN_PARTITION`` for a partition that does not exist.
        """
        self._check_open()
        if not isinstance(partition, TopicPartition):
            raise TypeError(f"expected a TopicPartition, got {partition!r:.60}")
        tp = _CoreTP(partition.topic, partition.partition)
        try:
            return (self._core.beginning_offsets([tp])[tp], self._core.end_offsets([tp])[tp])
        except _errors.UnknownTopicOrPartitionError as exc:
            raise exception("_UNKNOWN_PARTITION", "Failed to get watermark offsets: Local: "
                            f"Unknown partition ({exc})") from exc

    def offsets_for_times(self, partitions: list[TopicPartition],
                          timeout: float | None = None) -> list[TopicPartition]:
        """Per partition (its ``offset`` holds a timestamp in ms), the earliest offset
        whose timestamp is >= it, or -1 when there is none.

        Raises:
            KafkaException: ``UNKNOWN_TOPIC_OR_PART`` for a partition that does not exist.
        """
        self._check_open()
        out = []
        for tp in _tp_list(partitions):  # one lookup each: a partition may repeat
            core_tp = _CoreTP(tp.topic, tp.partition)
            try:
                hit = self._core.offsets_for_times({core_tp: tp.offset})[core_tp]
            except (_errors.UnknownTopicOrPartitionError, ValueError) as exc:
                raise KafkaException(to_kafka_error(exc, "Failed to get offsets: ")) from exc
            out.append(TopicPartition(tp.topic, tp.partition, -1 if hit is None else hit.offset))
        return out

    # -- committing ---------------------------------------------------------------------

    def commit(self, message: Message | None = None,
               offsets: list[TopicPartition] | None = None,
               asynchronous: bool = True) -> list[TopicPartition] | None:
        """Commit offsets: the message's offset + 1, the given ``offsets``, or (with
        neither) the stored offsets of the assigned partitions.

        Args:
            message: commit ``message.offset() + 1`` for its partition.
            offsets: ``TopicPartition`` list with the offsets to commit (the next
                offsets to read); logical offsets are skipped.
            asynchronous: return at once (the outcome goes to ``on_commit`` from a
                later ``poll()``); False waits and returns the committed partitions.

        Returns:
            None when asynchronous, else the partitions with their committed offsets
            (without arguments: every assigned partition, ``OFFSET_INVALID`` where
            there was nothing new to commit).

        Raises:
            KafkaException: ``_NO_OFFSET`` when there is nothing (new) to commit;
                ``UNKNOWN_TOPIC_OR_PART``; ``ILLEGAL_GENERATION`` when the group refused
                it (rebalanced); an error injected with ``broker.faults`` ("commit").
            ValueError: both ``message`` and ``offsets``.
            RuntimeError: the consumer is closed.
        """
        self._check_open()
        if message is not None and offsets is not None:
            raise ValueError("message and offsets are mutually exclusive")
        if message is not None:
            if not isinstance(message, Message) or message.offset() is None:
                raise exception("_INVALID_ARG", "commit(message=) needs a consumed message "
                                "with an offset")
            k = (message.topic(), message.partition())
            todo = {k: (message.offset() + 1, None)}
            result = [TopicPartition(k[0], k[1], message.offset() + 1)]
        elif offsets is not None:
            tps = [tp for tp in _tp_list(offsets, "offsets") if tp.offset >= 0]
            todo = {(tp.topic, tp.partition): (tp.offset, tp.metadata) for tp in tps}
            result = [TopicPartition(tp.topic, tp.partition, tp.offset, tp.metadata)
                      for tp in tps]
        else:
            todo = self._commits.uncommitted(self._core.assignment())
            # Every assigned partition; OFFSET_INVALID for those with nothing new.
            result = [TopicPartition(t, p, todo.get((t, p), (OFFSET_INVALID,))[0])
                      for t, p in sorted(self._core.assignment())]
        if not todo:
            raise exception("_NO_OFFSET", "Commit failed: Local: No offset stored")
        if asynchronous:
            self._commits.commit_later(todo)
            return None
        self._commits.commit_now(todo)
        return result

    def store_offsets(self, message: Message | None = None,
                      offsets: list[TopicPartition] | None = None) -> None:
        """Store offsets for the next ``commit()``/auto-commit (needs
        ``enable.auto.offset.store=false``): the message's offset + 1, or ``offsets``.

        Raises:
            KafkaException: ``_INVALID_ARG`` while ``enable.auto.offset.store`` is on;
                ``_STATE`` for a partition not assigned.
            ValueError: both ``message`` and ``offsets``.
        """
        self._check_open()
        if self._auto_store:
            raise exception("_INVALID_ARG", "StoreOffsets failed: Local: Invalid argument or "
                            "configuration (set enable.auto.offset.store=false to store "
                            "offsets yourself)")
        if message is not None and offsets is not None:
            raise ValueError("message and offsets are mutually exclusive")
        if message is not None:
            items = [(message.topic(), message.partition(), message.offset() + 1, None)]
        else:
            items = [(tp.topic, tp.partition, tp.offset, tp.metadata)
                     for tp in _tp_list(offsets or [], "offsets")]
        assigned = self._core.assignment()
        for topic, partition, _off, _meta in items:
            if (topic, partition) not in assigned:
                raise exception("_STATE", "StoreOffsets failed: Local: Erroneous state "
                                f"({topic} [{partition}] is not assigned)")
        for topic, partition, off, meta in items:
            if off >= 0:
                self._commits.stored[(topic, partition)] = (off, meta)

    def committed(self, partitions: list[TopicPartition],
                  timeout: float | None = None) -> list[TopicPartition]:
        """The group's committed offsets (``OFFSET_INVALID`` where none); a partition
        that does not exist comes back with its ``error`` set."""
        self._check_open()
        out = []
        for tp in _tp_list(partitions):
            try:
                found = self._core.committed(_CoreTP(tp.topic, tp.partition), metadata=True)
            except _errors.UnknownTopicOrPartitionError as exc:
                out.append(tp_with(tp.topic, tp.partition, error=to_kafka_error(exc)))
                continue
            if found is None:
                out.append(TopicPartition(tp.topic, tp.partition, OFFSET_INVALID))
            else:
                out.append(TopicPartition(tp.topic, tp.partition, found.offset,
                                          found.metadata or None))
        return out

    # -- metadata -----------------------------------------------------------------------

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """Cluster metadata: every topic, or just ``topic`` (with an
        ``UNKNOWN_TOPIC_OR_PART`` error if it does not exist)."""
        self._check_open()
        try:
            return cluster_metadata(self._broker, topic, self._auto_create)
        except _errors.MqlogError as exc:
            raise KafkaException(to_kafka_error(exc)) from exc

    def cluster_id(self, timeout: float = -1) -> str:
        """The cluster id (stable per mqlog store directory)."""
        self._check_open()
        return cluster_id(self._broker)

    def consumer_group_metadata(self) -> Any:
        """This member's group identity, for ``Producer.send_offsets_to_transaction``."""
        self._check_open()
        return self._core.group_metadata()

    def memberid(self) -> str | None:
        """The member id the group gave this consumer, or None outside a group."""
        self._check_open()
        return self._core.group_metadata().member_id or None

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted and ignored: mqlog has no authentication."""

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # confluent-kafka 2.13+: leaving the block is close() (leave the group, commit
        # stored offsets when auto-commit is on); an exception is not suppressed.
        self.close()

    def close(self) -> None:
        """Leave the group (``on_revoke`` runs), commit stored offsets when auto-commit
        is on, report pending commits to ``on_commit``, release the consumer.

        Idempotent. Using the consumer afterwards raises ``RuntimeError``.

        Raises:
            Exception: whatever a callback raised (the consumer is closed anyway).
        """
        if self._closed:
            return
        try:
            if self._subscribed:
                self._core.unsubscribe()  # on_revoke and its auto-commit run here
                self._subscribed = False
            elif self._auto_commit:
                offsets = self._commits.uncommitted(self._core.assignment())
                if offsets:
                    try:
                        self._commits.commit_now(offsets)
                    except KafkaException as exc:
                        self._logger.warning("auto-commit on close failed: %s", exc)
            self._commits.serve(wait=True)
        except _errors.MqlogError as exc:  # e.g. the broker was closed first
            self._logger.warning("closing the consumer: %s", exc)
        finally:
            self._closed = True
            self._core.close(autocommit=False)
        self._raise_callback_error()

