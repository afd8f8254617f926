"""Does the cost of a log stay flat as it grows? Reopen, random seek and memory per size.

    python benchmarks/growth.py [--sizes 100000,1000000,10000000] [--seeks N] [--runs R]
                                [--reopens K] [--dir TMP] [--no-sqlite] [--no-memory]
                                [--charts DIR | --no-charts] [--markdown]

One durable store (``mqlog.open(dir)`` in a temporary directory under ``--dir``, one
topic of one partition) grows through the sizes (default 10^5, 10^6, 10^7 records of
100 B; each value starts with its own offset, so every read is checked): the records
missing to the next size are appended with ``send_batch`` (100,000 records a call,
``acks=1``) and the broker is closed. Then, at each size:

- ``append``: the rate of that growth step (records/s; the steps differ in size).
- ``reopen``: the time of ``mqlog.open(dir)`` on the closed store (the page cache is
  warm: the files were just written), the median (min-max) of ``--reopens`` opens.
- ``seek``: on one open broker, ``consumer.seek(tp, offset)`` then the first
  ``poll(timeout_ms=0, max_records=1)``, which must return exactly that record, for
  ``--seeks`` (3,000) seeded random offsets; p50 and p99 per round, the median (min-max)
  over ``--runs`` rounds, and the minor page faults per seek (file pages this process
  maps for the first time). ``seek`` drops the consumer's cached batch, so each one
  reads and decodes the stored batch that holds the offset.
- memory, each in a fresh child process (as compare.py measures it): anonymous
  resident memory (RssAnon, sampled every 5 ms for the peak) and USS (``Private_*`` in
  /proc/self/smaps_rollup) of an idle open broker; of a consumer reading the whole log
  from the start (``poll(timeout_ms=0)`` until empty, the count checked; its rate is
  the ``consume`` column); and of a producer writing ``--produce`` (100,000) more
  records (``send`` per record, then ``flush``; its rate is the ``produce`` column).
  The produced records stay in the log, so every later size holds them too (the
  ``stored`` row). One child per figure: memory is not noisy the way time is.

The peer, as a reference: SQLite in WAL mode (``synchronous=NORMAL``), a table
``log(id INTEGER PRIMARY KEY, value BLOB)`` holding the same rows (``executemany`` in
one transaction per 100,000), reopened (``connect``, ``PRAGMA journal_mode=WAL``,
``SELECT max(id)``) and read at random (``SELECT value FROM log WHERE id=?``).

Machine speed drifts on a shared machine by more than these effects, and sizes cannot
be interleaved (the log grows), so a fixed reference store of the first size (and a
SQLite one) is reopened and sought alternately with the growing store in every round:
the verdicts for reopen and seek use the ratio store / reference measured at the same
moment. Verdicts: each metric at each size divided by its value at the first size; a
cost is "flat" while that ratio stays within 2x (a rate while it stays above 0.5x).
The claim under test: reopen and seek costs stay flat, and memory is proportional to
what is in flight, never to what is stored (so memory verdicts are on RssAnon).
Before writing, the free space under ``--dir`` is checked; sizes that would not fit
(with room to spare) are dropped with the reason printed. PNG charts go to
``--charts`` (default docs/img/) when matplotlib is installed. Nothing here asserts a
speed; the script fails only when a read returns the wrong record or count.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import _memory  # noqa: E402
import _report  # noqa: E402

import mqlog  # noqa: E402

TOPIC = "growth"
TP = mqlog.TopicPartition(TOPIC, 0)
VALUE_SIZE = 100
HEAD = struct.Struct(">Q")  # a value starts with its offset
PAD = bytes(range(VALUE_SIZE - HEAD.size))
CHUNK = 100_000  # records per send_batch call / SQLite transaction
PRODUCE = 100_000  # the producer memory child writes this many (--produce)
# Disk per stored record, measured with a margin: mqlog ~125 B, SQLite ~110 B.
DISK_PER_RECORD = {"mqlog": 140, "sqlite": 130}
DISK_SPARE = 2 << 30  # leave this much free
FLAT = 2.0  # a cost is flat while it stays within this factor of the first size


class WrongResultError(RuntimeError):
    """A read returned another record, or another count, than was written."""


_progress = _report.progress_printer("growth")


def value_of(offset: int) -> bytes:
    return HEAD.pack(offset) + PAD


def values_from(start: int, n: int) -> list[bytes]:
    pack = HEAD.pack
    return [pack(i) + PAD for i in range(start, start + n)]


# -- memory (child processes) ------------------------------------------------------------------

def memory_child(kind: str, path: str, produce: int) -> dict[str, float]:
    """Run one workload on the store at ``path``; report memory in KiB (and a rate)."""
    gc.collect()
    base = _memory.rss_anon_kib()  # the interpreter with mqlog imported, nothing opened
    broker = mqlog.open(path, cleaner_interval_ms=None)
    try:
        if kind == "idle":
            gc.collect()
            return {"base": base, "before": base, "peak": _memory.rss_anon_kib(),
                    "after": _memory.rss_anon_kib(), "uss": _memory.uss_kib()}
        if kind == "consume":
            consumer = broker.consumer(auto_offset_reset="earliest",
                                       enable_auto_commit=False)
            consumer.assign([TP])
            n = consumer.end_offsets([TP])[TP]
            gc.collect()
            before = _memory.rss_anon_kib()
            sampler = _memory.PeakSampler()
            start = time.perf_counter()
            count, last = 0, None
            poll = consumer.poll
            while True:
                got = poll(timeout_ms=0)
                if not got:
                    break
                records = got[TP]
                count += len(records)
                last = records[-1]
            seconds = time.perf_counter() - start
            peak = sampler.stop()
            if count != n or last is None or last.offset != n - 1 or \
                    last.value != value_of(n - 1):
                raise WrongResultError(f"the consumer read {count} records, expected {n} "
                                       f"(last: {None if last is None else last.offset})")
            consumer.close()
            return {"base": base, "before": before, "peak": peak,
                    "after": _memory.rss_anon_kib(), "uss": _memory.uss_kib(), "rate": n / seconds}
        if kind == "produce":
            consumer = broker.consumer(enable_auto_commit=False)
            end = consumer.end_offsets([TP])[TP]
            consumer.close()
            values = values_from(end, produce)
            producer = broker.producer()
            gc.collect()
            before = _memory.rss_anon_kib()
            sampler = _memory.PeakSampler()
            start = time.perf_counter()
            send = producer.send
            for v in values:
                send(TOPIC, v)
            producer.flush()
            seconds = time.perf_counter() - start
            peak = sampler.stop()
            producer.close()
            return {"base": base, "before": before, "peak": peak,
                    "after": _memory.rss_anon_kib(), "uss": _memory.uss_kib(),
                    "rate": produce / seconds}
        raise ValueError(f"unknown memory workload {kind!r}: use idle, consume or produce")
    finally:
        broker.close()


def run_memory_child(kind: str, path: str, produce: int) -> dict[str, float]:
    """:func:`memory_child` in a fresh interpreter."""
    return _memory.run_child(__file__, ["--memory-child", kind, "--path", path,
                                        "--produce", str(produce)], f"{kind} on {path}")


# -- mqlog at one size -----------------------------------------------------------------------

def append(path: str, start: int, n: int, db: sqlite3.Connection | None
           ) -> tuple[float, float | None]:
    """Append records ``start..start+n-1`` to the store (and the SQLite table)."""
    mq_s = sq_s = 0.0
    broker = mqlog.open(path, cleaner_interval_ms=None)
    try:
        if TOPIC not in broker.topics():
            broker.create_topic(TOPIC, partitions=1)
        producer = broker.producer()
        for at in range(start, start + n, CHUNK):
            values = values_from(at, min(CHUNK, start + n - at))
            t = time.perf_counter()
            # Wait for each chunk: the writer thread must not run on during SQLite's turn.
            producer.send_batch(TOPIC, values, partition=0).get(600)
            mq_s += time.perf_counter() - t
            if db is not None:
                t = time.perf_counter()
                db.execute("BEGIN")
                db.executemany("INSERT INTO log (id, value) VALUES (?, ?)",
                               zip(range(at, at + len(values)), values))
                db.execute("COMMIT")
                sq_s += time.perf_counter() - t
        t = time.perf_counter()
        producer.flush()
        producer.close()
        mq_s += time.perf_counter() - t
    finally:
        broker.close()
    return n / mq_s, (n / sq_s if db is not None else None)


# -- timing reopen and seek, interleaved with a fixed reference store --------------------------
#
# Machine speed drifts on a shared machine (other work, CPU frequency) by more than the
# effects measured here, and the sizes cannot be interleaved (the log grows). So every
# round times the store under test and a fixed reference store of the first size one
# right after the other, and the verdicts use their ratio: drift hits both alike.

Lookup = Callable[[int], tuple[int, bytes]]


class _Reader:
    """A store opened the way a user would: timed as a whole, or to read records."""

    name = ""

    def __init__(self, path: str) -> None:
        self.path = path

    def reopen(self) -> float:
        """Seconds to open the store until it can serve (then it is closed)."""
        t = time.perf_counter()
        handle = self._ready()
        seconds = time.perf_counter() - t
        handle.close()
        return seconds

    def _ready(self) -> Any:
        """The store opened and ready to serve; it has a ``close()``."""
        raise NotImplementedError

    def open(self) -> Lookup:
        """Open the store for :meth:`close`; the function reading one record by offset."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _MqlogReader(_Reader):
    """``mqlog.open(path)``; a record by ``seek`` and the first ``poll``."""

    name = "mqlog"

    def _ready(self):
        return mqlog.open(self.path)

    def open(self):
        self.broker = mqlog.open(self.path, cleaner_interval_ms=None)
        consumer = self.broker.consumer(enable_auto_commit=False)
        consumer.assign([TP])
        seek, poll = consumer.seek, consumer.poll

        def lookup(offset: int) -> tuple[int, bytes]:
            seek(TP, offset)
            records = poll(timeout_ms=0, max_records=1).get(TP)
            return (records[0].offset, records[0].value) if records else (-1, b"")
        return lookup

    def close(self):
        self.broker.close()


