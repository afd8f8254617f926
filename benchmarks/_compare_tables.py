"""The tables of benchmarks/compare.py: what each holds, the goals judged against them,
and how they are rendered (markdown and PNG charts).

A :class:`Table` names its workloads (columns) and picks the systems (rows) that have
them; compare.py measures, this module only turns the figures into text and charts
(pure functions of their arguments, apart from the PNG files :func:`write_charts`
writes).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from typing import NamedTuple

import _report
import _systems

HEADERS = {
    "send": "send (per record)", "send keyed": "send keyed",
    "send_batch": "send_batch (batched)", "poll": "poll (read back)",
    "1 thread": "1 thread", "4 threads": "4 threads",
    "1 thread, wait each": "1 thread", "4 threads, wait each": "4 threads",
    "1 consumer": "1 consumer", "group of 4": "group of 4",
    "at_least_once": "at_least_once", "exactly_once": "exactly_once",
}


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

# {size label: {system: {workload: [rate per run]}}}
Rates = dict[str, dict[str, dict[str, list[float]]]]
# {size label: {system: {table key: records}}}
Counts = dict[str, dict[str, dict[str, int]]]
MemoryRow = tuple[str, str, str, int, dict[str, int]]  # size, system, workload, n, KiB


def members(table: Table, systems: Sequence[_systems.System]) -> list[_systems.System]:
    """The systems of ``table``: the right durability, and some of its workloads."""
    return [s for s in systems if s.durable == table.durable
            and any(w in s.workloads for w in table.workloads)]


def tables_of(system: _systems.System, tables: Sequence[Table]) -> list[Table]:
    """The tables among ``tables`` that ``system`` has a row in."""
    return [t for t in tables if system in members(t, [system])]


# -- markdown ---------------------------------------------------------------------------------

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
    """One item per goal: met or not on the median figures at ``label``, not measured
    (with the reason its system was skipped), or measured by another script."""
    lines = []
    table = rates.get(label, {})
    for goal in goals:
        if goal.where:
            lines.append(f"- {goal.wording}: **not measured here** (see {goal.where})")
            continue
        if goal.peer is None:
            xs = table.get(goal.mqlog, {}).get(goal.workload)
            unit, fmt = "records/s", _report.fmt_rate
        else:
            xs = ratios(table, goal.mqlog, goal.workload, goal.peer)
            unit, fmt = "×", _report.fmt_ratio
        if not xs:
            why = skipped.get(goal.peer or goal.mqlog, "not run (--systems/--tables)")
            lines.append(f"- {goal.wording}: **not measured** ({why})")
            continue
        med = statistics.median(xs)
        spread = "" if len(xs) == 1 else f", runs {fmt(min(xs))}–{fmt(max(xs))}"
        target = _report.fmt_rate(goal.target) if goal.peer is None else f"{goal.target:g}×"
        value = _report.fmt_rate(med) if goal.peer is None else f"{med:.2f}×"
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
    """One table at one size: the rates per system, then ``mqlog ÷ system``."""
    here = rates.get(label, {})
    rows = [s for s in members(table, systems) if s.name in here
            and table.key in counts[label].get(s.name, {})]
    if not rows:
        return []
    within = _within(table)
    heads = [HEADERS[w] for w in table.workloads] + ([within[2]] if within else [])
    body = []
    for system in rows:
        by = here[system.name]
        cells = [_report.spread(by[w], _report.fmt_rate) if by.get(w) else "–"
                 for w in table.workloads]
        if within:
            rs = ratios(here, system.name, within[0], system.name, within[1])
            cells.append("–" if rs is None else _report.spread(rs, _report.fmt_ratio))
        body.append([system.name, f"{counts[label][system.name][table.key]:,}", *cells])
    lines = ["", f"### {table.title}, {label} records: records/s", "",
             *_report.table(["system", "records", *heads], body)]
    ours = MQLOG[table.durable]
    peers = [s.name for s in rows if s.name != ours]
    if ours in here and peers:
        body = []
        for peer in peers:
            cells = []
            for w in table.workloads:
                rs = ratios(here, ours, w, peer)
                cells.append("–" if rs is None else _report.spread(rs, _report.fmt_ratio))
            body.append([peer, *cells])
        lines += ["", f"{ours} ÷ system (ratios of rates measured in the same run; > 1: "
                      "mqlog is faster):", "",
                  *_report.table([f"{ours} ÷", *(HEADERS[w] for w in table.workloads)],
                                 body)]
    if table.key == "acks-all" and "mqlog" in here and ours in here:
        parts = []
        for w in table.workloads:
            rs = ratios(here, ours, w, "mqlog")
            if rs:
                parts.append(f"`{w}` {_report.spread(rs, _report.fmt_ratio)}")
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
        lines += ["", f"![{table.title}, {label} records]"
                      f"({_report.chart_link(charts[table.key, label])})"]
    return lines


def render(rates: Rates, counts: Counts, tables: Sequence[Table],
           sizes: list[tuple[str, int, int]], runs: int, budget: float, seed: int,
           systems: list[_systems.System], skipped: dict[str, str],
           versions: list[tuple[str, str]], memory: list[MemoryRow],
           memory_skip: str | None, charts: dict[tuple[str, str], str]) -> str:
    """compare.py's whole markdown section, but for the notes (:func:`notes`)."""
    lines = [
        f"{' and '.join(f'{n:,} x {label}' for label, _, n in sizes)} records (the "
        f"pipeline table: a quarter), median (min–max) of {runs} run"
        f"{'s' if runs > 1 else ''}, seed {seed}; slow peers scaled to ~{budget:g} s "
        f"per operation; {os.cpu_count()} CPUs.",
        "",
        _report.versions_line(versions),
        *_report.skipped_lines(skipped),
    ]
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
        body = []
        for label, system, workload, n, m in memory:
            before, peak = (m[k] / 1024 for k in ("before", "peak"))
            body.append([f"{n:,} x {label}", system, workload, f"{before:.1f}",
                         f"{peak:.1f}", f"{peak - before:.1f}", f"{m['after'] / 1024:.1f}",
                         f"{m['uss'] / 1024:.1f}"])
        lines += _report.table(["records", "system", "workload", "before", "peak",
                                "peak − before", "after", "USS after"], body, "lllrrrrr")
    else:
        lines.append("Not measured (--no-memory).")
    return "\n".join(lines)


