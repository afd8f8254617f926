"""Producer batches and the futures tied to them.

A :class:`ProducerBatch` collects the records bound for one partition until the writer
commits them as one stored batch. The futures ``send()`` and ``send_batch()`` return are
views of batches: a :class:`FutureRecordMetadata` is just ``(batch, index)``, so a send
allocates one small tuple, and record metadata is built only when asked for.

Thread-safety: batches are filled under their producer's lock and resolved once by the
writer thread; futures may be waited on and given callbacks from any thread.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from . import batch as _batch
from .errors import KafkaTimeoutError
from .records import BatchMetadata, PartitionBatch, RecordMetadata, TopicPartition

if TYPE_CHECKING:  # pragma: no cover
    from .producer import Producer

__all__ = ["FutureBatchMetadata", "FutureRecordMetadata", "ProducerBatch"]

log = logging.getLogger("mqlog.producer")


def _run_callback(fn: Callable[[Any], Any], is_errback: bool, error: BaseException | None,
                  value: Callable[[], Any]) -> None:
    """Call a callback with the result (``value()``, built only if needed) or an
    errback with ``error``, whichever applies; a raising callback is logged."""
    if (error is not None) != is_errback:
        return
    try:
        fn(error if is_errback else value())
    except Exception:  # a user callback must not break the writer
        log.exception("producer callback %r raised", fn)


def _bind(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Callable[[Any], Any]:
    """kafka-python's convention: ``fn(*args, outcome, **kwargs)``."""
    if not args and not kwargs:
        return fn
    return lambda outcome: fn(*args, outcome, **kwargs)


