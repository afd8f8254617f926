"""The peers of benchmarks/compare.py that run in this process: SQLite in WAL mode,
mockafka-py (an in-memory Kafka fake), lmdb-queue and persist-queue.

Each is skipped with the reason when its package is missing (``System.start`` raises
``Unavailable`` through ``require``). Redis Streams, which needs a server process, is in
_redis.py; the interface they implement is in _systems.py.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from _systems import (BATCH, READ, SINK, SOURCE, THREAD_TIMEOUT_S, TOPIC, Result, Store,
                      System, chunks, dist_version, require, run_threads, shares, upper)


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
        for chunk in chunks(values, BATCH):
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
                for chunk in chunks(share, BATCH):
                    # IMMEDIATE: take the write lock up front, so a busy database waits
                    # in the busy handler instead of failing on lock upgrade.
                    execute("BEGIN IMMEDIATE")
                    for v in chunk:
                        execute(sql, (v,))
                    execute("COMMIT")
            finally:
                db.close()

        run_threads(work, shares(values, threads))

    def count(self):
        return self.db.execute("SELECT count(*) FROM log").fetchone()[0]

    def fill(self, values, partitions):
        execute = self.db.execute
        for table in (SOURCE, SINK):
            execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value BLOB)")
        execute("CREATE TABLE progress (reader TEXT PRIMARY KEY, last_id INTEGER)")
        for chunk in chunks(values, BATCH):
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


# -- peers from a PyPI package ---------------------------------------------------------------

class _Packaged(System):
    """A peer that is a PyPI package: :meth:`start` imports ``module`` (distribution
    ``dist``; also each of ``needs``), :meth:`open` returns ``store(module, path)``."""

    module = ""
    dist = ""
    needs: tuple[str, ...] = ()
    store: Callable[[Any, str], Store]

    def start(self):
        for extra in self.needs:
            require(extra, self.dist)
        self._module = require(self.module, self.dist)

    def versions(self):
        return [(self.dist, dist_version(self.dist))]

    def open(self, path):
        return type(self).store(self._module, path)


# -- mockafka-py ----------------------------------------------------------------------------

class _MockafkaStore(Store):
    def __init__(self, mockafka, path: str) -> None:
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


class Mockafka(_Packaged):
    name = "mockafka-py (in memory)"
    family = dist = "mockafka-py"
    module = "mockafka"
    needs = ("mockafka.kafka_store",)  # the store empties its singleton
    store = _MockafkaStore
    workloads = ("send", "send keyed", "poll")
    how = {
        "send": "`FakeProducer.produce(topic, value, partition=0)` per record",
        "send keyed": "the same with `key=key`",
        "poll": f"`FakeConsumer.consume(num_messages={READ})` after `subscribe()`",
    }
    absent = {"acks-all": _IN_MEMORY, "threads": _IN_MEMORY, "wait": _IN_MEMORY,
              "pipeline": _IN_MEMORY + " (and no transactions)",
              "groups": "no consumer groups: every FakeConsumer reads every partition"}


# -- the work queues: lmdb-queue and persist-queue ---------------------------------------------

class _QueueStore(Store):
    """A work queue: ``send`` puts each record, ``poll`` takes and acknowledges each."""

    q: Any

    def send(self, values, keys):
        put = self.q.put
        for v in values:
            put(v)

    def poll(self, n):
        take = self._taker()
        count, first, last = 0, None, None
        for _ in range(n):
            last = take()
            if first is None:
                first = last
            count += 1
        return count, first, last

    def _taker(self) -> Callable[[], bytes]:
        """A function that takes the next record off the queue, acknowledged, and
        returns its value."""
        raise NotImplementedError


class _LmdbQueueStore(_QueueStore):
    def __init__(self, equeue, path: str) -> None:
        # Defaults, but a map big enough for the largest run (the default is 1 GiB).
        self.q = equeue.Queue(path, map_size=1 << 34)

    def _taker(self):
        get = self.q.get

        def take() -> bytes:
            # Every job is there already: the timeout only bounds a broken run.
            record = get(timeout=5.0)
            record.ack()
            return record.payload
        return take

    def close(self):
        self.q.close()


_NO_DURABLE_PUT = ("no durable put: even with `sync=True` it flushes asynchronously "
                   "(`writemap` with `map_async`), so no put waits for the disk")


class LmdbQueue(_Packaged):
    name = family = dist = "lmdb-queue"
    module = "equeue"
    store = _LmdbQueueStore
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


class _PersistQueueStore(_QueueStore):
    def __init__(self, persistqueue, path: str) -> None:
        self.q = persistqueue.Queue(os.path.join(path, "q"))

    def _taker(self):
        get, done = self.q.get, self.q.task_done

        def take() -> bytes:
            value = get(block=False)
            done()
            return value
        return take

    def close(self):
        q, self.q = self.q, None
        if q is not None:
            for f in (q.headf, q.tailf):
                f.close()


_ONE_PROCESS_QUEUE = "a file queue for one thread: no pipelining, groups or transactions"


class PersistQueue(_Packaged):
    name = family = dist = "persist-queue"
    module = "persistqueue"
    store = _PersistQueueStore
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