def notes(systems: list[_systems.System], tables: Sequence[Table]) -> str:
    """What each system does per workload, then the notes on durability, threads and
    where mqlog's time goes."""
    out = ["What each system does per workload (one fresh store in a fresh temporary "
           "directory each time):", ""]
    for system in systems:
        parts = [f"{_how_label(table, w)}: {system.how[w]}"
                 for table in tables_of(system, tables)
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


# -- charts ----------------------------------------------------------------------------------

def write_charts(rates: Rates, counts: Counts, tables: Sequence[Table],
                 systems: list[_systems.System], sizes: list[tuple[str, int, int]],
                 out_dir: str) -> tuple[dict[tuple[str, str], str], str | None]:
    """One PNG per table and size: a panel per workload, records/s per system.

    Returns the paths by (table key, size label), or no paths and why not.
    """
    plt, why = _report.pyplot()
    if plt is None:
        return {}, why
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
            fig, axes = plt.subplots(*shape, figsize=(12, 1.4 + 0.42 * len(rows) * shape[0]),
                                     sharex=True, sharey=True, squeeze=False)
            for ax, workload in zip(axes.flat, table.workloads):
                _report.bar_panel(ax, rows, {s: here[s].get(workload, []) for s in rows},
                                  every, HEADERS[workload], _report.fmt_rate)
            for ax in axes[-1]:
                ax.set_xlabel("records/s (log scale)", fontsize=9)
            fig.suptitle(f"{table.title}, {label} records (median, min–max)", fontsize=11)
            fig.tight_layout()
            paths[table.key, label] = _report.save(plt, fig, out_dir,
                                                   table.chart_name(label))
    return paths, None
