"""mqlog side by side with the alternatives a user would pick, measured in one run.

    python benchmarks/compare.py [--records N] [--runs R] [--budget S] [--seed K]
                                 [--systems a,b] [--charts DIR | --no-charts]
                                 [--no-memory] [--markdown]

Workloads (one producer and one consumer, one topic of one partition, seeded values
and keys; N records of 100 B, then N/4 of 1 KiB), each on a fresh store in a fresh
temporary directory:

- ``send``: mqlog's ``producer.send(topic, value)`` per record, then ``flush()``;
  each peer's one-record-per-call write (see the notes for each system's exact call).
- ``send keyed``: the same with keys drawn from 10,000 distinct keys.
- ``send_batch``: mqlog's ``send_batch`` per 1,000 records; SQLite's ``executemany``
  per 1,000-row transaction; the raw py-lmdb floor: the same bytes packed into 16 KiB
  batches, appended with cursor puts in one write transaction (issue #9's definition)
  and, the faster floor, with a commit per MiB (see ``LmdbFloor`` in _systems.py).
- ``poll``: read back what ``send`` wrote (the floor: what it wrote), in order.

Systems, each skipped with the reason printed when it cannot run here: mqlog, the raw
py-lmdb floor, SQLite in WAL mode (stdlib), mockafka-py (an in-memory Kafka fake),
lmdb-queue, persist-queue, and Redis Streams through redis-py against a
``redis-server`` started on 127.0.0.1 for the run (when the binary is installed).

Every figure is the median of the runs with the min-max range; systems are
interleaved within each run and ``mqlog ÷ system`` is the median over runs of the
ratio of the two rates measured in the same run. Slow peers run for a bounded time:
a calibration run sizes them so that each operation takes about ``--budget`` seconds
(at most N records); the ``records`` column says how many. mqlog and the floor always
run all N. The issue's goals are checked against the median ratios at 100 B. Memory:
for each mqlog workload, a child process reports its anonymous resident memory
(RssAnon) before, at its peak during, and after the workload.

PNG charts (records/s per system) are written to ``--charts`` (default docs/img/)
when matplotlib is installed. Nothing here asserts a speed: machines are noisy; the
script fails only when a system returns wrong results.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, HERE)

import _systems  # noqa: E402

WORKLOADS = ("send", "send keyed", "send_batch", "poll")
HEADERS = {"send": "send (per record)", "send keyed": "send keyed",
           "send_batch": "send_batch (batched)", "poll": "poll (read back)"}
KEYS = 10_000
POOL = 1024  # distinct values cycled through (seeded random bytes)
MIN_SCALED = 1000  # a scaled peer still runs at least this many records (or N)
# Issue #9's goals: (mqlog workload, peer, mqlog ÷ peer at least, wording).
GOALS = [
    ("send", "mockafka-py (in memory)", 2.5,
     "`send` ≥ 2.5× mockafka-py's (in-memory) produce rate"),
    ("send_batch", "SQLite WAL", 5.0, "`send_batch` ≥ 5× SQLite's batched inserts"),
    ("send_batch", "raw py-lmdb floor (one txn)", 0.40,
     "`send_batch` ≥ 40% of the LMDB floor (one transaction, as the issue defines it)"),
    ("send_batch", "raw py-lmdb floor (1 MiB txns)", 0.40,
     "`send_batch` ≥ 40% of the faster LMDB floor (a commit per MiB)"),
    ("poll", "SQLite WAL", 1.0, "`poll` ≥ SQLite's scan rate"),
    ("poll", "raw py-lmdb floor (one txn)", 0.45, "`poll` ≥ 45% of the LMDB floor"),
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


class WrongResultError(RuntimeError):
    """A system read back something other than what was written."""


# -- inputs and timing ---------------------------------------------------------------------

def make_inputs(n: int, size: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    """``n`` values of ``size`` bytes and ``n`` keys, the same for every system."""
    rng = random.Random(seed * 1_000_003 + size)
    pool = [rng.randbytes(size) for _ in range(POOL)]
    keys = [b"key-%05d" % i for i in range(KEYS)]
    return ([pool[i % POOL] for i in range(n)],
            [keys[rng.randrange(KEYS)] for _ in range(n)])


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()  # start every timed call from the same collector state
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _check(system: str, result: _systems.Result, values: Sequence[bytes]) -> None:
    count, first, last = result
    if count != len(values) or first != values[0] or last != values[-1]:
        raise WrongResultError(
            f"{system} read back {count} records (expected {len(values)}); first/last "
            f"values {'match' if (first, last) == (values[0], values[-1]) else 'differ'}")


def run_once(system: _systems.System, values: list[bytes], keys: list[bytes]
             ) -> dict[str, float]:
    """One run of every workload ``system`` has, each on a fresh store: records/s."""
    n = len(values)
    rates: dict[str, float] = {}

    def fresh(op: Callable[[_systems.Store], None]) -> None:
        path = tempfile.mkdtemp(prefix="mqlog-compare-")
        store = system.open(path)
        try:
            op(store)
        finally:
            store.close()
            shutil.rmtree(path, ignore_errors=True)

    def write_then_read(store: _systems.Store) -> None:
        # The floor has no per-record write: its read scans what its batched write put.
        first = "send" if "send" in system.workloads else "send_batch"
        if first == "send":
            seconds, _ = _timed(lambda: store.send(values, None))
        else:
            seconds, _ = _timed(lambda: store.send_batch(values))
        rates[first] = n / seconds
        if "poll" in system.workloads:
            seconds, result = _timed(lambda: store.poll(n))
            _check(system.name, result, values)  # type: ignore[arg-type]
            rates["poll"] = n / seconds

    fresh(write_then_read)
    if "send keyed" in system.workloads:
        def keyed(store: _systems.Store) -> None:
            rates["send keyed"] = n / _timed(lambda: store.send(values, keys))[0]
        fresh(keyed)
    if "send_batch" in system.workloads and "send_batch" not in rates:
        def batched(store: _systems.Store) -> None:
            rates["send_batch"] = n / _timed(lambda: store.send_batch(values))[0]
        fresh(batched)
    return rates


def scaled_records(system: _systems.System, n: int, budget: float,
                   values: list[bytes], keys: list[bytes]) -> int:
    """How many records ``system`` runs so that its slowest operation takes ~budget s."""
    if not system.scaled or n <= MIN_SCALED:
        return n
    k = min(n, MIN_SCALED)
    slowest = min(run_once(system, values[:k], keys[:k]).values())
    scaled = int(slowest * budget)
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


def memory_child(workload: str, size: int, n: int, seed: int) -> dict[str, int]:
    """Run one mqlog workload here and report RssAnon (KiB) before, at peak and after.

    A sampler thread reads /proc/self/status every 5 ms (short spikes can fall between
    samples); USS after the workload is reported too, though it also counts the LMDB
    file pages only this process maps, which are page cache, not the process's memory.
    """
    values, keys = make_inputs(n, size, seed)
    path = tempfile.mkdtemp(prefix="mqlog-compare-mem-")
    store = _systems.Mqlog().open(path)
    try:
        if workload == "poll":
            store.send(values, None)
        gc.collect()
        before = peak = _rss_anon_kib()
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(0.005):
                peak = max(peak, _rss_anon_kib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if workload == "send":
            store.send(values, None)
        elif workload == "send keyed":
            store.send(values, keys)
        elif workload == "send_batch":
            store.send_batch(values)
        else:
            _check("mqlog", store.poll(n), values)
        after = _rss_anon_kib()
        stop.set()
        sampler.join(10)
        peak = max(peak, after)
        return {"before": before, "peak": peak, "after": after, "uss": _uss_kib()}
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)


def measure_memory(sizes: list[tuple[str, int, int]], seed: int
                   ) -> tuple[list[tuple[str, str, int, dict[str, int]]], str | None]:
    """Run :func:`memory_child` in a fresh interpreter per (size, workload)."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        return [], "no /proc/self/smaps_rollup (Linux 4.14+ only)"
    rows = []
    for label, size, n in sizes:
        for workload in WORKLOADS:
            _progress(f"memory: mqlog {workload}, {n:,} x {label}")
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--memory-child", workload,
                 "--value-size", str(size), "--records", str(n), "--seed", str(seed)],
                capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"the memory child for mqlog {workload} ({n:,} x "
                                   f"{label}) exited {proc.returncode}: "
                                   f"{proc.stderr.strip()[-2000:]}")
            rows.append((label, workload, n,
                         json.loads(proc.stdout.strip().splitlines()[-1])))
    return rows, None


