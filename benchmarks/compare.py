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
(default docs/img/) when matplotlib is installed. Nothing here asserts a speed:
machines are noisy; the script fails only when a system returns wrong results.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import ContextManager, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, HERE)

import _systems  # noqa: E402

HEADERS = {
    "send": "send (per record)", "send keyed": "send keyed",
    "send_batch": "send_batch (batched)", "poll": "poll (read back)",
    "1 thread": "1 thread", "4 threads": "4 threads",
    "1 thread, wait each": "1 thread", "4 threads, wait each": "4 threads",
    "1 consumer": "1 consumer", "group of 4": "group of 4",
    "at_least_once": "at_least_once", "exactly_once": "exactly_once",
}
THREADS = {"1 thread": (1, False), "4 threads": (4, False),
           "1 thread, wait each": (1, True), "4 threads, wait each": (4, True)}
CONSUMERS = {"1 consumer": 1, "group of 4": 4}
PARTITIONS = 4  # of the topic the consumer groups read
KEYS = 10_000
POOL = 1024  # distinct values cycled through (seeded random bytes)
MIN_SCALED = 1000  # a scaled system still runs at least this many records (or N)
CALIBRATE_SHARE = 10  # a calibration runs at least 1/10 of the records it estimates
SIZES = (("100 B", 100, 1), ("1 KiB", 1024, 4))  # label, value bytes, N divided by


class Table(NamedTuple):
    """A table of the report: workloads (columns) over the systems that have them.

    ``durable`` picks the systems (acknowledged after fsync or not), ``sizes`` the size
    labels it runs at, ``share`` divides the records (N // share), and ``scale_mqlog``
    lets the budget bound mqlog too (fsync-bound workloads).
    """

    key: str
    title: str
    workloads: tuple[str, ...]
    durable: bool
    sizes: tuple[str, ...] = ("100 B", "1 KiB")
    share: int = 1
    scale_mqlog: bool = False

    def chart_name(self, label: str) -> str:
        infix = "" if self.key == "acks1" else f"{self.key}-"
        return f"compare-{infix}{label.replace(' ', '')}.png"


TABLES = (
    Table("acks1", "acks=1 (committed, not fsynced), one producer, one consumer",
          ("send", "send keyed", "send_batch", "poll"), False),
    Table("acks-all", "acks=all (fsynced before acknowledged), one producer",
          ("send", "send keyed", "send_batch"), True),
    Table("threads", "producer threads pipelining their sends, acks=all",
          ("1 thread", "4 threads"), True, ("100 B",)),
    Table("wait", "producer threads waiting on every send, acks=all",
          ("1 thread, wait each", "4 threads, wait each"), True, ("100 B",),
          scale_mqlog=True),
    Table("groups", "consume: one consumer vs a group of 4 consumer threads",
          ("1 consumer", "group of 4"), False, ("100 B",)),
    Table("pipeline", "consume-transform-produce (upper-case each value), durable",
          ("at_least_once", "exactly_once"), True, ("100 B",), share=4),
)
TABLE_KEYS = {t.key: t for t in TABLES}
MQLOG = {False: "mqlog", True: "mqlog (acks=all)"}  # the reference row of each table


class Goal(NamedTuple):
    """One of issue #9's goals: mqlog's ``workload`` rate against ``peer`` (a ratio of
    at least ``target``) or, with no peer, at least ``target`` records/s; ``where``
    names the script that measures it when this one does not."""

    wording: str
    workload: str = ""
    mqlog: str = "mqlog"
    peer: str | None = None
    target: float = 0.0
    where: str = ""