class _SqliteReader(_Reader):
    """``connect`` (WAL), ``SELECT max(id)``; a row by primary key."""

    name = "SQLite"

    def _ready(self):
        db = sqlite_connect(self.path)
        db.execute("SELECT max(id) FROM log").fetchone()
        return db

    def open(self):
        self.db = sqlite_connect(self.path)
        execute = self.db.execute

        def lookup(offset: int) -> tuple[int, bytes]:
            row = execute("SELECT id, value FROM log WHERE id=?", (offset,)).fetchone()
            return row if row is not None else (-1, b"")
        return lookup

    def close(self):
        self.db.close()


Reader = _Reader


def time_reopens(readers: list[Reader], reopens: int) -> list[list[float]]:
    """Seconds per open, ``reopens`` rounds, the readers alternating within a round."""
    out: list[list[float]] = [[] for _ in readers]
    for _ in range(reopens):
        for i, reader in enumerate(readers):
            gc.collect()
            out[i].append(reader.reopen())
    return out


def time_seeks(readers: list[tuple[Reader, int]], seeks: int, runs: int, seed: int
               ) -> list[tuple[list[float], list[float], list[float]]]:
    """Per reader (with its record count), per round of ``seeks`` random offsets: the
    p50 and p99 (s) and the minor page faults per seek (pages of the memory-mapped file
    this process touches for the first time).

    Each round opens the store afresh, as a new reader would: every round, and the
    store and its reference, start from the same state (a warm page cache, nothing of
    the file mapped yet) instead of the later rounds finding the earlier ones' pages.
    """
    out: list[tuple[list[float], list[float], list[float]]] = [([], [], []) for _ in readers]
    clock = time.perf_counter
    for r in range(runs):
        for i, (reader, n) in enumerate(readers):
            rng = random.Random(seed * 1000 + r)
            offsets = [rng.randrange(n) for _ in range(seeks)]
            times = []
            lookup = reader.open()
            try:
                gc.collect()
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                for off in offsets:
                    t = clock()
                    got = lookup(off)
                    times.append(clock() - t)
                    if got != (off, value_of(off)):
                        raise WrongResultError(f"{reader.name}: reading offset {off} "
                                               f"returned offset {got[0]}")
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            finally:
                reader.close()
            times.sort()
            out[i][0].append(_report.nearest_rank(times, 0.50))
            out[i][1].append(_report.nearest_rank(times, 0.99))
            out[i][2].append(faults / seeks)
    return out