# -- the run -----------------------------------------------------------------------------------

def _progress(text: str) -> None:
    print(f"[compare] {text}", file=sys.stderr, flush=True)


TRIAL_RECORDS = 100


def start_systems(names: list[str] | None, seed: int
                  ) -> tuple[list[_systems.System], dict[str, str]]:
    """Start every selected system; the ones that cannot run map to the reason.

    Each peer also gets a trial run on a few records: a peer that fails it (an
    incompatible version of its package, say) is skipped with the error as the
    reason. mqlog's failures are never skipped: they propagate.
    """
    running: list[_systems.System] = []
    skipped: dict[str, str] = {}
    values, keys = make_inputs(TRIAL_RECORDS, 100, seed)
    try:
        for system in _systems.all_systems():
            if names and system.name != "mqlog" and not any(
                    s.lower() in system.name.lower() for s in names):
                continue
            try:
                system.start()
            except _systems.Unavailable as exc:
                skipped[system.name] = str(exc)
                _progress(f"skipping {system.name}: {exc}")
                continue
            running.append(system)
            if system.name == "mqlog":
                continue
            try:
                run_once(system, values, keys)
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


def run(systems: list[_systems.System], sizes: list[tuple[str, int, int]], runs: int,
        budget: float, seed: int) -> tuple[Rates, dict[str, dict[str, int]]]:
    """Every size, every run, every system (interleaved): rates and records used."""
    rates: Rates = {}
    counts: dict[str, dict[str, int]] = {}
    for label, size, n in sizes:
        values, keys = make_inputs(n, size, seed)
        counts[label] = {}
        for system in systems:
            counts[label][system.name] = scaled_records(system, n, budget, values, keys)
        rates[label] = {s.name: {w: [] for w in s.workloads} for s in systems}
        for r in range(runs):
            for system in systems:
                k = counts[label][system.name]
                _progress(f"{label}, run {r + 1}/{runs}: {system.name} ({k:,} records)")
                for workload, rate in run_once(system, values[:k], keys[:k]).items():
                    rates[label][system.name][workload].append(rate)
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


