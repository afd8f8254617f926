"""The systems that benchmarks/compare.py puts side by side, behind one small interface.

Each :class:`System` names itself, says which workloads it has an API for, checks that
it can run here (:meth:`System.start` raises :class:`Unavailable` with the reason when
not: a package is missing, a server binary is not installed) and opens fresh stores.
A system is one configuration: a durable flavour (fsync before a write is acknowledged:
mqlog with ``acks="all"``, SQLite with ``synchronous=FULL``, Redis with an fsync-always
append-only file) is a system of its own, in the same ``family``.

A :class:`Store` is one empty queue, log, table or stream in its own directory; the
benchmark times exactly one call on it:

- ``send(values, keys)``: hand over the records one call per record, the way a user
  of that system produces, and return once the system holds all of them (flushed,
  committed or acknowledged, as the system defines it);
- ``send_batch(values)``: the system's batched write, 1,000 records per call or
  transaction (``BATCH``; the floor packs and commits as ``LmdbFloor`` says);
- ``poll(n)``: read back the ``n`` records the previous ``send(values, None)`` wrote,
  in order, the way a consumer of that system reads; returns ``(count, first value,
  last value)`` so the caller can check the result;
- ``send_threads(values, threads, wait)``: ``threads`` threads, each with its own
  share of ``values`` (contiguous slices); each sends its records one call per record
  and either pipelines them, waiting at the end (``wait=False``: mqlog flushes; SQLite
  commits every ``BATCH``; Redis executes a pipeline every ``BATCH``), or waits for
  each record's acknowledgement before the next (``wait=True``); ``count()`` then says
  how many records the store holds;
- ``consume_group(n, consumers)``: after ``fill(values, partitions)`` (untimed: the
  records spread over ``partitions`` partitions of a source topic, or one stream),
  ``consumers`` threads in one consumer group read until the group has read all ``n``;
  returns the number of records read (more than ``n`` only if a rebalance re-delivered
  some);
- ``transform(n, guarantee)``: after ``fill(values, 1)``, consume the ``n`` source
  records, upper-case each value and write it to a sink, in transactions of ``BATCH``
  inputs with the named delivery guarantee; ``read_output(n)`` (untimed) reads the
  sink back as ``poll`` does.

Stores are used from the thread that opened them; ``send_threads`` and
``consume_group`` start and join their own threads (each with its own client or
connection where the system needs one). Nothing here measures time; compare.py does.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import lmdb  # noqa: E402  (the floor is raw py-lmdb)

import mqlog  # noqa: E402

TOPIC = "bench"
SOURCE = "source"  # consume_group and transform read this topic / stream / table
SINK = "sink"  # transform writes this one
GROUP = "bench-group"
BATCH = 1000  # records per batched call / transaction, for every system that batches
READ = 500  # records per read call (mqlog's max_poll_records default)
FLOOR_BATCH_BYTES = 16384  # the floor packs records as mqlog does: batch_size bytes
SERVER_START_TIMEOUT_S = 30.0
THREAD_TIMEOUT_S = 600.0  # a watchdog for benchmark threads, never reached in a good run
GUARANTEES = ("at_least_once", "exactly_once")

Result = tuple[int, bytes | None, bytes | None]  # (count, first value, last value)


class Unavailable(Exception):
    """The system cannot run on this machine; the message says why."""


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def _shares(seq: Sequence, parts: int) -> list[Sequence]:
    """``seq`` cut into ``parts`` contiguous slices whose lengths differ by at most 1."""
    bounds = [len(seq) * i // parts for i in range(parts + 1)]
    return [seq[a:b] for a, b in zip(bounds, bounds[1:])]


def run_threads(target: Callable[[Any], None], args: Sequence[Any]) -> None:
    """Run ``target(arg)`` in one thread per arg, join them all, re-raise the first error.

    Raises:
        RuntimeError: a thread was still running after ``THREAD_TIMEOUT_S`` (a hang).
    """
    errors: list[BaseException] = []

    def guarded(arg: Any) -> None:
        try:
            target(arg)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(a,), daemon=True) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(THREAD_TIMEOUT_S)
        if t.is_alive():
            raise RuntimeError(f"a benchmark thread ran over {THREAD_TIMEOUT_S:g} s")
    if errors:
        raise errors[0]


def upper(value: bytes) -> bytes:
    """The pipelines' transform: every system applies exactly this to each value."""
    return value.upper()