def sqlite_connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def sqlite_fill(db: sqlite3.Connection, start: int, stop: int) -> None:
    for at in range(start, stop, CHUNK):
        db.execute("BEGIN")
        db.executemany("INSERT INTO log (id, value) VALUES (?, ?)",
                       ((i, value_of(i)) for i in range(at, min(stop, at + CHUNK))))
        db.execute("COMMIT")


# -- the run -------------------------------------------------------------------------------------

def fit_sizes(sizes: list[int], where: str, sqlite: bool, produce: int
              ) -> tuple[list[int], str | None]:
    """Drop the sizes whose data would not fit in ``where`` with room to spare."""
    free = shutil.disk_usage(where).free
    per = DISK_PER_RECORD["mqlog"] + (DISK_PER_RECORD["sqlite"] if sqlite else 0)

    def fits(n: int) -> bool:  # the store, the reference store and the produced extras
        return (n + sizes[0] + produce * len(sizes)) * per + DISK_SPARE <= free

    fitting = [n for n in sizes if fits(n)]
    if len(fitting) == len(sizes):
        return sizes, None
    dropped = [n for n in sizes if n not in fitting]
    fallback = 3 * 10 ** 6
    if fits(fallback) and fallback > max(fitting, default=0):
        fitting.append(fallback)
    return fitting, (f"{where} has {free / 2**30:.1f} GiB free; "
                     f"{', '.join(f'{n:,}' for n in dropped)} records would need about "
                     f"{max(dropped) * per / 2**30:.1f} GiB plus {DISK_SPARE >> 30} GiB spare, "
                     "so the run stops at " + (f"{max(fitting):,}" if fitting else "nothing"))


