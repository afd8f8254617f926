"""Producer: accumulates records into per-partition batches for the broker's writer.

``send()`` is the hot path and is kept lean (see ARCHITECTURE.md, "What things cost
here"): it validates, picks a partition, appends the record to the partition's open
batch under one short lock and returns a future that is no more than a reference to
that batch and the record's index in it. Record metadata is built only if asked for.
Batches are sealed when they reach ``batch_size`` bytes; the writer takes sealed
batches at once and open ones when ``linger_ms`` has passed (at once with the default
``linger_ms=0``: records pile up in the open batch only while the writer is busy with
the previous commit, which is exactly when batching pays).

Lock order: ``Producer._lock`` is never held while calling into the writer (``wake``)
or the broker; the writer may take it while holding its own condition.
"""

from __future__ import annotations

import logging
import operator
import random
import threading
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

from . import batch as _batch
from ._transactions import SEQ_LIMIT
from .errors import (
    ClosedError,
    CommitFailedError,
    IllegalStateError,
    InvalidConfigError,
    InvalidRecordError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    MqlogError,
    ProducerFencedError,
    TransactionAbortableError,
    UnknownTopicOrPartitionError,
)
from ._accumulator import (
    FutureBatchMetadata,
    FutureRecordMetadata,
    ProducerBatch,
)
from .partitioner import murmur2
from .records import TopicPartition

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = ["FutureBatchMetadata", "FutureRecordMetadata", "Producer"]

log = logging.getLogger("mqlog.producer")

RECORD_OVERHEAD = 16  # bytes per record in a batch: lengths and timestamp delta
BATCH_OVERHEAD = _batch.HEADER_SIZE
_KEY_CACHE_LIMIT = 100_000
_now_ns = time.time_ns
# The process-wide generator: seeding `random` (as test frameworks do) makes keyless
# placement reproducible.
_randrange = random.randrange
_new_future = tuple.__new__
_TS_LIMIT = 1 << 63  # timestamps are stored as signed 64-bit ms


def _bad_timestamp(ts: Any) -> None:
    raise (ValueError if isinstance(ts, int) else TypeError)(
        f"timestamp_ms={ts!r} must be an int from 0 to 2**63-1 (ms since the epoch), or "
        "None for now")
_monotonic = time.monotonic
# sleep(0) lets go of the interpreter lock and takes it back: a yield to the thread
# holding Producer._lock, never a timed wait (see Producer._acquire_contended).
_yield_interpreter = partial(time.sleep, 0)
_CONTENDED_TRIES = 20


class _Route:
    """Cached placement facts for one topic (valid while the broker's version holds)."""

    __slots__ = ("topic", "version", "num_partitions", "all_partitions", "max_size",
                 "key_cache", "sticky", "open", "dead", "compacted")

    def __init__(self, topic: str, version: int, num_partitions: int, max_size: int,
                 compacted: bool = False) -> None:
        self.topic = topic
        self.version = version
        self.num_partitions = num_partitions
        self.all_partitions = list(range(num_partitions))
        self.max_size = max_size
        self.key_cache: dict[bytes, int] = {}
        self.sticky = -1
        self.compacted = compacted  # keyless records are refused, as Kafka does
        # The open (still filling) batch per partition; guarded by Producer._lock.
        self.open: list[ProducerBatch | None] = [None] * num_partitions
        # Set (under the lock) when a newer route replaced this one: a send holding it
        # must route again, or it would append to batches the new route now owns.
        self.dead = False


def _acks_value(acks: Any) -> int:
    if acks in ("all", -1, "-1"):
        return -1
    if acks in (0, 1, "0", "1"):
        return int(acks)
    raise InvalidConfigError(f"acks={acks!r} is not valid: use 0, 1 or 'all' (-1)")


def _checked_sizes(items: list, what: str) -> list[int]:
    """Sizes of a column of keys or values (None counts 0), converting in place
    bytearray/memoryview to bytes. Cost: C-speed when every item is bytes.

    Raises:
        TypeError: an item is neither bytes-like nor None.
    """
    kinds = set(map(type, items))
    if kinds <= {bytes}:
        return list(map(len, items))
    for i, item in enumerate(items):
        if item is not None and type(item) is not bytes:
            items[i] = _as_bytes(item, what)
    return [0 if x is None else len(x) for x in items]


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(
        f"{what} must be bytes or None, got {type(value).__name__} ({value!r:.60}): "
        f"encode it first or pass {what}_serializer= to the producer"
    )