class Store:
    """One fresh, empty store of a system in ``path`` (see the module docstring)."""

    def send(self, values: Sequence[bytes], keys: Sequence[bytes] | None) -> None:
        raise NotImplementedError

    def send_batch(self, values: Sequence[bytes]) -> None:
        raise NotImplementedError

    def poll(self, n: int) -> Result:
        raise NotImplementedError

    def send_threads(self, values: Sequence[bytes], threads: int, wait: bool) -> None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def fill(self, values: Sequence[bytes], partitions: int) -> None:
        raise NotImplementedError

    def consume_group(self, n: int, consumers: int) -> int:
        raise NotImplementedError

    def transform(self, n: int, guarantee: str) -> None:
        raise NotImplementedError

    def read_output(self, n: int) -> Result:
        raise NotImplementedError

    def close(self) -> None:
        """Release everything the store holds (idempotent)."""


class System:
    """A system under comparison, in one configuration.

    Attributes:
        name: the row label (unique).
        family: the product, shared by its configurations ("SQLite" for both of its).
        durable: True when a write is on disk (fsynced) before it is acknowledged;
            compare.py puts durable systems in the acks=all tables.
        workloads: which workloads it has an API for (compare.py's WORKLOADS names).
        how: one line per workload saying what the store calls (for the docs).
        absent: per table of compare.py (by key), why the family is not in it.
        scaled: whether the benchmark may run it on fewer records than mqlog to bound
            its time (slow peers).
    """

    name = ""
    family = ""
    durable = False
    workloads: tuple[str, ...] = ()
    how: dict[str, str] = {}
    absent: dict[str, str] = {}
    scaled = True

    def start(self) -> None:
        """Check that the system can run here (and start its server).

        Raises:
            Unavailable: it cannot; the message says why and what would fix it.
        """

    def stop(self) -> None:
        """Stop whatever :meth:`start` started (idempotent)."""

    def versions(self) -> list[tuple[str, str]]:
        """``(component, version)`` pairs to print; called after :meth:`start`."""
        return []

    def open(self, path: str) -> Store:
        """A fresh, empty store in the existing, empty directory ``path``."""
        raise NotImplementedError


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
        for chunk in _chunks(values, BATCH):
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
            run_threads(work, _shares(values, threads))
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
            for i, chunk in enumerate(_chunks(values, BATCH)):
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
        for block in _chunks(values, max(1, per_txn)):
            with self.env.begin(write=True) as txn:
                put = txn.cursor().put
                for records in _chunks(block, per):
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


# -- SQLite -------------------------------------------------------------------------------

