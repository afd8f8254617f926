"""Consumer: reads partitions from a position, commits offsets for its group.

A consumer keeps, per assigned partition, its *position*: the next offset it will
return (Kafka's convention; a committed offset is also "next to read"). ``poll()``
reads from the positions in one short read transaction, decodes whole stored batches
(remembering the last one per partition so small polls over a large batch decode it
once) and, when nothing is there, waits on its own waiter (:mod:`mqlog._wakeups`),
which the writer notifies after a commit appends to one of the partitions it reads:
no sleeping, no spinning, and no wake-ups for other consumers' records.

Partitions come from ``assign()`` (manual) or ``subscribe()`` (group management: the
group protocol runs inside ``poll()``, see :mod:`mqlog._membership` and
:mod:`mqlog.group`).
"""

from __future__ import annotations

import enum
import logging
import re
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .errors import (
    ClosedError,
    IllegalStateError,
    InvalidConfigError,
    MqlogError,
    OffsetOutOfRangeError,
)
from ._membership import Membership, safe_auto_commit
from .assignors import resolve_assignors
from .config import is_read_committed
from .log import fetch, offset_for_time
from .records import (
    ConsumerGroupMetadata,
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    TopicPartition,
)

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = ["Consumer", "ConsumerRebalanceListener", "OffsetResetStrategy"]

_monotonic = time.monotonic


class OffsetResetStrategy(enum.Enum):
    """Where a consumer starts when it has no valid position."""

    EARLIEST = "earliest"
    """The partition's log start offset (the oldest record still stored)."""
    LATEST = "latest"
    """The partition's end offset (only records produced from now on)."""
    NONE = "none"
    """Raise :class:`~mqlog.errors.OffsetOutOfRangeError` instead of guessing."""


class ConsumerRebalanceListener:
    """Callbacks around group rebalances (kafka-python's interface).

    Subclass and pass to ``subscribe(listener=...)``. Callbacks run in the consumer's own
    ``poll()`` thread.
    """

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Called before partitions are taken away: commit their offsets here."""

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Called after partitions were given to this consumer."""

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        """Called when partitions were taken away without a chance to commit."""
        self.on_partitions_revoked(lost)


def _reset_strategy(value: Any) -> OffsetResetStrategy:
    if isinstance(value, OffsetResetStrategy):
        return value
    aliases = {"smallest": "earliest", "largest": "latest"}
    try:
        return OffsetResetStrategy(aliases.get(value, value))
    except ValueError:
        raise InvalidConfigError(
            f"auto_offset_reset={value!r} is not valid: use 'earliest', 'latest' or "
            "'none'") from None


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise InvalidConfigError(f"{name}={value!r} must be a number > 0")


