"""End-to-end latency, producer thread -> consumer thread in one process, at fixed rates.

    python benchmarks/latency.py [--rates 1000,10000,100000] [--seconds S] [--runs R]
                                 [--warmup S] [--systems a,b] [--stages]
                                 [--charts DIR | --no-charts] [--markdown]

What is measured: the time from the moment a record was *scheduled* to be sent until
the consumer thread holds it, for 100-byte records at fixed offered rates (1k, 10k
and 100k records/s by default), one topic of one partition, one producer thread and
one consumer thread sharing the process (and its interpreter lock) with the broker.

- Open loop: the producer thread follows a fixed schedule (record ``i`` is due at
  ``start + i / rate``) and never waits for the consumer or for an acknowledgement.
  When it wakes up late it sends every record that is due at once (one ``send`` per
  record for mqlog). Each record's value carries its sequence number, so the consumer
  knows its *scheduled* send time (``time.perf_counter_ns`` clock), and latency is
  measured from that scheduled time, not from when ``send`` was actually called: a
  stall anywhere (the producer, the writer, the consumer, the interpreter lock, the
  operating system) shows up in the latency of every record that was due meanwhile
  instead of being hidden by sending later (coordinated omission). The ``send lag``
  column says how late the producer thread itself called ``send`` (pacing error, part
  of the latency). The values are made before the run, so the producer thread does
  nothing but pace and send.
- The consumer thread blocks in its system's read call (``poll(timeout_ms=100)`` for
  mqlog) and takes ``perf_counter_ns()`` once per returned batch: the moment the
  application holds those records. It checks that sequence numbers arrive complete and
  in order (the script fails otherwise).
- The first 0.25 s (``--warmup``) of each run is warm-up and not counted. Percentiles
  (p50, p99, p99.9, max; nearest rank) are per run; tables show the median over runs
  with the min-max range. ``achieved`` is the records received divided by the time
  from the first scheduled send to the last receive: below the offered rate, the
  system did not keep up and its latency grows for as long as the run lasts.
- ``--stages`` adds, for mqlog, each record's latency split at the broker's internal
  hand-offs (see ``Probe``), to show where the time goes.
- The harness's own objects are frozen out of the garbage collector's passes during
  a run (``gc.freeze()``); the machine's load during the runs (other processes, time
  stolen by the hypervisor, from /proc/stat) is printed with the results, since a
  shared machine's tail latencies depend on it.

mqlog configurations (the set, and why):

- ``temporary, acks=1``: ``mqlog.open()``; nothing is flushed, so this is the
  pipeline's own latency (producer -> writer thread -> LMDB commit -> consumer wake-up).
  A durable directory with ``acks=1`` takes the same path (no flush either), so it is
  not repeated; ``acks="all"`` on a temporary broker is the same too (flushes skipped).
- ``durable, acks=all``: ``mqlog.open(dir)``, the producer with ``acks="all"``: every
  writer cycle ends with an fsync. Consumers see records at the commit (before the
  flush, as Kafka's consumers see the high watermark, not the disk), but the writer
  cannot start its next cycle until the flush returns.
- ``durable, fsync=True``: ``mqlog.open(dir, fsync=True)``: LMDB flushes inside every
  commit, so a consumer only ever sees records that survive power loss.

Floors, measured in the same runs: the same harness with no broker at all, records
handed from the producer thread to the consumer thread through a list and a
``threading.Condition`` (``floor: 1 thread hand-off``) or through a relay thread in
between, mqlog's shape (``floor: 2 thread hand-offs``): what thread wake-ups and the
interpreter lock cost on this machine, which no in-process log can beat.

Peers, each skipped with the reason printed when it cannot run here:

- Redis Streams through redis-py against a ``redis-server`` started on 127.0.0.1 for the
  run (in memory, nothing persisted; see ``RedisStreams`` in _redis.py): the
  producer sends the records that are due with one ``XADD`` (several: one pipeline),
  the consumer blocks in ``XREAD BLOCK 100 COUNT 500``.
- SQLite in WAL mode (``synchronous=NORMAL``, no fsync per commit): the producer
  inserts the records that are due in one transaction, then notifies a
  ``threading.Condition``; the consumer, on its own connection, selects the rows after
  the last id it saw and waits on the condition when there are none. SQLite has no
  change notification across connections; a consumer polling on a timer would add
  half its interval on average, so the in-process condition (what an application
  built on SQLite in one process would do, and what mqlog does inside) is the fair
  version.

Issue #9's goal, ``e2e p99 < 2 ms at 100k records/s``, is checked for each mqlog
configuration. PNG charts (latency percentiles per rate and system, log scale) go to
``--charts`` (default docs/img/) when matplotlib is installed. Nothing here asserts a
speed: machines are noisy; the script fails only when records are lost, duplicated or
reordered.

The rows (targets and their pipes) are in _latency_pipes.py, the ``--stages`` probes
and the machine-load reading in _latency_probes.py.
"""

