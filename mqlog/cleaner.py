"""The cleaner: retention (delete) and compaction, per topic config.

- **Retention** (``cleanup.policy`` contains ``delete``): whole batches are deleted from
  the start of a partition while their newest timestamp is older than ``retention.ms``,
  or while the partition holds more than ``retention.bytes``. The log start offset
  advances; offsets are never renumbered.
- **Compaction** (``cleanup.policy`` contains ``compact``): in the cleanable part of a
  partition — batches whose newest record is older than ``min.compaction.lag.ms``,
  never the newest batch — only the latest record of each key is kept; a tombstone
  (``value=None``) that is the latest for its key is dropped once it is older than
  ``delete.retention.ms``. Kept records keep their offsets (readers see gaps); a batch
  left empty is deleted. Records of aborted transactions are dropped, and a transaction
  marker goes once no record of its transaction is left and it is older than
  ``delete.retention.ms`` (with an abort marker goes its aborted-index entry), as
  Kafka's cleaner removes markers: without that, a compacted topic written by
  transactions would grow by a marker per transaction forever.

Work is read in short read transactions and written as writer jobs of bounded size
(``_JOB_BATCHES``), so producers are never blocked for long. Freed pages go back to
LMDB's free list and are reused by later writes: the file stops growing under steady
produce plus retention.

Thread-safety: :class:`Cleaner` is thread-safe; runs are serialised by ``_run_lock``
(the background thread and ``broker.run_cleaner()`` never clean at the same time). The
cleaner is the only writer of existing batches besides ``delete_records``; every job
re-checks, inside its transaction, that what it changes is still there.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import attrs

from . import batch as _batch
from ._transactions import abort_index_key

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker
    from .log import PartitionLog, TopicLog

__all__ = ["Cleaner", "CleanerStats"]

log = logging.getLogger("mqlog.cleaner")

_JOB_BATCHES = 256  # batches changed per write transaction


@attrs.frozen
class CleanerStats:
    """What one cleaner run did."""

    batches_deleted: int = 0
    records_removed: int = 0  # by compaction (retention counts whole batches)
    bytes_reclaimed: int = 0
    partitions_cleaned: int = 0

    def __add__(self, other: CleanerStats) -> CleanerStats:
        return CleanerStats(*(a + b for a, b in zip(attrs.astuple(self),
                                                     attrs.astuple(other))))


class Cleaner:
    """Retention and compaction for one broker (see the module docstring).

    Args:
        interval: seconds between background runs; None: no background thread.
    """

    def __init__(self, broker: Broker, interval: float | None) -> None:
        self._broker = broker
        self._run_lock = threading.Lock()  # one run at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if interval is not None:
            self._thread = threading.Thread(target=self._loop, args=(interval,),
                                            name="mqlog-cleaner", daemon=True)
            self._thread.start()

    def _loop(self, interval: float) -> None:
        # A periodic timer: the wait is the interval, not synchronisation.
        while not self._stop.wait(interval):
            try:
                self.run()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("background cleaner run failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30)

    # -- one run --------------------------------------------------------------------

    def run(self, now_ms: int | None = None) -> CleanerStats:
        """Apply retention and compaction to every partition now, and forget idle
        transactional ids (see ``TransactionCoordinator.expire_ids``)."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        total = CleanerStats()
        with self._run_lock:
            self._settle()
            for tlog in list(self._broker._topics.values()):
                policy = tlog.config.get("cleanup.policy", "delete")
                for plog in list(tlog.partitions):
                    if self._stop.is_set():
                        return total
                    stats = CleanerStats()
                    if "delete" in policy:
                        stats = stats + self._retain(tlog, plog, now)
                    if "compact" in policy:
                        stats = stats + self._compact(tlog, plog, now)
                    if stats != CleanerStats():
                        total = total + attrs.evolve(stats, partitions_cleaned=1)
            # Transactional ids unused for transactional.id.expiration (7 days) go too.
            self._broker._txns.expire_ids(now)
            self._settle()
        return total

    def _settle(self) -> None:
        """Apply aborted-index changes that waited for reads to end (a writer job)."""
        if self._broker._aborted_changes:
            self._broker._writer.run(lambda txn: None,
                                     lambda _: settle_aborted(self._broker))

    # -- retention ----------------------------------------------------------------------

    def _retain(self, tlog: TopicLog, plog: PartitionLog, now: int) -> CleanerStats:
        retention_ms = tlog.config.get("retention.ms", 604_800_000)
        retention_bytes = tlog.config.get("retention.bytes", -1)
        if retention_ms < 0 and retention_bytes < 0:
            return CleanerStats()
        cutoff = now - retention_ms if retention_ms >= 0 else None
        store = self._broker._store
        doomed: list[tuple[int, int]] = []  # (base offset, stored bytes)
        new_start = plog.log_start
        with store.read(buffers=True) as txn:
            sizes = []
            for base, raw in txn.batches(plog.topic_id, plog.partition, plog.log_start):
                if base >= plog.end_offset:
                    break
                fields = _batch.header_fields(raw)
                sizes.append((base, len(raw), fields[4], fields[6]))
        excess = sum(s for _, s, _, _ in sizes) - retention_bytes if retention_bytes >= 0 \
            else 0
        for base, size, last_delta, max_ts in sizes:
            if base + last_delta + 1 <= plog.log_start:
                continue
            expired = cutoff is not None and max_ts < cutoff
            if not expired and excess <= 0:
                break
            doomed.append((base, size))
            excess -= size
            new_start = base + last_delta + 1
        if not doomed:
            return CleanerStats()
        stats = CleanerStats()
        for i in range(0, len(doomed), _JOB_BATCHES):
            part = doomed[i:i + _JOB_BATCHES]
            start = new_start if i + _JOB_BATCHES >= len(doomed) else \
                doomed[i + _JOB_BATCHES][0]
            stats = stats + delete_prefix(self._broker, tlog, plog, part, start, start)
        return stats

    # -- compaction --------------------------------------------------------------------

    def _compact(self, tlog: TopicLog, plog: PartitionLog, now: int) -> CleanerStats:
        lag = tlog.config.get("min.compaction.lag.ms", 0)
        tombstone_ms = tlog.config.get("delete.retention.ms", 86_400_000)
        store = self._broker._store
        batches = []
        stable = plog.stable_end()  # never below an open transaction's records
        with store.read() as txn:
            for base, raw in txn.batches(plog.topic_id, plog.partition, plog.log_start):
                if base >= stable:
                    break
                batches.append((base, raw))
        headers = [_batch.header_fields(raw) for _, raw in batches]
        # The newest batch is never compacted; nor is anything younger than the lag.
        cleanable = []
        for (base, raw), fields in zip(batches[:-1], headers):
            if fields[6] > now - lag:
                break
            cleanable.append((base, raw))
        if not cleanable:
            return CleanerStats()
        # Each producer's newest batch stays whole while its producer state may live: a
        # sequence window rebuilt from the log (a wire producer after a restart) reads
        # it, and without it the producer's next batch would look like a gap. Kafka keeps
        # that batch too (emptied). Compaction is best-effort: its superseded records
        # go in a later run, once the producer wrote again or its state expired.
        state_cutoff = now - int(self._broker._txns.producer_id_expiration_s * 1000)
        newest_of: dict[int, int] = {}
        for (base, _raw), fields in zip(batches, headers):
            if fields[7] >= 0 and not fields[3] & _batch.ATTR_CONTROL:
                newest_of[fields[7]] = base
        decoded = [_batch.decode(raw) for _, raw in cleanable]
        # Records of aborted transactions are dropped and never supersede a committed
        # record with the same key (their markers go later, see `live` below).
        aborted = [b.is_transactional and not b.is_control
                   and plog.is_aborted(b.producer_id, b.base_offset) for b in decoded]
        latest: dict[bytes, int] = {}
        for b, dropped in zip(decoded, aborted):
            if b.keys is None or dropped or b.is_control:
                continue
            for off, key in zip(b.offsets, b.keys):
                if key is not None:
                    latest[key] = off
        changes = []  # (base, new batch or None to delete, old size, removed, marker)
        marker_cutoff = now - tombstone_ms
        # Per producer id: whether a record of its current transaction (since its last
        # marker) is still kept. A producer has one transaction open at a time, so the
        # transactional records between two of its markers are the later one's.
        live: dict[int, bool] = {}
        for (base, raw), b, dropped in zip(cleanable, decoded, aborted):
            if b.is_control:
                if not live.pop(b.producer_id, False) and b.max_timestamp < marker_cutoff:
                    changes.append((base, None, len(raw), b.count,
                                    _aborted_range(plog, b.producer_id, base)))
                continue
            if b.producer_id >= 0 and newest_of.get(b.producer_id) == base and \
                    b.max_timestamp >= state_cutoff:
                if b.is_transactional:
                    live[b.producer_id] = True
                continue  # a producer's newest batch, left whole (see above)
            keep = []
            for i, off in enumerate(b.offsets):
                if dropped:
                    break
                if off < plog.log_start:
                    continue  # below the log start (delete_records): already invisible
                key = None if b.keys is None else b.keys[i]
                if key is None:
                    keep.append(i)
                    continue
                if latest[key] != off:
                    continue  # superseded by a later record with the same key
                if b.values[i] is None and b.timestamp_at(i) < now - tombstone_ms:
                    continue  # an old tombstone: the key is gone for good
                keep.append(i)
            if keep and b.is_transactional:
                live[b.producer_id] = True
            removed = b.count - len(keep)
            if not removed:
                continue
            if not keep:
                changes.append((base, None, len(raw), removed, None))
                continue
            body = _batch.encode(
                [b.values[i] for i in keep],
                None if b.keys is None else [b.keys[i] for i in keep],
                [b.timestamp_at(i) for i in keep],
                None if b.headers is None else [b.headers[i] for i in keep],
                codec=b.attributes & _batch.ATTR_CODEC_MASK,
                offset_deltas=[b.offsets[i] - base for i in keep],
                last_offset_delta=b.last_offset - base,  # the sequence span stays
                log_append_time=bool(b.attributes & _batch.ATTR_LOG_APPEND_TIME),
                transactional=b.is_transactional,
                producer_id=b.producer_id, producer_epoch=b.producer_epoch,
                base_sequence=b.base_sequence)
            changes.append((base, _batch.with_base_offset(base, body), len(raw), removed,
                            None))
        stats = CleanerStats()
        for i in range(0, len(changes), _JOB_BATCHES):
            stats = stats + rewrite_batches(self._broker, tlog, plog,
                                            changes[i:i + _JOB_BATCHES])
        return stats


