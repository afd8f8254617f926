"""mqlog side by side with the alternatives a user would pick, measured in one run.

    python benchmarks/compare.py [--records N] [--runs R] [--budget S] [--seed K]
                                 [--systems a,b] [--tables a,b]
                                 [--charts DIR | --no-charts] [--no-memory] [--markdown]

Workloads, each on a fresh store in a fresh temporary directory, on seeded values and
keys: N records of 100 B, then N/4 of 1 KiB, grouped in tables (``--tables`` picks
some by key). A table compares the systems that have its workloads; those that have
none are listed under it with the reason.

- ``acks1`` (acks=1: committed, not fsynced), one producer, one consumer, one
  partition: ``send`` (mqlog's ``producer.send(topic, value)`` per record, then
  ``flush()``; each peer's one-record-per-call write), ``send keyed`` (keys drawn from
  10,000 distinct keys), ``send_batch`` (mqlog's ``send_batch`` per 1,000 records;
  SQLite's ``executemany`` per 1,000-row transaction; the raw py-lmdb floor: the same
  bytes packed into 16 KiB batches, appended with cursor puts in one write transaction,
  issue #9's definition, and, the faster floor, with a commit per MiB) and ``poll``
  (read back what ``send`` wrote, in order; the floor: what it wrote).
- ``acks-all``: the same writes, durable: mqlog with ``acks="all"``, SQLite with
  ``synchronous=FULL``, Redis with an fsync-always append-only file and the floor
  fsyncing each 1 MiB commit.
- ``threads``: 1 and 4 producer threads (acks=all), each sending its share of the N
  records one call per record, pipelined (mqlog: one shared producer, ``flush()`` at
  the end: the writer's group commit fsyncs once per cycle for all of them).
- ``wait``: the same with threads that wait for every send (``send(...).get()``);
  fsync-bound, so every system (mqlog too) runs for about ``--budget`` seconds.
- ``groups``: read N records from a topic of 4 partitions with one consumer, then with
  4 consumer threads in one group (Redis: one stream, 4 consumers of one group).
- ``pipeline``: consume-transform-produce of N/4 records (each value upper-cased into
  a sink topic) with ``mqlog.Pipeline`` at_least_once and exactly_once (1,000 inputs
  per transaction), against the same loop by hand on SQLite and Redis Streams.

Systems, each skipped with the reason printed when it cannot run here: mqlog, the raw
py-lmdb floor, SQLite in WAL mode (stdlib), mockafka-py (an in-memory Kafka fake),
lmdb-queue, persist-queue, and Redis Streams through redis-py against ``redis-server``
processes started on 127.0.0.1 for the run (when the binary is installed).

Every figure is the median of the runs with the min-max range; systems are
interleaved within each run and ``mqlog ÷ system`` is the median over runs of the
ratio of the two rates measured in the same run. Slow peers run for a bounded time:
calibration runs (on 1,000 records, then on at least a tenth of the estimate) size
them so that each table's slowest operation takes about ``--budget`` seconds (at most
the table's records); the ``records`` column says how many. mqlog and the floor run
all of them, except in the ``wait`` table. The issue's goals are checked against the
median figures at 100 B. Memory: for some mqlog workloads at 100 B, a child process
reports its anonymous resident memory (RssAnon) before, at its peak during, and after
the workload.

PNG charts (records/s per system, one per table and size) are written to ``--charts``
(default docs/img/) when matplotlib is installed; the markdown links them relative to
the folder holding that directory, where run.py puts the markdown. Nothing here
asserts a speed: machines are noisy; the script fails only when a system returns
wrong results.

This file measures. The tables, the goals and their rendering are in
_compare_tables.py; the systems' interface in _systems.py, the systems in
_lmdb_systems.py, _peers.py and _redis.py; private memory in _memory.py.
"""

from __future__ import annotations

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import ContextManager

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, HERE)

import _memory  # noqa: E402
import _report  # noqa: E402
import _systems  # noqa: E402  (also puts the repository root on sys.path)
from _compare_tables import (HEADERS, TABLE_KEYS, TABLES, Counts,  # noqa: E402
                             MemoryRow, Rates, Table, notes, render,
                             tables_of, write_charts)
from _lmdb_systems import LmdbFloor, Mqlog  # noqa: E402
from _peers import LmdbQueue, Mockafka, PersistQueue, Sqlite  # noqa: E402
from _redis import RedisStreams  # noqa: E402

THREADS = {"1 thread": (1, False), "4 threads": (4, False),
           "1 thread, wait each": (1, True), "4 threads, wait each": (4, True)}