class Producer:
    """Publishes records to the broker's topics.

    ``Producer`` is thread-safe; share one per process (records from one thread to one
    partition keep their order). Create it with :meth:`Broker.producer`.

    Args (keyword-only, kafka-python's names):
        acks: 0 (resolve at once), 1 (resolve when committed; default) or "all"/-1
            (resolve when committed and flushed to disk).
        linger_ms: how long an open batch may wait for more records (default 0).
        batch_size: a batch is sealed when it reaches this many bytes (default 16384).
        buffer_memory: bytes of unwritten records allowed before ``send`` blocks
            (default 32 MiB).
        max_block_ms: how long ``send`` blocks on a full buffer before raising
            ``KafkaTimeoutError`` (default 60000).
        compression_type: None, "gzip", "snappy", "lz4" or "zstd".
        key_serializer, value_serializer: callables turning keys/values into bytes
            (not applied to None, so ``value=None`` stays a tombstone).
        partitioner: ``fn(key_bytes, all_partitions, available_partitions) -> int``.
        max_request_size: largest record accepted, in bytes (default 1 MiB).
        enable_idempotence: stamp batches with a producer id and sequence numbers so a
            retried batch is written once and a lost one is detected (default False).
            Needs ``acks="all"`` (the default when it is set), as Kafka does.
        transactional_id: enables transactions (and idempotence): call
            ``init_transactions()`` once, then ``begin_transaction()`` /
            ``commit_transaction()`` around the records of each transaction. A
            transactional record's future resolves once it is committed to the store;
            ``commit_transaction()`` flushes the whole transaction to disk at once.
        transaction_timeout_ms: a transaction open longer than this is aborted and the
            producer fenced (default 60000).

    Transactions: the transactional methods must be called by one thread at a time;
    ``send`` inside a transaction may be called from many. A producer fenced by a newer
    one with the same ``transactional_id`` raises ``ProducerFencedError`` from its next
    call.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        acks: Literal[0, 1, "all", -1] | str | None = None,
        linger_ms: float = 0,
        batch_size: int = 16384,
        buffer_memory: int = 32 * 1024 * 1024,
        max_block_ms: float = 60000,
        compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None,
        key_serializer: Callable[[Any], bytes] | None = None,
        value_serializer: Callable[[Any], bytes] | None = None,
        partitioner: Callable[[bytes | None, list[int], list[int]], int] | None = None,
        max_request_size: int = 1048576,
        enable_idempotence: bool = False,
        transactional_id: str | None = None,
        transaction_timeout_ms: float = 60000,
        client_id: str | None = None,
    ) -> None:
        if transactional_id is not None and (
                not isinstance(transactional_id, str) or not transactional_id):
            raise InvalidConfigError(
                f"transactional_id={transactional_id!r} must be a non-empty str or None")
        idempotent = bool(enable_idempotence) or transactional_id is not None
        if idempotent and acks is not None and _acks_value(acks) != -1:
            raise InvalidConfigError(
                f"acks={acks!r} conflicts with idempotence (enable_idempotence or "
                "transactional_id): use acks='all', or leave acks unset")
        self._acks = _acks_value(acks if acks is not None else ("all" if idempotent else 1))
        if not isinstance(transaction_timeout_ms, (int, float)) or \
                transaction_timeout_ms <= 0:
            raise InvalidConfigError(
                f"transaction_timeout_ms={transaction_timeout_ms!r} must be a number > 0")
        for name, value in (("linger_ms", linger_ms), ("max_block_ms", max_block_ms)):
            if not isinstance(value, (int, float)) or value < 0:
                raise InvalidConfigError(f"{name}={value!r} must be a number >= 0")
        for name, value in (("batch_size", batch_size), ("buffer_memory", buffer_memory),
                            ("max_request_size", max_request_size)):
            if not isinstance(value, int) or value <= 0:
                raise InvalidConfigError(f"{name}={value!r} must be an int > 0")
        for name, fn in (("key_serializer", key_serializer),
                         ("value_serializer", value_serializer),
                         ("partitioner", partitioner)):
            if fn is not None and not callable(fn):
                raise InvalidConfigError(f"{name}={fn!r} is not callable")
        self._codec = _batch.codec_id(compression_type)
        self._broker = broker
        self._writer = broker._writer
        self._linger = linger_ms / 1000.0
        self._batch_size = batch_size
        self._buffer_memory = buffer_memory
        self._max_block = max_block_ms / 1000.0
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._partitioner = partitioner
        self._max_request_size = max_request_size
        self.client_id = client_id or f"producer-{id(self):x}"
        # Guards the routes' open batches, _open_count, _ready, _incomplete, _buffered
        # and batch callbacks; _space waits for _buffered to drop (backpressure).
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._acquire = self._lock.acquire  # bound once: send() is the hot path
        self._release_lock = self._lock.release
        self._open_count = 0
        self._ready: deque[ProducerBatch] = deque()
        self._incomplete: set[ProducerBatch] = set()
        self._buffered = 0
        self._routes: dict[str, _Route] = {}
        self._closed: str | None = None
        # Idempotence: producer id and epoch (-1: none), and per partition the next
        # sequence number (used by the writer thread only, for epoch _seq_epoch).
        self._pid = -1
        self._epoch = -1
        self._next_seq: dict[Any, int] = {}
        self._seq_epoch = -1
        # Transactions: state, guarded by _txn_lock (one transactional call at a time).
        self.transactional_id = transactional_id
        self._transaction_timeout_ms = transaction_timeout_ms
        self._txn_lock = threading.Lock()
        self._txn_state = "uninitialized" if transactional_id is not None else None
        self._txn: Any = None  # the broker's TransactionalId state
        self._txn_error: BaseException | None = None  # a record of the txn failed
        self._txn_offsets: dict[str, tuple[dict, Any]] = {}
        self._fenced: str | None = None
        # send() refuses records while this is set (outside a transaction, fenced).
        self._send_refused: str | None = None
        if transactional_id is not None:
            self._send_refused = (
                f"transactional producer {transactional_id!r} needs init_transactions() "
                "and begin_transaction() before send()")
        elif idempotent:
            self._pid = broker._txns.new_producer_id()
            self._epoch = 0
        # A seam for crash tests: called with a point name inside commit_transaction.
        self.on_point: Callable[[str], None] | None = None
        self._writer.add_producer(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<mqlog.Producer {self.client_id} acks={self._acks} {state} "
                f"buffered={self._buffered}B>")

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- routing ------------------------------------------------------------------

    def _route(self, topic: str) -> _Route:
        broker = self._broker
        version = broker._version
        tlog = broker._topics.get(topic)
        if tlog is None:
            broker._check_open()
            if not isinstance(topic, str):
                raise TypeError(f"topic must be str, got {type(topic).__name__}")
            if not broker.auto_create_topics:
                raise UnknownTopicOrPartitionError(
                    f"topic {topic!r} does not exist and auto_create_topics is off: create "
                    "it with broker.create_topic() first")
            broker._ensure_topic(topic)
            version = broker._version
            tlog = broker._topics[topic]
        max_size = min(self._max_request_size, tlog.max_message_bytes)
        route = _Route(topic, version, len(tlog.partitions), max_size,
                       "compact" in tlog.config.get("cleanup.policy", "delete"))
        with self._lock:
            old = self._routes.get(topic)
            if old is not None:  # carry open batches over to the new route
                route.sticky = old.sticky if old.sticky < route.num_partitions else -1
                old.dead = True
                carried, old.open = old.open, [None] * len(old.open)
                for p, b in enumerate(carried):
                    if b is None:
                        continue
                    if p < route.num_partitions:
                        route.open[p] = b
                    else:
                        self._open_count -= 1
                        self._queue(b)
            self._routes[topic] = route
        return route

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition numbers (auto-creating it if the broker allows).

        Raises:
            UnknownTopicOrPartitionError: no such topic and auto-creation is off.
        """
        self._check_open()
        return set(self._route(topic).all_partitions)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(self._closed)

    def _pick_partition(self, route: _Route, key: bytes | None, partition: Any) -> int:
        n = route.num_partitions
        if partition is not None:
            if type(partition) is not int or not 0 <= partition < n:
                if not isinstance(partition, int):
                    raise TypeError(f"partition must be int, got {type(partition).__name__}")
                raise UnknownTopicOrPartitionError(
                    f"partition {partition} does not exist in topic {route.topic!r} "
                    f"(partitions 0..{n - 1}); pick one of those or grow the topic with "
                    "create_partitions()")
            return partition
        if self._partitioner is not None:
            p = self._partitioner(key, route.all_partitions, route.all_partitions)
            if type(p) is not int or not 0 <= p < n:
                raise UnknownTopicOrPartitionError(
                    f"custom partitioner returned {p!r} for topic {route.topic!r}, which "
                    f"has partitions 0..{n - 1}")
            return p
        if key is not None:
            p = route.key_cache.get(key)
            if p is None:
                p = (murmur2(key) & 0x7FFFFFFF) % n
                if len(route.key_cache) < _KEY_CACHE_LIMIT:
                    route.key_cache[key] = p
            return p
        return -1  # keyless: sticky, decided under the lock

    def _new_sticky(self, route: _Route) -> int:
        n = route.num_partitions
        if n == 1 or route.sticky < 0:
            return _randrange(n)
        p = _randrange(n - 1)
        return p + 1 if p >= route.sticky else p  # never the one just used

    # -- sending ------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        """Queue one record for ``topic``; returns a future of its metadata.

        Keyed records go to ``murmur2(key) % partitions`` (Kafka's default); keyless ones
        stick to one partition per batch. ``value=None`` with a key is a tombstone.

        Args:
            topic: topic name (auto-created when the broker allows it).
            value, key: bytes or None (or anything the serializers accept).
            headers: list of ``(str, bytes)`` pairs.
            partition: explicit partition (overrides key and partitioner).
            timestamp_ms: CreateTime in ms since the epoch; default now.

        Returns:
            A :class:`FutureRecordMetadata`.

        Raises:
            TypeError: key/value not bytes and no serializer; bad header types.
            MessageSizeTooLargeError: the record exceeds ``max_request_size`` or the
                topic's ``max.message.bytes``.
            UnknownTopicOrPartitionError: unknown topic (auto-create off) or partition.
            KafkaTimeoutError: the buffer stayed full for ``max_block_ms``.
            ClosedError: the producer or broker is closed.

        Cost: ~1 µs; no I/O (the writer thread commits; a thread waiting on the future
        may commit for it, see ``FutureRecordMetadata.get``). Durability: see ``acks``.
        """
        if self._closed:
            raise ClosedError(self._closed)
        if self._send_refused is not None:
            self._refuse_send()
        if value is not None:
            if self._value_serializer is not None:
                value = self._value_serializer(value)
            if type(value) is not bytes:
                value = None if value is None else _as_bytes(value, "value")
            size = RECORD_OVERHEAD + len(value)
        else:
            size = RECORD_OVERHEAD
        if key is not None:
            if self._key_serializer is not None:
                key = self._key_serializer(key)
            if type(key) is not bytes:
                key = None if key is None else _as_bytes(key, "key")
            if key is not None:
                size += len(key)
        packed_headers = None
        if headers:
            packed_headers = _batch.pack_headers(headers)
            size += len(packed_headers) + 4
        if timestamp_ms is None:
            timestamp_ms = _now_ns() // 1_000_000
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms < _TS_LIMIT:
            _bad_timestamp(timestamp_ms)
        if self._buffered > self._buffer_memory:
            self._block_while_full()
        try:  # a record refused inside a transaction spoils the transaction
            while True:
                route = self._routes.get(topic)
                if route is None or route.version != self._broker._version:
                    route = self._route(topic)
                if size > route.max_size:
                    self._too_large(route, size)
                if key is None and route.compacted:
                    self._keyless_on_compacted(route)
                if partition is None and self._partitioner is None:
                    if key is None:
                        p = -1  # keyless: sticky, decided under the lock
                    else:
                        p = route.key_cache.get(key)
                        if p is None:
                            p = self._pick_partition(route, key, None)
                else:
                    p = self._pick_partition(route, key, partition)
                # Inlined _lock_route (the hot path): lock only a route still current.
                if not self._acquire(False):
                    self._acquire_contended()
                if not route.dead and not self._closed and self._send_refused is None:
                    break  # holding the lock
                self._release_lock()
                if self._closed:
                    raise ClosedError(self._closed)
                if self._send_refused is not None:  # e.g. a commit started meanwhile
                    self._refuse_send()
        except MqlogError as exc:
            if self._txn_state is not None:
                self._spoil_transaction(exc)
            raise
        try:
            opened = route.open
            b = opened[p if p >= 0 else route.sticky]
            if b is None:
                b = self._open_batch(route, p)
            i = len(b.values)
            b.values.append(value)
            b.timestamps.append(timestamp_ms)
            if key is not None:
                if b.keys is None:
                    b.keys = [None] * i
                b.keys.append(key)
            elif b.keys is not None:
                b.keys.append(None)
            if packed_headers is not None or b.headers is not None:
                if b.headers is None:
                    b.headers = [b""] * i
                b.headers.append(packed_headers or b"")
            b.size += size
            if b.size >= self._batch_size:
                self._seal(route, b)
        finally:
            self._release_lock()
        if i == 0 or b.sealed:
            self._writer.wake()
        return _new_future(FutureRecordMetadata, (b, i))

    def _acquire_contended(self) -> None:
        """Take ``_lock`` while another thread holds it (threads sharing a producer).

        A send holds the lock for a few bytecodes, so first hand the interpreter to the
        holder a few times and try again. Blocking at once would be far slower: a
        thread blocked in ``acquire()`` turns every later release into a kernel
        wake-up of a thread that mostly finds the lock taken again (with four threads
        sharing one producer, that cost 60% of the throughput). Then block: the holder
        may be on a long hold (the writer draining, a full buffer).
        """
        acquire = self._acquire
        for _ in range(_CONTENDED_TRIES):
            _yield_interpreter()
            if acquire(False):
                return
        acquire()

    def _lock_route(self, route: _Route) -> bool:
        """Take the lock if ``route`` is still current (else re-route: False).

        Raises:
            ClosedError: the producer was closed meanwhile.
        """
        if not self._acquire(False):
            self._acquire_contended()
        if not route.dead and not self._closed and self._send_refused is None:
            return True
        self._release_lock()
        if self._closed:
            raise ClosedError(self._closed)
        if self._send_refused is not None:  # e.g. a commit started meanwhile
            self._refuse_send()
        return False

    def _open_batch(self, route: _Route, p: int) -> ProducerBatch:
        """Open a batch for partition ``p`` (-1: a new sticky partition). Lock held."""
        if p < 0:
            p = route.sticky = self._new_sticky(route)
            b = route.open[p]
            if b is not None:  # keyed records already opened one there
                return b
        b = route.open[p] = ProducerBatch(self, route.topic, p, _monotonic() + self._linger)
        self._open_count += 1
        self._incomplete.add(b)
        return b

    def _seal(self, route: _Route, b: ProducerBatch) -> None:
        """Hand a full open batch to the writer's queue. Lock held."""
        route.open[b.partition] = None
        self._open_count -= 1
        self._queue(b)

    def _queue(self, b: ProducerBatch) -> None:
        """Put a batch on the ready queue and count it against the buffer. Lock held."""
        b.sealed = True
        self._buffered += b.size
        self._ready.append(b)

    def _block_while_full(self) -> None:
        """Backpressure: wait until the writer frees buffer space, or time out."""
        with self._lock:
            if self._buffered > self._buffer_memory:
                self._wait_for_space(0)

    def _too_large(self, route: _Route, size: int) -> None:
        raise MessageSizeTooLargeError(
            f"record of {size} bytes for topic {route.topic!r} exceeds the limit of "
            f"{route.max_size} bytes (max_request_size / the topic's max.message.bytes): "
            "split the payload or raise the limit")

    @staticmethod
    def _keyless_on_compacted(route: _Route) -> None:
        raise InvalidRecordError(
            f"topic {route.topic!r} is compacted (cleanup.policy=compact): every record "
            "needs a key, since compaction keeps the latest record per key; pass key=")

    def _wait_for_space(self, size: int) -> None:
        """Block (lock held via the condition) until ``size`` more bytes fit."""
        deadline = _monotonic() + self._max_block
        while self._buffered and self._buffered + size > self._buffer_memory:
            if self._closed:
                raise ClosedError(self._closed)
            self._seal_open()  # the writer may be idle, waiting on linger
            remaining = deadline - _monotonic()
            if remaining <= 0 or not self._space.wait(remaining):
                if self._buffered + size > self._buffer_memory:
                    raise KafkaTimeoutError(
                        f"the producer buffer ({self._buffer_memory} bytes, buffer_memory) "
                        f"stayed full for max_block_ms={self._max_block * 1000:g}: the "
                        "writer cannot keep up; slow down, raise buffer_memory or "
                        "max_block_ms")

    def send_batch(
        self,
        topic: str,
        values: Sequence[Any],
        keys: Sequence[Any] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureBatchMetadata:
        """Queue many records in one call; one future for all of them.

        Records with the same partition are written contiguously, in the order given.
        Keyless records without ``partition`` all go to one (sticky) partition.

        Args:
            topic: topic name.
            values: the record values.
            keys: None, or one key per value.
            partition: put every record in this partition.
            timestamp_ms: CreateTime for every record; default now.

        Returns:
            A :class:`FutureBatchMetadata` resolving to :class:`BatchMetadata` (per
            partition its base offset and count; no per-record objects).

        Raises:
            The same as :meth:`send`; ``ValueError`` if ``keys`` and ``values`` differ in
            length. Nothing is queued when any record is refused.

        Cost: ~0.2 µs per record.
        """
        if self._closed:
            raise ClosedError(self._closed)
        if self._send_refused is not None:
            self._refuse_send()
        values = list(values)
        n = len(values)
        if keys is not None:
            keys = list(keys)
            if len(keys) != n:
                raise ValueError(f"send_batch got {n} values but {len(keys)} keys: pass one "
                                 "key per value, or keys=None")
        if self._value_serializer is not None:
            values = [None if v is None else self._value_serializer(v) for v in values]
        value_sizes = _checked_sizes(values, "value")
        key_sizes = None
        if keys is not None:
            if self._key_serializer is not None:
                keys = [None if k is None else self._key_serializer(k) for k in keys]
            key_sizes = _checked_sizes(keys, "key")
        if timestamp_ms is None:
            timestamp_ms = _now_ns() // 1_000_000
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms < _TS_LIMIT:
            _bad_timestamp(timestamp_ms)
        if key_sizes is not None:  # sizes per record, keys included
            value_sizes = list(map(operator.add, value_sizes, key_sizes))
        total = sum(value_sizes) + RECORD_OVERHEAD * n
        if self._buffered and self._buffered + total > self._buffer_memory:
            with self._lock:
                self._wait_for_space(total)
        try:  # a record refused inside a transaction spoils the transaction
            while True:
                route = self._routes.get(topic)
                if route is None or route.version != self._broker._version:
                    route = self._route(topic)
                biggest = max(value_sizes, default=0) + RECORD_OVERHEAD
                if biggest > route.max_size:
                    self._too_large(route, biggest)
                if route.compacted and (keys is None or any(k is None for k in keys)):
                    self._keyless_on_compacted(route)
                groups = self._group_by_partition(route, keys, partition, n)
                if self._lock_route(route):
                    break  # holding the lock
        except MqlogError as exc:
            if self._txn_state is not None:
                self._spoil_transaction(exc)
            raise
        per_batch = max(1, self._batch_size * n // max(total, 1)) if n else 1
        batches: list[ProducerBatch] = []
        try:
            for p, idxs in groups.items():
                if p < 0:
                    p = route.sticky = self._new_sticky(route)
                open_b = route.open[p]
                if open_b is not None:  # keep per-partition order: older records first
                    route.open[p] = None
                    self._open_count -= 1
                    self._queue(open_b)
                whole = isinstance(idxs, range)  # every record, in order: slice lists
                for start in range(0, len(idxs), per_batch):
                    stop = start + per_batch
                    b = ProducerBatch(self, topic, p, 0.0)
                    if whole:
                        b.values = values[start:stop]
                        b.keys = None if keys is None else keys[start:stop]
                        size = sum(value_sizes[start:stop])
                    else:
                        sel = idxs[start:stop]
                        b.values = [values[i] for i in sel]
                        b.keys = None if keys is None else [keys[i] for i in sel]
                        size = sum(map(value_sizes.__getitem__, sel))
                    if b.keys is not None and all(k is None for k in b.keys):
                        b.keys = None
                    b.timestamps = timestamp_ms  # one CreateTime for the whole call
                    b.size = size + RECORD_OVERHEAD * len(b.values)
                    batches.append(b)
            # The future must know its batches before the writer can finish one.
            future = FutureBatchMetadata(topic, batches, self._acks)
            for b in batches:
                self._incomplete.add(b)
                self._queue(b)
        finally:
            self._release_lock()
        self._writer.wake()
        return future

    def _group_by_partition(self, route: _Route, keys: list | None,
                            partition: int | None, n: int) -> dict[int, Any]:
        """Record indexes per partition, in order (-1: the keyless sticky one)."""
        if partition is not None:
            return {self._pick_partition(route, None, partition): range(n)}
        if keys is None and self._partitioner is None:
            return {-1: range(n)}
        groups: dict[int, Any] = {}
        for i, k in enumerate(keys or [None] * n):
            p = self._pick_partition(route, k, None)
            if p < 0:
                p = route.sticky if route.sticky >= 0 else self._new_sticky(route)
            groups.setdefault(p, []).append(i)
        return groups

    # -- writer side ----------------------------------------------------------------

    def _ready_at(self) -> float | None:
        """Monotonic time at which a batch will be ready (0 = now); None if none."""
        if self._ready:
            return 0.0
        if not self._open_count:
            return None
        if not self._linger:
            return 0.0
        with self._lock:
            return min((b.deadline for route in self._routes.values()
                        for b in route.open if b is not None), default=None)

    def _drain(self, force: bool = False) -> list[ProducerBatch]:
        """Hand the writer every batch that is ready (all of them when ``force``)."""
        with self._lock:
            out = list(self._ready)
            self._ready.clear()
            if self._open_count:
                now = _monotonic()
                every = force or not self._linger
                for route in self._routes.values():
                    opened = route.open
                    for p, b in enumerate(opened):
                        if b is not None and (every or b.deadline <= now):
                            opened[p] = None
                            self._open_count -= 1
                            b.sealed = True
                            self._buffered += b.size
                            out.append(b)
        return out

    def _seal_open(self) -> None:
        """Move every open batch to the ready queue (lock held)."""
        if self._open_count:
            for route in self._routes.values():
                opened = route.open
                for p, b in enumerate(opened):
                    if b is not None:
                        opened[p] = None
                        self._queue(b)
            self._open_count = 0

    def _release(self, b: ProducerBatch) -> None:
        with self._lock:
            self._buffered -= b.size
            self._incomplete.discard(b)
            if b.error is not None and self._txn_state is not None and \
                    self._txn_error is None:
                self._txn_error = b.error  # the transaction can no longer commit
            self._space.notify_all()

    def _stamp(self, b: ProducerBatch, plog: Any) -> None:
        """Give a batch its producer id, epoch and sequence numbers (writer thread)."""
        if self._seq_epoch != self._epoch:  # a new epoch counts from 0 again
            self._next_seq = {}
            self._seq_epoch = self._epoch
        seq = self._next_seq.get(plog, 0)
        b.producer_id = self._pid
        b.epoch = self._epoch
        b.base_sequence = seq
        b.transactional = self._txn_state is not None
        self._next_seq[plog] = (seq + len(b.values)) % SEQ_LIMIT

    # -- transactions -------------------------------------------------------------

    def _refuse_send(self) -> None:
        if self._fenced:
            raise ProducerFencedError(self._fenced)
        raise IllegalStateError(self._send_refused)

    def _spoil_transaction(self, error: BaseException) -> None:
        """A record of the open transaction was refused: it can no longer commit."""
        with self._lock:
            if self._txn_state == "in_transaction" and self._txn_error is None:
                self._txn_error = error

    def _fence(self, reason: str) -> None:
        """Called by the broker when a newer producer took this transactional id."""
        self._fenced = (f"this producer was fenced: {reason}; close it and create a new "
                        "producer (its transaction, if any, was aborted)")
        self._send_refused = self._fenced
        self._txn_state = "fenced"

    def _txn_require(self, call: str, *states: str) -> None:
        if self._closed:
            raise ClosedError(self._closed)
        if self._txn_state is None:
            raise IllegalStateError(
                f"{call}() needs a transactional producer: create it with "
                "transactional_id='...'")
        if self._fenced:
            raise ProducerFencedError(self._fenced)
        if self._txn_state not in states:
            hint = {
                "uninitialized": "call init_transactions() first",
                "ready": "call begin_transaction() first",
                "in_transaction": "commit_transaction() or abort_transaction() first",
                "abortable_error": "a record or the offsets of this transaction failed: "
                                   "call abort_transaction()",
            }.get(self._txn_state,  # "committing"/"aborting": that call was interrupted
                  "an earlier commit or abort was interrupted and its outcome is unknown; "
                  "close this producer and create a new one")
            raise IllegalStateError(
                f"cannot {call}() while the producer is in state {self._txn_state!r}: "
                f"{hint}")

    def _txn_point(self, name: str) -> None:
        if self.on_point is not None:
            self.on_point(name)

    def init_transactions(self, timeout: float | None = None) -> None:
        """Register the ``transactional_id``: fence older producers using it and abort
        the transaction they left open. Call once, before the first transaction.

        Raises:
            IllegalStateError: not transactional, or already initialised.
            ProducerFencedError: another producer with the same ``transactional_id``
                called ``init_transactions()`` at the same time and won.
        """
        with self._txn_lock:
            self._txn_require("init_transactions", "uninitialized")
            assert self.transactional_id is not None
            try:
                state, pid, epoch = self._broker._txns.init_transactions(
                    self, self.transactional_id, self._transaction_timeout_ms)
            except ProducerFencedError as exc:
                self._fence(str(exc))
                raise ProducerFencedError(self._fenced) from None
            self._txn = state
            self._pid = pid
            self._epoch = epoch
            if self._fenced:  # fenced by a racing init_transactions() meanwhile
                raise ProducerFencedError(self._fenced)
            self._txn_state = "ready"
            self._send_refused = (
                f"transactional producer {self.transactional_id!r} can only send inside a "
                "transaction: call begin_transaction() first")

    def begin_transaction(self) -> None:
        """Start a transaction: records sent until commit/abort belong to it.

        Raises:
            IllegalStateError: not initialised, or a transaction is already open.
            ProducerFencedError: a newer producer took the ``transactional_id``.
        """
        with self._txn_lock:
            self._txn_require("begin_transaction", "ready")
            self._txn_error = None
            self._txn_offsets = {}
            self._txn_state = "in_transaction"
            self._send_refused = None

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any],
                                    consumer_group: Any) -> None:
        """Commit consumer offsets as part of the transaction (consume-transform-produce).

        The offsets (the *next* offsets to read) are stored by ``commit_transaction`` in
        the same atomic write as the commit markers; an abort discards them.

        Args:
            offsets: ``{TopicPartition: OffsetAndMetadata | int}``.
            consumer_group: the group id, or ``consumer.group_metadata()`` — with the
                metadata, the commit is refused (``CommitFailedError``) if the consumer
                was fenced by a rebalance meanwhile, as Kafka's KIP-447.

        Raises:
            IllegalStateError: no open transaction. UnknownTopicOrPartitionError,
            ValueError: bad offsets.
        """
        if isinstance(consumer_group, str):
            group, generation, member_id = consumer_group, -1, ""
        elif hasattr(consumer_group, "group_id"):
            group = consumer_group.group_id
            generation = getattr(consumer_group, "generation_id", -1)
            member_id = getattr(consumer_group, "member_id", "") or ""
        else:
            raise TypeError(
                f"consumer_group must be a group id (str) or consumer.group_metadata(), "
                f"got {type(consumer_group).__name__}")
        if not isinstance(group, str) or not group:
            raise InvalidConfigError(f"group id {group!r} must be a non-empty str")
        with self._txn_lock:
            self._txn_require("send_offsets_to_transaction", "in_transaction")
            rows = self._broker._offset_rows(offsets)
            merged = dict(self._txn_offsets.get(group, ({}, None))[0])
            merged.update(rows)
            check = self._broker._txns.check_group_member(
                group, generation, member_id,
                list(merged))
            self._txn_offsets[group] = (merged, check)
            self._txn_point("after_offsets")

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Write every record of the transaction, then commit it with its offsets in
        one atomic write. Blocks until done (and flushed to disk when durable).

        Raises:
            TransactionAbortableError: a record of the transaction failed; call
                ``abort_transaction()``.
            CommitFailedError: the offsets were refused (the consumer lost its
                partitions); call ``abort_transaction()``.
            ProducerFencedError: a newer producer took the ``transactional_id``.
            KafkaTimeoutError: records were not written within ``timeout`` s (the
                transaction stays open: call again or abort).
            DiskFullError: the transaction committed (readers see it, its offsets are
                stored) but flushing it to disk failed: do not abort or redo it.
            IllegalStateError: called inside a producer callback with records unwritten
                (the transaction stays open).
        """
        with self._txn_lock:
            self._txn_require("commit_transaction", "in_transaction")
            self._send_refused = "a transaction is being committed: wait for it"
            self._txn_state = "committing"
            try:
                self._flush(timeout, "commit_transaction")
            except (KafkaTimeoutError, IllegalStateError):
                self._txn_state = "in_transaction"
                self._send_refused = None
                raise
            if self._fenced:
                raise ProducerFencedError(self._fenced)
            if self._txn_error is not None:
                self._txn_state = "abortable_error"
                self._send_refused = "the transaction failed: call abort_transaction()"
                raise TransactionAbortableError(
                    f"transaction of {self.transactional_id!r} cannot commit: a record in "
                    f"it failed ({self._txn_error}); call abort_transaction() and redo the "
                    "work") from self._txn_error
            self._txn_point("before_commit")
            offsets = {g: (list(rows.values()), check)
                       for g, (rows, check) in self._txn_offsets.items()}
            try:
                flush_error = self._broker._txns.end_transaction(
                    self._txn, self._epoch, True, offsets,
                    before_commit=(lambda: self._txn_point("inside_commit"))
                    if self.on_point is not None else None)
            except ProducerFencedError as exc:
                self._fence(str(exc))
                raise
            except (CommitFailedError, MqlogError):
                if not self._fenced:
                    self._txn_state = "abortable_error"
                    self._send_refused = "the transaction failed: call abort_transaction()"
                raise
            self._end_txn()  # committed, even if the flush failed: never abortable now
            if flush_error is not None:
                raise flush_error
            self._txn_point("after_commit")

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Abort the transaction: its records stay in the log but ``read_committed``
        consumers never see them, and its offsets are discarded.

        Raises:
            IllegalStateError: no open transaction.
            ProducerFencedError: a newer producer took the ``transactional_id`` (it
                aborted this transaction already).
            KafkaTimeoutError: records were not written within ``timeout`` s (call
                again).
            DiskFullError: the transaction was aborted but flushing that to disk failed.
        """
        with self._txn_lock:
            self._txn_require("abort_transaction", "in_transaction", "abortable_error")
            self._send_refused = "the transaction is being aborted"
            self._txn_state = "aborting"
            try:  # its records are written first, so the markers follow all of them
                self._flush(timeout, "abort_transaction")
            except (KafkaTimeoutError, IllegalStateError):
                self._txn_state = "abortable_error"
                raise
            try:
                flush_error = self._broker._txns.end_transaction(
                    self._txn, self._epoch, False, {})
            except ProducerFencedError as exc:
                self._fence(str(exc))
                raise
            except MqlogError:
                self._txn_state = "abortable_error"
                raise
            self._end_txn()
            if flush_error is not None:
                raise flush_error

    def _end_txn(self) -> None:
        self._txn_state = "ready"
        self._txn_offsets = {}
        self._txn_error = None
        self._send_refused = (
            f"transactional producer {self.transactional_id!r} can only send inside a "
            "transaction: call begin_transaction() first")

    # -- lifecycle ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Send every queued record now and wait until all are written.

        Raises:
            KafkaTimeoutError: not all written within ``timeout`` seconds.
            ClosedError: the producer or broker was closed.
            IllegalStateError: called inside a producer callback (callbacks run on the
                writer thread, which would wait for itself).
        """
        if self._closed:
            raise ClosedError(self._closed)
        self._flush(timeout)

    def _flush(self, timeout: float | None, what: str = "flush") -> None:
        with self._lock:
            self._seal_open()
            pending = list(self._incomplete)
        if pending:
            self._refuse_wait_in_callback(what)
        self._writer.wake()
        if pending:
            self._writer.lead(timeout)  # write them here if the writer thread is idle
        deadline = None if timeout is None else _monotonic() + timeout
        for b in pending:
            remaining = None if deadline is None else max(0.0, deadline - _monotonic())
            if not b.event.wait(remaining):
                raise KafkaTimeoutError(
                    f"flush did not complete within {timeout} s; records remain queued")

    def _refuse_wait_in_callback(self, what: str) -> None:
        """Raise if called on the writer thread, which runs producer callbacks: a wait
        for writes there would wait for itself.

        Raises:
            IllegalStateError: called inside a producer callback.
        """
        if threading.current_thread() is self._writer.thread:
            raise IllegalStateError(
                f"{what}() was called inside a producer callback, which runs on the "
                "broker's writer thread: it would wait for its own writes forever; call "
                f"{what}() from another thread (hand the work over with a queue)")

    def close(self, timeout: float | None = None) -> None:
        """Flush (waiting up to ``timeout`` seconds) and release the producer. Idempotent.

        Records still unwritten when the timeout expires fail with
        ``KafkaTimeoutError`` (their futures and errbacks say so).

        Raises:
            KafkaTimeoutError: queued records were not written within ``timeout``.
            IllegalStateError: called inside a producer callback with records still
                unwritten (the producer stays open).
        """
        with self._lock:
            if self._closed:
                return
            unwritten = bool(self._incomplete)
        if unwritten:  # before anything is closed: the producer stays usable
            self._refuse_wait_in_callback("close")
        if self._txn_state in ("in_transaction", "abortable_error") and \
                not self._broker.closed:
            try:  # a transaction left open would hold back read_committed consumers
                self.abort_transaction(timeout)
            except MqlogError as exc:
                log.warning("aborting the open transaction of %r on close failed: %s",
                            self.transactional_id, exc)
        with self._lock:
            if self._closed:
                return
            self._closed = "the producer is closed: create a new one with broker.producer()"
        try:
            self._flush(timeout)
        finally:
            self._writer.remove_producer(self)
            if self._pid >= 0 and self._txn_state is None:
                # After the removal: a cycle that still drains this producer writes
                # its batches before the job runs, never after the windows are gone.
                self._broker._txns.forget_producer(self._pid)
            with self._lock:
                self._seal_open()
                leftover = list(self._ready)
                self._ready.clear()
            for b in leftover:
                b._fail(KafkaTimeoutError(
                    f"the producer was closed before this record for {b.topic}[{b.partition}] "
                    f"was written (close timeout {timeout} s): send it again"))
            self._broker._forget(self)

    def _mark_closed(self, reason: str) -> None:
        self._closed = reason

    @property
    def closed(self) -> bool:
        return bool(self._closed)
