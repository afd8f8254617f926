"""Redis Streams through redis-py, as a system of benchmarks/compare.py (and a row of
latency.py), against a ``redis-server`` started for the run on 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

from _servers import ServerProcess, ServerStartError, free_port
from _systems import (BATCH, GROUP, READ, SINK, SOURCE, TOPIC, Store, System, Unavailable,
                      chunks, require, run_threads, shares, upper)

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
                for chunk in chunks(share, BATCH):
                    for v in chunk:
                        pipe.xadd(TOPIC, {b"v": v})
                    pipe.execute()
            finally:
                r.close()

        run_threads(work, shares(values, threads))

    def count(self):
        return self.r.xlen(TOPIC)

    def fill(self, values, partitions):
        # One stream: Redis Streams has no partitions; a group shares one stream.
        pipe = self.r.pipeline(transaction=False)
        for chunk in chunks(values, BATCH):
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
    temporary directory removed by :meth:`stop`. While it runs, ``port`` says where it
    listens and :meth:`connect` makes a client of its own for a thread (latency.py's
    rows use both). Start, stop and open stores from one thread; ``connect`` from any.
    """

    family = "Redis Streams"

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self._server: ServerProcess | None = None
        self._port: int | None = None
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
        redis = require("redis", "redis-py", "redis")
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("no redis-server on PATH (Debian: apt-get install "
                              "redis-server)")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"v=(\S+)", out)
        self._server_version = m.group(1) if m else out.strip() or "?"
        port = free_port()
        if self.durable:
            self._dir = tempfile.mkdtemp(prefix="mqlog-compare-redis-")
            persistence = ["--appendonly", "yes", "--appendfsync", "always",
                           "--dir", self._dir]
        else:
            persistence = ["--appendonly", "no"]
        try:
            self._server = ServerProcess(
                "redis-server",
                [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 *persistence, "--protected-mode", "yes", "--daemonize", "no"],
                "Ready to accept connections")
        except (ServerStartError, OSError) as exc:
            self.stop()
            raise Unavailable(str(exc)) from None
        self._port = port
        self._redis = redis
        self.client = self.connect()

    @property
    def port(self) -> int:
        """The TCP port the server listens on, on 127.0.0.1 (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not running: call start() first")
        return self._port

    def connect(self) -> Any:
        """A new redis-py client with its own connection pool, for one thread.

        Raises:
            RuntimeError: the server is not running (:meth:`start` was not called).
        """
        return self._redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self):
        server, self._server = self._server, None
        self._port = None
        if server is not None:
            server.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def versions(self):
        return [("redis-py", self._redis.__version__), ("redis-server",
                                                         self._server_version)]

    def open(self, path):
        return _RedisStore(self.client, self.connect)
