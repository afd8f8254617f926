"""The systems that benchmarks/compare.py puts side by side, behind one small interface.

Each :class:`System` names itself, says which workloads it has an API for, checks that
it can run here (:meth:`System.start` raises :class:`Unavailable` with the reason when
not: a package is missing, a server binary is not installed) and opens fresh stores.
A :class:`Store` is one empty queue, log, table or stream in its own directory; the
benchmark times exactly one call on it:

- ``send(values, keys)``: hand over the records one call per record, the way a user
  of that system produces, and return once the system holds all of them (flushed,
  committed or acknowledged, as the system defines it);
- ``send_batch(values)``: the system's batched write, 1,000 records per call or
  transaction (``BATCH``; the floor packs and commits as ``LmdbFloor`` says);
- ``poll(n)``: read back the ``n`` records the previous ``send(values, None)`` wrote,
  in order, the way a consumer of that system reads; returns ``(count, first value,
  last value)`` so the caller can check the result.

Stores are used from one thread. Nothing here measures time; compare.py does.
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
import threading
from collections.abc import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import lmdb  # noqa: E402  (the floor is raw py-lmdb)

import mqlog  # noqa: E402

TOPIC = "bench"
BATCH = 1000  # records per batched call / transaction, for every system that batches
FLOOR_BATCH_BYTES = 16384  # the floor packs records as mqlog does: batch_size bytes
SERVER_START_TIMEOUT_S = 30.0

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


class Store:
    """One fresh, empty store of a system in ``path`` (see the module docstring)."""

    def send(self, values: Sequence[bytes], keys: Sequence[bytes] | None) -> None:
        raise NotImplementedError

    def send_batch(self, values: Sequence[bytes]) -> None:
        raise NotImplementedError

    def poll(self, n: int) -> Result:
        raise NotImplementedError

    def close(self) -> None:
        """Release everything the store holds (idempotent)."""


class System:
    """A system under comparison.

    Attributes:
        name: the row label.
        workloads: which of ``send``, ``send keyed``, ``send_batch``, ``poll`` it has
            an API for.
        how: one line per workload saying what the store calls (for the docs).
        scaled: whether the benchmark may run it on fewer records than mqlog to bound
            its time (slow peers).
    """

    name = ""
    workloads: tuple[str, ...] = ()
    how: dict[str, str] = {}
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

class _MqlogStore(Store):
    def __init__(self, path: str) -> None:
        # A durable directory with the default acks=1: committed to LMDB (survives a
        # crash of the process), not fsynced, like SQLite's WAL with synchronous=NORMAL.
        self.broker = mqlog.open(path, cleaner_interval_ms=None)
        self.broker.create_topic(TOPIC, partitions=1)

    def send(self, values, keys):
        producer = self.broker.producer()
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
        producer = self.broker.producer()
        send_batch = producer.send_batch
        for chunk in _chunks(values, BATCH):
            send_batch(TOPIC, chunk)
        producer.flush()  # waits for every batch's future
        producer.close()

    def poll(self, n):
        consumer = self.broker.consumer(auto_offset_reset="earliest",
                                        enable_auto_commit=False)
        consumer.assign([mqlog.TopicPartition(TOPIC, 0)])
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
        consumer.close()
        return count, first, last

    def close(self):
        self.broker.close()


class Mqlog(System):
    name = "mqlog"
    workloads = ("send", "send keyed", "send_batch", "poll")
    how = {
        "send": "`producer.send(topic, value)` per record, then `flush()`",
        "send keyed": "`producer.send(topic, value, key=key)` per record, then `flush()`",
        "send_batch": f"`producer.send_batch(topic, values)` per {BATCH:,} records, "
                      "then `flush()`",
        "poll": "`consumer.poll(timeout_ms=0)` (500 records a call) on an assigned "
                "partition",
    }
    scaled = False

    def versions(self):
        return [("mqlog", mqlog.__version__)]

    def open(self, path):
        return _MqlogStore(path)


# -- the raw py-lmdb floor ------------------------------------------------------------------

class _FloorStore(Store):
    def __init__(self, path: str, txn_bytes: int | None) -> None:
        self.env = lmdb.open(path, map_size=1 << 34, sync=False, metasync=False)
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

    Two variants. ``txn_bytes=None`` is issue #9's definition: one write transaction
    for all records. It measures LMDB holding every dirty page in memory and spilling
    them as much as writing: at 1 KiB it runs at a quarter to a third of the other
    variant, below mqlog itself. ``txn_bytes=1 MiB`` commits every MiB of values (no
    fsync either way), the faster floor and the one a log could approach.
    """

    workloads = ("send_batch", "poll")
    scaled = False

    def __init__(self, txn_bytes: int | None) -> None:
        self.txn_bytes = txn_bytes
        commits = ("one write transaction" if txn_bytes is None
                   else f"a commit per {txn_bytes >> 20} MiB of values")
        self.name = ("raw py-lmdb floor (one txn)" if txn_bytes is None
                     else f"raw py-lmdb floor ({txn_bytes >> 20} MiB txns)")
        self.how = {
            "send_batch": "the same bytes packed into 16 KiB batches (mqlog's batch "
                          f"size), cursor puts (`append=True`), {commits}, no fsync",
            "poll": "one read transaction, a cursor scan cutting each batch into its "
                    "records",
        }

    def versions(self):
        return [("py-lmdb", lmdb.__version__),
                ("LMDB", ".".join(map(str, lmdb.version())))]

    def open(self, path):
        return _FloorStore(path, self.txn_bytes)


