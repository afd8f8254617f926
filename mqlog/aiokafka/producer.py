"""AIOKafkaProducer: aiokafka's producer API over mqlog's :class:`~mqlog.Producer`.

``send()`` queues the record on the core producer at once (no I/O, ~microseconds) and
returns an asyncio future; the broker's writer thread resolves the core future, and the
result crosses to the event loop through a :class:`~._bridge.LoopPoster` (one loop
wake-up per burst of resolutions). Work that waits — opening the broker, ``flush``,
``stop``, committing and aborting transactions, waiting for buffer space — runs in the
loop's default executor, so no call stalls the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import warnings
from typing import Any, Callable, NamedTuple, NoReturn, Sequence

from .. import _bootstrap
from ..errors import IllegalStateError as _CoreIllegalState
from ..errors import KafkaTimeoutError as _CoreTimeout
from ..errors import MqlogError
from ._bridge import LoopPoster, check_offsets, injected_fault, reraise, settle
from .errors import (
    IllegalOperation,
    IllegalStateError,
    KafkaTimeoutError,
    ProducerClosed,
    ProducerFenced,
    translate,
)
from .structs import RecordMetadata, TopicPartition

__all__ = ["AIOKafkaProducer", "BatchBuilder", "TransactionContext"]

log = logging.getLogger("mqlog.aiokafka")

_missing: Any = object()
_COMPRESSION = (None, "gzip", "snappy", "lz4", "zstd")
_RECORD_OVERHEAD = 21  # bytes a record adds to a v2 batch besides key/value/headers
_BATCH_OVERHEAD = 61   # the v2 batch header


def _metadata(md: Any) -> RecordMetadata:
    return RecordMetadata(md.topic, md.partition, md.topic_partition, md.offset,
                          md.timestamp, 0, None)


class _Link:
    """Carries one core future's outcome (writer thread) to its asyncio future."""

    __slots__ = ("producer", "fut", "convert")

    def __init__(self, producer: AIOKafkaProducer, fut: asyncio.Future,
                 convert: Callable[[Any], Any]) -> None:
        self.producer = producer
        self.fut = fut
        self.convert = convert

    def ok(self, md: Any) -> None:
        p = self.producer
        p._poster.post(p._done, self.fut, None if p._acks == 0 else self.convert(md), None)

    def failed(self, exc: BaseException) -> None:
        p = self.producer
        p._poster.post(p._done, self.fut, None, translate(exc, ProducerClosed))


class _AppendMetadata(NamedTuple):
    """What ``BatchBuilder.append`` returns: the record's offset within the batch."""

    offset: int
    size: int
    timestamp: int
    crc: int | None


class BatchBuilder:
    """Records for one ``send_batch`` call (``producer.create_batch()``); not
    thread-safe: fill it from one task, then hand it to ``send_batch``."""

    def __init__(self, batch_size: int, key_serializer: Callable[[Any], Any] | None,
                 value_serializer: Callable[[Any], Any] | None) -> None:
        self._batch_size = batch_size
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._records: list[tuple[Any, Any, int, list]] = []
        self._size = _BATCH_OVERHEAD
        self._closed = False

    def append(self, *, timestamp: int | None, key: Any, value: Any,
               headers: Sequence[tuple[str, bytes]] = ()) -> _AppendMetadata | None:
        """Add a record; returns its metadata, or None when the batch is full or closed.

        Args:
            timestamp: CreateTime in ms since the epoch; None for now.
            key, value: bytes (or what the producer's serializers accept).
            headers: ``(str, bytes)`` pairs.
        """
        if self._closed:
            return None
        if self._key_serializer is not None:
            key = self._key_serializer(key)
        if self._value_serializer is not None:
            value = self._value_serializer(value)
        headers = list(headers or ())
        size = _RECORD_OVERHEAD + (len(key) if key is not None else 0) + \
            (len(value) if value is not None else 0) + \
            sum(len(h[0].encode()) + len(h[1] or b"") for h in headers)
        if self._records and self._size + size > self._batch_size:
            return None  # full: the first record is always taken, as aiokafka does
        ts = time.time_ns() // 1_000_000 if timestamp is None else timestamp
        self._records.append((key, value, ts, headers))
        self._size += size
        return _AppendMetadata(len(self._records) - 1, size, ts, None)

    def close(self) -> None:
        """Accept no more records (idempotent)."""
        self._closed = True

    def size(self) -> int:
        """Approximate encoded size in bytes."""
        return self._size

    def record_count(self) -> int:
        return len(self._records)