def _spread(xs: list[float], fmt: Callable[[float], str]) -> str:
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def ratios(rates: dict[str, dict[str, list[float]]], system: str, workload: str
           ) -> list[float] | None:
    """mqlog ÷ ``system`` per run for ``workload`` (None when either lacks it)."""
    ours = rates.get("mqlog", {}).get(workload)
    theirs = rates.get(system, {}).get(workload)
    if not ours or not theirs:
        return None
    return [a / b for a, b in zip(ours, theirs)]


def verdicts(rates: Rates, label: str, skipped: dict[str, str]) -> list[str]:
    lines = []
    for workload, peer, target, wording in GOALS:
        rs = ratios(rates.get(label, {}), peer, workload)
        if rs is None:
            why = skipped.get(peer, "not run")
            lines.append(f"- {wording}: **not measured** ({why})")
            continue
        med = statistics.median(rs)
        spread = "" if len(rs) == 1 else f", runs {min(rs):.2f}–{max(rs):.2f}"
        met = "met" if med >= target else "not met"
        lines.append(f"- {wording}: {med:.2f}× (target {target:g}×{spread}): **{met}**")
    return lines


def render(rates: Rates, counts: dict[str, dict[str, int]],
           sizes: list[tuple[str, int, int]], runs: int, budget: float, seed: int,
           skipped: dict[str, str], versions: list[tuple[str, str]],
           memory: list[tuple[str, str, int, dict[str, int]]], memory_skip: str | None,
           charts: dict[str, str]) -> str:
    lines = [
        f"{' and '.join(f'{n:,} x {label}' for label, _, n in sizes)} records, one "
        f"producer and one consumer, median (min–max) of {runs} run"
        f"{'s' if runs > 1 else ''}, seed {seed}; slow peers scaled to ~{budget:g} s "
        f"per operation; {os.cpu_count()} CPUs.",
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in versions) + ".",
    ]
    if skipped:
        lines += ["", "Skipped here:"]
        lines += [f"- {name}: {why}" for name, why in skipped.items()]
    for label, _size, _n in sizes:
        table = rates[label]
        lines += ["", f"### {label} records: records/s", "",
                  "| system | records | " + " | ".join(HEADERS[w] for w in WORKLOADS) + " |",
                  "| --- | ---: |" + " ---: |" * len(WORKLOADS)]
        for system, by_workload in table.items():
            cells = [_spread(by_workload[w], _fmt_rate) if by_workload.get(w) else "–"
                     for w in WORKLOADS]
            lines.append(f"| {system} | {counts[label][system]:,} | " + " | ".join(cells)
                         + " |")
        lines += ["", f"mqlog ÷ system, {label} (ratios of rates measured in the same "
                      "run; > 1: mqlog is faster):", "",
                  "| mqlog ÷ | " + " | ".join(HEADERS[w] for w in WORKLOADS) + " |",
                  "| --- |" + " ---: |" * len(WORKLOADS)]
        for system in table:
            if system == "mqlog":
                continue
            cells = []
            for w in WORKLOADS:
                rs = ratios(table, system, w)
                cells.append("–" if rs is None else _spread(rs, lambda x: f"{x:.2f}"))
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        if label in charts:
            rel = os.path.relpath(charts[label], DOCS)
            lines += ["", f"![records/s per system, {label} records]({rel})"]
    first = sizes[0][0]
    lines += ["", f"Issue #9's goals, judged on the median ratios at {first}:", ""]
    lines += verdicts(rates, first, skipped)
    lines.append("- `send` ≥ confluent-kafka's produce rate against a Kafka-compatible "
                 "broker: not measured here (see `benchmarks/serve.py`).")
    for label, _size, _n in sizes[1:]:
        lines += ["", f"The same ratios at {label}, for reference:", ""]
        lines += verdicts(rates, label, skipped)
    present = [f"{name}: {text}" for name, text in ISSUE_FIGURES.items()
               if name in rates[first]]
    if present:
        lines += ["", "Issue #9 quotes, for this kind of machine at 100 B: "
                      + "; ".join(present) + "."]
    lines += ["", "Memory of mqlog per workload: anonymous resident memory (RssAnon, "
                  "MiB) of a fresh process running only that workload.", ""]
    if memory_skip:
        lines.append(f"Not measured here: {memory_skip}.")
    elif memory:
        lines += ["| records | workload | before | peak | peak − before | after | "
                  "USS after |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for label, workload, n, m in memory:
            mib = [m[k] / 1024 for k in ("before", "peak")]
            lines.append(
                f"| {n:,} x {label} | {workload} | {mib[0]:.1f} | {mib[1]:.1f} | "
                f"{mib[1] - mib[0]:.1f} | {m['after'] / 1024:.1f} | {m['uss'] / 1024:.1f} |")
    else:
        lines.append("Not measured (--no-memory).")
    return "\n".join(lines)


def notes(systems: list[_systems.System]) -> str:
    out = ["What each system does per workload (one fresh store in a fresh temporary "
           "directory each time):", ""]
    for system in systems:
        out.append(f"- {system.name}: " + "; ".join(
            f"{w}: {system.how[w]}" for w in WORKLOADS if w in system.how) + ".")
    out += ["", NOTES]
    return "\n".join(out)


NOTES = """\
Every system keeps one ordered stream: mqlog's topic has one partition (the default of
`mqlog.open()`), so keyed sends carry, store and return their keys but need no
partition choice; `benchmarks/throughput.py` has mqlog on 3 partitions.

Durability is matched where the systems allow it: mqlog (a directory broker, acks=1),
SQLite (WAL, `synchronous=NORMAL`), lmdb-queue (its default `sync=False`) and the
floor commit to files that survive a crash of the process but are not fsynced on every
write; persist-queue fsyncs each chunk of 100 records (its default); Redis runs in
memory (`--save '' --appendonly no`) and mockafka-py keeps plain Python lists, so
those two persist nothing. Redis pays a loopback round trip per pipeline of 1,000 and
per read of 500, with the server on the same two cores.

Memory: RssAnon counts the heap, the producer's buffers and the records held (`before`
includes the workload's inputs, the list of N values, and for `poll` what writing them
left behind); the sampler reads it every 5 ms. LMDB's mapped file pages are page cache,
not the process's memory, yet USS (`Private_*` in /proc/self/smaps_rollup) counts them
when no other process maps the file, which is why USS after a workload grows with the
data written while RssAnon does not have to."""


def write_charts(rates: Rates, sizes: list[tuple[str, int, int]], out_dir: str
                 ) -> tuple[dict[str, str], str | None]:
    """One PNG per size: a bar chart per workload, records/s per system (log scale)."""
    try:
        import matplotlib
    except ImportError:
        return {}, "matplotlib is not installed (pip install mqlog[bench])"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import NullFormatter

    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for label, _size, _n in sizes:
        table = rates[label]
        every = [x for by in table.values() for xs in by.values() for x in xs]
        # One log axis for all four panels, so bars compare across workloads too.
        fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
        for ax, workload in zip(axes.flat, WORKLOADS):
            names = [s for s in table if table[s].get(workload)]
            meds = [statistics.median(table[s][workload]) for s in names]
            lo = [m - min(table[s][workload]) for s, m in zip(names, meds)]
            hi = [max(table[s][workload]) - m for s, m in zip(names, meds)]
            colors = ["#d62728" if s == "mqlog" else "#7f7f7f" for s in names]
            ypos = list(range(len(names)))
            ax.barh(ypos, meds, height=0.6, xerr=[lo, hi], color=colors, capsize=3)
            ax.set_yticks(ypos, names, fontsize=9)
            ax.set_ylim(len(table) - 0.5, -0.5)  # same bar thickness in every panel
            ax.set_xscale("log")
            ax.set_xlim(min(every) / 2, max(every) * 6)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.grid(axis="x", alpha=0.3)
            ax.set_title(HEADERS[workload], fontsize=10)
            for y, m, h in zip(ypos, meds, hi):
                ax.text(m + h, y, "  " + _fmt_rate(m), va="center", fontsize=8)
        for ax in axes[1]:
            ax.set_xlabel("records/s (log scale)", fontsize=9)
        fig.suptitle(f"{label} records, one producer / one consumer (median, min–max)",
                     fontsize=11)
        fig.tight_layout()
        path = os.path.join(out_dir, f"compare-{label.replace(' ', '')}.png")
        fig.savefig(path, dpi=90, metadata={"Software": None})
        plt.close(fig)
        paths[label] = path
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
    parser.add_argument("--budget", type=float, default=1.5,
                        help="seconds per operation for slow peers (they are scaled)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--systems", default="",
                        help="comma-separated name fragments (mqlog always runs)")
    parser.add_argument("--charts", default=os.path.join(DOCS, "img"),
                        help="directory for the PNG charts")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true",
                        help="print only the markdown section (for benchmarks/run.py)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--value-size", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.value_size, args.records,
                                      args.seed)))
        return 0
    if args.records < 4 or args.runs < 1 or args.budget <= 0:
        parser.error(f"need --records >= 4, --runs >= 1 and --budget > 0 (got "
                     f"{args.records}, {args.runs}, {args.budget})")
    sizes = [("100 B", 100, args.records), ("1 KiB", 1024, args.records // 4)]
    start = time.perf_counter()
    systems, skipped = start_systems([s for s in args.systems.split(",") if s], args.seed)
    try:
        versions = _versions(systems)
        rates, counts = run(systems, sizes, args.runs, args.budget, args.seed)
    finally:
        for system in systems:
            system.stop()
    memory, memory_skip = ([], None) if args.no_memory else measure_memory(sizes, args.seed)
    charts, chart_skip = ({}, "--no-charts") if args.no_charts else write_charts(
        rates, sizes, args.charts)
    if chart_skip:
        _progress(f"no charts: {chart_skip}")
    text = render(rates, counts, sizes, args.runs, args.budget, args.seed, skipped,
                  versions, memory, memory_skip, charts)
    text += f"\n\nTook {time.perf_counter() - start:.0f} s."
    print(text + "\n\n" + notes(systems) if args.markdown else "\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