class _SqliteStore(Store):
    def __init__(self, path: str, synchronous: str) -> None:
        self.file = os.path.join(path, "log.db")
        self.synchronous = synchronous
        self.db = self._connect()
        self.db.execute("PRAGMA journal_mode=WAL")  # persistent: every connection has it
        self.db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, key BLOB, value BLOB)")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; BEGIN/COMMIT are explicit.
        # timeout: the busy timeout, for threads that each have a connection.
        db = sqlite3.connect(self.file, isolation_level=None, timeout=THREAD_TIMEOUT_S,
                             check_same_thread=False)
        # Per connection. NORMAL: WAL's usual pairing, no fsync per commit; FULL: the
        # WAL is fsynced at every commit (a durable write).
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        return db

    def send(self, values, keys):
        execute = self.db.execute
        if keys is None:
            sql = "INSERT INTO log (value) VALUES (?)"
            rows = ((v,) for v in values)
        else:
            sql = "INSERT INTO log (key, value) VALUES (?, ?)"
            rows = zip(keys, values)
        for i, row in enumerate(rows):
            if i % BATCH == 0:
                if i:
                    execute("COMMIT")
                execute("BEGIN")
            execute(sql, row)
        if values:
            execute("COMMIT")

    def send_batch(self, values):
        execute = self.db.execute
        executemany = self.db.executemany
        sql = "INSERT INTO log (value) VALUES (?)"
        for chunk in _chunks(values, BATCH):
            execute("BEGIN")
            executemany(sql, [(v,) for v in chunk])
            execute("COMMIT")

    def _scan(self, sql: str) -> Result:
        cursor = self.db.execute(sql)
        fetch = cursor.fetchmany
        count, first, last = 0, None, None
        while True:
            rows = fetch(READ)
            if not rows:
                break
            if first is None:
                first = rows[0][1]
            count += len(rows)
            last = rows[-1][1]
        return count, first, last

    def poll(self, n):
        return self._scan("SELECT id, value FROM log ORDER BY id")

    def send_threads(self, values, threads, wait):
        sql = "INSERT INTO log (value) VALUES (?)"

        def work(share: Sequence[bytes]) -> None:
            db = self._connect()  # a connection per thread
            execute = db.execute
            try:
                if wait:  # autocommit: each INSERT is its own transaction
                    for v in share:
                        execute(sql, (v,))
                    return
                for chunk in _chunks(share, BATCH):
                    # IMMEDIATE: take the write lock up front, so a busy database waits
                    # in the busy handler instead of failing on lock upgrade.
                    execute("BEGIN IMMEDIATE")
                    for v in chunk:
                        execute(sql, (v,))
                    execute("COMMIT")
            finally:
                db.close()

        run_threads(work, _shares(values, threads))

    def count(self):
        return self.db.execute("SELECT count(*) FROM log").fetchone()[0]

    def fill(self, values, partitions):
        execute = self.db.execute
        for table in (SOURCE, SINK):
            execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value BLOB)")
        execute("CREATE TABLE progress (reader TEXT PRIMARY KEY, last_id INTEGER)")
        for chunk in _chunks(values, BATCH):
            execute("BEGIN")
            self.db.executemany(f"INSERT INTO {SOURCE} (value) VALUES (?)",
                                [(v,) for v in chunk])
            execute("COMMIT")

    def transform(self, n, guarantee):
        # The hand-written loop: read the next BATCH rows after the last one done, write
        # their transforms and the new position in one transaction (exactly once).
        assert guarantee == "exactly_once", guarantee
        execute = self.db.execute
        executemany = self.db.executemany
        select = f"SELECT id, value FROM {SOURCE} WHERE id > ? ORDER BY id LIMIT {BATCH}"
        insert = f"INSERT INTO {SINK} (value) VALUES (?)"
        save = "INSERT OR REPLACE INTO progress (reader, last_id) VALUES ('bench', ?)"
        last_id, done = 0, 0
        while done < n:
            execute("BEGIN IMMEDIATE")
            rows = execute(select, (last_id,)).fetchall()
            if not rows:
                execute("COMMIT")
                break
            executemany(insert, [(upper(v),) for _, v in rows])
            last_id = rows[-1][0]
            execute(save, (last_id,))
            execute("COMMIT")
            done += len(rows)

    def read_output(self, n):
        return self._scan(f"SELECT id, value FROM {SINK} ORDER BY id")

    def close(self):
        self.db.close()