class AIOKafkaProducer:
    """Publishes records to mqlog topics with aiokafka's API.

    Not thread-safe: use it from the event loop that ran :meth:`start`, as aiokafka.
    Many tasks of that loop may send concurrently.

    ``send`` is a coroutine returning an :class:`asyncio.Future` of
    :class:`RecordMetadata`::

        async with AIOKafkaProducer(bootstrap_servers="mqlog:///data") as producer:
            fut = await producer.send("orders", b"hello", key=b"k")
            md = await fut                      # or: await producer.send_and_wait(...)

    Keywords are aiokafka's. ``bootstrap_servers`` selects the broker
    (:func:`mqlog._bootstrap.resolve`: ``"mqlog:///path"``, ``MQLOG_BOOTSTRAP``, a test
    fixture's broker, or the process's temporary broker). Network, security and retry
    settings are accepted and ignored: nothing leaves the process. An unknown keyword is
    a ``TypeError``, as with aiokafka.

    Raises (constructor):
        ValueError: bad ``acks`` or ``compression_type``, or ``acks`` other than "all"
            with idempotence or transactions.
    """

    _client_ids = itertools.count(1)

    def __init__(
        self,
        *,
        loop: Any = None,
        bootstrap_servers: Any = "localhost",
        client_id: str | None = None,
        metadata_max_age_ms: int = 300000,
        request_timeout_ms: int = 40000,
        api_version: str = "auto",
        acks: Any = _missing,
        key_serializer: Callable[[Any], Any] | None = None,
        value_serializer: Callable[[Any], Any] | None = None,
        compression_type: str | None = None,
        max_batch_size: int = 16384,
        partitioner: Callable[..., int] | None = None,
        max_request_size: int = 1048576,
        linger_ms: int = 0,
        send_backoff_ms: int = 100,
        retry_backoff_ms: int = 100,
        security_protocol: str = "PLAINTEXT",
        ssl_context: Any = None,
        connections_max_idle_ms: int = 540000,
        enable_idempotence: bool = False,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 60000,
        sasl_mechanism: str = "PLAIN",
        sasl_plain_password: str | None = None,
        sasl_plain_username: str | None = None,
        sasl_kerberos_service_name: str = "kafka",
        sasl_kerberos_domain_name: str | None = None,
        sasl_oauth_token_provider: Any = None,
    ) -> None:
        if loop is not None:
            warnings.warn("the loop argument is deprecated (as in aiokafka): the producer "
                          "uses the loop that runs start()", DeprecationWarning, stacklevel=2)
        if acks is not _missing and acks not in (0, 1, -1, "all"):
            raise ValueError(f"acks={acks!r} is not valid: use 0, 1 or 'all' (-1)")
        if compression_type not in _COMPRESSION:
            raise ValueError(f"compression_type={compression_type!r} is not valid: use None, "
                             "'gzip', 'snappy', 'lz4' or 'zstd'")
        idempotent = bool(enable_idempotence) or transactional_id is not None
        if idempotent and acks not in (_missing, "all", -1):
            raise ValueError(f"acks={acks!r} is not supported with idempotence or "
                             "transactions: use acks='all' or leave it unset")
        if acks is _missing:
            acks = -1 if idempotent else 1
        self._acks = -1 if acks == "all" else acks
        self.client_id = client_id or f"aiokafka-producer-{next(self._client_ids)}"
        self._bootstrap_servers = bootstrap_servers
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._max_batch_size = max_batch_size
        self._request_timeout = request_timeout_ms / 1000.0
        self._transactional_id = transactional_id
        # Serializers run here (aiokafka calls them even for None), so the core
        # producer gets bytes. max_block_ms=0: a full buffer must never block the loop;
        # send() waits for space in an executor instead.
        self._core_config: dict[str, Any] = dict(
            acks="all" if self._acks == -1 else self._acks,
            linger_ms=linger_ms, batch_size=max_batch_size, max_block_ms=0,
            compression_type=compression_type, partitioner=partitioner,
            max_request_size=max_request_size, enable_idempotence=bool(enable_idempotence),
            transactional_id=transactional_id,
            transaction_timeout_ms=transaction_timeout_ms, client_id=self.client_id)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poster: LoopPoster | None = None
        self._broker: Any = None
        self._core: Any = None
        self._closed = False
        # Futures handed out and not yet resolved (loop thread only): flush() and
        # stop() wait for them.
        self._inflight: set[asyncio.Future] = set()
        self._topics: set[str] = set()  # known to exist: send() needs no metadata wait

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._core else "new")
        return f"<mqlog.aiokafka.AIOKafkaProducer {self.client_id} {state}>"

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the broker and create the core producer (off the loop); a
        transactional producer also registers its ``transactional_id`` here.

        Raises:
            ProducerClosed: the producer was stopped.
            NoBrokersAvailable: the ``mqlog://`` directory is owned by another process.
            ValueError: a setting the core refuses (``InvalidConfigError``).
        """
        loop = asyncio.get_running_loop()
        if self._closed:
            raise ProducerClosed("the producer was stopped: create a new one")
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("start() ran on another event loop before: use the producer "
                               "from the loop that started it")
        if self._core is not None:
            return
        self._loop = loop
        self._poster = LoopPoster(loop)
        try:
            self._broker, self._core = await loop.run_in_executor(None, self._open)
        except MqlogError as exc:
            reraise(exc, ProducerClosed)

    def _open(self) -> tuple[Any, Any]:
        broker = _bootstrap.resolve(self._bootstrap_servers)
        core = broker.producer(**self._core_config)
        if self._transactional_id is not None:
            try:
                core.init_transactions()
            except BaseException:
                core.close()
                raise
        return broker, core

    async def stop(self) -> None:
        """Send everything queued, wait for it, and release the producer. Idempotent.

        An open transaction is aborted.
        """
        if self._closed:
            return
        self._closed = True
        core = self._core
        if core is None:
            return
        pending = list(self._inflight)
        try:
            await self._loop.run_in_executor(None, core.close, None)
        except MqlogError as exc:
            log.warning("closing producer %s: %s", self.client_id, exc)
        if pending:
            await asyncio.wait(pending)

    async def __aenter__(self) -> AIOKafkaProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def _require(self) -> Any:
        if self._closed:
            raise ProducerClosed("the producer was stopped: create a new one")
        core = self._core
        if core is None:
            raise IllegalStateError("the producer is not started: await producer.start() "
                                    "(or use 'async with') first")
        return core

    def _reraise(self, exc: BaseException) -> NoReturn:
        if isinstance(exc, _CoreIllegalState) and self._transactional_id is not None:
            # aiokafka's name for "not allowed in this transaction state".
            raise IllegalOperation(str(exc)) from exc
        reraise(exc, ProducerClosed)

    # -- sending ------------------------------------------------------------------

    async def send(self, topic: str, value: Any = None, key: Any = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: Sequence[tuple[str, bytes]] | None = None) -> asyncio.Future:
        """Queue a record; returns a future of its :class:`RecordMetadata`.

        The future resolves to None with ``acks=0``. An error found while writing (or
        injected with ``broker.faults.fail_next("send", ...)``) is set on the future.

        Raises:
            ProducerClosed: stopped. IllegalOperation: a transactional producer outside
            a transaction. MessageSizeTooLargeError, UnknownTopicOrPartitionError: the
            record cannot go to that topic/partition. TypeError: key/value are not bytes
            and no serializer is set. KafkaTimeoutError: the buffer stayed full for
            ``request_timeout_ms``.

        Cost: a few microseconds; waits (in an executor) only when the buffer is full.
        """
        core = self._require()
        fut = self._loop.create_future()
        if self._broker.faults.armed:
            error = await injected_fault(self._broker, "send", ProducerClosed)
            core = self._require()
            if error is not None:
                fut.set_exception(error)
                return fut
        if self._key_serializer is not None:
            key = self._key_serializer(key)
        if self._value_serializer is not None:
            value = self._value_serializer(value)
        core_fut = await self._queue(core, topic, value, key, headers, partition,
                                     timestamp_ms)
        self._link(core_fut, fut, _metadata)
        return fut

    async def _queue(self, core: Any, topic: str, value: Any, key: Any, headers: Any,
                     partition: int | None, timestamp_ms: int | None) -> Any:
        """``core.send`` without blocking the loop: on a full buffer, wait off the loop
        (``flush``) and try again, up to ``request_timeout_ms``."""
        loop = self._loop
        if topic not in self._topics:
            # As aiokafka waits for the topic's metadata: the core would auto-create a
            # new topic inside send(), a write that must not run on the loop.
            try:
                await asyncio.wait_for(loop.run_in_executor(None, core.partitions_for, topic),
                                       self._request_timeout)
            except asyncio.TimeoutError:
                raise KafkaTimeoutError(
                    f"topic {topic!r} was not available within request_timeout_ms="
                    f"{self._request_timeout * 1000:g}") from None
            except MqlogError as exc:
                self._reraise(exc)
            self._topics.add(topic)
        deadline = loop.time() + self._request_timeout
        while True:
            try:
                return core.send(topic, value, key, headers=headers, partition=partition,
                                 timestamp_ms=timestamp_ms)
            except _CoreTimeout:  # the buffer is full (max_block_ms=0)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise KafkaTimeoutError(
                        f"the producer buffer stayed full for request_timeout_ms="
                        f"{self._request_timeout * 1000:g}: records are produced faster "
                        "than they are written; await the futures or flush()") from None
                try:
                    await loop.run_in_executor(None, core.flush, remaining)
                except _CoreTimeout:
                    pass  # the loop above raises once the deadline has passed
                except MqlogError as exc:
                    self._reraise(exc)
            except MqlogError as exc:
                self._reraise(exc)

    def _link(self, core_fut: Any, fut: asyncio.Future,
              convert: Callable[[Any], Any]) -> None:
        """Resolve ``fut`` on the loop when the core future resolves (writer thread)."""
        self._inflight.add(fut)
        link = _Link(self, fut, convert)
        core_fut.add_callback(link.ok)
        core_fut.add_errback(link.failed)

    def _done(self, fut: asyncio.Future, result: Any, error: BaseException | None) -> None:
        self._inflight.discard(fut)
        settle(fut, result, error)

    async def send_and_wait(self, topic: str, value: Any = None, key: Any = None,
                            partition: int | None = None, timestamp_ms: int | None = None,
                            headers: Sequence[tuple[str, bytes]] | None = None
                            ) -> RecordMetadata | None:
        """Send and wait for the record's metadata (raises what the future holds)."""
        fut = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await fut

    def create_batch(self) -> BatchBuilder:
        """An empty :class:`BatchBuilder` for :meth:`send_batch`."""
        return BatchBuilder(self._max_batch_size, self._key_serializer,
                            self._value_serializer)

    async def send_batch(self, batch: BatchBuilder, topic: str, *,
                         partition: int | None) -> asyncio.Future:
        """Queue every record of ``batch`` for one partition; returns a future of the
        batch's :class:`RecordMetadata` (``offset`` is the first record's).

        The batch is closed. Records land contiguously unless another producer writes
        the same partition meanwhile. Raises as :meth:`send`.
        """
        self._require()
        error = await injected_fault(self._broker, "send", ProducerClosed)
        core = self._require()
        batch.close()
        fut = self._loop.create_future()
        if error is not None:
            fut.set_exception(error)
            return fut
        if partition is None:  # aiokafka's partitioner picks one for a keyless batch
            partition = random.choice(sorted(await self.partitions_for(topic)))
        records = batch._records
        if not records:
            fut.set_result(None)
            return fut
        state = {"left": len(records), "error": None, "first": None}
        self._inflight.add(fut)
        post = self._poster.post
        for i, (key, value, ts, headers) in enumerate(records):
            core_fut = await self._queue(core, topic, value, key, headers or None,
                                         partition, ts)
            core_fut.add_callback(lambda md, i=i: post(self._batch_part, fut, state, i, md,
                                                       None))
            core_fut.add_errback(lambda exc: post(self._batch_part, fut, state, -1, None,
                                                  translate(exc, ProducerClosed)))
        return fut

    def _batch_part(self, fut: asyncio.Future, state: dict, index: int, md: Any,
                    error: BaseException | None) -> None:
        if error is not None and state["error"] is None:
            state["error"] = error
        if index == 0:
            state["first"] = md
        state["left"] -= 1
        if state["left"]:
            return
        self._inflight.discard(fut)
        first = state["first"]
        if state["error"] is not None:
            settle(fut, None, state["error"])
        elif self._acks == 0 or first is None:
            settle(fut, None)
        else:
            settle(fut, RecordMetadata(first.topic, first.partition,
                                       TopicPartition(first.topic, first.partition),
                                       first.offset, -1, 0, None))

    async def flush(self) -> None:
        """Wait until every record sent so far is written and its future resolved."""
        core = self._require()
        pending = list(self._inflight)
        try:
            await self._loop.run_in_executor(None, core.flush, None)
        except MqlogError as exc:
            self._reraise(exc)
        if pending:
            await asyncio.wait(pending)

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition numbers (auto-creating it when the broker allows).

        Raises:
            UnknownTopicOrPartitionError: no such topic and auto-creation is off.
        """
        core = self._require()
        try:
            return await self._loop.run_in_executor(None, core.partitions_for, topic)
        except MqlogError as exc:
            self._reraise(exc)

    # -- transactions -------------------------------------------------------------

    def _transactional(self) -> Any:
        if self._transactional_id is None:
            raise IllegalOperation("transactions need a transactional producer: create it "
                                   "with transactional_id='...'")
        return self._require()

    async def begin_transaction(self) -> None:
        """Start a transaction: records sent until commit/abort belong to it.

        Raises:
            IllegalOperation: no ``transactional_id``. IllegalStateError: a transaction
            is already open. ProducerFenced: a newer producer took the id.
        """
        core = self._transactional()
        try:  # off the loop: it waits for a commit or abort still in progress
            await self._loop.run_in_executor(None, core.begin_transaction)
        except MqlogError as exc:
            reraise(exc, ProducerClosed)

    async def _end(self, end: Callable[..., None]) -> None:
        pending = list(self._inflight)
        try:
            await self._loop.run_in_executor(None, end)
        except MqlogError as exc:
            reraise(exc, ProducerClosed)
        finally:
            if pending:
                await asyncio.wait(pending)

    async def commit_transaction(self) -> None:
        """Write the transaction's records and commit them (with any offsets sent via
        :meth:`send_offsets_to_transaction`) in one atomic write; off the loop.

        Raises:
            IllegalOperation: no ``transactional_id``. IllegalStateError: no open
            transaction. ProducerFenced: fenced. CommitFailedError: the offsets were
            refused (abort and redo the work).
        """
        core = self._transactional()
        await self._end(core.commit_transaction)

    async def abort_transaction(self) -> None:
        """Abort the transaction: ``read_committed`` consumers never see its records."""
        core = self._transactional()
        await self._end(core.abort_transaction)

    def transaction(self) -> TransactionContext:
        """``async with producer.transaction():`` begins, then commits on success or
        aborts on an exception."""
        return TransactionContext(self)

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any],
                                          group_id: str) -> None:
        """Commit consumer offsets for ``group_id`` as part of the open transaction.

        Args:
            offsets: ``{TopicPartition: offset | (offset, metadata) | OffsetAndMetadata}``,
                the *next* offsets to read.
            group_id: the consumer group.

        Raises:
            IllegalOperation: no ``transactional_id``, or no open transaction.
            ValueError: bad ``group_id`` or offsets.
        """
        core = self._transactional()
        if not isinstance(group_id, str) or not group_id:
            raise ValueError(f"group_id={group_id!r} must be a non-empty str")
        formatted = check_offsets(offsets)
        try:
            await self._loop.run_in_executor(
                None, core.send_offsets_to_transaction, formatted, group_id)
        except _CoreIllegalState as exc:
            raise IllegalOperation(str(exc)) from exc
        except MqlogError as exc:
            reraise(exc, ProducerClosed)


class TransactionContext:
    """``async with producer.transaction()``: commit on success, abort on error.

    When the producer was fenced the exception is let out without an abort (there is
    nothing left to abort), as aiokafka does.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def __aenter__(self) -> TransactionContext:
        await self._producer.begin_transaction()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            await self._producer.commit_transaction()
            return
        if isinstance(exc, ProducerFenced):
            return
        try:
            await self._producer.abort_transaction()
        except ProducerFenced:
            pass  # the original exception says more