GOALS = [
    Goal("`send` ≥ confluent-kafka's produce rate against a Kafka-compatible broker",
         where="benchmarks/serve.py (in-process `send` ÷ confluent-kafka → tansu)"),
    Goal("`send` ≥ 2.5× mockafka-py's (in-memory) produce rate", "send",
         peer="mockafka-py (in memory)", target=2.5),
    Goal("`send_batch` ≥ 5× SQLite's batched inserts", "send_batch", peer="SQLite WAL",
         target=5.0),
    Goal("`send_batch` ≥ 40% of the LMDB floor (one transaction, as the issue "
         "defines it)", "send_batch", peer="raw py-lmdb floor (one txn)", target=0.40),
    Goal("`send_batch` ≥ 40% of the faster LMDB floor (a commit per MiB)", "send_batch",
         peer="raw py-lmdb floor (1 MiB txns)", target=0.40),
    Goal("`poll` ≥ SQLite's scan rate", "poll", peer="SQLite WAL", target=1.0),
    Goal("`poll` ≥ 45% of the LMDB floor", "poll", peer="raw py-lmdb floor (one txn)",
         target=0.45),
    Goal("acks=all with 4 pipelining producer threads ≥ 500k records/s (group commit)",
         "4 threads", mqlog="mqlog (acks=all)", target=500_000),
    Goal("e2e p99 < 2 ms at 100k records/s", where="benchmarks/latency.py"),
    Goal("private memory flat as the log grows from 10^5 to 10^7 records",
         where="benchmarks/growth.py"),
    Goal("reopen time and random seek cost flat as the log grows",
         where="benchmarks/growth.py"),
    # "Figures to beat": every quoted peer, on its own workloads, in this run.
    Goal("beat Redis Streams' produce rate", "send", peer="Redis Streams (redis-py)",
         target=1.0),
    Goal("beat Redis Streams' consume rate", "poll", peer="Redis Streams (redis-py)",
         target=1.0),
    Goal("beat mockafka-py's consume rate", "poll", peer="mockafka-py (in memory)",
         target=1.0),
    Goal("beat lmdb-queue's put rate", "send", peer="lmdb-queue", target=1.0),
    Goal("beat lmdb-queue's get rate", "poll", peer="lmdb-queue", target=1.0),
    Goal("beat confluent-kafka → tansu (produce and consume)",
         where="benchmarks/serve.py"),
    # The suite itself.
    Goal("the whole suite under 15 minutes in full, `--quick` under 2 minutes",
         where="benchmarks/run.py, which prints each script's time"),
    Goal("a smoke run in CI (seconds) that fails only on crashes or wrong results",
         where="tests/test_benchmarks_smoke.py"),
]
# The figures issue #9 quotes for this kind of machine (2 cores, 100 B records).
ISSUE_FIGURES = {
    "raw py-lmdb floor (one txn)": "≈ 5M/s written, 3.3M/s read",
    "SQLite WAL": "batched inserts ≈ 360–400k/s, scans ≈ 1.5M/s",
    "mockafka-py (in memory)": "≈ 280k/s produce, 206k/s consume",
    "lmdb-queue": "≈ 138k/s put, 49k/s get",
    "Redis Streams (redis-py)": "≈ 90k/s both ways",
}
# mqlog workloads whose private memory is measured at 100 B: (system, workload).
MEMORY_CASES = [
    *(("mqlog", w) for w in ("send", "send keyed", "send_batch", "poll")),
    ("mqlog (acks=all)", "4 threads"),
    ("mqlog", "group of 4"),
    ("mqlog (acks=all)", "exactly_once"),
]

# {size label: {system: {workload: [rate per run]}}}
Rates = dict[str, dict[str, dict[str, list[float]]]]
# {size label: {system: {table key: records}}}
Counts = dict[str, dict[str, dict[str, int]]]
Meter = Callable[[str], ContextManager[None]]


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


def members(table: Table, systems: Sequence[_systems.System]) -> list[_systems.System]:
    """The systems of ``table``: the right durability, and some of its workloads."""
    return [s for s in systems if s.durable == table.durable
            and any(w in s.workloads for w in table.workloads)]


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

def _rss_anon_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise OSError("no RssAnon in /proc/self/status")


