"""Partition logs: the in-memory state of each partition and reads from the store.

A :class:`PartitionLog` knows its log start offset (first offset still stored), its
end offset (the next offset to be written: Kafka's log end offset / high watermark)
and the largest timestamp indexed so far. The broker's writer thread is the only code
that advances ``end_offset`` and ``max_timestamp``, and only after the transaction that
stored the batches has committed; readers may read both without a lock (an int read is
atomic under the GIL) and then read the store in a short transaction.

Transactions add two facts per partition, both owned by the writer thread: the open
transactions (producer id -> first offset), whose smallest first offset is the *last
stable offset* that ``read_committed`` consumers read up to, and the aborted
transactions (producer id -> ``[(first offset, abort marker offset), ...]``) whose
records ``read_committed`` consumers skip. The writer replaces ``open_txns`` whole
(never mutates it), and publishes an abort before closing the transaction and both
before advancing ``end_offset``, so a reader that reads ``end_offset`` first and
``open_txns`` second never sees an undecided or aborted record as committed.

Invariant (:meth:`PartitionLog._check`): ``0 <= log_start <= end_offset`` and every
stored batch lies inside ``[log_start, end_offset)``, offsets ascending and unique.

Thread-safety: reads are thread-safe; mutation belongs to the writer thread, meaning
the thread running a writer cycle (see :mod:`mqlog._writer`: a waiting caller may run
one; cycles never overlap), and to topic administration, which runs as a writer job.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from typing import Any

from .batch import ATTR_CONTROL, ATTR_TRANSACTIONAL, DecodedBatch, decode, header_fields
from .config import TOPIC_DEFAULTS
from .errors import CorruptStoreError
from .records import ConsumerRecord, FrozenConfig, TopicInfo, TopicPartition

__all__ = ["PartitionLog", "TopicLog", "fetch", "offset_for_time"]

_U64 = struct.Struct(">Q")


class PartitionLog:
    """One partition's offsets. See the module docstring for who may change what."""

    __slots__ = ("topic", "topic_id", "partition", "tp", "log_start", "end_offset",
                 "max_timestamp", "open_txns", "aborted")

    def __init__(self, topic: str, topic_id: int, partition: int, log_start: int = 0,
                 end_offset: int = 0, max_timestamp: int = -1) -> None:
        self.topic = topic
        self.topic_id = topic_id
        self.partition = partition
        self.tp = TopicPartition(topic, partition)
        self.log_start = log_start
        self.end_offset = end_offset
        self.max_timestamp = max_timestamp
        self.open_txns: dict[int, int] = {}  # producer id -> first offset (replaced whole)
        self.aborted: dict[int, list[tuple[int, int]]] = {}  # pid -> [(first, marker)]

    def stable_end(self) -> int:
        """The last stable offset: ``read_committed`` consumers read below it.

        The first offset of the oldest open transaction, or the end offset when no
        transaction is open here.
        """
        end = self.end_offset  # read before open_txns: see the module docstring
        open_txns = self.open_txns
        if open_txns:
            return min(end, min(open_txns.values()))
        return end

    def is_aborted(self, producer_id: int, offset: int) -> bool:
        """Whether the transactional record at ``offset`` by ``producer_id`` was aborted."""
        ranges = self.aborted.get(producer_id)
        if not ranges:
            return False
        i = bisect_right(ranges, (offset, 1 << 64)) - 1
        return i >= 0 and ranges[i][0] <= offset <= ranges[i][1]

    def add_aborted(self, producer_id: int, first: int, marker: int) -> None:
        """Record an aborted transaction (writer thread; kept sorted by first offset)."""
        ranges = list(self.aborted.get(producer_id, ()))
        ranges.append((first, marker))
        ranges.sort()
        self.aborted = {**self.aborted, producer_id: ranges}

    def forget_aborted(self, producer_id: int, first: int, marker: int) -> None:
        """Forget one aborted transaction: compaction removed its records and its marker
        (writer thread)."""
        ranges = [r for r in self.aborted.get(producer_id, ()) if r != (first, marker)]
        aborted = dict(self.aborted)
        if ranges:
            aborted[producer_id] = ranges
        else:
            aborted.pop(producer_id, None)
        self.aborted = aborted

    def prune_aborted(self, below: int) -> None:
        """Forget aborted transactions wholly below ``below`` (retention deleted them)."""
        pruned = {}
        for pid, ranges in self.aborted.items():
            kept = [r for r in ranges if r[1] >= below]
            if kept:
                pruned[pid] = kept
        self.aborted = pruned

    def __repr__(self) -> str:
        return (f"PartitionLog({self.topic}[{self.partition}] start={self.log_start} "
                f"end={self.end_offset})")

    def verify(self, store: Any, dense: bool = True) -> list[str]:
        """Check the partition against the store; returns the problems found.

        Checks every batch's CRC and layout, that batches are in offset order without
        overlap, inside ``[log start, end offset)``, and (``dense``: topics that are not
        compacted) that they follow each other without gaps up to the end offset.
        Cost: decodes every batch of the partition.
        """
        name = f"{self.topic}[{self.partition}]"
        problems = []
        if not 0 <= self.log_start <= self.end_offset:
            problems.append(f"{name}: log start {self.log_start} is beyond the end "
                            f"{self.end_offset}")
        prev_end = None
        with store.read() as txn:
            for base, raw in txn.batches(self.topic_id, self.partition, 0):
                try:
                    batch = decode(raw)
                except CorruptStoreError as exc:
                    problems.append(f"{name}: {exc}")
                    try:  # keep following the offsets past the damaged batch
                        prev_end = base + header_fields(raw)[4] + 1
                    except CorruptStoreError:
                        pass
                    continue
                if batch.base_offset != base:
                    problems.append(f"{name}: batch stored at {base} says base "
                                    f"{batch.base_offset}")
                if prev_end is not None and base < prev_end:
                    problems.append(f"{name}: batch {base} overlaps the one before")
                elif dense and base > (self.log_start if prev_end is None else prev_end):
                    first = self.log_start if prev_end is None else prev_end
                    problems.append(f"{name}: offsets {first}..{base - 1} are missing")
                offsets = list(batch.offsets)
                if offsets != sorted(set(offsets)):
                    problems.append(f"{name}: batch {base} has unordered offsets")
                if batch.last_offset < self.log_start:
                    problems.append(f"{name}: batch {base} lies wholly below the log start "
                                    f"{self.log_start}")
                if batch.last_offset >= self.end_offset:
                    problems.append(f"{name}: batch {base} ends at {batch.last_offset}, past "
                                    f"the end offset {self.end_offset}")
                prev_end = batch.last_offset + 1
        if dense and prev_end is not None and prev_end != self.end_offset:
            problems.append(f"{name}: the last batch ends at {prev_end - 1} but the end "
                            f"offset is {self.end_offset}")
        return problems

    def _check(self, store: Any, dense: bool = True) -> None:
        """Assert :meth:`verify` finds nothing (invariant checks in tests)."""
        problems = self.verify(store, dense)
        assert not problems, problems