CONSUMERS = {"1 consumer": 1, "group of 4": 4}
PARTITIONS = 4  # of the topic the consumer groups read
KEYS = 10_000
POOL = 1024  # distinct values cycled through (seeded random bytes)
MIN_SCALED = 1000  # a scaled system still runs at least this many records (or N)
CALIBRATE_SHARE = 10  # a calibration runs at least 1/10 of the records it estimates
SIZES = (("100 B", 100, 1), ("1 KiB", 1024, 4))  # label, value bytes, N divided by
# mqlog workloads whose private memory is measured at 100 B: (system, workload).
MEMORY_CASES = [
    *(("mqlog", w) for w in ("send", "send keyed", "send_batch", "poll")),
    ("mqlog (acks=all)", "4 threads"),
    ("mqlog", "group of 4"),
    ("mqlog (acks=all)", "exactly_once"),
]
Meter = Callable[[str], ContextManager[None]]
_progress = _report.progress_printer("compare", clock=True)


class WrongResultError(RuntimeError):
    """A system read back something other than what was written."""


# -- inputs, workloads and timing -----------------------------------------------------------

def make_inputs(n: int, size: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """``n`` values of ``size`` bytes and ``n`` keys, the same for every system."""
    rng = random.Random(seed * 1_000_003 + size)
    pool = [rng.randbytes(size) for _ in range(POOL)]
    keys = [b"key-%05d" % i for i in range(KEYS)]
    return ([pool[i % POOL] for i in range(n)],
            [keys[rng.randrange(KEYS)] for _ in range(n)])


def _check(system: str, what: str, result: _systems.Result, n: int,
           first: bytes | None, last: bytes | None) -> None:
    count, got_first, got_last = result
    if count != n or (got_first, got_last) != (first, last):
        raise WrongResultError(
            f"{system} read back {count} records of {what} (expected {n}); first/last "
            f"values {'match' if (got_first, got_last) == (first, last) else 'differ'}")


def _check_count(system: str, what: str, count: int, n: int, at_least: bool = False
                 ) -> None:
    if count < n or (count > n and not at_least):
        raise WrongResultError(f"{system} holds or read {count:,} records after {what} "
                               f"(expected {n:,})")



def measure(system: _systems.System, workload: str, store: _systems.Store,
            values: list[bytes], keys: list[bytes], meter: Meter) -> None:
    """Run ``workload`` on the fresh ``store``; ``meter(name)`` wraps each timed part.

    A write that ``poll`` reads back also times the ``poll`` (on the same store).
    """
    n, name = len(values), system.name
    if workload in ("send", "send keyed", "send_batch"):
        with meter(workload):
            if workload == "send_batch":
                store.send_batch(values)
            else:
                store.send(values, keys if workload == "send keyed" else None)
        if "poll" in system.workloads and workload == _first_write(system):
            with meter("poll"):
                result = store.poll(n)
            _check(name, "poll", result, n, values[0], values[-1])
    elif workload in THREADS:
        threads, wait = THREADS[workload]
        with meter(workload):
            store.send_threads(values, threads, wait)
        _check_count(name, workload, store.count(), n)
    elif workload in CONSUMERS:
        store.fill(values, PARTITIONS)
        with meter(workload):
            read = store.consume_group(n, CONSUMERS[workload])
        _check_count(name, workload, read, n, at_least=True)
    elif workload in _systems.GUARANTEES:
        store.fill(values, 1)
        with meter(workload):
            store.transform(n, workload)
        _check(name, f"the {workload} pipeline's sink", store.read_output(n), n,
               _systems.upper(values[0]), _systems.upper(values[-1]))
    else:
        raise ValueError(f"unknown workload {workload!r}: use one of {', '.join(HEADERS)}")


def _first_write(system: _systems.System) -> str:
    return "send" if "send" in system.workloads else "send_batch"


@contextlib.contextmanager
def fresh_store(system: _systems.System) -> Iterator[_systems.Store]:
    path = tempfile.mkdtemp(prefix="mqlog-compare-")
    try:
        store = system.open(path)
        try:
            yield store
        finally:
            store.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_once(system: _systems.System, tables: Sequence[Table],
             inputs: dict[str, tuple[list[bytes], list[bytes]]]) -> dict[str, float]:
    """One run of the workloads ``system`` has in ``tables``, each on a fresh store;
    ``inputs`` holds each table's values and keys. Returns records/s per workload."""
    rates: dict[str, float] = {}
    for table in tables:
        values, keys = inputs[table.key]

        @contextlib.contextmanager
        def timer(workload: str, n: int = len(values)) -> Iterator[None]:
            gc.collect()  # start every timed part from the same collector state
            start = time.perf_counter()
            yield
            rates[workload] = n / (time.perf_counter() - start)

        for workload in table.workloads:
            if workload in system.workloads and workload != "poll":
                with fresh_store(system) as store:
                    measure(system, workload, store, values, keys, timer)
    return rates


def scaled_records(system: _systems.System, table: Table, n: int, budget: float,
                   values: list[bytes], keys: list[bytes]) -> int:
    """How many records ``system`` runs in ``table`` so that its slowest operation
    there takes ~budget s (all ``n`` for mqlog and the floors, unless the table scales
    mqlog too)."""
    if not (system.scaled or table.scale_mqlog) or n <= MIN_SCALED:
        return n
    k = min(n, MIN_SCALED)
    while True:
        rates = run_once(system, [table], {table.key: (values[:k], keys[:k])})
        scaled = int(min(rates.values()) * budget)
        # One slow fsync can dominate a calibration on few records: calibrate again
        # on at least a tenth of the estimate before trusting it.
        if scaled >= n or k * CALIBRATE_SHARE >= scaled:
            break
        k = min(n, scaled // CALIBRATE_SHARE)
    if scaled >= n:
        return n
    digits = len(str(max(scaled, 1))) - 2  # round down to two significant digits
    scaled = scaled // 10 ** digits * 10 ** digits if digits > 0 else scaled
    return max(min(n, MIN_SCALED), scaled)


# -- memory (a child process per workload) ----------------------------------------------------

def memory_child(system_name: str, workload: str, size: int, n: int, seed: int
                 ) -> dict[str, int]:
    """Run one mqlog workload here and report RssAnon (KiB) before, at peak and after.

    A sampler thread reads /proc/self/status every 5 ms (short spikes can fall between
    samples); USS after the workload is reported too, though it also counts the LMDB
    file pages only this process maps, which are page cache, not the process's memory.
    """
    system = next(s for s in all_systems() if s.name == system_name)
    values, keys = make_inputs(n, size, seed)
    out: dict[str, int] = {}

    @contextlib.contextmanager
    def sampled(name: str) -> Iterator[None]:
        if name != workload:
            yield
            return
        gc.collect()
        before = _memory.rss_anon_kib()
        sampler = _memory.PeakSampler(before)
        try:
            yield
        finally:
            after = _memory.rss_anon_kib()
            out.update(before=before, peak=sampler.stop(after), after=after)

    with fresh_store(system) as store:
        write = _first_write(system) if workload == "poll" else workload
        measure(system, write, store, values, keys, sampled)
        out["uss"] = _memory.uss_kib()
    return out


def measure_memory(sizes: list[tuple[str, int, int]], tables: Sequence[Table], seed: int
                   ) -> tuple[list[MemoryRow], str | None]:
    """Run :func:`memory_child` in a fresh interpreter per case of MEMORY_CASES, at the
    first size."""
    why = _memory.available()
    if why:
        return [], why
    rows: list[MemoryRow] = []
    label, size, n = sizes[0]
    for system, workload in MEMORY_CASES:
        table = next((t for t in tables if workload in t.workloads), None)
        if table is None or label not in table.sizes:
            continue  # its table was not selected (--tables)
        k = n // table.share
        _progress(f"memory: {system} {workload}, {k:,} x {label}")
        got = _memory.run_child(
            __file__, ["--memory-child", workload, "--memory-system", system,
                       "--value-size", str(size), "--records", str(k), "--seed", str(seed)],
            f"{system} {workload} ({k:,} x {label})")
        rows.append((label, system, workload, k, got))
    return rows, None


# -- the run -----------------------------------------------------------------------------------

TRIAL_RECORDS = 100


def start_systems(names: list[str] | None, tables: Sequence[Table], seed: int
                  ) -> tuple[list[_systems.System], dict[str, str]]:
    """Start every selected system that has a workload in ``tables``; the ones that
    cannot run map to the reason.

    Each peer also gets a trial run on a few records: a peer that fails it (an
    incompatible version of its package, say) is skipped with the error as the
    reason. mqlog's failures are never skipped: they propagate.
    """
    candidates = [s for s in all_systems() if tables_of(s, tables) and (
        not names or s.family == "mqlog" or any(n.lower() in s.name.lower() for n in names))]
    running, skipped = _systems.start_each(candidates, _progress)
    values, keys = make_inputs(TRIAL_RECORDS, 100, seed)
    try:
        for system in [s for s in running if s.family != "mqlog"]:
            mine = tables_of(system, tables)
            try:
                run_once(system, mine, {t.key: (values, keys) for t in mine})
            except Exception as exc:  # any peer failure: report it, compare the rest
                system.stop()
                running.remove(system)
                skipped[system.name] = f"failed a trial run of {TRIAL_RECORDS} records: " \
                                       f"{exc!r}"
                _progress(f"skipping {system.name}: {skipped[system.name]}")
    except BaseException:
        for system in running:
            system.stop()
        raise
    # In the order of all_systems(), wherever it failed.
    skipped = {s.name: skipped[s.name] for s in candidates if s.name in skipped}
    return running, skipped


def run(systems: list[_systems.System], tables: Sequence[Table],
        sizes: list[tuple[str, int, int]], runs: int, budget: float, seed: int
        ) -> tuple[Rates, Counts]:
    """Every size, every run, every system (interleaved): rates and records used."""
    rates: Rates = {}
    counts: Counts = {}
    for label, size, n in sizes:
        here = [t for t in tables if label in t.sizes]
        if not here:
            continue
        values, keys = make_inputs(n, size, seed)
        counts[label] = {}
        for system in systems:
            for table in tables_of(system, here):
                _progress(f"{label}, {table.key}: sizing {system.name}")
                k = n // table.share
                counts[label].setdefault(system.name, {})[table.key] = \
                    scaled_records(system, table, k, budget, values[:k], keys[:k])
        rates[label] = {s.name: {} for s in systems if s.name in counts[label]}
        for r in range(runs):
            for system in systems:
                mine = counts[label].get(system.name, {})
                if not mine:
                    continue
                _progress(f"{label}, run {r + 1}/{runs}: {system.name} ("
                          + ", ".join(f"{t} {k:,}" for t, k in mine.items()) + " records)")
                inputs = {t: (values[:k], keys[:k]) for t, k in mine.items()}
                got = run_once(system, [t for t in here if t.key in mine], inputs)
                for workload, rate in got.items():
                    rates[label][system.name].setdefault(workload, []).append(rate)
        del values, keys
    return rates, counts


def all_systems() -> list[_systems.System]:
    """Every system, mqlog first, in the order the tables show them."""
    return [Mqlog(), Mqlog("all"), LmdbFloor(None), LmdbFloor(1 << 20),
            LmdbFloor(1 << 20, sync=True), Sqlite(), Sqlite("FULL"), Mockafka(),
            LmdbQueue(), PersistQueue(), RedisStreams(),
            RedisStreams(durable=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000,
                        help="records of 100 B (the 1 KiB case runs a quarter of them)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds per operation for slow peers (they are scaled)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--systems", default="",
                        help="comma-separated name fragments (mqlog always runs)")
    parser.add_argument("--tables", default="",
                        help=f"comma-separated table keys (default all: "
                             f"{','.join(TABLE_KEYS)})")
    parser.add_argument("--charts", default=os.path.join(DOCS, "img"),
                        help="directory for the PNG charts")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true",
                        help="print only the markdown section (for benchmarks/run.py)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-system", default="mqlog", help=argparse.SUPPRESS)
    parser.add_argument("--value-size", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_system, args.memory_child,
                                      args.value_size, args.records, args.seed)))
        return 0
    if args.records < 16 or args.runs < 1 or args.budget <= 0:
        parser.error(f"need --records >= 16, --runs >= 1 and --budget > 0 (got "
                     f"{args.records}, {args.runs}, {args.budget})")
    unknown = [k for k in args.tables.split(",") if k and k not in TABLE_KEYS]
    if unknown:
        parser.error(f"unknown --tables {','.join(unknown)}: use some of "
                     f"{','.join(TABLE_KEYS)}")
    tables = [t for t in TABLES if not args.tables or t.key in args.tables.split(",")]
    sizes = [(label, size, args.records // div) for label, size, div in SIZES]
    start = time.perf_counter()
    systems, skipped = start_systems([s for s in args.systems.split(",") if s], tables,
                                     args.seed)
    try:
        versions = _report.versions(v for s in systems for v in s.versions())
        rates, counts = run(systems, tables, sizes, args.runs, args.budget, args.seed)
    finally:
        for system in systems:
            system.stop()
    memory, memory_skip = ([], None) if args.no_memory else measure_memory(
        sizes, tables, args.seed)
    charts, chart_skip = ({}, "--no-charts") if args.no_charts else write_charts(
        rates, counts, tables, systems, sizes, args.charts)
    if chart_skip:
        _progress(f"no charts: {chart_skip}")
    text = render(rates, counts, tables, sizes, args.runs, args.budget, args.seed,
                  systems, skipped, versions, memory, memory_skip, charts)
    text += f"\n\nTook {time.perf_counter() - start:.0f} s."
    _report.emit(text, notes(systems, tables), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