def _uss_kib() -> int:
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def memory_child(system_name: str, workload: str, size: int, n: int, seed: int
                 ) -> dict[str, int]:
    """Run one mqlog workload here and report RssAnon (KiB) before, at peak and after.

    A sampler thread reads /proc/self/status every 5 ms (short spikes can fall between
    samples); USS after the workload is reported too, though it also counts the LMDB
    file pages only this process maps, which are page cache, not the process's memory.
    """
    system = next(s for s in _systems.all_systems() if s.name == system_name)
    values, keys = make_inputs(n, size, seed)
    out: dict[str, int] = {}

    @contextlib.contextmanager
    def sampled(name: str) -> Iterator[None]:
        if name != workload:
            yield
            return
        gc.collect()
        before = _rss_anon_kib()
        peak = [before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.005):
                peak[0] = max(peak[0], _rss_anon_kib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            after = _rss_anon_kib()
            stop.set()
            sampler.join(10)
            out.update(before=before, peak=max(peak[0], after), after=after)

    with fresh_store(system) as store:
        write = _first_write(system) if workload == "poll" else workload
        measure(system, write, store, values, keys, sampled)
        out["uss"] = _uss_kib()
    return out


MemoryRow = tuple[str, str, str, int, dict[str, int]]  # size, system, workload, n, KiB


def measure_memory(sizes: list[tuple[str, int, int]], tables: Sequence[Table], seed: int
                   ) -> tuple[list[MemoryRow], str | None]:
    """Run :func:`memory_child` in a fresh interpreter per case of MEMORY_CASES, at the
    first size."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        return [], "no /proc/self/smaps_rollup (Linux 4.14+ only)"
    rows: list[MemoryRow] = []
    label, size, n = sizes[0]
    for system, workload in MEMORY_CASES:
        table = next((t for t in tables if workload in t.workloads), None)
        if table is None or label not in table.sizes:
            continue  # its table was not selected (--tables)
        k = n // table.share
        _progress(f"memory: {system} {workload}, {k:,} x {label}")
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--memory-child", workload,
             "--memory-system", system, "--value-size", str(size), "--records", str(k),
             "--seed", str(seed)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the memory child for {system} {workload} ({k:,} x "
                               f"{label}) exited {proc.returncode}: "
                               f"{proc.stderr.strip()[-2000:]}")
        rows.append((label, system, workload, k,
                     json.loads(proc.stdout.strip().splitlines()[-1])))
    return rows, None


# -- the run -----------------------------------------------------------------------------------

_STARTED = time.monotonic()


def _progress(text: str) -> None:
    print(f"[compare {time.monotonic() - _STARTED:5.0f} s] {text}", file=sys.stderr,
          flush=True)


TRIAL_RECORDS = 100


def start_systems(names: list[str] | None, tables: Sequence[Table], seed: int
                  ) -> tuple[list[_systems.System], dict[str, str]]:
    """Start every selected system that has a workload in ``tables``; the ones that
    cannot run map to the reason.

    Each peer also gets a trial run on a few records: a peer that fails it (an
    incompatible version of its package, say) is skipped with the error as the
    reason. mqlog's failures are never skipped: they propagate.
    """
    running: list[_systems.System] = []
    skipped: dict[str, str] = {}
    values, keys = make_inputs(TRIAL_RECORDS, 100, seed)
    try:
        for system in _systems.all_systems():
            if names and system.family != "mqlog" and not any(
                    s.lower() in system.name.lower() for s in names):
                continue
            mine = [t for t in tables if system in members(t, [system])]
            if not mine:
                continue
            try:
                system.start()
            except _systems.Unavailable as exc:
                skipped[system.name] = str(exc)
                _progress(f"skipping {system.name}: {exc}")
                continue
            running.append(system)
            if system.family == "mqlog":
                continue
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
            for table in here:
                if system in members(table, [system]):
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


# -- rendering ---------------------------------------------------------------------------------

def _fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _fmt_ratio(x: float) -> str:
    return f"{x:.2f}"


def _spread(xs: list[float], fmt: Callable[[float], str]) -> str:
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def ratios(rates: dict[str, dict[str, list[float]]], ours: str, workload: str,
           theirs: str, their_workload: str | None = None) -> list[float] | None:
    """``ours`` ÷ ``theirs`` per run (None when either lacks the workload)."""
    a = rates.get(ours, {}).get(workload)
    b = rates.get(theirs, {}).get(their_workload or workload)
    if not a or not b:
        return None
    return [x / y for x, y in zip(a, b)]


def verdicts(rates: Rates, label: str, skipped: dict[str, str], goals: list[Goal]
             ) -> list[str]:
    lines = []
    table = rates.get(label, {})
    for goal in goals:
        if goal.where:
            lines.append(f"- {goal.wording}: **not measured here** (see {goal.where})")
            continue
        if goal.peer is None:
            xs = table.get(goal.mqlog, {}).get(goal.workload)
            unit, fmt = "records/s", _fmt_rate
        else:
            xs = ratios(table, goal.mqlog, goal.workload, goal.peer)
            unit, fmt = "×", _fmt_ratio
        if not xs:
            why = skipped.get(goal.peer or goal.mqlog, "not run (--systems/--tables)")
            lines.append(f"- {goal.wording}: **not measured** ({why})")
            continue
        med = statistics.median(xs)
        spread = "" if len(xs) == 1 else f", runs {fmt(min(xs))}–{fmt(max(xs))}"
        target = _fmt_rate(goal.target) if goal.peer is None else f"{goal.target:g}×"
        value = _fmt_rate(med) if goal.peer is None else f"{med:.2f}×"
        lines.append(f"- {goal.wording}: {value} {'' if goal.peer else unit + ' '}"
                     f"(target {target}{spread}): "
                     f"**{'met' if med >= goal.target else 'not met'}**")
    return lines


def _within(table: Table) -> tuple[str, str, str] | None:
    """For two-column tables: (second, first, heading) for a per-system same-run
    ratio of its two columns."""
    if len(table.workloads) != 2:
        return None
    a, b = table.workloads
    return b, a, f"{HEADERS[b]} ÷ {HEADERS[a]}"


def render_table(table: Table, label: str, rates: Rates, counts: Counts,
                 systems: list[_systems.System], charts: dict[tuple[str, str], str]
                 ) -> list[str]:
    here = rates.get(label, {})
    rows = [s for s in members(table, systems) if s.name in here
            and table.key in counts[label].get(s.name, {})]
    if not rows:
        return []
    within = _within(table)
    heads = [HEADERS[w] for w in table.workloads] + ([within[2]] if within else [])
    lines = ["", f"### {table.title}, {label} records: records/s", "",
             "| system | records | " + " | ".join(heads) + " |",
             "| --- | ---: |" + " ---: |" * len(heads)]
    for system in rows:
        by = here[system.name]
        cells = [_spread(by[w], _fmt_rate) if by.get(w) else "–" for w in table.workloads]
        if within:
            rs = ratios(here, system.name, within[0], system.name, within[1])
            cells.append("–" if rs is None else _spread(rs, _fmt_ratio))
        lines.append(f"| {system.name} | {counts[label][system.name][table.key]:,} | "
                     + " | ".join(cells) + " |")
    ours = MQLOG[table.durable]
    peers = [s.name for s in rows if s.name != ours]
    if ours in here and peers:
        lines += ["", f"{ours} ÷ system (ratios of rates measured in the same run; > 1: "
                      "mqlog is faster):", "",
                  f"| {ours} ÷ | " + " | ".join(HEADERS[w] for w in table.workloads)
                  + " |", "| --- |" + " ---: |" * len(table.workloads)]
        for peer in peers:
            cells = []
            for w in table.workloads:
                rs = ratios(here, ours, w, peer)
                cells.append("–" if rs is None else _spread(rs, _fmt_ratio))
            lines.append(f"| {peer} | " + " | ".join(cells) + " |")
    if table.key == "acks-all" and "mqlog" in here and ours in here:
        parts = []
        for w in table.workloads:
            rs = ratios(here, ours, w, "mqlog")
            if rs:
                parts.append(f"`{w}` {_spread(rs, _fmt_ratio)}")
        if parts:
            lines += ["", "mqlog acks=all ÷ acks=1 (same run): " + ", ".join(parts) + "."]
    present = {s.family for s in rows}
    absent: dict[str, str] = {}
    for system in systems:
        why = system.absent.get(table.key)
        if system.family not in present and why:
            absent.setdefault(system.family, why)
    if absent:
        lines += ["", "Not in this table: " + "; ".join(
            f"{family} ({why})" for family, why in absent.items()) + "."]
    if (table.key, label) in charts:
        rel = os.path.relpath(charts[table.key, label], DOCS)
        lines += ["", f"![{table.title}, {label} records]({rel})"]
    return lines


def render(rates: Rates, counts: Counts, tables: Sequence[Table],
           sizes: list[tuple[str, int, int]], runs: int, budget: float, seed: int,
           systems: list[_systems.System], skipped: dict[str, str],
           versions: list[tuple[str, str]], memory: list[MemoryRow],
           memory_skip: str | None, charts: dict[tuple[str, str], str]) -> str:
    lines = [
        f"{' and '.join(f'{n:,} x {label}' for label, _, n in sizes)} records (the "
        f"pipeline table: a quarter), median (min–max) of {runs} run"
        f"{'s' if runs > 1 else ''}, seed {seed}; slow peers scaled to ~{budget:g} s "
        f"per operation; {os.cpu_count()} CPUs.",
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in versions) + ".",
    ]
    if skipped:
        lines += ["", "Skipped here:"]
        lines += [f"- {name}: {why}" for name, why in skipped.items()]
    for table in tables:
        for label, _size, _n in sizes:
            if label in table.sizes:
                lines += render_table(table, label, rates, counts, systems, charts)
    first = sizes[0][0]
    lines += ["", f"Issue #9's goals, judged on the median figures at {first}:", ""]
    lines += verdicts(rates, first, skipped, GOALS)
    for label, _size, _n in sizes[1:]:
        lines += ["", f"The same at {label}, for reference:", ""]
        sized = {w for t in tables if label in t.sizes for w in t.workloads}
        lines += verdicts(rates, label, skipped,
                          [g for g in GOALS if not g.where and g.workload in sized])
    present = [f"{name}: {text}" for name, text in ISSUE_FIGURES.items()
               if name in rates.get(first, {})]
    if present:
        lines += ["", "Issue #9 quotes, for this kind of machine at 100 B: "
                      + "; ".join(present) + "."]
    lines += ["", "Memory of mqlog per workload: anonymous resident memory (RssAnon, "
                  "MiB) of a fresh process running only that workload.", ""]
    if memory_skip:
        lines.append(f"Not measured here: {memory_skip}.")
    elif memory:
        lines += ["| records | system | workload | before | peak | peak − before | after "
                  "| USS after |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for label, system, workload, n, m in memory:
            mib = [m[k] / 1024 for k in ("before", "peak")]
            lines.append(
                f"| {n:,} x {label} | {system} | {workload} | {mib[0]:.1f} | "
                f"{mib[1]:.1f} | {mib[1] - mib[0]:.1f} | {m['after'] / 1024:.1f} | "
                f"{m['uss'] / 1024:.1f} |")
    else:
        lines.append("Not measured (--no-memory).")
    return "\n".join(lines)


def notes(systems: list[_systems.System], tables: Sequence[Table]) -> str:
    out = ["What each system does per workload (one fresh store in a fresh temporary "
           "directory each time):", ""]
    for system in systems:
        parts = [f"{_how_label(table, w)}: {system.how[w]}"
                 for table in tables if system in members(table, [system])
                 for w in table.workloads if w in system.workloads and w in system.how]
        out.append(f"- {system.name}: " + "; ".join(parts) + ".")
    out += ["", NOTES]
    return "\n".join(out)


def _how_label(table: Table, workload: str) -> str:
    if table.key in ("threads", "wait"):
        return table.title.split(",")[0]
    if table.key == "groups":
        return "1 consumer / group of 4"
    return workload


NOTES = """\
Every system keeps one ordered stream: mqlog's topic has one partition (the default of
`mqlog.open()`), so keyed sends carry, store and return their keys but need no
partition choice; `benchmarks/throughput.py` has mqlog on 3 partitions. The consumer
groups read a topic of 4 partitions (Redis: one stream, its groups need none); the
pipelines read a source topic of 1 partition into a sink of 1.

