"""The rows of benchmarks/latency.py: each system as a :class:`Target` that opens fresh
:class:`Pipe` s, a stream with a producer end and a consumer end.

latency.py's docstring says what each row does and why this set; ``all_targets()``
lists them, mqlog first. A pipe is used by two threads at once: ``send`` and
``finish`` from the producer thread only, ``receive`` from the consumer thread only,
``close`` from the main thread once both have ended.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import _systems  # noqa: F401  (puts the repository root on sys.path)
from _redis import RedisStreams

import mqlog

BASELINE = "mqlog temporary, acks=1"  # the ratios' reference: the pipeline itself
# The floors: thread hand-offs alone, measured in the same run as the systems.
FLOORS = {False: "floor: 1 thread hand-off", True: "floor: 2 thread hand-offs"}


class Pipe:
    """A fresh stream with a producer end (one thread) and a consumer end (another)."""

    def send(self, values: list[bytes]) -> None:
        """Hand over ``values`` (the records now due, in order) without waiting."""
        raise NotImplementedError

    def finish(self) -> None:
        """Producer thread, after the last send: push out anything still buffered."""

    def receive(self, timeout: float) -> list[bytes]:
        """Block up to ``timeout`` s for records; return their values in order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release everything (idempotent), from the main thread after both ends end."""


class Target:
    """One row of the tables: a system in one configuration."""

    name = ""
    how = ""
    is_mqlog = False

    def start(self) -> None:
        """Raises ``_systems.Unavailable`` (with the reason) if it cannot run here."""

    def stop(self) -> None:
        """Undo :meth:`start` (idempotent)."""

    def versions(self) -> list[tuple[str, str]]:
        return []

    def open(self) -> Pipe:
        raise NotImplementedError


class _MqlogPipe(Pipe):
    def __init__(self, durable: str | None, acks: int | str) -> None:
        self.dir = tempfile.mkdtemp(prefix="mqlog-latency-") if durable else None
        if durable == "fsync":
            self.broker = mqlog.open(self.dir, fsync=True, cleaner_interval_ms=None)
        elif durable:
            self.broker = mqlog.open(self.dir, cleaner_interval_ms=None)
        else:
            self.broker = mqlog.open(cleaner_interval_ms=None)
        self.broker.create_topic("latency", partitions=1)
        self.producer = self.broker.producer(acks=acks)
        self.consumer = self.broker.consumer(auto_offset_reset="earliest",
                                             enable_auto_commit=False)
        self.consumer.assign([mqlog.TopicPartition("latency", 0)])
        self._send = self.producer.send
        self._poll = self.consumer.poll

    def send(self, values):
        send = self._send
        for v in values:
            send("latency", v)

    def finish(self):
        self.producer.flush()

    def receive(self, timeout):
        got = self._poll(timeout_ms=timeout * 1000)
        out = []
        for records in got.values():
            out += [r[7] for r in records]  # r.value
        return out

    def close(self):
        self.consumer.close()
        self.producer.close()
        self.broker.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


class MqlogTarget(Target):
    """mqlog in one configuration.

    ``durable``: None for a temporary broker (``mqlog.open()``), "dir" for
    ``mqlog.open(dir)`` (flushes when ``acks="all"`` asks), "fsync" for
    ``mqlog.open(dir, fsync=True)`` (LMDB flushes every commit).
    """

    is_mqlog = True

    def __init__(self, durable: str | None, acks: int | str, name: str, how: str) -> None:
        self.durable, self.acks, self.name, self.how = durable, acks, name, how

    def versions(self):
        import lmdb
        return [("mqlog", mqlog.__version__), ("py-lmdb", lmdb.__version__),
                ("LMDB", ".".join(map(str, lmdb.version())))]

    def open(self):
        return _MqlogPipe(self.durable, self.acks)


class _RedisPipe(Pipe):
    def __init__(self, connect: Callable[[], Any], key: str) -> None:
        # One client (and connection) per thread: the blocking XREAD must not hold the
        # producer's connection.
        self.tx = connect()
        self.rx = connect()
        self.key = key
        self.last_id = b"0-0"
        self.tx.delete(key)

    def send(self, values):
        if len(values) == 1:
            self.tx.xadd(self.key, {b"v": values[0]})
            return
        pipe = self.tx.pipeline(transaction=False)
        for v in values:
            pipe.xadd(self.key, {b"v": v})
        pipe.execute()

    def receive(self, timeout):
        got = self.rx.xread({self.key: self.last_id}, count=500,
                            block=max(1, int(timeout * 1000)))
        if not got:
            return []
        entries = got[0][1]
        self.last_id = entries[-1][0]
        return [fields[b"v"] for _id, fields in entries]

    def close(self):
        self.tx.delete(self.key)  # the server outlives the run: free its memory
        for client in (self.tx, self.rx):
            client.close()


class RedisTarget(Target):
    name = "Redis Streams (redis-py)"
    how = ("the records due: one `XADD` (several: one pipeline); consumer: "
           "`XREAD BLOCK 100 COUNT 500` from the last id")

    def __init__(self) -> None:
        self.system = RedisStreams()
        self.runs = 0

    def start(self):
        self.system.start()

    def stop(self):
        self.system.stop()

    def versions(self):
        return self.system.versions()

    def open(self):
        self.runs += 1
        return _RedisPipe(self.system.connect, f"latency-{self.runs}")


class _SqlitePipe(Pipe):
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="mqlog-latency-sqlite-")
        self.path = os.path.join(self.dir, "log.db")
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, value BLOB)")
        self.tx = db
        # The reader's own connection (WAL: readers never block the writer).
        self.rx = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Guards _seq, the count of commits; the consumer waits on it when caught up.
        self.cond = threading.Condition(threading.Lock())
        self._seq = 0
        self.last = 0

    def send(self, values):
        self.tx.execute("BEGIN")
        self.tx.executemany("INSERT INTO log (value) VALUES (?)", [(v,) for v in values])
        self.tx.execute("COMMIT")
        with self.cond:
            self._seq += 1
            self.cond.notify_all()

    def receive(self, timeout):
        seen = self._seq  # read before the query: a commit after it is not missed
        rows = self.rx.execute("SELECT id, value FROM log WHERE id > ? ORDER BY id "
                               "LIMIT 500", (self.last,)).fetchall()
        if not rows:
            with self.cond:
                if self._seq == seen:
                    self.cond.wait(timeout)
            return []
        self.last = rows[-1][0]
        return [v for _id, v in rows]

    def close(self):
        self.tx.close()
        self.rx.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SqliteTarget(Target):
    name = "SQLite WAL + notify"
    how = ("the records due: `executemany(INSERT)` in one transaction, then "
           "`Condition.notify_all()`; consumer (own connection): `SELECT ... WHERE "
           "id > last ORDER BY id LIMIT 500`, waiting on the condition when empty")

    def versions(self):
        return [("SQLite", sqlite3.sqlite_version)]

    def open(self):
        return _SqlitePipe()


class _HandOffPipe(Pipe):
    """Records handed between threads in memory: what any in-process log must pay.

    ``relay=False``: the producer appends to a list and notifies a condition the
    consumer waits on (one hand-off). ``relay=True``: a relay thread in between takes
    what is there and passes it on, as mqlog's writer thread does (two hand-offs).
    """

    def __init__(self, relay: bool) -> None:
        # Each condition guards its list; the relay takes them in order, never both.
        self.inbox, self.inbox_cond = [], threading.Condition(threading.Lock())
        self.outbox, self.outbox_cond = [], threading.Condition(threading.Lock())
        self.closed = False
        self.relay = None
        if relay:
            self.relay = threading.Thread(target=self._relay, name="latency-relay",
                                          daemon=True)
            self.relay.start()

    def _relay(self) -> None:
        while True:
            with self.inbox_cond:
                while not self.inbox and not self.closed:
                    self.inbox_cond.wait()
                if self.closed:
                    return
                items, self.inbox = self.inbox, []
            with self.outbox_cond:
                self.outbox += items
                self.outbox_cond.notify_all()

    def send(self, values):
        cond = self.inbox_cond if self.relay is not None else self.outbox_cond
        with cond:
            if self.relay is not None:
                self.inbox += values
            else:
                self.outbox += values
            cond.notify_all()

    def receive(self, timeout):
        with self.outbox_cond:
            if not self.outbox:
                self.outbox_cond.wait(timeout)
            out, self.outbox = self.outbox, []
        return out

    def close(self):
        with self.inbox_cond:
            self.closed = True
            self.inbox_cond.notify_all()
        if self.relay is not None:
            self.relay.join(10)


class HandOffTarget(Target):
    def __init__(self, relay: bool) -> None:
        self.relay = relay
        self.name = FLOORS[relay]
        self.how = ("a relay thread between producer and consumer, each hop a list and "
                    "a `threading.Condition` (mqlog's shape: producer -> writer -> "
                    "consumer), nothing stored" if relay else
                    "the producer appends to a list and notifies a `threading.Condition` "
                    "the consumer waits on; nothing stored")

    def open(self):
        return _HandOffPipe(self.relay)



def all_targets() -> list[Target]:
    """Every row, mqlog first (see the module docstring for why this set)."""
    return [
        MqlogTarget(None, 1, BASELINE,
                    "`mqlog.open()`, `producer(acks=1)`: nothing flushed"),
        MqlogTarget("dir", "all", "mqlog durable, acks=all",
                    "`mqlog.open(dir)`, `producer(acks='all')`: an fsync per writer "
                    "cycle, records visible at commit"),
        MqlogTarget("fsync", 1, "mqlog durable, fsync=True",
                    "`mqlog.open(dir, fsync=True)`: every commit flushed before "
                    "consumers see it"),
        HandOffTarget(False),
        HandOffTarget(True),
        RedisTarget(),
        SqliteTarget(),
    ]