Row = dict[str, object]


def run(sizes: list[int], seeks: int, runs: int, reopens: int, seed: int, where: str,
        sqlite: bool, memory: bool, produce: int) -> list[Row]:
    top = tempfile.mkdtemp(prefix="mqlog-growth-", dir=where)
    path, ref_path = os.path.join(top, "mqlog"), os.path.join(top, "mqlog-reference")
    dbpath, ref_dbpath = os.path.join(top, "log.db"), os.path.join(top, "reference.db")
    os.makedirs(path)
    os.makedirs(ref_path)
    db = None
    rows: list[Row] = []
    try:
        _progress(f"reference stores: {sizes[0]:,} records")
        append(ref_path, 0, sizes[0], None)
        if sqlite:
            with contextlib.closing(sqlite_connect(ref_dbpath)) as ref_db:
                ref_db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, value BLOB)")
                sqlite_fill(ref_db, 0, sizes[0])
                ref_db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db = sqlite_connect(dbpath)
            db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, value BLOB)")
        end = 0  # records in the log (each produce child adds `produce` more)
        sq_end = 0  # rows in the SQLite table: the same offsets as the log
        for n in sizes:
            row: Row = {"records": n}
            _progress(f"{n:,}: appending {max(0, n - end):,} records")
            if db is not None and sq_end < end:  # mirror what the produce child added
                sqlite_fill(db, sq_end, end)
                sq_end = end
            if n > end:
                row["append"], row["sqlite append"] = append(path, end, n - end, db)
                end = sq_end = n
            if db is not None:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every reopen starts alike
            row["stored"] = end
            row["disk MB"] = _disk_bytes(path) / 1e6
            _progress(f"{n:,}: {reopens} reopens, {runs} x {seeks:,} seeks (each also on "
                      "the reference store)")
            readers: list[tuple[str, Reader, Reader, int]] = [
                ("", _MqlogReader(path), _MqlogReader(ref_path), end)]
            if db is not None:
                readers.append(("sqlite ", _SqliteReader(dbpath),
                                _SqliteReader(ref_dbpath), end))
                row["sqlite disk MB"] = _disk_bytes(dbpath) / 1e6
            for prefix, reader, ref, count in readers:
                opened, ref_opened = time_reopens([reader, ref], reopens)
                row[prefix + "reopen"], row[prefix + "reopen ref"] = opened, ref_opened
                (p50, p99, faults), (ref_p50, ref_p99, _) = time_seeks(
                    [(reader, count), (ref, sizes[0])], seeks, runs, seed)
                row[prefix + "seek p50"], row[prefix + "seek p50 ref"] = p50, ref_p50
                row[prefix + "seek p99"], row[prefix + "seek p99 ref"] = p99, ref_p99
                row[prefix + "seek faults"] = faults
            if memory:
                for kind in ("idle", "consume", "produce"):
                    _progress(f"{n:,}: memory child, {kind}")
                    row[f"mem {kind}"] = run_memory_child(kind, path, produce)
                end += produce
            rows.append(row)
    finally:
        if db is not None:
            db.close()
        shutil.rmtree(top, ignore_errors=True)
    return rows