class _FutureBase:
    """Shared callback plumbing of the producer futures (kafka-python's Future API)."""

    __slots__ = ()

    def result(self, timeout: float | None = None) -> Any:
        """Same as :meth:`get` (``concurrent.futures`` spelling)."""
        return self.get(timeout)

    def done(self) -> bool:
        return self.is_done

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    @property
    def value(self) -> Any:
        """The result if the future succeeded, else None (does not block)."""
        return self.get(0) if self.succeeded() else None

    def add_callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> _FutureBase:
        """Call ``fn(*args, metadata, **kwargs)`` when the write succeeds.

        Callbacks run on the broker's writer thread (or at once if already done): keep
        them short and never block on another future inside one.
        """
        self._add(_bind(fn, args, kwargs), False)
        return self

    def add_errback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> _FutureBase:
        """Call ``fn(*args, exception, **kwargs)`` when the write fails."""
        self._add(_bind(fn, args, kwargs), True)
        return self

    def add_both(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> _FutureBase:
        self.add_callback(fn, *args, **kwargs)
        return self.add_errback(fn, *args, **kwargs)


class _Signal:
    """A one-shot event, cheaper than ``threading.Event`` (one lock, no condition).

    Thread-safe; ``set`` is called once, by the writer thread.
    """

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # held until set(): waiters block acquiring it
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        if timeout is None:
            acquired = self._lock.acquire()
        elif timeout <= 0:
            return self._set
        else:
            acquired = self._lock.acquire(timeout=timeout)
        if acquired:
            self._lock.release()  # pass it on to the next waiter
            return True
        return self._set


class ProducerBatch:
    """Records bound for one partition, committed together as one stored batch."""

    __slots__ = (
        "topic", "partition", "acks", "codec", "values", "keys", "timestamps", "headers",
        "size", "deadline", "sealed", "base_offset", "error", "event", "callbacks",
        "group", "producer", "producer_id", "epoch", "base_sequence", "transactional",
    )

    def __init__(self, producer: Producer, topic: str, partition: int,
                 deadline: float) -> None:
        self.producer = producer
        self.topic = topic
        self.partition = partition
        self.acks = producer._acks
        self.codec = producer._codec
        self.values: list = []
        self.keys: list | None = None  # None while every key is null (saves a column)
        self.timestamps: list[int] | int = []  # an int: one timestamp for all
        self.headers: list[bytes] | None = None
        self.size = 0
        self.deadline = deadline
        self.sealed = False  # handed to the writer's queue: no more records
        self.base_offset = -1
        self.error: BaseException | None = None
        self.event = _Signal()
        self.callbacks: list[tuple[int, Callable, bool]] | None = None
        self.group: FutureBatchMetadata | None = None
        # Idempotence: stamped by the writer just before the batch is first encoded.
        self.producer_id = -1
        self.epoch = -1
        self.base_sequence = -1
        self.transactional = False

    def _encode(self, log_append_ms: int | None) -> tuple[bytes, int, int]:
        if log_append_ms is not None:  # the broker's time replaces CreateTime: report it
            self.timestamps = log_append_ms
        ts: Any = self.timestamps
        max_ts = ts if type(ts) is int else max(ts)
        body = _batch.encode(
            self.values, self.keys, ts, self.headers,
            codec=self.codec, max_timestamp=max_ts,
            log_append_time=log_append_ms is not None,
            transactional=self.transactional, producer_id=self.producer_id,
            producer_epoch=self.epoch, base_sequence=self.base_sequence,
        )
        return body, max_ts, len(self.values)

    def metadata(self, i: int) -> RecordMetadata:
        key = None if self.keys is None else self.keys[i]
        value = self.values[i]
        ts = self.timestamps if type(self.timestamps) is int else self.timestamps[i]
        hsize = -1
        if self.headers is not None and self.headers[i]:
            hsize = sum(len(n.encode()) + len(v or b"")
                        for n, v in _batch.unpack_headers(self.headers[i]))
        return RecordMetadata(
            self.topic, self.partition, TopicPartition(self.topic, self.partition),
            self.base_offset + i if self.acks else -1, ts, None,
            -1 if key is None else len(key), -1 if value is None else len(value), hsize,
        )

    def _resolve(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self._finish()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self._finish()

    def _finish(self) -> None:
        self.event.set()
        self.producer._release(self)
        callbacks = self.callbacks
        if callbacks and self.acks:
            error = self.error
            self.producer._writer.run_callbacks([
                partial(_run_callback, fn, is_errback, error, partial(self.metadata, i))
                for i, fn, is_errback in callbacks])
        if self.error is not None and not self.acks:
            log.error("record(s) for %s[%d] sent with acks=0 were not written: %s",
                      self.topic, self.partition, self.error)
        if self.group is not None:
            self.group._member_done(self)


def _refuse_get_in_callback(producer: Any, call: str, what: str) -> None:
    """Raise if called on the writer thread, which runs producer callbacks: waiting
    there for an unwritten record would wait for itself.

    Raises:
        KafkaTimeoutError: called inside a producer callback.
    """
    if threading.current_thread() is producer._writer.thread:
        raise KafkaTimeoutError(
            f"{call} was called inside a producer callback for {what} not yet written: "
            "that would wait forever; use add_callback instead")


class FutureRecordMetadata(_FutureBase, tuple):
    """The outcome of one ``send()``: resolves to :class:`RecordMetadata`.

    Thread-safe: any thread may wait on it or add callbacks. (A tuple of its batch and
    the record's index in it: the cheapest object Python builds, made once per send.)
    """

    __slots__ = ()

    def __new__(cls, batch: ProducerBatch, index: int) -> FutureRecordMetadata:
        return tuple.__new__(cls, (batch, index))

    @property
    def _batch(self) -> ProducerBatch:
        return self[0]

    @property
    def _index(self) -> int:
        return self[1]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @property
    def is_done(self) -> bool:
        b = self._batch
        return not b.acks or b.event.is_set()

    @property
    def exception(self) -> BaseException | None:
        """The error if the write failed (acks >= 1), else None (does not block)."""
        b = self._batch
        return b.error if b.acks and b.event.is_set() else None

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for the write and return where the record landed.

        Durability: with ``acks=1`` the record is committed (survives the process
        being killed); with ``acks="all"`` also flushed to disk. With ``acks=0`` this
        returns at once with ``offset=-1``.

        Cost: when the writer thread is idle, a thread other than the main thread
        writes the record itself instead of waking the writer and being woken (about
        3x the waited sends per second); callbacks still run on the writer thread.

        Raises:
            KafkaTimeoutError: not written within ``timeout`` seconds.
            MqlogError: the write failed (e.g. ``UnknownTopicOrPartitionError``,
                ``DiskFullError``).
        """
        b = self._batch
        if b.acks and not b.event.is_set():
            _refuse_get_in_callback(b.producer, "future.get()", "a record")
            if b.sealed or not b.producer._linger:  # ready: write it here if idle
                b.producer._writer.lead(timeout)
        if b.acks and not b.event.wait(timeout):
            raise KafkaTimeoutError(
                f"record for {b.topic}[{b.partition}] not written within {timeout} s")
        if b.error is not None and b.acks:
            raise b.error
        return b.metadata(self._index)

    def _add(self, fn: Callable[[Any], Any], is_errback: bool) -> None:
        b = self._batch
        if not b.acks:  # resolved at once, and write errors are not reported to it
            _run_callback(fn, is_errback, None, partial(b.metadata, self._index))
            return
        if b.event.is_set():
            call = partial(_run_callback, fn, is_errback, b.error,
                           partial(b.metadata, self._index))
            if not b.producer._writer.queue_after_callbacks(call):
                call()  # no earlier callback still waits: run it now
            return
        with b.producer._lock:
            if not b.event.is_set():
                if b.callbacks is None:
                    b.callbacks = []
                b.callbacks.append((self._index, fn, is_errback))
                return
        self._add(fn, is_errback)  # resolved meanwhile: run now

    def __repr__(self) -> str:
        b = self._batch
        state = "done" if self.is_done else "pending"
        return f"<FutureRecordMetadata {b.topic}[{b.partition}] {state}>"


class FutureBatchMetadata(_FutureBase):
    """The outcome of one ``send_batch()``: resolves to :class:`BatchMetadata`.

    Thread-safe.
    """

    __slots__ = ("_topic", "_batches", "_pending", "_lock", "_event", "_error",
                 "_result", "_callbacks", "_acks")

    def __init__(self, topic: str, batches: list[ProducerBatch], acks: int) -> None:
        self._topic = topic
        self._batches = batches
        self._pending = len(batches)
        self._lock = threading.Lock()  # guards _pending and _callbacks
        self._event = threading.Event()
        self._error: BaseException | None = None
        self._result: BatchMetadata | None = None
        self._callbacks: list[tuple[Callable, bool]] = []
        self._acks = acks
        for b in batches:
            b.group = self
        if not acks or not batches:  # nothing to wait for
            self._result = self._build()
            self._event.set()

    def _build(self) -> BatchMetadata:
        parts: dict[int, list[int]] = {}
        for b in self._batches:
            slot = parts.get(b.partition)
            if slot is None:
                parts[b.partition] = [b.base_offset if self._acks else -1, len(b.values)]
            else:
                slot[1] += len(b.values)
        return BatchMetadata(self._topic, tuple(
            PartitionBatch(p, base, n) for p, (base, n) in sorted(parts.items())))

    def _member_done(self, batch: ProducerBatch) -> None:
        with self._lock:
            if batch.error is not None and self._error is None:
                self._error = batch.error
            self._pending -= 1
            if self._pending or not self._acks:
                return
            if self._error is None:
                self._result = self._build()
            callbacks = self._callbacks
            self._callbacks = []
            self._event.set()
        if callbacks:
            batch.producer._writer.run_callbacks([
                partial(_run_callback, fn, is_errback, self._error, lambda: self._result)
                for fn, is_errback in callbacks])

    @property
    def is_done(self) -> bool:
        return self._event.is_set()

    @property
    def exception(self) -> BaseException | None:
        return self._error if self._event.is_set() else None

    def get(self, timeout: float | None = None) -> BatchMetadata:
        """Wait until every record is written; see :meth:`FutureRecordMetadata.get`."""
        if not self._event.is_set() and self._batches:
            _refuse_get_in_callback(self._batches[0].producer, "get()", "a send_batch")
            self._batches[0].producer._writer.lead(timeout)  # its batches are ready
        if not self._event.wait(timeout):
            raise KafkaTimeoutError(
                f"send_batch to {self._topic!r} not written within {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _add(self, fn: Callable[[Any], Any], is_errback: bool) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append((fn, is_errback))
                return
        call = partial(_run_callback, fn, is_errback, self._error, lambda: self._result)
        if not self._batches or \
                not self._batches[0].producer._writer.queue_after_callbacks(call):
            call()  # no earlier callback still waits: run it now
