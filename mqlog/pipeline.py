"""Consume-transform-produce with a stated delivery guarantee.

The loop every stream-processing job writes by hand — poll a source topic, turn each
record into zero or more output records, produce them to a sink topic, commit the
source offsets — is easy to get subtly wrong: commit too early and a crash loses
records, too late and it repeats them, forget to rewind after a failed transaction and
records are skipped. :class:`Pipeline` is that loop, once, with the three guarantees:

- ``"exactly_once"`` (default): each poll's outputs and the source offsets are one
  transaction (``send_offsets_to_transaction`` + ``commit_transaction``); the markers
  and the offsets are written in one LMDB transaction, so a crash at any point leaves
  either all of it or none. Sink readers use ``isolation_level="read_committed"``.
- ``"at_least_once"``: outputs are flushed (``acks="all"``), then the offsets are
  committed; a crash in between repeats those inputs' outputs.
- ``"at_most_once"``: the offsets are committed first, then the outputs produced; a
  crash in between loses those inputs' outputs.

A failed transaction (the group rebalanced away a partition, a record failed) is
aborted and the consumer rewound, so the inputs are processed again; an exception from
``transform`` aborts the transaction, rewinds and propagates (the inputs are processed
again by the next run). ``SIGTERM``/``SIGINT`` (when ``run`` is in the main thread) stop
the loop at the next transaction boundary: the current transaction commits, the
consumer leaves its group and ``run`` returns.

A poll's outputs are produced by one ``send_batch`` call after ``transform`` ran on all
of its inputs (in order within each sink partition, one CreateTime), which costs a
fraction of a ``send`` per record.

Thread-safety: ``run`` executes in one thread; ``stop`` and ``stats`` may be called from
any thread (``stop`` also from a signal handler).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

import attrs

from .errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidConfigError,
    KafkaTimeoutError,
    ProducerFencedError,
    TransactionAbortableError,
)
from .records import ConsumerRecord, OffsetAndMetadata, TopicPartition

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = ["GUARANTEES", "Pipeline", "PipelineStats", "pipeline"]

log = logging.getLogger("mqlog.pipeline")

GUARANTEES = ("exactly_once", "at_least_once", "at_most_once")

# Transactional ids in use by live pipelines of this process: parallel workers of one
# group get distinct ids (base:0, base:1...), and a restarted process reuses base:0.
_ids_lock = threading.Lock()
_ids_in_use: set[str] = set()


@attrs.frozen
class PipelineStats:
    """Progress of a pipeline.

    Attributes:
        inputs: source records processed (and committed) so far.
        outputs: records produced to the sink (committed ones, for exactly-once).
        transactions: polls whose outputs and offsets were committed.
        aborted: transactions aborted and retried (rebalances, failed records).
        lag: source records not yet committed by the group, over all partitions.
        elapsed_s: seconds since ``run`` started.
    """

    inputs: int = 0
    outputs: int = 0
    transactions: int = 0
    aborted: int = 0
    lag: int = 0
    elapsed_s: float = 0.0


class Pipeline:
    """Consume ``source``, apply ``transform`` to each record, produce to ``sink``.

    Args:
        broker: the broker (writable).
        source: a topic name, or a list of them.
        sink: the topic outputs go to.
        group_id: the consumer group (its committed offsets are the pipeline's progress;
            several pipelines with one group share the partitions).
        transform: ``fn(record) -> outputs``: None (drop the record); a value (one
            output with the input's key); a ``(key, value)`` tuple; or a list of
            those. Values and keys are bytes unless ``producer_config`` has serializers.
        guarantee: "exactly_once" (default), "at_least_once" or "at_most_once".
        transactional_id: for exactly-once; default ``"mqlog-pipeline:{group}:{sink}:N"``
            with N the first number no live pipeline of this process uses.
        max_records: most records per poll (and so per transaction; default 500).
        poll_timeout_ms: how long one poll waits (bounds how quickly ``stop`` is
            noticed; default 100).
        producer_config, consumer_config: extra keyword config for the producer and
            consumer (serializers, compression...). The consumer reads
            ``read_committed`` by default.
        on_progress: ``fn(PipelineStats)`` called every ``progress_interval_ms`` from
            the thread running the pipeline.

    Raises:
        InvalidConfigError: an unknown guarantee, or a bad setting.
    """

    def __init__(
        self,
        broker: Broker,
        source: str | Iterable[str],
        sink: str,
        group_id: str,
        transform: Callable[[ConsumerRecord], Any],
        *,
        guarantee: str = "exactly_once",
        transactional_id: str | None = None,
        max_records: int = 500,
        poll_timeout_ms: float = 100,
        producer_config: dict[str, Any] | None = None,
        consumer_config: dict[str, Any] | None = None,
        on_progress: Callable[[PipelineStats], Any] | None = None,
        progress_interval_ms: float = 10000,
    ) -> None:
        if guarantee not in GUARANTEES:
            raise InvalidConfigError(
                f"guarantee={guarantee!r} is not valid: use one of {', '.join(GUARANTEES)}")
        if not callable(transform):
            raise InvalidConfigError(f"transform={transform!r} is not callable")
        if not isinstance(group_id, str) or not group_id:
            raise InvalidConfigError(f"group_id={group_id!r} must be a non-empty str")
        self.sources = [source] if isinstance(source, str) else list(source)
        if not self.sources or not all(isinstance(s, str) for s in self.sources):
            raise InvalidConfigError(f"source={source!r} must be a topic name or a list of "
                                     "them")
        if not isinstance(sink, str):
            raise InvalidConfigError(f"sink={sink!r} must be a topic name")
        self.sink = sink
        self.group_id = group_id
        self.guarantee = guarantee
        self._broker = broker
        self._transform = transform
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._producer_config = dict(producer_config or {})
        self._consumer_config = {
            "isolation_level": "read_committed", "auto_offset_reset": "earliest",
            **(consumer_config or {}), "enable_auto_commit": False, "group_id": group_id}
        self._on_progress = on_progress
        self._progress_interval = progress_interval_ms / 1000.0
        self._requested_id = transactional_id
        self.transactional_id: str | None = None
        self._stop = threading.Event()
        self._running = threading.Lock()  # one run() at a time
        self._counts = [0, 0, 0, 0]  # inputs, outputs, transactions, aborted
        self._started: float | None = None
        self.consumer: Any = None
        self.producer: Any = None
        # Crash-test seam: called with "after_sends" once a poll's outputs are sent,
        # and "after_flush" once they are written (the other guarantees); the
        # transactional producer's own on_point adds "after_offsets", "before_commit",
        # "inside_commit" and "after_commit".
        self.on_point: Callable[[str], None] | None = None

    def __repr__(self) -> str:
        return (f"<mqlog.Pipeline {','.join(self.sources)} -> {self.sink} "
                f"group={self.group_id!r} {self.guarantee}>")

    # -- control ----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to return after the current transaction (any thread)."""
        self._stop.set()

    def stats(self) -> PipelineStats:
        """Progress so far, with the group's current lag (any thread)."""
        inputs, outputs, transactions, aborted = self._counts
        elapsed = 0.0 if self._started is None else time.monotonic() - self._started
        return PipelineStats(inputs, outputs, transactions, aborted, self._lag(), elapsed)

    def _lag(self) -> int:
        broker = self._broker
        committed = broker.group_offsets(self.group_id)
        lag = 0
        for name in self.sources:
            tlog = broker._topics.get(name)
            if tlog is None:
                continue
            for plog in tlog.partitions:
                om = committed.get(plog.tp)
                start = plog.log_start if om is None else max(om.offset, plog.log_start)
                lag += max(0, plog.stable_end() - start)
        return lag

    # -- running ------------------------------------------------------------------------

    def run(self, *, max_inputs: int | None = None, idle_timeout_ms: float | None = None,
            handle_signals: bool = True) -> PipelineStats:
        """Process records until stopped; returns the final stats.

        Args:
            max_inputs: stop once at least this many inputs were processed (at a
                transaction boundary).
            idle_timeout_ms: stop after this long without input (e.g. to drain a topic).
            handle_signals: in the main thread, SIGTERM and SIGINT stop the loop
                gracefully (the previous handlers are restored on return).

        Raises:
            Whatever ``transform`` raises (after aborting and rewinding the inputs).
            ProducerFencedError: another producer took this pipeline's transactional id.
        """
        if not self._running.acquire(blocking=False):
            raise IllegalStateError("this pipeline is already running in another thread")
        previous: dict[int, Any] = {}
        try:
            self._stop.clear()
            if handle_signals and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGINT):
                    if signal.getsignal(sig) is None:
                        continue  # installed outside Python: it could not be put back
                    previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
            self._open()
            return self._loop(max_inputs, idle_timeout_ms)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close()
            self._running.release()

    def _open(self) -> None:
        broker = self._broker
        self._started = time.monotonic()
        if self.guarantee == "exactly_once":
            self.transactional_id = self._claim_id()
            self.producer = broker.producer(transactional_id=self.transactional_id,
                                            **self._producer_config)
            self.producer.on_point = self.on_point
            self.producer.init_transactions()
        else:
            self.producer = broker.producer(**{"acks": "all", **self._producer_config})
        self.consumer = broker.consumer(**self._consumer_config)
        self.consumer.subscribe(self.sources)

    def _claim_id(self) -> str:
        if self._requested_id is not None:
            with _ids_lock:
                _ids_in_use.add(self._requested_id)
            return self._requested_id
        base = f"mqlog-pipeline:{self.group_id}:{self.sink}"
        with _ids_lock:
            n = 0
            while f"{base}:{n}" in _ids_in_use:
                n += 1
            _ids_in_use.add(f"{base}:{n}")
        return f"{base}:{n}"

    def _close(self) -> None:
        for handle in (self.consumer, self.producer):
            if handle is not None:
                try:
                    handle.close()  # the consumer leaves its group
                except Exception:
                    log.exception("closing %r failed", handle)
        self.consumer = self.producer = None
        if self.transactional_id is not None:
            with _ids_lock:
                _ids_in_use.discard(self.transactional_id)
            self.transactional_id = None

    def _loop(self, max_inputs: int | None, idle_timeout_ms: float | None) -> PipelineStats:
        idle_limit = None if idle_timeout_ms is None else idle_timeout_ms / 1000.0
        last_input = last_progress = time.monotonic()
        while not self._stop.is_set():
            batch = self.consumer.poll(timeout_ms=self._poll_timeout_ms,
                                       max_records=self._max_records)
            now = time.monotonic()
            if batch:
                last_input = now
                self._process(batch)
            elif idle_limit is not None and now - last_input >= idle_limit:
                break
            if self._on_progress is not None and now - last_progress >= \
                    self._progress_interval:
                last_progress = now
                self._on_progress(self.stats())
            if max_inputs is not None and self._counts[0] >= max_inputs:
                break
        stats = self.stats()
        log.info("pipeline %s stopped: %s", self, stats)
        return stats

    @staticmethod
    def _outputs(record: ConsumerRecord, result: Any) -> list[tuple[Any, Any]]:
        """``(key, value)`` pairs to send for what ``transform(record)`` returned (not
        None): a list of outputs, each a value (keeping the input's key) or a
        ``(key, value)`` pair."""
        items = result if isinstance(result, list) else [result]
        out = []
        for item in items:
            if isinstance(item, tuple) and len(item) == 2:
                out.append(item)
            else:
                out.append((record.key, item))
        return out

    def _point(self, name: str) -> None:
        if self.on_point is not None:
            self.on_point(name)

    def _process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        # The consumer's position, not last offset + 1: it is already past transaction
        # markers that follow the records, so a transactional source shows no lag.
        offsets = {tp: OffsetAndMetadata(self.consumer.position(tp), "", -1)
                   for tp in batch}
        n_in = sum(len(recs) for recs in batch.values())
        if self.guarantee == "at_most_once":
            self.consumer.commit(offsets)
            self._counts[0] += n_in
        exactly_once = self.guarantee == "exactly_once"
        producer = self.producer
        if exactly_once:
            producer.begin_transaction()
        transform = self._transform
        values: list[Any] = []
        keys: list[Any] = []
        try:
            for _tp, recs in batch.items():
                for record in recs:
                    result = transform(record)
                    if type(result) is bytes:  # the common case: one value, same key
                        values.append(result)
                        keys.append(record.key)
                    elif result is not None:
                        for key, value in self._outputs(record, result):
                            values.append(value)
                            keys.append(key)
            # One call for the poll's outputs: per partition in the order produced.
            n_out = len(values)
            if n_out:
                producer.send_batch(self.sink, values, keys if any(
                    k is not None for k in keys) else None)
            self._point("after_sends")
            if exactly_once:
                producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
                producer.commit_transaction()
            else:
                producer.flush()
                self._point("after_flush")
                if self.guarantee == "at_least_once":
                    self.consumer.commit(offsets)
        except (CommitFailedError, TransactionAbortableError, KafkaTimeoutError) as exc:
            if not exactly_once:
                raise
            log.warning("pipeline %s: transaction aborted, inputs will be processed "
                        "again: %s", self, exc)
            self._abort_and_rewind(batch)
            return
        except ProducerFencedError:
            raise
        except BaseException:
            if exactly_once:
                self._abort_and_rewind(batch)
            raise
        if self.guarantee != "at_most_once":
            self._counts[0] += n_in
        self._counts[1] += n_out
        self._counts[2] += 1

    def _abort_and_rewind(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Abort the open transaction and move the consumer back to the batch's first
        records, so they are processed again."""
        try:
            self.producer.abort_transaction()
        except ProducerFencedError:
            raise
        except Exception:
            log.exception("aborting the transaction of pipeline %s failed", self)
        self._counts[3] += 1
        assigned = self.consumer.assignment()
        for tp, recs in batch.items():
            if tp in assigned:
                self.consumer.seek(tp, recs[0].offset)


def pipeline(broker: Broker, source: str | Iterable[str], sink: str, group_id: str,
             transform: Callable[[ConsumerRecord], Any], *, max_inputs: int | None = None,
             idle_timeout_ms: float | None = None, **options: Any) -> PipelineStats:
    """Run a :class:`Pipeline` until it is stopped (SIGTERM/SIGINT), has processed
    ``max_inputs`` records, or found no input for ``idle_timeout_ms``.

    ``options`` are :class:`Pipeline`'s keyword arguments. Returns the final stats.
    """
    return Pipeline(broker, source, sink, group_id, transform, **options).run(
        max_inputs=max_inputs, idle_timeout_ms=idle_timeout_ms)