# -- SQLite -------------------------------------------------------------------------------

class _SqliteStore(Store):
    def __init__(self, path: str) -> None:
        # isolation_level=None: no implicit transactions; BEGIN/COMMIT are explicit.
        self.db = sqlite3.connect(os.path.join(path, "log.db"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL's usual pairing: no fsync
        self.db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, key BLOB, value BLOB)")

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

    def poll(self, n):
        cursor = self.db.execute("SELECT id, value FROM log ORDER BY id")
        fetch = cursor.fetchmany
        count, first, last = 0, None, None
        while True:
            rows = fetch(500)
            if not rows:
                break
            if first is None:
                first = rows[0][1]
            count += len(rows)
            last = rows[-1][1]
        return count, first, last

    def close(self):
        self.db.close()


class Sqlite(System):
    name = "SQLite WAL"
    workloads = ("send", "send keyed", "send_batch", "poll")
    how = {
        "send": f"`execute(INSERT)` per record, `BEGIN`/`COMMIT` every {BATCH:,}",
        "send keyed": "the same with a key column",
        "send_batch": f"`executemany(INSERT)` of {BATCH:,} rows per transaction",
        "poll": "`SELECT id, value ... ORDER BY id`, `fetchmany(500)`",
    }

    def versions(self):
        return [("SQLite", sqlite3.sqlite_version)]

    def open(self, path):
        return _SqliteStore(path)


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
            messages = consumer.consume(num_messages=500)
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


class Mockafka(System):
    name = "mockafka-py (in memory)"
    workloads = ("send", "send keyed", "poll")
    how = {
        "send": "`FakeProducer.produce(topic, value, partition=0)` per record",
        "send keyed": "the same with `key=key`",
        "poll": "`FakeConsumer.consume(num_messages=500)` after `subscribe()`",
    }

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


class LmdbQueue(System):
    name = "lmdb-queue"
    workloads = ("send", "poll")
    how = {
        "send": "`Queue.put(value)` per record (one LMDB write transaction each)",
        "poll": "`Queue.get()` then `record.ack()` per record",
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


class PersistQueue(System):
    name = "persist-queue"
    workloads = ("send", "poll")
    how = {
        "send": "file-based `persistqueue.Queue.put(value)` per record (defaults: "
                "pickle, chunks of 100 records, fsync per chunk)",
        "poll": "`get()` then `task_done()` per record",
    }

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
    def __init__(self, client) -> None:
        self.r = client
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

    def poll(self, n):
        r = self.r
        r.xgroup_create(TOPIC, "g", id="0")
        count, first, last = 0, None, None
        while count < n:
            got = r.xreadgroup("g", "c", {TOPIC: ">"}, count=500)
            if not got or not got[0][1]:
                break
            entries = got[0][1]
            r.xack(TOPIC, "g", *[entry_id for entry_id, _ in entries])
            if first is None:
                first = entries[0][1][b"v"]
            count += len(entries)
            last = entries[-1][1][b"v"]
        return count, first, last

    def close(self):
        self.r.flushall()


class RedisStreams(System):
    """Redis Streams through redis-py against a ``redis-server`` this object starts.

    The server listens on 127.0.0.1 only, persists nothing (``--save ''
    --appendonly no``: memory only, its usual setting for a stream used as a queue) and
    is stopped by :meth:`stop`.
    """

    name = "Redis Streams (redis-py)"
    workloads = ("send", "send keyed", "poll")
    how = {
        "send": f"`XADD` per record in a pipeline, executed every {BATCH:,}",
        "send keyed": "the same with a key field",
        "poll": "`XREADGROUP COUNT 500`, then `XACK` of those ids",
    }

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._server_version = "?"

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
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"],
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
        self.client = redis.Redis(host="127.0.0.1", port=port)
        self._redis = redis

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def versions(self):
        return [("redis-py", self._redis.__version__), ("redis-server",
                                                         self._server_version)]

    def open(self, path):
        return _RedisStore(self.client)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_systems() -> list[System]:
    """Every system, mqlog first, in the order the tables show them."""
    return [Mqlog(), LmdbFloor(None), LmdbFloor(1 << 20), Sqlite(), Mockafka(), LmdbQueue(),
            PersistQueue(), RedisStreams()]