class TopicLog:
    """A topic: its id, configuration and partitions (mutable, owned by the broker)."""

    __slots__ = ("name", "topic_id", "config", "partitions", "max_message_bytes",
                 "log_append_time")

    def __init__(self, name: str, topic_id: int, config: FrozenConfig,
                 partitions: list[PartitionLog]) -> None:
        self.name = name
        self.topic_id = topic_id
        self.partitions = partitions
        self.set_config(config)

    def set_config(self, config: FrozenConfig) -> None:
        """Replace the overrides and the facts derived from them."""
        self.config = config
        self.max_message_bytes = config.get("max.message.bytes",
                                            TOPIC_DEFAULTS["max.message.bytes"])
        self.log_append_time = config.get("message.timestamp.type") == "LogAppendTime"

    def info(self) -> TopicInfo:
        return TopicInfo(self.name, len(self.partitions), self.config)

    def __repr__(self) -> str:
        return f"TopicLog({self.name!r}, id={self.topic_id}, partitions={len(self.partitions)})"


def load_partition(txn: Any, topic: str, topic_id: int, partition: int) -> PartitionLog:
    """Rebuild a partition's in-memory state from the store (at open)."""
    raw_start = txn.meta(b"p" + struct.pack(">II", topic_id, partition))
    log_start = _U64.unpack(raw_start)[0] if raw_start else 0
    end = log_start
    last = txn.last_batch(topic_id, partition)
    if last is not None:
        # Header only: opening must not depend on decoding (or a bad payload in) the
        # newest batch; `mqlog check` verifies payloads.
        base, _crc, _magic, _attrs, last_delta = header_fields(last[1])[:5]
        end = max(end, base + last_delta + 1)
    max_ts = txn.time_last(topic_id, partition)
    return PartitionLog(topic, topic_id, partition, log_start, end,
                        -1 if max_ts is None else max_ts)