class Sqlite(System):
    """SQLite in WAL mode (stdlib), ``synchronous=NORMAL`` or ``FULL`` (durable)."""

    family = "SQLite"
    absent = {"groups": "no consumer groups: readers of a table share rows by hand"}

    def __init__(self, synchronous: str = "NORMAL") -> None:
        self.synchronous = synchronous
        self.durable = synchronous == "FULL"
        self.name = "SQLite WAL (synchronous=FULL)" if self.durable else "SQLite WAL"
        self.how = {
            "send": f"`execute(INSERT)` per record, `BEGIN`/`COMMIT` every {BATCH:,}",
            "send keyed": "the same with a key column",
            "send_batch": f"`executemany(INSERT)` of {BATCH:,} rows per transaction",
            "poll": f"`SELECT id, value ... ORDER BY id`, `fetchmany({READ})`",
        }
        if self.durable:
            self.workloads = ("send", "send keyed", "send_batch", "1 thread", "4 threads",
                              "1 thread, wait each", "4 threads, wait each",
                              "exactly_once")
            self.how.update({
                "1 thread": "a connection per thread (busy timeout set), `BEGIN "
                            f"IMMEDIATE`, `execute(INSERT)` per record, `COMMIT` every "
                            f"{BATCH:,}",
                "1 thread, wait each": "a connection per thread, one autocommitted "
                                      "`INSERT` per record",
                "exactly_once": f"a loop: `SELECT` the next {BATCH:,} rows after the "
                                "saved position, `executemany(INSERT)` their transforms "
                                "into another table and save the position, one "
                                "transaction per round (an at-least-once loop would "
                                "cost the same)",
            })
        else:
            self.workloads = ("send", "send keyed", "send_batch", "poll")

    def versions(self):
        return [("SQLite", sqlite3.sqlite_version)]

    def open(self, path):
        return _SqliteStore(path, self.synchronous)


# -- mockafka-py ----------------------------------------------------------------------------

class _MockafkaStore(Store):
    def __init__(self, mockafka) -> None:
        from confluent_kafka.admin import NewTopic

        self.m = mockafka
        # Its store is one module-level singleton: start from empty.
        mockafka.kafka_store.KafkaStore.fresh()
        mockafka.FakeAdminClientImpl().create_topics([NewTopic(TOPIC, 1)])

    def send(self, values, keys):
        producer = self.m.FakeProducer()
        produce = producer.produce
        # It has no partitioner: a partition must be given, as its docs say.
        if keys is None:
            for v in values:
                produce(TOPIC, v, partition=0)
        else:
            for v, k in zip(values, keys):
                produce(TOPIC, v, key=k, partition=0)
        producer.flush()

    def poll(self, n):
        consumer = self.m.FakeConsumer()
        consumer.subscribe([TOPIC])
        count, first, last = 0, None, None
        while count < n:
            messages = consumer.consume(num_messages=READ)
            if not messages:
                break
            if first is None:
                first = messages[0].value()
            count += len(messages)
            last = messages[-1].value()
        consumer.close()
        return count, first, last

    def close(self):
        self.m.kafka_store.KafkaStore.fresh()  # frees the records


_IN_MEMORY = "keeps records in memory only: no durable writes to compare"


class Mockafka(System):
    name = "mockafka-py (in memory)"
    family = "mockafka-py"
    workloads = ("send", "send keyed", "poll")
    how = {
        "send": "`FakeProducer.produce(topic, value, partition=0)` per record",
        "send keyed": "the same with `key=key`",
        "poll": f"`FakeConsumer.consume(num_messages={READ})` after `subscribe()`",
    }
    absent = {"acks-all": _IN_MEMORY, "threads": _IN_MEMORY, "wait": _IN_MEMORY,
              "pipeline": _IN_MEMORY + " (and no transactions)",
              "groups": "no consumer groups: every FakeConsumer reads every partition"}

    def start(self):
        try:
            import mockafka
            import mockafka.kafka_store  # noqa: F401
        except ImportError as exc:
            raise Unavailable(f"mockafka-py is not installed ({exc}); "
                              "pip install mockafka-py") from None
        self._m = mockafka

    def versions(self):
        return [("mockafka-py", _dist_version("mockafka-py"))]

    def open(self, path):
        return _MockafkaStore(self._m)


# -- lmdb-queue -----------------------------------------------------------------------------