from __future__ import annotations

from __future__ import annotations

import argparse
import gc
import os
import statistics
import struct
import sys
import threading
import time
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, HERE)

import _report  # noqa: E402
import _systems  # noqa: E402  (also puts the repository root on sys.path)
from _latency_pipes import (BASELINE, FLOORS, Pipe, Target, _MqlogPipe,  # noqa: E402
                            all_targets)
from _latency_probes import STAGES, MachineLoad, Probe, ThreadClock  # noqa: E402

VALUE_SIZE = 100
WARMUP_S = 0.25
POLL_TIMEOUT_S = 0.1  # how long one read call blocks; ends the consumer loop promptly
DRAIN_GRACE_S = 30.0  # after the last scheduled send, how long the consumer may lag
HEAD = struct.Struct(">q")  # the sequence number; due at start + seq / rate
PAD = b"x" * (VALUE_SIZE - HEAD.size)
PERCENTILES = (("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))
KEPT_UP = 0.95  # achieved / offered below this: the system fell behind
GOAL_RATE = 100_000
GOAL_P99_MS = 2.0


class LostRecordsError(RuntimeError):
    """The consumer got records out of order, twice, or not at all."""



# -- one run: a producer thread on a schedule, a consumer thread measuring -----------------

class RunResult:
    """Latencies (ns) of the counted records of one run, and what the run achieved."""

    def __init__(self, latency: array, lag: array, achieved: float,
                 stages: dict[str, list[int]] | None = None,
                 threads: dict[str, tuple[float, float]] | None = None) -> None:
        # Arrays, not lists: earlier runs' results must not lengthen the collector's
        # full passes during later runs (a list of 300,000 ints is traversed, an
        # array is not tracked at all).
        self.latency = array("q", sorted(latency))
        self.lag = array("q", sorted(lag))
        self.achieved = achieved
        # Per stage, in record order (--stages only).
        self.stages = None if stages is None else {
            k: array("q", v) for k, v in stages.items()}
        self.threads = threads or {}  # name: (CPU, run-queue wait) shares (--stages)

    def pct(self, q: float, which: str = "latency") -> float:
        """Nearest-rank percentile in ms."""
        return _report.nearest_rank(self.latency if which == "latency" else self.lag, q) / 1e6


def run_once(target: Target, rate: int, seconds: float, warmup: float = WARMUP_S,
             stages: bool = False) -> RunResult:
    """Offer ``rate`` records/s for ``warmup + seconds`` through a fresh pipe.

    With ``stages``, an mqlog run also splits each record's latency into STAGES.

    Raises:
        LostRecordsError: a record arrived out of order, twice, or not in time.
    """
    warm = int(rate * warmup)
    n = warm + max(1, int(rate * seconds))
    interval = 1e9 / rate
    # Every value is made before the run: the producer thread only sends. A record's
    # scheduled time is start + seq * interval, so its value carries just seq.
    pack, unpack = HEAD.pack, HEAD.unpack_from
    values = [pack(seq) + PAD for seq in range(n)]
    pipe: Pipe = target.open()
    probe = Probe(pipe.broker, pipe.consumer, warm) \
        if stages and isinstance(pipe, _MqlogPipe) else None
    clocks = ThreadClock() if probe is not None else None
    latency = array("q", bytes(8 * (n - warm)))
    bursts = array("q")  # per send call: the first record's seq, then the clock
    errors: list[BaseException] = []
    done = threading.Event()  # the consumer has every record (or failed)
    clock = time.perf_counter_ns
    last_receive = [0]
    start = 0  # set just before the threads start

    def produce() -> None:
        try:
            i = 0
            while i < n:
                now = clock()
                due = min(n, int((now - start) / interval) + 1)
                if due <= i:
                    # Pacing, not synchronisation: sleep until the next record is due
                    # (releasing the interpreter lock for the other threads).
                    time.sleep((start + i * interval - now) / 1e9)
                    continue
                bursts.append(i)
                bursts.append(now)
                pipe.send(values[i:due])
                i = due
            pipe.finish()
            if clocks is not None:
                clocks.finish("producer")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            done.set()

    def consume() -> None:
        try:
            expect = 0
            limit = time.monotonic() + warmup + seconds + 1.0 + DRAIN_GRACE_S
            while expect < n and not done.is_set():
                got = pipe.receive(POLL_TIMEOUT_S)
                now = clock()
                for v in got:
                    seq = unpack(v)[0]
                    if seq != expect:
                        raise LostRecordsError(
                            f"{target.name}: expected record {expect}, got {seq} "
                            f"({n} sent at {rate}/s)")
                    if seq >= warm:
                        latency[seq - warm] = now - start - int(seq * interval)
                    expect += 1
                if got:
                    last_receive[0] = now
                if time.monotonic() > limit:
                    raise LostRecordsError(
                        f"{target.name}: only {expect} of {n} records arrived within "
                        f"{DRAIN_GRACE_S:g} s of the last scheduled send ({rate}/s)")
            if clocks is not None:
                clocks.finish("writer")
                clocks.finish("consumer")
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=consume, name="latency-consumer", daemon=True),
               threading.Thread(target=produce, name="latency-producer", daemon=True)]
    # The harness's own objects (the values, earlier results) go to the collector's
    # permanent generation: its full passes during the run then cost what the system's
    # own objects cost, as in an application whose data is not in this list.
    gc.collect()
    gc.freeze()
    try:
        # Start shortly after both threads exist, so that the consumer is already
        # blocked in its read call when the first record is due.
        start = time.perf_counter_ns() + 20_000_000
        if clocks is not None:
            clocks.begin("writer", pipe.broker._writer.thread.native_id)
        for t in threads:
            t.start()
            if clocks is not None:
                clocks.begin(t.name.split("-")[-1], t.native_id)
        # Watchdog bound only: the consumer's own limit ends the run first.
        done.wait(warmup + seconds + DRAIN_GRACE_S + 60)
        for t in threads:
            t.join(DRAIN_GRACE_S + 60)
        if errors:
            raise errors[0]
        if any(t.is_alive() for t in threads):
            raise RuntimeError(f"{target.name} at {rate}/s: a thread did not finish")
    finally:
        gc.unfreeze()
        pipe.close()
    sched = [start + int(seq * interval) for seq in range(warm, n)]
    lag = array("q", bytes(8 * (n - warm)))
    marks = list(bursts[0::2]) + [n]
    for first, stop, now in zip(marks, marks[1:], bursts[1::2]):
        for seq in range(max(first, warm), stop):
            lag[seq - warm] = now - sched[seq - warm]
    first_counted = start + int(warm * interval)
    achieved = (n - warm) / max(1e-9, (last_receive[0] - first_counted) / 1e9)
    split = None
    if probe is not None:
        split = probe.split(sched, [t + x for t, x in zip(sched, lag)],
                            [t + x for t, x in zip(sched, latency)])
    return RunResult(latency, lag, achieved, split,
                     clocks.shares if clocks is not None else None)