Durability. acks=1 tables: mqlog (a directory broker, acks=1), SQLite (WAL,
`synchronous=NORMAL`), lmdb-queue (its default `sync=False`) and the floor commit to
files that survive a crash of the process but are not fsynced on every write;
persist-queue fsyncs each chunk of 100 records (its default); Redis runs in memory
(`--save '' --appendonly no`) and mockafka-py keeps plain Python lists, so those two
persist nothing. acks=all tables: every write is fsynced before it is acknowledged:
mqlog `acks="all"` (its writer fsyncs once per group commit, covering every producer
and thread), SQLite `synchronous=FULL` (the WAL is fsynced at each commit), Redis
`--appendonly yes --appendfsync always` (the append-only file is fsynced before the
replies of each event-loop round) and the floor with a synced environment. Redis
pays a loopback round trip per pipeline of 1,000 and per read of 500, with the server
on the same two cores.

Threads share one interpreter lock: mqlog's producer threads, consumer threads and
writer thread all run Python, so more threads add switching and lock traffic, not CPU;
SQLite and Redis do part of their work outside it (SQLite's C code releases it; Redis
is another process). Consumer groups: the time includes creating the consumers and
the group's join; mqlog's consumers auto-commit (their default), Redis acknowledges
each read with `XACK`.