def _aborted_range(plog: PartitionLog, producer_id: int, marker: int
                   ) -> tuple[int, int, int] | None:
    """``(producer id, first offset, marker offset)`` of the aborted transaction whose
    abort marker is at ``marker``; None for a commit marker."""
    for first, end in plog.aborted.get(producer_id, ()):
        if end == marker:
            return producer_id, first, marker
    return None


def change_aborted_index(broker: Broker, change: Callable[[], None]) -> None:
    """Run ``change`` (forgetting aborted transactions whose records a commit just
    deleted) once no read open now is left (writer thread).

    A read transaction's snapshot may still hold the deleted records, and it
    judges them by the in-memory aborted index: dropping their entry while such a
    read runs would show a read_committed reader the aborted records. Changes
    wait in ``broker._aborted_changes`` and are applied by :func:`settle_aborted`.
    """
    token = broker._store.reader_token()
    if token is None:
        change()
    else:
        broker._aborted_changes.append((token, change))


def settle_aborted(broker: Broker) -> None:
    """Apply the waiting aborted-index changes whose reads have all ended (writer
    thread)."""
    pending = broker._aborted_changes
    if not pending:
        return
    store = broker._store
    waiting = []
    for token, change in pending:
        if store.readers_done(token):
            change()
        else:
            waiting.append((token, change))
    pending[:] = waiting