class _LmdbQueueStore(Store):
    def __init__(self, equeue, path: str) -> None:
        # Defaults, but a map big enough for the largest run (the default is 1 GiB).
        self.q = equeue.Queue(path, map_size=1 << 34)

    def send(self, values, keys):
        put = self.q.put
        for v in values:
            put(v)

    def poll(self, n):
        get = self.q.get
        count, first, last = 0, None, None
        for _ in range(n):
            # Every job is there already: the timeout only bounds a broken run.
            record = get(timeout=5.0)
            record.ack()
            if first is None:
                first = record.payload
            last = record.payload
            count += 1
        return count, first, last

    def close(self):
        self.q.close()


_NO_DURABLE_PUT = ("no durable put: even with `sync=True` it flushes asynchronously "
                   "(`writemap` with `map_async`), so no put waits for the disk")


class LmdbQueue(System):
    name = "lmdb-queue"
    family = "lmdb-queue"
    workloads = ("send", "poll")
    how = {
        "send": "`Queue.put(value)` per record (one LMDB write transaction each)",
        "poll": "`Queue.get()` then `record.ack()` per record",
    }
    # equeue.Queue opens LMDB with writemap=True and map_async=True: its flushes are
    # msync(MS_ASYNC), which schedules the write-back and returns.
    absent = {
        "acks-all": _NO_DURABLE_PUT, "threads": _NO_DURABLE_PUT, "wait": _NO_DURABLE_PUT,
        "groups": "a work queue: competing getters, no consumer groups over partitions",
        "pipeline": "no transaction spanning a get and a put",
    }

    def start(self):
        try:
            import equeue
        except ImportError as exc:
            raise Unavailable(f"lmdb-queue is not installed ({exc}); "
                              "pip install lmdb-queue") from None
        self._equeue = equeue

    def versions(self):
        return [("lmdb-queue", _dist_version("lmdb-queue"))]

    def open(self, path):
        return _LmdbQueueStore(self._equeue, path)


# -- persist-queue ----------------------------------------------------------------------------

class _PersistQueueStore(Store):
    def __init__(self, persistqueue, path: str) -> None:
        self.q = persistqueue.Queue(os.path.join(path, "q"))

    def send(self, values, keys):
        put = self.q.put
        for v in values:
            put(v)

    def poll(self, n):
        get, done = self.q.get, self.q.task_done
        count, first, last = 0, None, None
        for _ in range(n):
            value = get(block=False)
            done()
            if first is None:
                first = value
            last = value
            count += 1
        return count, first, last

    def close(self):
        q, self.q = self.q, None
        if q is not None:
            for f in (q.headf, q.tailf):
                f.close()


_ONE_PROCESS_QUEUE = "a file queue for one thread: no pipelining, groups or transactions"


class PersistQueue(System):
    name = "persist-queue"
    family = "persist-queue"
    workloads = ("send", "poll")
    how = {
        "send": "file-based `persistqueue.Queue.put(value)` per record (defaults: "
                "pickle, chunks of 100 records, fsync per chunk)",
        "poll": "`get()` then `task_done()` per record",
    }
    absent = {"acks-all": "no fsync per put (it fsyncs each chunk of 100 records; its "
                          "acks=1 row includes those)",
              "threads": _ONE_PROCESS_QUEUE, "wait": _ONE_PROCESS_QUEUE,
              "groups": _ONE_PROCESS_QUEUE, "pipeline": _ONE_PROCESS_QUEUE}

    def start(self):
        try:
            import persistqueue
        except ImportError as exc:
            raise Unavailable(f"persist-queue is not installed ({exc}); "
                              "pip install persist-queue") from None
        self._pq = persistqueue

    def versions(self):
        return [("persist-queue", _dist_version("persist-queue"))]

    def open(self, path):
        return _PersistQueueStore(self._pq, path)


# -- Redis Streams ----------------------------------------------------------------------------

