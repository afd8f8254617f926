"""mqlog and the raw py-lmdb floor, as systems of benchmarks/compare.py.

mqlog runs on a durable directory with ``acks=1`` or ``acks="all"``; the floor writes
the same bytes straight into LMDB from Python (see :class:`LmdbFloor`). The interface
they implement, and what each workload must do, is in _systems.py.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections.abc import Sequence
from typing import Any

from _systems import (BATCH, GROUP, READ, SINK, SOURCE, THREAD_TIMEOUT_S, TOPIC, Result,
                      Store, System, chunks, run_threads, shares, upper)

import lmdb  # the floor is raw py-lmdb

import mqlog

FLOOR_BATCH_BYTES = 16384  # the floor packs records as mqlog does: batch_size bytes


# -- mqlog --------------------------------------------------------------------------------

def _read_all(consumer: Any, n: int) -> Result:
    """Poll ``consumer`` (assigned, at the beginning) until empty or ``n`` records."""
    poll = consumer.poll
    count, first, last = 0, None, None
    while count < n:
        got = poll(timeout_ms=0)
        if not got:
            break  # everything was committed before: empty means the log's end
        for records in got.values():
            if first is None:
                first = records[0].value
            count += len(records)
            last = records[-1].value
    return count, first, last


class _MqlogStore(Store):
    def __init__(self, path: str, acks: Any) -> None:
        # A durable directory: acks=1 commits to LMDB (survives a crash of the process,
        # not fsynced, like SQLite's WAL with synchronous=NORMAL); acks="all" resolves
        # a send once its commit is fsynced (group commit: one fsync per writer cycle).
        self.broker = mqlog.open(path, cleaner_interval_ms=None)
        self.broker.create_topic(TOPIC, partitions=1)
        self.acks = acks

    def send(self, values, keys):
        producer = self.broker.producer(acks=self.acks)
        send = producer.send
        if keys is None:
            for v in values:
                send(TOPIC, v)
        else:
            for v, k in zip(values, keys):
                send(TOPIC, v, key=k)
        producer.flush()
        producer.close()

    def send_batch(self, values):
        producer = self.broker.producer(acks=self.acks)
        send_batch = producer.send_batch
        for chunk in chunks(values, BATCH):
            send_batch(TOPIC, chunk)
        producer.flush()  # waits for every batch's future
        producer.close()

    def poll(self, n):
        consumer = self.broker.consumer(auto_offset_reset="earliest",
                                        enable_auto_commit=False)
        consumer.assign([mqlog.TopicPartition(TOPIC, 0)])
        try:
            return _read_all(consumer, n)
        finally:
            consumer.close()

    def send_threads(self, values, threads, wait):
        # One producer shared by the threads, as its docs recommend ("share one per
        # process"): their records meet in the same batches and writer cycles.
        producer = self.broker.producer(acks=self.acks)

        def work(share: Sequence[bytes]) -> None:
            send = producer.send
            if wait:
                for v in share:
                    send(TOPIC, v).get(THREAD_TIMEOUT_S)
            else:
                for v in share:
                    send(TOPIC, v)
                producer.flush()

        try:
            run_threads(work, shares(values, threads))
        finally:
            producer.close()

    def count(self):
        tp = mqlog.TopicPartition(TOPIC, 0)
        with self.broker.consumer() as consumer:
            return consumer.end_offsets([tp])[tp]

    def fill(self, values, partitions):
        self.broker.create_topic(SOURCE, partitions=partitions)
        self.broker.create_topic(SINK, partitions=1)
        with self.broker.producer() as producer:
            for i, chunk in enumerate(chunks(values, BATCH)):
                producer.send_batch(SOURCE, chunk, partition=i % partitions)
            producer.flush()

    def consume_group(self, n, consumers):
        # Each consumer is created and polled in its own thread (a consumer is used by
        # one thread at a time); the one that completes the count wakes the others.
        lock = threading.Lock()  # guards read and members
        read = [0]
        members: list[Any] = []
        done = threading.Event()

        def work(_: int) -> None:
            consumer = self.broker.consumer(SOURCE, group_id=GROUP,
                                            auto_offset_reset="earliest")
            with lock:
                members.append(consumer)
            try:
                while not done.is_set():
                    got = consumer.poll(timeout_ms=1000)
                    k = sum(map(len, got.values()))
                    if k:
                        with lock:
                            read[0] += k
                            if read[0] >= n:
                                done.set()
                                for other in members:
                                    other.wakeup()
            finally:
                consumer.close()  # auto-commit commits the positions, then it leaves

        run_threads(work, range(consumers))
        return read[0]

    def transform(self, n, guarantee):
        # Transactions of BATCH inputs, like the peers' loops (the default is 500).
        mqlog.Pipeline(self.broker, SOURCE, SINK, GROUP, _upper_record,
                       guarantee=guarantee, max_records=BATCH).run(
            max_inputs=n, idle_timeout_ms=THREAD_TIMEOUT_S * 1000, handle_signals=False)

    def read_output(self, n):
        consumer = self.broker.consumer(auto_offset_reset="earliest",
                                        enable_auto_commit=False,
                                        isolation_level="read_committed")
        consumer.assign([mqlog.TopicPartition(SINK, 0)])
        try:
            return _read_all(consumer, n)
        finally:
            consumer.close()

    def close(self):
        self.broker.close()


def _upper_record(record: Any) -> bytes:
    return upper(record.value)


class Mqlog(System):
    """mqlog on a durable directory, with ``acks=1`` (the default) or ``acks="all"``."""

    family = "mqlog"
    scaled = False

    def __init__(self, acks: Any = 1) -> None:
        self.acks = acks
        self.durable = acks == "all"
        self.name = "mqlog (acks=all)" if self.durable else "mqlog"
        self.how = {
            "send": f"`producer.send(topic, value)` per record, then `flush()` "
                    f"(acks={acks!r})",
            "send keyed": "`producer.send(topic, value, key=key)` per record, then "
                          "`flush()`",
            "send_batch": f"`producer.send_batch(topic, values)` per {BATCH:,} records, "
                          "then `flush()`",
        }
        if self.durable:
            self.workloads = ("send", "send keyed", "send_batch", "1 thread", "4 threads",
                              "1 thread, wait each", "4 threads, wait each",
                              "at_least_once", "exactly_once")
            self.how.update({
                "1 thread": "threads sharing one producer, each `send()`s its share of "
                            "the records, then `flush()`",
                "1 thread, wait each": "threads sharing one producer, each "
                                       "`send(...).get()` per record",
                "at_least_once": f"`mqlog.Pipeline(..., max_records={BATCH})` over a "
                                 "source topic of 1 partition (`flush()` the outputs, "
                                 "then commit the offsets)",
                "exactly_once": "the same with `guarantee='exactly_once'` (outputs and "
                                "offsets in one transaction per poll)",
            })
        else:
            self.workloads = ("send", "send keyed", "send_batch", "poll", "1 consumer",
                              "group of 4")
            self.how.update({
                "poll": f"`consumer.poll(timeout_ms=0)` ({READ} records a call) on an "
                        "assigned partition",
                "1 consumer": "consumer threads in one group `subscribe()` to a topic of "
                              "4 partitions (auto-commit on, its default) and `poll()` "
                              "until the group has read every record",
            })

    def versions(self):
        return [("mqlog", mqlog.__version__)]

    def open(self, path):
        return _MqlogStore(path, self.acks)


# -- the raw py-lmdb floor ------------------------------------------------------------------

class _FloorStore(Store):
    def __init__(self, path: str, txn_bytes: int | None, sync: bool) -> None:
        self.env = lmdb.open(path, map_size=1 << 34, sync=sync, metasync=sync)
        self.txn_bytes = txn_bytes

    def send_batch(self, values):
        # Pack records the way a log would (a count, then lengths, then the bytes) into
        # batches of mqlog's batch_size, append them with cursor puts and commit once,
        # or every txn_bytes of values.
        size = len(values[0]) if values else 1
        per = max(1, FLOOR_BATCH_BYTES // (size + 16))
        per_txn = len(values) if self.txn_bytes is None else (
            per * max(1, self.txn_bytes // (per * size)))
        offset = 0
        for block in chunks(values, max(1, per_txn)):
            with self.env.begin(write=True) as txn:
                put = txn.cursor().put
                for records in chunks(block, per):
                    k = len(records)
                    packed = struct.pack(f">I{k}I", k, *map(len, records)) + b"".join(
                        records)
                    put(struct.pack(">Q", offset), packed, append=True)
                    offset += k

    def poll(self, n):
        count, first, last = 0, None, None
        with self.env.begin() as txn:
            for _key, packed in txn.cursor():
                k = struct.unpack_from(">I", packed)[0]
                ends = list(itertools.accumulate(struct.unpack_from(f">{k}I", packed, 4),
                                                 initial=4 + 4 * k))
                records = list(map(packed.__getitem__, map(slice, ends, ends[1:])))
                if first is None:
                    first = records[0]
                count += len(records)
                last = records[-1]
        return count, first, last

    def close(self):
        self.env.close()


class LmdbFloor(System):
    """The same bytes straight into LMDB from Python: what no log on LMDB can beat.

    Three variants. ``txn_bytes=None`` is issue #9's definition: one write transaction
    for all records. It measures LMDB holding every dirty page in memory and spilling
    them as much as writing: at 1 KiB it runs at a quarter to a third of the next
    variant, below mqlog itself. ``txn_bytes=1 MiB`` commits every MiB of values (no
    fsync either way), the faster floor and the one a log could approach. With
    ``sync=True`` (the durable floor, for the acks=all table) LMDB fsyncs every 1 MiB
    commit, as a log fsyncing each group commit of that size would.
    """

    family = "raw py-lmdb floor"
    scaled = False
    absent = {key: "a bound for batched writes and scans, with no clients or consumers"
              for key in ("threads", "wait", "groups", "pipeline")}

    def __init__(self, txn_bytes: int | None, sync: bool = False) -> None:
        self.txn_bytes = txn_bytes
        self.sync = self.durable = sync
        commits = ("one write transaction" if txn_bytes is None
                   else f"a commit per {txn_bytes >> 20} MiB of values")
        if txn_bytes is None:
            self.name = "raw py-lmdb floor (one txn)"
        else:
            self.name = (f"raw py-lmdb floor ({txn_bytes >> 20} MiB txns"
                         f"{', fsync each' if sync else ''})")
        self.workloads = ("send_batch",) if sync else ("send_batch", "poll")
        self.how = {
            "send_batch": "the same bytes packed into 16 KiB batches (mqlog's batch "
                          f"size), cursor puts (`append=True`), {commits}, "
                          f"{'fsync per commit' if sync else 'no fsync'}",
            "poll": "one read transaction, a cursor scan cutting each batch into its "
                    "records",
        }

    def versions(self):
        return [("py-lmdb", lmdb.__version__),
                ("LMDB", ".".join(map(str, lmdb.version())))]

    def open(self, path):
        return _FloorStore(path, self.txn_bytes, self.sync)