def delete_prefix(broker: Broker, tlog: TopicLog, plog: PartitionLog, doomed: list,
                  new_start: int, index_below: int) -> CleanerStats:
    """A writer job: delete the ``doomed`` (base, size) batches and move the log
    start to ``new_start``; time-index entries below ``index_below`` go too."""
    key = b"p" + struct.pack(">II", plog.topic_id, plog.partition)

    def prepare(txn: Any) -> tuple[int, int, int] | None:
        if broker._topics.get(tlog.name) is not tlog:
            return None  # deleted meanwhile
        deleted = freed = 0
        for base, size in doomed:
            if txn.delete_batch(plog.topic_id, plog.partition, base):
                deleted += 1
                freed += size
        txn.delete_time_index_below(plog.topic_id, plog.partition, index_below)
        # The stored start may be ahead of memory: an earlier job in this same
        # transaction moved it. Never move it back.
        stored = txn.meta(key)
        start = max(new_start, plog.log_start,
                    struct.unpack(">Q", stored)[0] if stored else 0)
        txn.put_meta(key, struct.pack(">Q", start))
        for akey, raw in list(txn.meta_items(b"a" + key[1:])):
            if struct.unpack_from(">qQ", raw)[1] < start:
                txn.delete_meta(akey)  # an aborted transaction wholly deleted
        return deleted, freed, start

    def apply(result: tuple[int, int, int] | None) -> CleanerStats:
        if result is None:
            return CleanerStats()
        plog.log_start = max(plog.log_start, result[2])
        if plog.aborted:
            start = plog.log_start
            change_aborted_index(broker, lambda: plog.prune_aborted(start))
        broker._notify_data([plog])  # readers below the new log start must move
        return CleanerStats(batches_deleted=result[0], bytes_reclaimed=result[1])

    return broker._writer.run(prepare, apply)