# -- the run -----------------------------------------------------------------------------------

_progress = _report.progress_printer("latency")


def start_targets(names: list[str]) -> tuple[list[Target], dict[str, str]]:
    """Start mqlog's rows, the floors and the peers matching a fragment of ``names``
    (every peer when empty); the ones that cannot run here map to the reason."""
    return _systems.start_each(
        [t for t in all_targets() if not names or t.is_mqlog or t.name in FLOORS.values()
         or any(s.lower() in t.name.lower() for s in names)], _progress)


# {target name: {rate: [RunResult per run]}}
Results = dict[str, dict[int, list[RunResult]]]


def run(targets: list[Target], rates: list[int], seconds: float, runs: int,
        warmup: float, stages: bool = False) -> Results:
    results: Results = {t.name: {r: [] for r in rates} for t in targets}
    for r in range(runs):
        for rate in rates:
            for target in targets:  # interleaved: each run sees the same machine state
                _progress(f"run {r + 1}/{runs}, {rate:,}/s: {target.name}")
                results[target.name][rate].append(
                    run_once(target, rate, seconds, warmup, stages))
    return results


# -- rendering ---------------------------------------------------------------------------------

def _ms(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _rate(x: float) -> str:
    return f"{x / 1e3:.1f}k" if x < 1e4 else f"{x / 1e3:.0f}k"


def verdicts(results: Results) -> list[str]:
    lines = []
    for name, by_rate in results.items():
        if not name.startswith("mqlog") or GOAL_RATE not in by_rate:
            continue
        p99s = [r.pct(0.99) for r in by_rate[GOAL_RATE]]
        med = statistics.median(p99s)
        spread = "" if len(p99s) == 1 else f", runs {_ms(min(p99s))}–{_ms(max(p99s))}"
        verdict = "met" if med < GOAL_P99_MS else "not met"
        lines.append(f"- {name}: p99 {_ms(med)} ms at {GOAL_RATE:,}/s (goal "
                     f"< {GOAL_P99_MS:g} ms{spread}): **{verdict}**")
    if not lines:
        lines.append(f"- not measured: {GOAL_RATE:,}/s was not among the rates run")
    elif FLOORS[True] in results:
        floor = statistics.median(r.pct(0.99) for r in results[FLOORS[True]][GOAL_RATE])
        lines.append(f"- for reference, {FLOORS[True]} (no broker at all): p99 "
                     f"{_ms(floor)} ms in the same runs")
    return lines


def render(results: Results, rates: list[int], seconds: float, runs: int, warmup: float,
           skipped: dict[str, str], versions: list[tuple[str, str]],
           chart: str | None) -> str:
    lines = [
        f"100-byte records, one topic of one partition, one producer thread and one "
        f"consumer thread in one process; {seconds:g} s per run after {warmup:g} s of "
        f"warm-up, median (min–max) of {runs} run{'s' if runs > 1 else ''}; "
        f"{os.cpu_count()} CPUs. Latency in ms from each record's scheduled send time "
        "(open loop) to the consumer holding it.",
        "",
        _report.versions_line(versions),
        *_report.skipped_lines(skipped),
    ]
    spread = _report.spread
    for rate in rates:
        body = []
        for name, by_rate in results.items():
            rs = by_rate[rate]
            cells = [spread([r.pct(q) for r in rs], _ms) for _, q in PERCENTILES]
            cells.append(spread([r.achieved for r in rs], _rate))
            cells.append(spread([r.pct(0.99, "lag") for r in rs], _ms))
            body.append([name, *cells])
        lines += ["", f"### {rate:,} records/s offered", "",
                  *_report.table(["system", *(p for p, _ in PERCENTILES), "achieved/s",
                                  "send lag p99"], body)]
        behind = [name for name, by_rate in results.items() if statistics.median(
            r.achieved for r in by_rate[rate]) < KEPT_UP * rate]
        if behind:
            lines += ["", f"Did not keep up at {rate:,}/s (achieved below "
                          f"{KEPT_UP:.0%} of the offered rate, so its latency only grew "
                          "for as long as the run lasted): " + ", ".join(behind) + "."]
    peers = [n for n in results if n != BASELINE]
    if BASELINE in results and peers:
        body = []
        for name in peers:
            cells = []
            for rate in rates:
                rs = [a.pct(0.99) / max(b.pct(0.99), 1e-9) for a, b in zip(
                    results[name][rate], results[BASELINE][rate])]
                cells.append(spread(rs, _report.fmt_ratio))
            body.append([name, *cells])
        lines += ["", f"p99 of each system ÷ p99 of {BASELINE}, measured in the same run "
                      "(> 1: slower than mqlog's pipeline):", "",
                  *_report.table(["system", *(f"{r:,}/s" for r in rates)], body)]
    if chart:
        lines += ["", f"![latency percentiles per rate and system]"
                      f"({_report.chart_link(chart)})"]
    lines += ["", f"Issue #9's goal, e2e p99 < {GOAL_P99_MS:g} ms at {GOAL_RATE:,} "
                  "records/s (median of the runs' p99):", ""]
    lines += verdicts(results)
    return "\n".join(lines)


def render_stages(results: Results, rates: list[int]) -> str:
    """Where mqlog's latency goes: per configuration and rate, a row per stage."""
    lines = ["### Where mqlog's latency goes (`--stages`)", "",
             "Each record's latency split at mqlog's hand-offs (timestamps from probes "
             "on the broker's private writer and the consumer's waiter; medians over runs, ms). "
             "`share of slowest 1%`: for the records at or above the run's p99, the "
             "stage's part of their total latency.", ""]
    lines += [f"- {name}: {what}" for name, what in STAGES]
    nearest = _report.nearest_rank
    for name, by_rate in results.items():
        for rate in rates:
            runs = [r for r in by_rate[rate] if r.stages]
            if not runs:
                continue
            body = []
            for stage, _what in STAGES:
                cells = []
                for q in (0.5, 0.99, 0.999, 1.0):
                    cells.append(_ms(statistics.median(
                        nearest(sorted(r.stages[stage]), q) / 1e6  # type: ignore[index]
                        for r in runs)))
                shares = []
                for r in runs:
                    split = r.stages  # type: ignore[assignment]
                    totals = [sum(xs) for xs in zip(*split.values())]
                    cut = _report.nearest_rank(sorted(totals), 0.99)
                    slow = [i for i, t in enumerate(totals) if t >= cut]
                    whole = sum(totals[i] for i in slow)
                    shares.append(sum(split[stage][i] for i in slow) / whole if whole else 0)
                cells.append(f"{statistics.median(shares):.0%}")
                body.append([stage, *cells])
            lines += ["", f"{name}, {rate:,} records/s:", "",
                      *_report.table(["stage", *(p for p, _ in PERCENTILES),
                                      "share of slowest 1%"], body)]
            names = [t for t in ("producer", "writer", "consumer")
                     if all(t in r.threads for r in runs)]
            if names:
                lines += ["", "Threads, as shares of the run's wall time (median over "
                              "runs): " + "; ".join(
                                  f"{t} {statistics.median(r.threads[t][0] for r in runs):.0%}"
                                  f" on a CPU, "
                                  f"{statistics.median(r.threads[t][1] for r in runs):.0%}"
                                  " ready but waiting for one" for t in names) + "."]
    return "\n".join(lines)


def notes(targets: list[Target]) -> str:
    out = ["What each row does (a fresh broker, stream or database per run):", ""]
    out += [f"- {t.name}: {t.how}." for t in targets]
    out += ["", NOTES]
    return "\n".join(out)


NOTES = """\
`send lag` is how late the producer thread called `send` against its schedule: the
pacing loop sleeps until the next record is due, and a thread woken from `sleep` (or
waiting for the interpreter lock) runs late; every record sent late counts that delay
in its latency too, as a real producer's would.

Where mqlog's latency goes (`--stages`, the threads' scheduler statistics from
/proc, py-spy and cProfile on the writer thread; temporary broker, 100k records/s):

- The pipeline itself is fast: p50 is 0.2-0.3 ms, and in a quiet moment a run showed
  p99 0.5 ms and p99.9 0.7 ms. The tail comes from sharing 2 CPUs: no stage dominates
  the slowest 1% (the producer running late, the writer picking records up, the
  write, the consumer's wake-up and its fetch each take a tenth to two fifths of it),
  and the no-broker floors' tails move with the machine's load the same way.
- At 100k records/s the three threads need about one CPU between them (producer
  ~30%, writer ~40%, consumer ~30% of the time on a CPU) and each spends another
  25-45% ready to run but waiting for a CPU. py-lmdb keeps the interpreter lock inside
  `put`, `commit` and `begin` (it lets go only in `sync`), so a writer thread the
  operating system takes off its CPU in the middle of a commit stops the producer and
  the consumer too.
- The writer runs ~2,500 cycles a second of ~40 records, each ~140 µs of CPU: ~60 µs
  in the LMDB write transaction (a put in the log, one in the time index, the commit;
  a bare py-lmdb begin, put and commit of 5 KB takes ~14 µs here), ~25 µs encoding,
  ~10 µs waking consumers, ~5 µs resolving futures. That is ~3.4 µs per record
  against ~0.5 µs when batches are full, which is what fills the CPUs.
- Not the cause: `linger_ms` (0: the writer takes records at once, pickup p50
  ~0.05-0.1 ms), `poll()` timeouts (a consumer waits on its waiter and is woken by
  each commit to its partitions, wake-up p50 ~0.05-0.1 ms), the interpreter lock's switch
  interval (1 ms instead of 5 ms made no consistent difference).
- Durable brokers add the disk's flush: fsync of a small commit takes ~0.2 ms at the
  median here but ~7 ms at p99 and up to ~20 ms. With `acks="all"` consumers see
  records at the commit, but the writer starts its next cycle only after the flush,
  so the flush's tail becomes the next records' tail; with `fsync=True` every commit
  waits for its flush before any consumer sees it."""


def write_chart(results: Results, rates: list[int], out_dir: str
                ) -> tuple[str | None, str | None]:
    """One PNG: a panel per rate, latency percentiles (log scale) per system."""
    plt, why = _report.pyplot()
    if plt is None:
        return None, why
    fig, axes = plt.subplots(1, len(rates), figsize=(4.2 * len(rates) + 1, 4.4),
                             sharey=True, squeeze=False)
    xs = list(range(len(PERCENTILES)))
    # mqlog solid and warm, the floors dotted grey, the peers dashed.
    mqlog_colors = iter(["#d62728", "#ff7f0e", "#8c564b", "#e377c2"])
    peer_colors = iter(["#1f77b4", "#2ca02c", "#9467bd", "#17becf"])
    looks = {}
    for k, name in enumerate(results):
        if name in FLOORS.values():
            looks[name] = ("x:" if name == FLOORS[True] else "+:",
                           "#555555" if name == FLOORS[True] else "#aaaaaa")
        elif name.startswith("mqlog"):
            looks[name] = ("os^D"[k % 4] + "-", next(mqlog_colors, None))
        else:
            looks[name] = ("sv<>"[k % 4] + "--", next(peer_colors, None))
    for ax, rate in zip(axes[0], rates):
        for name, by_rate in results.items():
            rs = by_rate[rate]
            meds = [statistics.median(r.pct(q) for r in rs) for _, q in PERCENTILES]
            lo = [m - min(r.pct(q) for r in rs) for m, (_, q) in zip(meds, PERCENTILES)]
            hi = [max(r.pct(q) for r in rs) - m for m, (_, q) in zip(meds, PERCENTILES)]
            fmt, color = looks[name]
            ax.errorbar(xs, meds, yerr=[lo, hi], fmt=fmt, color=color, label=name,
                        capsize=3, markersize=5)
        ax.axhline(GOAL_P99_MS, color="#999999", linewidth=0.8, linestyle=":")
        ax.set_xticks(xs, [p for p, _ in PERCENTILES])
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{rate:,} records/s offered", fontsize=10)
    axes[0][0].set_ylabel("latency, ms (log scale; dotted: 2 ms)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8)
    fig.suptitle("End-to-end latency, producer thread → consumer thread "
                 "(median of runs, min–max)", fontsize=11)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return _report.save(plt, fig, out_dir, "latency-percentiles.png"), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,10000,100000",
                        help="comma-separated offered rates, records/s")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="measured seconds per run and rate (after warm-up)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=WARMUP_S,
                        help="seconds per run not counted, before the measured ones")
    parser.add_argument("--systems", default="",
                        help="comma-separated name fragments of peers (mqlog always runs)")
    parser.add_argument("--charts", default=os.path.join(DOCS, "img"),
                        help="directory for the PNG chart")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--markdown", action="store_true",
                        help="print only the markdown section (for benchmarks/run.py)")
    parser.add_argument("--stages", action="store_true",
                        help="also split mqlog's latency at its internal hand-offs")
    args = parser.parse_args(argv)
    try:
        rates = [int(r) for r in args.rates.split(",") if r]
    except ValueError:
        parser.error(f"--rates {args.rates!r}: give comma-separated integers")
    if not rates or min(rates) < 1 or args.seconds <= 0 or args.runs < 1 or args.warmup < 0:
        parser.error(f"need rates >= 1, --seconds > 0, --runs >= 1 and --warmup >= 0 (got "
                     f"{args.rates!r}, {args.seconds}, {args.runs}, {args.warmup})")
    began = time.perf_counter()
    load = MachineLoad()
    targets, skipped = start_targets([s for s in args.systems.split(",") if s])
    try:
        versions = _report.versions(v for t in targets for v in t.versions())
        results = run(targets, rates, args.seconds, args.runs, args.warmup, args.stages)
    finally:
        for target in targets:
            target.stop()
    chart, chart_skip = (None, "--no-charts") if args.no_charts else write_chart(
        results, rates, args.charts)
    if chart_skip:
        _progress(f"no chart: {chart_skip}")
    text = render(results, rates, args.seconds, args.runs, args.warmup, skipped, versions, chart)
    if args.stages:
        text += "\n\n" + render_stages(results, rates)
    busy = load.summary()
    text += f"\n\nTook {time.perf_counter() - began:.0f} s" + (f"; {busy}." if busy else ".")
    _report.emit(text, notes(targets), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