Where mqlog's time goes in the thread, wait and pipeline tables (py-spy on every
thread, 100 B records):

- 4 producer threads sharing one producer: ~77% of their samples wait to take the
  producer's lock in `send()`, and ~40% of their time holding the interpreter lock goes
  to handing that lock to a waiting thread. One producer per thread ran 720-870k
  records/s in the same session, against 380-540k shared and 790-870k for one thread.
- Waiting on every send: each `send(...).get()` is two thread hand-offs (the sender
  wakes the writer, the writer wakes the sender): ~130 µs per record with acks=1, of
  which ~50 µs is Python; acks=all adds one fsync (~150-200 µs here).
- Pipelines: exactly_once spends ~40% of its time in `commit_transaction()`, waiting
  for two writer round trips (the records, then the markers and offsets with an
  fsync) while the writer idles ~70% of the time; at_least_once waits in `flush()`
  (~25%) and `commit()` (~5%). SQLite's loop commits in the calling thread.

Memory: RssAnon counts the heap, the producer's buffers and the records held (`before`
includes the workload's inputs, the list of N values, and for `poll` what writing them
left behind); the sampler reads it every 5 ms. LMDB's mapped file pages are page cache,
not the process's memory, yet USS (`Private_*` in /proc/self/smaps_rollup) counts them
when no other process maps the file, which is why USS after a workload grows with the
data written while RssAnon does not have to."""


def write_charts(rates: Rates, counts: Counts, tables: Sequence[Table],
                 systems: list[_systems.System], sizes: list[tuple[str, int, int]],
                 out_dir: str) -> tuple[dict[tuple[str, str], str], str | None]:
    """One PNG per table and size: a panel per workload, records/s per system."""
    try:
        import matplotlib
    except ImportError:
        return {}, "matplotlib is not installed (pip install mqlog[bench])"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import NullFormatter

    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for table in tables:
        for label, _size, _n in sizes:
            here = rates.get(label, {})
            rows = [s.name for s in members(table, systems) if s.name in here
                    and table.key in counts[label].get(s.name, {})]
            if label not in table.sizes or not rows:
                continue
            every = [x for s in rows for w in table.workloads for x in here[s].get(w, [])]
            if not every:
                continue
            k = len(table.workloads)
            shape = (2, 2) if k == 4 else (1, k)
            # Every panel lists every row in the same order (shared y axis: the names
            # once, on the left), and one log x axis so bars compare across panels.
            fig, axes = plt.subplots(*shape, figsize=(12, 1.4 + 0.42 * len(rows) * shape[0]),
                                     sharex=True, sharey=True, squeeze=False)
            for ax, workload in zip(axes.flat, table.workloads):
                names = [s for s in rows if here[s].get(workload)]
                meds = [statistics.median(here[s][workload]) for s in names]
                lo = [m - min(here[s][workload]) for s, m in zip(names, meds)]
                hi = [max(here[s][workload]) - m for s, m in zip(names, meds)]
                colors = ["#d62728" if s.startswith("mqlog") else "#7f7f7f" for s in names]
                ypos = [rows.index(s) for s in names]
                ax.barh(ypos, meds, height=0.6, xerr=[lo, hi], color=colors, capsize=3)
                ax.set_yticks(range(len(rows)), rows, fontsize=9)
                ax.set_ylim(len(rows) - 0.5, -0.5)
                ax.set_xscale("log")
                ax.set_xlim(min(every) / 2, max(every) * 6)
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.grid(axis="x", alpha=0.3)
                ax.set_title(HEADERS[workload], fontsize=10)
                for y, m, h in zip(ypos, meds, hi):
                    ax.text(m + h, y, "  " + _fmt_rate(m), va="center", fontsize=8)
            for ax in axes[-1]:
                ax.set_xlabel("records/s (log scale)", fontsize=9)
            fig.suptitle(f"{table.title}, {label} records (median, min–max)", fontsize=11)
            fig.tight_layout()
            path = os.path.join(out_dir, table.chart_name(label))
            fig.savefig(path, dpi=90, metadata={"Software": None})
            plt.close(fig)
            paths[table.key, label] = path
    return paths, None


def _versions(systems: list[_systems.System]) -> list[tuple[str, str]]:
    out = [(platform.system(), platform.release()), ("Python", platform.python_version())]
    for system in systems:
        out += [v for v in system.versions() if v not in out]  # the floors share theirs
    try:
        import matplotlib
        out.append(("matplotlib", matplotlib.__version__))
    except ImportError:
        pass
    return out


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
        versions = _versions(systems)
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
    print(text + "\n\n" + notes(systems, tables) if args.markdown else "\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