def rewrite_batches(broker: Broker, tlog: TopicLog, plog: PartitionLog,
                    changes: list) -> CleanerStats:
    """A writer job for compaction: replace or delete batches in place.

    ``changes``: ``(base, new batch or None to delete, old size, records removed,
    aborted range or None)``; an aborted range ``(producer id, first, marker)`` comes
    with the deletion of its abort marker, and its aborted-index entry goes with it.
    Batches come in offset order, so a marker is never deleted before the records of
    its transaction.
    """

    def prepare(txn: Any) -> tuple[CleanerStats, list]:
        if broker._topics.get(tlog.name) is not tlog:
            return CleanerStats(), []
        deleted = removed = freed = 0
        forgotten = []
        for base, data, old_size, n_removed, aborted_range in changes:
            if txn.get_batch(plog.topic_id, plog.partition, base) is None:
                continue  # retention or delete_records removed it meanwhile
            if data is None:
                txn.delete_batch(plog.topic_id, plog.partition, base)
                deleted += 1
                freed += old_size
                if aborted_range is not None:
                    txn.delete_meta(abort_index_key(plog, aborted_range[1]))
                    forgotten.append(aborted_range)
            else:
                txn.replace_batch(plog.topic_id, plog.partition, base, data)
                freed += old_size - len(data)
            removed += n_removed
        return CleanerStats(batches_deleted=deleted, records_removed=removed,
                            bytes_reclaimed=freed), forgotten

    def apply(result: tuple[CleanerStats, list]) -> CleanerStats:
        stats, forgotten = result
        for producer_id, first, marker in forgotten:
            change_aborted_index(broker, lambda r=(producer_id, first, marker):
                                 plog.forget_aborted(*r))
        return stats

    return broker._writer.run(prepare, apply)
