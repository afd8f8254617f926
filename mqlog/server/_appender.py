"""Appending produced Kafka batches through the broker's single writer.

mqlog has one write path: the :class:`mqlog._writer.LogWriter` thread drains batches
from registered producers and commits them in group transactions, checking idempotent
batches (producer id, epoch, base sequence) inside the transaction. A wire Produce must
keep the client's producer id, epoch and sequence numbers (so a client's retry of a
batch whose answer was lost resolves to the first write's offset), which an in-process
:class:`mqlog.Producer` would replace with its own. So the server registers one
:class:`WireAppender` with the writer: to the writer it looks like a producer whose
batches are always ready, and each :class:`PendingBatch` carries exactly what the
writer reads from a producer batch (``topic``, ``partition``, ``acks``, ``values``,
``producer_id``, ``epoch``, ``base_sequence``, ``transactional``, ``_encode``,
``_resolve``, ``_fail``).

This couples to the writer's producer protocol (``_ready_at``, ``_drain`` and the batch
attributes above); ``tests/test_server.py`` exercises it end to end.

Thread-safety: :meth:`WireAppender.append` may be called from any thread. Lock order:
the writer calls ``_ready_at`` holding ``LogWriter._cond``, so ``_lock`` comes after it
and :meth:`append` wakes the writer only after releasing ``_lock``.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from .. import batch as _batch
from ..errors import ClosedError, KafkaTimeoutError
from ._decoder import WireBatch
from ._encoder import BatchKey, cache_wire, store_token

__all__ = ["PendingBatch", "WireAppender"]

_CRC = struct.Struct(">I")  # a stored batch body starts with its CRC-32C
_BASE_SIZE = 8  # the base offset batch.with_base_offset() puts before a body


class PendingBatch:
    """One produced batch on its way to the writer, and its outcome."""

    __slots__ = ("topic", "partition", "acks", "codec", "values", "keys", "timestamps",
                 "headers", "producer", "producer_id", "epoch", "base_sequence",
                 "transactional", "base_offset", "error", "event", "log_append_ms",
                 "source", "topic_id", "_stored_crc", "_stored_size")

    def __init__(self, appender: WireAppender, topic: str, partition: int, acks: int,
                 codec: int, values: list, keys: list | None, timestamps: list[int],
                 headers: list[bytes] | None, producer_id: int, epoch: int,
                 base_sequence: int, transactional: bool, source: WireBatch | None = None,
                 topic_id: int = -1) -> None:
        self.producer = appender
        self.topic = topic
        self.partition = partition
        self.acks = acks
        self.codec = codec
        self.values = values
        self.keys = keys
        self.timestamps = timestamps
        self.headers = headers
        self.producer_id = producer_id
        self.epoch = epoch
        self.base_sequence = base_sequence
        self.transactional = transactional
        self.base_offset = -1
        self.error: BaseException | None = None
        self.event = threading.Event()
        self.log_append_ms: int | None = None
        # The batch as the client sent it, when Fetch may serve it back as is once
        # written (see _decoder.WireBatch.servable); cached under the stored batch's key.
        self.source = source
        self.topic_id = topic_id
        self._stored_crc = -1
        self._stored_size = -1

    # -- the writer's side (the thread running a writer cycle) -----------------------------

    def _encode(self, log_append_ms: int | None) -> tuple[bytes, int, int]:
        ts: Any = self.timestamps
        if log_append_ms is not None:
            ts = log_append_ms
            self.log_append_ms = log_append_ms
            self.source = None  # the stored timestamps are not the client's
        max_ts = ts if type(ts) is int else max(ts)
        body = _batch.encode(
            self.values, self.keys, ts, self.headers, codec=self.codec,
            log_append_time=log_append_ms is not None, transactional=self.transactional,
            producer_id=self.producer_id, producer_epoch=self.epoch,
            base_sequence=self.base_sequence)
        self._stored_crc = _CRC.unpack_from(body)[0]
        self._stored_size = _BASE_SIZE + len(body)
        return body, max_ts, len(self.values)

    def _resolve(self, base_offset: int) -> None:
        self.base_offset = base_offset
        source = self.source
        if source is not None:
            # Before the answer goes out (a consumer may fetch right after it): the key
            # is the one Fetch computes from the stored batch.
            self.source = None
            cache_wire(BatchKey(self.producer.store, self.topic_id, self.partition,
                                base_offset, self._stored_crc, self._stored_size),
                       source.wire(base_offset))
        self.event.set()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.event.set()

    # -- the request's side ------------------------------------------------------------

    def wait(self, timeout: float) -> int:
        """The base offset once written.

        Raises:
            KafkaTimeoutError: not written within ``timeout`` seconds.
            MqlogError: the writer refused the batch (its error).
        """
        if not self.event.wait(timeout):
            raise KafkaTimeoutError(
                f"the batch for {self.topic}[{self.partition}] was not written within "
                f"{timeout:g} s")
        if self.error is not None:
            raise self.error
        return self.base_offset


class WireAppender:
    """The producer-shaped source of wire batches for one broker's writer.

    Thread-safe; see the module docstring for the lock order.
    """

    def __init__(self, broker: Any) -> None:
        self._broker = broker
        self.store = store_token(broker)  # names the broker in encoded-batch cache keys
        # Guards _queue and _closed.
        self._lock = threading.Lock()
        self._queue: list[PendingBatch] = []
        self._closed = False
        # The writer's producer protocol: never an in-process idempotent producer (the
        # batches arrive stamped), so the writer never calls _stamp, and sequence
        # give-back (after a failed commit) is a no-op for these batches.
        self._pid = -1
        self._seq_epoch = -2
        self._next_seq: dict = {}
        broker._writer.add_producer(self)

    def close(self) -> None:
        """Unregister from the writer; fail the batches it has not taken yet.

        Each queued batch is either taken by the writer (and written) or failed with
        :class:`~mqlog.errors.ClosedError` here, never left waiting: its request answers
        (or ends) now rather than at its timeout. Idempotent.
        """
        writer = self._broker._writer
        if writer is not None:
            writer.remove_producer(self)
        with self._lock:
            self._closed = True
            left, self._queue = self._queue, []
        for pb in left:
            pb._fail(ClosedError("the server stopped before this batch was written; "
                                 "nothing of it was stored: send it again"))

    def append(self, batches: list[PendingBatch]) -> None:
        """Queue batches for the writer's next cycle.

        Raises:
            ClosedError: the appender was closed (the server stopped).
        """
        with self._lock:
            if self._closed:
                raise ClosedError("the server is stopping: no more writes are accepted")
            self._queue.extend(batches)
        self._broker._writer.wake()

    # -- the writer's producer protocol (the thread running a writer cycle) -------------

    def _ready_at(self) -> float | None:
        return 0.0 if self._queue else None

    def _drain(self, force: bool = False) -> list[PendingBatch]:
        with self._lock:
            out = self._queue
            self._queue = []
        return out