def _decode_in(plog: PartitionLog, raw: bytes) -> DecodedBatch:
    """Decode a batch of ``plog``; damage is reported with the topic and partition."""
    try:
        return decode(raw)
    except CorruptStoreError as exc:
        raise CorruptStoreError(f"{plog.topic}[{plog.partition}]: {exc}") from None


def _take(batch: DecodedBatch, plog: PartitionLog, position: int,
          want: int) -> tuple[list[ConsumerRecord], int]:
    """Up to ``want`` records of ``batch`` from ``position`` on, and the next position
    (past the batch once it is used up, so compaction gaps are skipped)."""
    i = batch.index_of(position)
    recs = batch.records(plog.topic, plog.partition, i, i + want)
    if i + len(recs) >= batch.count:
        return recs, batch.last_offset + 1
    return recs, recs[-1].offset + 1


_SKIP_READ_COMMITTED = ATTR_CONTROL | ATTR_TRANSACTIONAL


def fetch(
    txn: Any,
    plog: PartitionLog,
    position: int,
    max_records: int,
    cached: DecodedBatch | None = None,
    read_committed: bool = False,
) -> tuple[list[ConsumerRecord], int, DecodedBatch | None]:
    """Read up to ``max_records`` records of one partition from ``position`` on.

    Control batches (transaction markers) take offsets but are never returned.

    Args:
        txn: a read transaction from the store.
        cached: the batch decoded by the previous fetch, reused when it still holds
            ``position`` so a consumer reading a large batch in small polls decodes it
            once.
        read_committed: stop at the last stable offset and skip records of aborted
            transactions (``isolation_level="read_committed"``).

    Returns:
        ``(records, next_position, last_decoded_batch)``. ``next_position`` skips
        offsets removed by compaction, markers and aborted records.
    """
    out: list[ConsumerRecord] = []
    end = plog.stable_end() if read_committed else plog.end_offset
    batch = cached
    # A transactional batch is reused too (a consumer reading a big one in small polls
    # must not decode it per poll): it was decoded below the end, so it is decided,
    # and the decision never changes; only markers and aborted batches are skipped.
    if batch is not None and batch.base_offset <= position <= batch.last_offset and (
            not batch.attributes & _SKIP_READ_COMMITTED or not (
                batch.attributes & ATTR_CONTROL or (
                    read_committed and plog.is_aborted(batch.producer_id,
                                                       batch.base_offset)))):
        out, position = _take(batch, plog, position, max_records)
        if len(out) >= max_records or position >= end:
            return out, position, batch
    for base, raw in txn.batches(plog.topic_id, plog.partition, position):
        if base >= end:
            break  # newer than the end (or last stable offset) we trust
        batch = _decode_in(plog, raw)
        if batch.last_offset < position:
            continue
        if batch.attributes & _SKIP_READ_COMMITTED:
            if batch.attributes & ATTR_CONTROL or (
                    read_committed and plog.is_aborted(batch.producer_id, base)):
                position = batch.last_offset + 1
                continue
        recs, position = _take(batch, plog, position, max_records - len(out))
        out.extend(recs)
        if len(out) >= max_records:
            break
    return out, position, batch


def offset_for_time(txn: Any, plog: PartitionLog, timestamp: int) -> tuple[int, int] | None:
    """The first ``(offset, timestamp)`` whose timestamp is >= ``timestamp``, or None.

    Cost: one time-index lookup and decoding the batches from there until a match
    (normally the first one); never a scan of the partition.
    """
    base = txn.time_lookup(plog.topic_id, plog.partition, timestamp)
    if base is None:
        return None
    for b, raw in txn.batches(plog.topic_id, plog.partition, max(base, plog.log_start)):
        if b >= plog.end_offset:
            break
        batch = _decode_in(plog, raw)
        if batch.is_control:
            continue
        for i, off in enumerate(batch.offsets):
            if off < plog.log_start:
                continue
            ts = batch.timestamp_at(i)
            if ts >= timestamp:
                return off, ts
    return None