class Consumer:
    """Reads records from assigned partitions.

    A consumer is used by one thread at a time (as in Kafka); ``wakeup()`` may be
    called from any thread to interrupt a blocking ``poll()``. Create it with
    :meth:`Broker.consumer`.

    Args (keyword-only, kafka-python's names and defaults):
        group_id: the consumer group whose committed offsets this consumer uses; None
            for a consumer that never commits.
        auto_offset_reset: "latest" (default), "earliest" or "none".
        enable_auto_commit: commit positions every ``auto_commit_interval_ms`` (at the
            start of ``poll``) and on ``close()`` (default True; needs ``group_id``).
        max_poll_records: most records one ``poll`` returns (default 500).
        consumer_timeout_ms: iteration stops after this long without records
            (default: never).
        key_deserializer, value_deserializer: applied to non-null keys/values.
    """

    def __init__(
        self,
        broker: Broker,
        *topics: str,
        group_id: str | None = None,
        client_id: str | None = None,
        auto_offset_reset: str = "latest",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: float = 5000,
        max_poll_records: int = 500,
        max_poll_interval_ms: float = 300000,
        session_timeout_ms: float = 10000,
        heartbeat_interval_ms: float = 3000,
        partition_assignment_strategy: Any = None,
        key_deserializer: Callable[[bytes], Any] | None = None,
        value_deserializer: Callable[[bytes], Any] | None = None,
        isolation_level: str = "read_uncommitted",
        consumer_timeout_ms: float | None = None,
        fetch_max_bytes: int | None = None,
        group_instance_id: str | None = None,
    ) -> None:
        if group_id is not None and (not isinstance(group_id, str) or not group_id):
            raise InvalidConfigError(f"group_id={group_id!r} must be a non-empty str or None")
        self._reset = _reset_strategy(auto_offset_reset)
        _positive_int("max_poll_records", max_poll_records)
        _positive_int("auto_commit_interval_ms", auto_commit_interval_ms)
        if consumer_timeout_ms is not None and (
                not isinstance(consumer_timeout_ms, (int, float)) or consumer_timeout_ms < 0):
            raise InvalidConfigError(
                f"consumer_timeout_ms={consumer_timeout_ms!r} must be a number >= 0 or None")
        for name, fn in (("key_deserializer", key_deserializer),
                         ("value_deserializer", value_deserializer)):
            if fn is not None and not callable(fn):
                raise InvalidConfigError(f"{name}={fn!r} is not callable")
        read_committed = is_read_committed(isolation_level)
        for name, value in (("max_poll_interval_ms", max_poll_interval_ms),
                            ("session_timeout_ms", session_timeout_ms)):
            _positive_int(name, value)
        if group_instance_id is not None and (group_id is None or not isinstance(
                group_instance_id, str) or not group_instance_id):
            raise InvalidConfigError(
                f"group_instance_id={group_instance_id!r} needs a group_id and must be a "
                "non-empty str")
        self._assignors = resolve_assignors(partition_assignment_strategy)
        self._max_poll_interval = max_poll_interval_ms / 1000.0
        self._session_timeout = session_timeout_ms / 1000.0
        self.group_instance_id = group_instance_id
        self._broker = broker
        self.group_id = group_id
        self.client_id = client_id or f"consumer-{id(self):x}"
        # A readonly broker cannot store commits: auto-commit is off there.
        self._auto_commit = bool(enable_auto_commit) and group_id is not None and \
            not broker.readonly
        self._auto_commit_interval = auto_commit_interval_ms / 1000.0
        self._next_auto_commit = _monotonic() + self._auto_commit_interval
        self._max_poll_records = int(max_poll_records)
        self._key_deserializer = key_deserializer
        self._value_deserializer = value_deserializer
        self._consumer_timeout = None if consumer_timeout_ms is None else \
            consumer_timeout_ms / 1000.0
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int | None] = {}
        self._paused: set[TopicPartition] = set()
        self._cache: dict[TopicPartition, Any] = {}  # last decoded batch per partition
        self._rotation = 0
        self._iter_buffer: deque[ConsumerRecord] = deque()
        self._pending_commits: list[tuple[Any, dict, Callable | None]] = []
        self._wakeup = False  # set by wakeup() from any thread; read under the waiter
        # Woken for records in the partitions this consumer reads, and for broker-wide
        # events; forgotten at close, or when the consumer is dropped unclosed.
        self._waiter = broker._wakeups.waiter()
        weakref.finalize(self, broker._wakeups.collected, self._waiter)
        self._closed: str | None = None
        self._membership: Membership | None = None
        self._read_committed = read_committed
        self.isolation_level = isolation_level
        if topics:
            self.subscribe(list(topics))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<mqlog.Consumer {self.client_id} group={self.group_id!r} "
                f"partitions={len(self._assignment)} {state}>")

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(self._closed)

    def _mark_closed(self, reason: str) -> None:
        self._closed = reason

    # -- assignment ---------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None,
                  listener: Any = None) -> None:
        """Subscribe to topics (or a regex ``pattern``) with group management.

        With a ``group_id`` the consumer joins the group at once; partitions are
        assigned inside ``poll()`` (see docs/consumer-groups.md). Without one it reads
        every partition of the topics. A pattern also picks up topics created later.

        Args:
            topics: topic names; or
            pattern: a regular expression matched against topic names (``re.match``).
            listener: a :class:`ConsumerRebalanceListener`, called inside ``poll()``.

        Raises:
            IllegalStateError: the consumer uses ``assign()``, or both/neither of topics
                and pattern were given.
            InconsistentGroupProtocolError: no assignment strategy in common with the
                group's members.
        """
        self._check_open()
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics)
        if bool(topics) == (pattern is not None):
            raise IllegalStateError(
                "subscribe() takes topics or pattern= (one of them): e.g. "
                "subscribe(['orders']) or subscribe(pattern='^orders-.*')")
        if self._membership is None and self._assignment:
            raise IllegalStateError(
                "this consumer uses assign(); subscription and manual assignment are "
                "exclusive: call unsubscribe() first")
        for t in topics:
            if not isinstance(t, str):
                raise TypeError(f"topic names must be str, got {t!r}")
        regex = None
        if pattern is not None:
            try:
                regex = re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise InvalidConfigError(f"pattern {pattern!r} is not a valid regular "
                                         f"expression: {exc}") from None
        if listener is not None and not any(hasattr(listener, n) for n in (
                "on_partitions_revoked", "on_partitions_assigned")):
            raise TypeError(f"listener {listener!r} has no on_partitions_revoked/"
                            "on_partitions_assigned: subclass ConsumerRebalanceListener")
        if self._membership is None:
            self._membership = Membership(self, frozenset(topics), regex, listener)
        else:
            self._membership.change(frozenset(topics), regex, listener)

    def subscription(self) -> set[str] | None:
        """Subscribed topic names (matched by the pattern), or None without one."""
        if self._membership is None:
            return None
        return self._membership.subscribed_topics()

    def unsubscribe(self) -> None:
        """Leave the group (committing and revoking first) and drop the assignment."""
        self._check_open()
        if self._membership is not None:
            self._membership.leave(revoke=True)
            self._membership = None
        self._set_assignment([])

    def _set_assignment(self, tps: list[TopicPartition]) -> None:
        """Replace the partitions this consumer reads, keeping known positions."""
        self._assignment = list(tps)
        self._positions = {tp: self._positions.get(tp) for tp in tps}
        self._paused &= set(tps)
        self._cache = {tp: b for tp, b in self._cache.items() if tp in self._positions}
        self._iter_buffer.clear()

    def _auto_commit_partitions(self, tps: list[TopicPartition]) -> None:
        """Commit positions of ``tps`` before they are revoked (auto-commit only)."""
        if not self._auto_commit:
            return
        current = self._current_offsets()  # skips partitions of deleted topics
        offsets = {tp: current[tp] for tp in tps if tp in current}
        if offsets:
            safe_auto_commit(self, offsets)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (replacing any earlier assignment).

        Raises:
            UnknownTopicOrPartitionError: a partition does not exist.
            TypeError: an element is not a ``TopicPartition``/``(topic, partition)``.
        """
        self._check_open()
        if self._membership is not None:
            raise IllegalStateError(
                "this consumer is subscribed; manual assignment and subscription are "
                "exclusive: call unsubscribe() first")
        tps = []
        for tp in partitions:
            if not isinstance(tp, tuple) or len(tp) != 2:
                raise TypeError(f"assign() takes TopicPartition objects, got {tp!r}")
            tp = TopicPartition(*tp)
            self._broker._partition(tp)
            if tp not in tps:
                tps.append(tp)
        self._set_assignment(tps)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads."""
        return set(self._assignment)

    def _assigned(self, tp: Any) -> TopicPartition:
        tp = TopicPartition(*tp)
        if tp not in self._positions:
            raise IllegalStateError(
                f"{tp} is not assigned to this consumer (assigned: "
                f"{sorted(self._assignment)}); assign() it first")
        return tp

    # -- positions ----------------------------------------------------------------

    def _reset_position(self, tp: TopicPartition, plog: Any, why: str) -> int:
        if self._reset is OffsetResetStrategy.EARLIEST:
            return plog.log_start
        if self._reset is OffsetResetStrategy.LATEST:
            return self._end_of(plog)
        raise OffsetOutOfRangeError(
            f"{why} for {tp.topic}[{tp.partition}]: valid offsets are "
            f"{plog.log_start}..{plog.end_offset}; seek() to one of them or use "
            "auto_offset_reset='earliest' or 'latest'", {tp: plog.end_offset})

    def _end_of(self, plog: Any) -> int:
        """Where this consumer's reading ends: the last stable offset for
        ``read_committed``, else the end offset (Kafka's end offsets per isolation)."""
        return plog.stable_end() if self._read_committed else plog.end_offset

    def _resolve_position(self, tp: TopicPartition, plog: Any) -> int:
        """The position of ``tp``, from the committed offset or the reset policy."""
        pos = self._positions.get(tp)
        if pos is None:
            committed = None
            if self.group_id is not None:
                committed = self._broker.committed_offset(self.group_id, tp)
            if committed is not None:
                pos = committed.offset
                if not plog.log_start <= pos <= plog.end_offset:
                    pos = self._reset_position(
                        tp, plog, f"committed offset {pos} is out of range")
            else:
                pos = self._reset_position(tp, plog, "no committed offset")
            self._positions[tp] = pos
        elif not plog.log_start <= pos <= plog.end_offset:
            pos = self._positions[tp] = self._reset_position(
                tp, plog, f"offset {pos} is out of range")
            self._cache.pop(tp, None)
        return pos

    def position(self, tp: TopicPartition) -> int:
        """The next offset this consumer will return for ``tp``.

        Raises:
            IllegalStateError: ``tp`` is not assigned.
            OffsetOutOfRangeError: no valid position and ``auto_offset_reset='none'``.
        """
        self._check_open()
        tp = self._assigned(tp)
        return self._resolve_position(tp, self._broker._partition(tp))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset returned for ``partition``.

        An offset outside the log is accepted; the next fetch applies
        ``auto_offset_reset`` (or raises with 'none'), as Kafka does.

        Raises:
            IllegalStateError: the partition is not assigned.
            ValueError: ``offset`` is not an int >= 0.
        """
        self._check_open()
        tp = self._assigned(partition)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"seek offset {offset!r} must be an int >= 0")
        self._positions[tp] = offset
        self._cache.pop(tp, None)
        self._drop_buffered(tp)

    def _targets(self, partitions: tuple) -> list[TopicPartition]:
        return [self._assigned(tp) for tp in partitions] if partitions else \
            list(self._assignment)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start of the given (default: all assigned) partitions."""
        self._check_open()
        for tp in self._targets(partitions):
            self._positions[tp] = self._broker._partition(tp).log_start
            self._drop_buffered(tp)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the end of the given (default: all assigned) partitions."""
        self._check_open()
        for tp in self._targets(partitions):
            self._positions[tp] = self._end_of(self._broker._partition(tp))
            self._drop_buffered(tp)

    def _drop_buffered(self, tp: TopicPartition) -> None:
        if self._iter_buffer:
            self._iter_buffer = deque(r for r in self._iter_buffer
                                      if (r.topic, r.partition) != tp)

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records for these partitions until ``resume``."""
        self._check_open()
        for tp in partitions:
            tp = self._assigned(tp)
            self._paused.add(tp)
            self._drop_buffered(tp)

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records for these partitions again."""
        self._check_open()
        for tp in partitions:
            self._paused.discard(self._assigned(tp))

    def paused(self) -> set[TopicPartition]:
        """Partitions currently paused."""
        return set(self._paused)

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The first offset still stored, per partition."""
        self._check_open()
        self._refresh()
        return {TopicPartition(*tp): self._broker._partition(tp).log_start
                for tp in partitions}

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next record will get, per partition (for ``read_committed``
        consumers: the last stable offset, as Kafka)."""
        self._check_open()
        self._refresh()
        return {TopicPartition(*tp): self._end_of(self._broker._partition(tp))
                for tp in partitions}

    def offsets_for_times(self, timestamps: dict[TopicPartition, int]) -> dict[
            TopicPartition, OffsetAndTimestamp | None]:
        """Per partition, the earliest record whose timestamp is >= the one given.

        Cost: one time-index lookup per partition (no scan).

        Raises:
            ValueError: a timestamp is not an int >= 0.
        """
        self._check_open()
        self._refresh()
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        with self._broker._store.read() as txn:
            for tp, ts in timestamps.items():
                if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
                    raise ValueError(f"timestamp {ts!r} for {tp} must be an int >= 0 (ms)")
                tp = TopicPartition(*tp)
                found = offset_for_time(txn, self._broker._partition(tp), ts)
                out[tp] = None if found is None else OffsetAndTimestamp(found[0], found[1], -1)
        return out

    # -- polling ------------------------------------------------------------------

    def _refresh(self) -> None:
        if self._broker.readonly:
            self._broker._refresh_readonly()

    def _fetch(self, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        broker = self._broker
        topics = broker._topics
        tps = self._assignment
        n = len(tps)
        result: dict[TopicPartition, list[ConsumerRecord]] = {}
        if not n:
            broker._wakeups.watch(self._waiter, ())
            return result
        readable = []  # in assignment order: the watch stays the same from poll to poll
        for tp in tps:
            if tp in self._paused:
                continue
            tlog = topics.get(tp[0])
            if tlog is None or tp[1] >= len(tlog.partitions):
                continue  # topic deleted under us: nothing to read
            readable.append((tp, tlog.partitions[tp[1]]))
        # Watch before looking at the end offsets: records committed after this look
        # wake the wait that follows an empty fetch.
        broker._wakeups.watch(self._waiter, tuple(plog for _, plog in readable))
        # Positions first, outside any read transaction (resolving one may read the
        # committed offset in a transaction of its own). Each poll starts one partition
        # further, so a full partition cannot starve the others.
        work = []
        m = len(readable)
        start = self._rotation % m if m else 0
        self._rotation += 1
        for i in range(m):
            tp, plog = readable[(start + i) % m]
            pos = self._positions.get(tp)
            if pos is None or not plog.log_start <= pos <= plog.end_offset:
                pos = self._resolve_position(tp, plog)
            if pos < self._end_of(plog):
                work.append((tp, plog, pos))
        if not work:
            return result
        cache = self._cache
        read_committed = self._read_committed
        with broker._store.read() as txn:
            for tp, plog, pos in work:
                cached = cache.get(tp)
                # A cached batch is only valid for the same incarnation of the topic.
                batch = cached[1] if cached is not None and cached[0] == plog.topic_id \
                    else None
                recs, pos, batch = fetch(txn, plog, pos, max_records, batch, read_committed)
                self._positions[tp] = pos
                if batch is not None:
                    cache[tp] = (plog.topic_id, batch)
                if recs:
                    result[tp] = recs
                    max_records -= len(recs)
                    if max_records <= 0:
                        break
        if self._key_deserializer is not None or self._value_deserializer is not None:
            # User code runs after the read transaction has ended.
            for tp, recs in result.items():
                result[tp] = self._deserialize(recs)
        return result

    def _deserialize(self, recs: list[ConsumerRecord]) -> list[ConsumerRecord]:
        kd, vd = self._key_deserializer, self._value_deserializer
        new = tuple.__new__
        return [new(ConsumerRecord, (
            r[0], r[1], r[2], r[3], r[4], r[5],
            r[6] if kd is None or r[6] is None else kd(r[6]),
            r[7] if vd is None or r[7] is None else vd(r[7]),
            r[8], r[9], r[10], r[11], r[12])) for r in recs]

    def poll(self, timeout_ms: float = 0, max_records: int | None = None,
             update_offsets: bool = True) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Return available records, waiting up to ``timeout_ms`` for some.

        Positions advance past the records returned. Never blocks longer than
        ``timeout_ms`` (plus scheduling noise); ``wakeup()`` ends the wait early with an
        empty result.

        Returns:
            ``{TopicPartition: [ConsumerRecord, ...]}``, each list in offset order.

        Raises:
            IllegalStateError: no partitions assigned.
            OffsetOutOfRangeError: a position is outside the log and
                ``auto_offset_reset='none'``.
            ClosedError: the consumer or broker is closed.
        """
        self._check_open()
        if not self._assignment and self._membership is None:
            raise IllegalStateError(
                "poll() needs partitions: call subscribe([...]) or assign([...]) first")
        self._iter_buffer.clear()  # records held for iteration are re-fetched
        return self._poll(timeout_ms / 1000.0 if timeout_ms else 0.0,
                          max_records or self._max_poll_records) or {}

    def _poll(self, timeout: float, max_records: int) -> dict[TopicPartition, list] | None:
        """Fetch, waiting up to ``timeout`` s; None when interrupted by ``wakeup()``."""
        self._housekeeping()
        broker = self._broker
        waiter = self._waiter
        deadline = _monotonic() + timeout
        readonly = broker.readonly
        membership = self._membership
        while True:
            seen = waiter.wakes  # before looking: a later commit changes it
            if readonly:
                broker._refresh_readonly()
            if membership is not None:
                membership.step()
            result = self._fetch(max_records)
            if result:
                return result
            with waiter:
                if self._wakeup:
                    self._wakeup = False
                    return None
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return {}
                if waiter.wakes == seen:
                    # Another process may write a readonly store: nothing notifies us,
                    # so look again at a short interval (the one timed wait).
                    wait = min(remaining, 0.05) if readonly else remaining
                    if membership is not None:
                        # Wake when another member's liveness deadline passes, so an
                        # eviction (and the rebalance it starts) is noticed.
                        deadline_at = membership.deadline()
                        if deadline_at is not None:
                            wait = min(wait, max(deadline_at - _monotonic(), 0) + 0.001)
                    waiter.wait(seen, wait)
            self._check_open()

    def wakeup(self) -> None:
        """Interrupt a blocking ``poll()`` (or iteration) from any thread.

        The interrupted call returns an empty result (iteration stops).
        """
        waiter = self._waiter
        with waiter:
            self._wakeup = True
        self._broker._wakeups.poke(waiter)

    def __iter__(self) -> Iterator[ConsumerRecord]:
        return self

    def __next__(self) -> ConsumerRecord:
        """Next record; blocks, and stops after ``consumer_timeout_ms`` without one.

        The position of a partition advances as each record is handed out, so a commit
        during iteration never covers records not yet returned.
        """
        self._check_open()
        buf = self._iter_buffer
        if not buf:
            if not self._assignment and self._membership is None:
                raise IllegalStateError(
                    "iteration needs partitions: call subscribe([...]) or assign([...])")
            wait = self._consumer_timeout
            deadline = None if wait is None else _monotonic() + wait
            first = True
            while not buf:
                step = 3600.0 if deadline is None else deadline - _monotonic()
                if step <= 0 and not first:
                    raise StopIteration
                first = False  # always look once, even with consumer_timeout_ms=0
                step = max(step, 0.0)
                result = self._poll(step, self._max_poll_records)
                if result is None:
                    raise StopIteration  # wakeup()
                if not result:
                    continue  # the loop condition ends it once the deadline passed
                # Positions move only as records are handed out (below): back to the
                # first record of this chunk (nothing before it is left to return).
                for tp, recs in result.items():
                    self._positions[tp] = recs[0].offset
                for recs in result.values():
                    buf.extend(recs)
        record = buf.popleft()
        self._positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return record

    def _housekeeping(self) -> None:
        if self._pending_commits:
            self._run_commit_callbacks()
        if self._auto_commit and _monotonic() >= self._next_auto_commit:
            self._next_auto_commit = _monotonic() + self._auto_commit_interval
            offsets = self._current_offsets()
            if offsets:
                try:
                    self.commit_async(offsets)
                except MqlogError as exc:  # auto-commit must not break poll()
                    logging.getLogger("mqlog.consumer").warning(
                        "auto-commit for group %r failed: %s", self.group_id, exc)

    # -- committing ---------------------------------------------------------------

    def _require_group(self) -> str:
        if self.group_id is None:
            raise IllegalStateError(
                "committing needs a group_id: create the consumer with group_id='...'")
        return self.group_id

    def _current_offsets(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Positions of assigned partitions that still exist, as offsets to commit."""
        topics = self._broker._topics
        return {tp: OffsetAndMetadata(pos, "", -1)
                for tp, pos in self._positions.items()
                if pos is not None and tp[0] in topics
                and tp[1] < len(topics[tp[0]].partitions)}

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata | int] | None = None
               ) -> None:
        """Commit offsets (default: the current positions) for ``group_id``; blocks.

        A committed offset is the next offset to read.

        Raises:
            IllegalStateError: no ``group_id``.
            UnknownTopicOrPartitionError: a partition does not exist.
        Durability: committed in the store (survives the process being killed) on return.
        """
        self._check_open()
        group = self._require_group()
        self._run_commit_callbacks()
        offsets = self._current_offsets() if offsets is None else offsets
        if offsets:
            self._broker.commit_offsets(group, offsets, check=self._fence(offsets))

    def commit_async(self, offsets: dict[TopicPartition, OffsetAndMetadata | int] | None = None,
                     callback: Callable[[dict, Any], Any] | None = None) -> Any:
        """Commit without waiting. ``callback(offsets, exception_or_None)`` runs in a
        later ``poll()``/``commit()``/``close()`` of this consumer.

        Returns:
            A job with ``wait(timeout)`` and ``done``.
        """
        self._check_open()
        group = self._require_group()
        offsets = self._current_offsets() if offsets is None else offsets
        job = self._broker.commit_offsets_async(group, offsets, check=self._fence(offsets))
        self._pending_commits.append((job, offsets, callback))
        return job

    def _fence(self, offsets: dict) -> Any:
        """The coordinator check a commit must pass, run inside its transaction."""
        tps = [TopicPartition(*tp) for tp in offsets]
        if self._membership is not None and self._membership.member is not None:
            return self._membership.commit_check(tps)
        coord, group = self._broker._coordinator, self.group_id
        return lambda: coord.check_commit(group, None, -1, tps)

    def _run_commit_callbacks(self, wait: bool = False) -> None:
        still = []
        for job, offsets, callback in self._pending_commits:
            if wait:
                try:
                    job.wait(30)
                except Exception:
                    pass
            if not job.done:
                still.append((job, offsets, callback))
                continue
            if callback is not None:
                callback(offsets, job.error)
            elif job.error is not None:
                logging.getLogger("mqlog.consumer").warning(
                    "async offset commit for group %r failed: %s", self.group_id, job.error)
        self._pending_commits = still

    def group_metadata(self) -> ConsumerGroupMetadata:
        """This member's group identity now, for ``send_offsets_to_transaction``.

        Raises:
            IllegalStateError: no ``group_id``.
        """
        self._check_open()
        group = self._require_group()
        member = self._membership.member if self._membership is not None else None
        if member is None:
            return ConsumerGroupMetadata(group, -1, "", self.group_instance_id)
        return ConsumerGroupMetadata(group, member.generation, member.member_id,
                                     self.group_instance_id)

    def committed(self, partition: TopicPartition, metadata: bool = False) -> Any:
        """The committed offset of ``partition`` for ``group_id`` (None if none).

        Args:
            metadata: return the full ``OffsetAndMetadata`` instead of the offset.

        Raises:
            IllegalStateError: no ``group_id``.
        """
        self._check_open()
        group = self._require_group()
        found = self._broker.committed_offset(group, TopicPartition(*partition))
        if found is None or metadata:
            return found
        return found.offset

    # -- lifecycle ----------------------------------------------------------------

    def close(self, autocommit: bool = True) -> None:
        """Close the consumer; commits positions first when auto-commit is on. Idempotent."""
        if self._closed:
            return
        try:
            if self._membership is not None and not self._broker.closed:
                if not autocommit:
                    self._auto_commit = False  # no commit before the revocation
                self._membership.leave(revoke=True)  # commits (auto-commit) and revokes
                self._membership = None
            elif autocommit and self._auto_commit and not self._broker.closed:
                offsets = self._current_offsets()
                if offsets:
                    safe_auto_commit(self, offsets)
            self._run_commit_callbacks(wait=True)
        finally:
            self._closed = "the consumer is closed: create a new one with broker.consumer()"
            self._broker._forget(self)
            self._broker._wakeups.forget(self._waiter)  # wakes a poll in another thread

    @property
    def closed(self) -> bool:
        return bool(self._closed)