def _disk_bytes(path: str) -> int:
    """Bytes allocated on disk (LMDB's data file is sparse up to its map size)."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512
               for d, _, files in os.walk(path) for f in files)


# -- rendering -----------------------------------------------------------------------------------

Getter = Callable[[Row], "list[float] | None"]


class Metric:
    """A row of the tables: one figure per run at each size.

    ``ref`` gets the same figure for the reference store, measured alternately with it:
    the verdict then compares ``figure / reference`` across sizes instead of the figure.
    ``kind`` is "cost" (flat while it stays within FLAT times the first size's),
    "rate" (flat while above 1/FLAT) or "info" (no verdict).
    """

    def __init__(self, name: str, get: Getter, kind: str, ref: Getter | None = None
                 ) -> None:
        self.name, self.get, self.kind, self.ref = name, get, kind, ref

    def level(self, row: Row) -> float | None:
        """The figure the verdict compares across sizes (a median)."""
        xs = self.get(row)
        if xs is None:
            return None
        if self.ref is None:
            return statistics.median(xs)
        refs = self.ref(row)
        assert refs is not None
        return statistics.median(a / b for a, b in zip(xs, refs))


def _runs(key: str, scale: float = 1.0) -> Getter:
    def get(row: Row) -> list[float] | None:
        x = row.get(key)
        if x is None:
            return None
        return [v * scale for v in x] if isinstance(x, list) else [x * scale]
    return get


def _mem(kind: str, field: str, minus: str | None = None, scale: float = 1 / 1024
         ) -> Getter:
    def get(row: Row) -> list[float] | None:
        m = row.get(f"mem {kind}")
        if not isinstance(m, dict):
            return None
        return [(m[field] - (m[minus] if minus else 0)) * scale]
    return get


def metrics(rows: list[Row]) -> list[Metric]:
    out = [
        Metric("reopen (ms)", _runs("reopen", 1e3), "cost", _runs("reopen ref", 1e3)),
        Metric("seek p50 (µs)", _runs("seek p50", 1e6), "cost", _runs("seek p50 ref", 1e6)),
        Metric("seek p99 (µs)", _runs("seek p99", 1e6), "cost", _runs("seek p99 ref", 1e6)),
        Metric("seek page faults (per seek)", _runs("seek faults"), "info"),
        Metric("idle RssAnon (MiB)", _mem("idle", "peak"), "cost"),
        Metric("idle USS (MiB)", _mem("idle", "uss"), "cost"),
        Metric("consume peak RssAnon (MiB)", _mem("consume", "peak"), "cost"),
        Metric("consume RssAnon growth (MiB)", _mem("consume", "peak", "before"), "info"),
        Metric("consume USS after, with LMDB pages (MiB)", _mem("consume", "uss"), "info"),
        Metric("produce peak RssAnon (MiB)", _mem("produce", "peak"), "cost"),
        Metric("produce RssAnon growth (MiB)", _mem("produce", "peak", "before"), "info"),
        Metric("append (records/s)", _runs("append"), "info"),
        Metric("consume (records/s)", _mem("consume", "rate", scale=1), "rate"),
        Metric("produce (records/s)", _mem("produce", "rate", scale=1), "rate"),
        Metric("SQLite reopen (ms)", _runs("sqlite reopen", 1e3), "cost",
               _runs("sqlite reopen ref", 1e3)),
        Metric("SQLite seek p50 (µs)", _runs("sqlite seek p50", 1e6), "cost",
               _runs("sqlite seek p50 ref", 1e6)),
        Metric("SQLite seek p99 (µs)", _runs("sqlite seek p99", 1e6), "cost",
               _runs("sqlite seek p99 ref", 1e6)),
        Metric("SQLite append (records/s)", _runs("sqlite append"), "info"),
    ]
    return [m for m in out if any(m.get(r) is not None for r in rows)]


def _num(x: float) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def render(rows: list[Row], seeks: int, runs: int, reopens: int, seed: int,
           versions: list[tuple[str, str]], disk_note: str | None,
           chart: str | None) -> str:
    ms = metrics(rows)
    sizes = [f"{r['records']:,}" for r in rows]
    lines = [
        f"One durable store growing through {', '.join(sizes)} records of {VALUE_SIZE} B "
        f"(one partition); reopen: median (min–max) of {reopens} opens; seek: p50/p99 "
        f"of {seeks:,} random offsets, median (min–max) of {runs} round"
        f"{'s' if runs > 1 else ''}; memory: one child process each; seed {seed}; "
        f"{os.cpu_count()} CPUs.",
        "",
        _report.versions_line(versions),
    ]
    if disk_note:
        lines += ["", f"Sizes reduced: {disk_note}."]
    body = [["stored (records)", *(f"{r['stored']:,}" for r in rows)],
            ["data on disk, mqlog (MB)",
             *(_num(r["disk MB"]) for r in rows)]]  # type: ignore[arg-type]
    if all("sqlite disk MB" in r for r in rows):
        body.append(["data on disk, SQLite (MB)",
                     *(_num(r["sqlite disk MB"]) for r in rows)])  # type: ignore[arg-type]
    for m in ms:
        cells = []
        for r in rows:
            xs = m.get(r)
            cells.append("–" if xs is None else _report.spread(xs, _num))
        body.append([m.name, *cells])
    lines += ["", *_report.table(["metric", *sizes], body)]
    body = []
    for m in ms:
        if m.kind == "info":
            continue
        base = m.level(rows[0])
        if base is None or base <= 0:
            continue
        ratios = [None if m.level(r) is None else m.level(r) / base  # type: ignore[operator]
                  for r in rows[1:]]
        known = [x for x in ratios if x is not None]
        flat = all(x <= FLAT for x in known) if m.kind == "cost" else \
            all(x >= 1 / FLAT for x in known)
        body.append([m.name, *("–" if x is None else f"{x:.2f}" for x in ratios),
                     "flat" if flat else "**not flat**"])
    lines += ["", f"Each metric ÷ its value at {sizes[0]} records. Reopen and seek rows "
                  f"compare their ratio to a fixed reference store of {sizes[0]} records "
                  "timed alternately with them (so machine drift cancels); the others "
                  f"compare medians. A cost is flat within {FLAT:g}×, a rate above "
                  f"{1 / FLAT:g}×:", "",
              *_report.table(["metric", *sizes[1:], "verdict"], body,
                             "l" + "r" * (len(rows) - 1) + "l")]
    if chart:
        lines += ["", f"![reopen, seek and memory as the log grows]"
                      f"({_report.chart_link(chart)})"]
    return "\n".join(lines)


NOTES = """\
RssAnon is the process's own memory (heap, buffers, records held); USS adds the LMDB
file pages only this process maps, which are page cache rather than the process's
memory: an idle broker maps few of them, a consumer that read the whole log maps all
of it, so the consumer's USS after reading grows with the log while its RssAnon does
not. The `growth` rows are the peak minus the RssAnon just before the workload started
(for the producer, after its input values were built); the producer's depends on how
far `send` runs ahead of the writer thread (bounded by `buffer_memory`), that is on
what is in flight and on timing, so it gets no verdict.

Seek times include the `poll()` that returns the record: finding the batch (an LMDB
`set_range`) and decoding the whole stored batch (~16 KiB, ~140 records of 100 B) to
return one (~20 µs; a SQLite row by primary key takes ~6 µs). Each round opens the
store afresh, as a new reader would; the page cache is warm but the new mapping is
empty, so a seek into a large store also maps the file pages it touches (`seek page
faults`, about one per seek at 10^7 records against almost none at 10^5). That and
one more B-tree level are why p50 rises by a fifth or so at 10^7; p99 over a few
thousand seeks also catches the shared machine's hiccups, so its ratio moves between
runs. Reopen (`mqlog.open`, about a millisecond) does not read the log: it checks the
data file's meta pages, loads the topic metadata and each partition's newest batch
header, and starts the writer and cleaner threads; its spread is mostly the time to
get those threads scheduled."""


def write_chart(rows: list[Row], out_dir: str) -> tuple[str | None, str | None]:
    """One PNG: reopen, seek, memory and rates against the log size (log-log)."""
    plt, why = _report.pyplot()
    if plt is None:
        return None, why

    by_name = {m.name: m for m in metrics(rows)}
    xs = [r["stored"] for r in rows]

    def relative(m: Metric) -> Getter:
        """Per run, the figure ÷ the reference store's, ÷ the same at the first size."""
        assert m.ref is not None
        base = m.level(rows[0]) or 1.0

        def get(row: Row) -> list[float] | None:
            xs_, refs = m.get(row), m.ref(row)  # type: ignore[misc]
            if xs_ is None or refs is None:
                return None
            return [a / b / base for a, b in zip(xs_, refs)]
        return get

    # (title, [(label, getter, SQLite?)], log y-axis?)
    panels = [
        (f"reopen, seek ÷ a {rows[0]['records']:,}-record store timed alongside "
         "(dotted: flat limit)",
         [(m.name.split(" (")[0], relative(m), m.name.startswith("SQLite"))
          for m in by_name.values() if m.ref is not None], False),
        ("random seek + first record, µs",
         [(n.split(" (")[0], by_name[n].get, n.startswith("SQLite"))
          for n in ("seek p50 (µs)", "seek p99 (µs)", "SQLite seek p50 (µs)",
                    "SQLite seek p99 (µs)") if n in by_name], True),
        ("private memory, MiB",
         [(n.split(" (")[0], by_name[n].get, False)
          for n in ("idle RssAnon (MiB)", "consume peak RssAnon (MiB)",
                    "produce peak RssAnon (MiB)",
                    "consume USS after, with LMDB pages (MiB)") if n in by_name], True),
        ("records/s",
         [(n.split(" (")[0], by_name[n].get, n.startswith("SQLite"))
          for n in ("append (records/s)", "consume (records/s)", "produce (records/s)",
                    "SQLite append (records/s)") if n in by_name], True),
    ]
    ours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    theirs = ["#7f7f7f", "#bcbcbc", "#5a5a5a"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (title, series, log_y) in zip(axes.flat, panels):
        k_ours = k_theirs = 0
        for label, get, peer in series:
            pts = [(x, get(r)) for x, r in zip(xs, rows) if get(r) is not None]
            if not pts:
                continue
            med = [statistics.median(v) for _, v in pts]  # type: ignore[arg-type]
            lo = [a - min(v) for a, (_, v) in zip(med, pts)]  # type: ignore[arg-type]
            hi = [max(v) - a for a, (_, v) in zip(med, pts)]  # type: ignore[arg-type]
            if peer:
                style, color = "s--", theirs[k_theirs % len(theirs)]
                k_theirs += 1
            else:
                style, color = ("o:" if "USS" in label else "o-"), ours[k_ours % len(ours)]
                k_ours += 1
            ax.errorbar([x for x, _ in pts], med, yerr=[lo, hi], fmt=style, color=color,
                        capsize=3, markersize=5, label=label)
        ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        else:
            ax.axhline(FLAT, color="#999999", linewidth=0.8, linestyle=":")
            ax.set_ylim(0, max(FLAT * 1.5, ax.get_ylim()[1]))
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("records stored (log scale)", fontsize=9)
    fig.suptitle("Cost as the log grows (flat lines are the goal)", fontsize=11)
    fig.tight_layout()
    return _report.save(plt, fig, out_dir, "growth-costs.png"), None


def _versions() -> list[tuple[str, str]]:
    import lmdb
    return _report.versions([("mqlog", mqlog.__version__), ("py-lmdb", lmdb.__version__),
                             ("LMDB", ".".join(map(str, lmdb.version()))),
                             ("SQLite", sqlite3.sqlite_version)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000",
                        help="comma-separated log sizes in records, ascending")
    parser.add_argument("--seeks", type=int, default=3000, help="random offsets per round")
    parser.add_argument("--runs", type=int, default=5, help="rounds of seeks")
    parser.add_argument("--reopens", type=int, default=15)
    parser.add_argument("--produce", type=int, default=PRODUCE,
                        help="records the producer memory child writes")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where the temporary stores go")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--charts", default=os.path.join(DOCS, "img"),
                        help="directory for the PNG chart")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--markdown", action="store_true",
                        help="print only the markdown section (for benchmarks/run.py)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.path, args.produce)))
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: give comma-separated integers")
    if not sizes or sizes != sorted(set(sizes)) or sizes[0] < 1 or args.seeks < 1 or \
            args.runs < 1 or args.reopens < 1 or args.produce < 1:
        parser.error(f"need ascending distinct --sizes >= 1 and --seeks, --runs, --reopens, "
                     f"--produce >= 1 (got {args.sizes!r}, {args.seeks}, {args.runs}, "
                     f"{args.reopens}, {args.produce})")
    memory = not args.no_memory
    why = _memory.available() if memory else None
    if why:
        _progress(f"no memory figures: {why}")
        memory = False
    began = time.perf_counter()
    sizes, disk_note = fit_sizes(sizes, args.dir, not args.no_sqlite, args.produce)
    if disk_note:
        _progress(f"sizes reduced: {disk_note}")
    if not sizes:
        parser.error(f"no size fits in {args.dir}: {disk_note}")
    rows = run(sizes, args.seeks, args.runs, args.reopens, args.seed, args.dir,
               not args.no_sqlite, memory, args.produce)
    chart, chart_skip = (None, "--no-charts") if args.no_charts else write_chart(
        rows, args.charts)
    if chart_skip:
        _progress(f"no chart: {chart_skip}")
    text = render(rows, args.seeks, args.runs, args.reopens, args.seed, _versions(),
                  disk_note, chart)
    text += f"\n\nTook {time.perf_counter() - began:.0f} s."
    _report.emit(text, NOTES, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