class _RedisStore(Store):
    def __init__(self, client, connect: Callable[[], Any]) -> None:
        self.r = client
        self.connect = connect  # a new client (its own connection), for threads
        self.r.flushall()

    def send(self, values, keys):
        pipe = self.r.pipeline(transaction=False)
        xadd = pipe.xadd
        if keys is None:
            for i, v in enumerate(values, 1):
                xadd(TOPIC, {b"v": v})
                if i % BATCH == 0:
                    pipe.execute()
        else:
            for i, (v, k) in enumerate(zip(values, keys), 1):
                xadd(TOPIC, {b"k": k, b"v": v})
                if i % BATCH == 0:
                    pipe.execute()
        pipe.execute()

    def _read_group(self, r: Any, stream: str, consumer: str, count: int,
                    on_entries: Callable[[list], None]) -> int:
        """XREADGROUP (never blocking) until the stream has no new entries."""
        read = 0
        while True:
            got = r.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)
            if not got or not got[0][1]:
                return read  # every entry was there before: empty means the end
            entries = got[0][1]
            on_entries(entries)
            read += len(entries)

    def poll(self, n):
        r = self.r
        r.xgroup_create(TOPIC, GROUP, id="0")
        ends: list[bytes] = []  # the first value read, then the last

        def ack(entries: list) -> None:
            r.xack(TOPIC, GROUP, *[entry_id for entry_id, _ in entries])
            if not ends:
                ends.append(entries[0][1][b"v"])
            ends[1:] = [entries[-1][1][b"v"]]

        count = self._read_group(r, TOPIC, "c", READ, ack)
        return count, ends[0] if ends else None, ends[-1] if ends else None

    def send_threads(self, values, threads, wait):
        def work(share: Sequence[bytes]) -> None:
            r = self.connect()  # a connection per thread
            try:
                if wait:
                    xadd = r.xadd
                    for v in share:
                        xadd(TOPIC, {b"v": v})
                    return
                pipe = r.pipeline(transaction=False)
                for chunk in _chunks(share, BATCH):
                    for v in chunk:
                        pipe.xadd(TOPIC, {b"v": v})
                    pipe.execute()
            finally:
                r.close()

        run_threads(work, _shares(values, threads))

    def count(self):
        return self.r.xlen(TOPIC)

    def fill(self, values, partitions):
        # One stream: Redis Streams has no partitions; a group shares one stream.
        pipe = self.r.pipeline(transaction=False)
        for chunk in _chunks(values, BATCH):
            for v in chunk:
                pipe.xadd(SOURCE, {b"v": v})
            pipe.execute()
        self.r.xgroup_create(SOURCE, GROUP, id="0")

    def consume_group(self, n, consumers):
        lock = threading.Lock()  # guards read
        read = [0]

        def work(i: int) -> None:
            r = self.connect()
            try:
                k = self._read_group(
                    r, SOURCE, f"c{i}", READ,
                    lambda entries: r.xack(SOURCE, GROUP, *[e for e, _ in entries]))
            finally:
                r.close()
            with lock:
                read[0] += k

        run_threads(work, range(consumers))
        return read[0]

    def transform(self, n, guarantee):
        # exactly_once: outputs and acks in one MULTI/EXEC (atomic on the server);
        # at_least_once: the same commands in a plain pipeline (one round trip, not
        # atomic: a crash between them re-delivers the inputs).
        r = self.r
        atomic = guarantee == "exactly_once"

        def process(entries: list) -> None:
            pipe = r.pipeline(transaction=atomic)
            for _entry_id, fields in entries:
                pipe.xadd(SINK, {b"v": upper(fields[b"v"])})
            pipe.xack(SOURCE, GROUP, *[e for e, _ in entries])
            pipe.execute()

        self._read_group(r, SOURCE, "t", BATCH, process)

    def read_output(self, n):
        count, first, last = 0, None, None
        start = "-"
        while True:
            entries = self.r.xrange(SINK, min=start, count=BATCH)
            if not entries:
                break
            if first is None:
                first = entries[0][1][b"v"]
            count += len(entries)
            last = entries[-1][1][b"v"]
            start = b"(" + entries[-1][0]
        return count, first, last

    def close(self):
        self.r.flushall()


class RedisStreams(System):
    """Redis Streams through redis-py against a ``redis-server`` this object starts.

    The server listens on 127.0.0.1 only and is stopped by :meth:`stop`. By default it
    persists nothing (``--save '' --appendonly no``: memory only, its usual setting for
    a stream used as a queue); with ``durable=True`` it appends every write to its
    append-only file and fsyncs it before replying (``--appendfsync always``), in a
    temporary directory removed by :meth:`stop`.
    """

    family = "Redis Streams"

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.proc: subprocess.Popen | None = None
        self._server_version = "?"
        self._dir: str | None = None
        if durable:
            self.name = "Redis Streams (AOF, fsync always)"
            self.workloads = ("send", "send keyed", "1 thread", "4 threads",
                              "1 thread, wait each", "4 threads, wait each",
                              "at_least_once", "exactly_once")
        else:
            self.name = "Redis Streams (redis-py)"
            self.workloads = ("send", "send keyed", "poll", "1 consumer", "group of 4")
        self.how = {
            "send": f"`XADD` per record in a pipeline, executed every {BATCH:,}",
            "send keyed": "the same with a key field",
            "poll": f"`XREADGROUP COUNT {READ}`, then `XACK` of those ids",
            "1 thread": f"a connection per thread, `XADD` per record in a pipeline "
                        f"executed every {BATCH:,}",
            "1 thread, wait each": "a connection per thread, one `XADD` call per record",
            "1 consumer": f"consumers of one group on one stream (a connection each): "
                          f"`XREADGROUP COUNT {READ}`, then `XACK` of those ids",
            "at_least_once": f"`XREADGROUP COUNT {BATCH:,}`, then `XADD` per output and "
                             "one `XACK` in a plain pipeline",
            "exactly_once": "the same in a `MULTI`/`EXEC` pipeline (atomic)",
        }

    def start(self):
        try:
            import redis
        except ImportError as exc:
            raise Unavailable(f"redis-py is not installed ({exc}); pip install redis") \
                from None
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("no redis-server on PATH (Debian: apt-get install "
                              "redis-server)")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"v=(\S+)", out)
        self._server_version = m.group(1) if m else out.strip() or "?"
        port = _free_port()
        if self.durable:
            self._dir = tempfile.mkdtemp(prefix="mqlog-compare-redis-")
            persistence = ["--appendonly", "yes", "--appendfsync", "always",
                           "--dir", self._dir]
        else:
            persistence = ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             *persistence, "--protected-mode", "yes", "--daemonize", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True)
        ready = threading.Event()
        lines: list[str] = []

        def drain() -> None:  # a full pipe would stall the server; spot its ready line
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if len(lines) < 50:
                    lines.append(line)
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()  # exited: let the waiter see it

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(SERVER_START_TIMEOUT_S) or self.proc.poll() is not None:
            code = self.proc.poll()
            self.stop()
            tail = "".join(lines[-3:]).strip() or "(no output)"
            raise Unavailable(f"redis-server did not start (exit code {code}): {tail}")
        self._port = port
        self._redis = redis
        self.client = self._connect()

    def _connect(self) -> Any:
        return self._redis.Redis(host="127.0.0.1", port=self._port)

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def versions(self):
        return [("redis-py", self._redis.__version__), ("redis-server",
                                                         self._server_version)]

    def open(self, path):
        return _RedisStore(self.client, self._connect)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_systems() -> list[System]:
    """Every system, mqlog first, in the order the tables show them."""
    return [Mqlog(), Mqlog("all"), LmdbFloor(None), LmdbFloor(1 << 20),
            LmdbFloor(1 << 20, sync=True), Sqlite(), Sqlite("FULL"), Mockafka(),
            LmdbQueue(), PersistQueue(), RedisStreams(),
            RedisStreams(durable=True)]
