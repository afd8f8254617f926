"""Instruments of benchmarks/latency.py: where mqlog's latency goes (``--stages``), how
the threads shared the CPUs, and how busy the machine was.

:class:`Probe` timestamps mqlog's internal hand-offs, :class:`ThreadClock` reads the
threads' scheduler statistics and :class:`MachineLoad` the whole machine's, all from
/proc on Linux (elsewhere they report nothing).
"""

from __future__ import annotations

import bisect
import os
import time
from array import array
from typing import Any

import _systems  # noqa: F401  (puts the repository root on sys.path)

import mqlog

STAGES = (
    ("pacing", "scheduled time -> `send()` called (the producer thread ran late)"),
    ("writer pickup", "`send()` -> the writer cycle that takes the record starts"),
    ("write", "cycle start -> committed and visible (encode, LMDB put and commit; "
              "with fsync=True the flush too)"),
    ("consumer wake-up", "commit -> the consumer's wait on its waiter "
                         "returns (0 when it was not waiting)"),
    ("fetch", "-> `poll()` returns the record (read, decode, and any wait for the "
              "interpreter lock or for the consumer to finish the previous batch)"),
)


class Probe:
    """Timestamps of mqlog's internal hand-offs during one run (``--stages``).

    This reaches into private parts of one fresh broker, which are not API and may
    change: the writer's ``_write_batches`` (a writer cycle starts writing), the
    broker's ``_notify_data`` (records become visible; the end offset then) and the
    consumer's waiter (its wait returns: ``on_wake``). Only per-commit and per-wait events are
    recorded, never per record; each array is appended to by one thread.
    """

    def __init__(self, broker: mqlog.Broker, consumer: mqlog.Consumer,
                 first_offset: int) -> None:
        clock = time.perf_counter_ns
        self.first_offset = first_offset  # the offset of the first counted record
        self.cycles, self.commits, self.ends, self.wakes = (array("q") for _ in range(4))
        plog = broker._topics["latency"].partitions[0]
        writer = broker._writer
        write_batches, notify = writer._write_batches, broker._notify_data
        cycles, commits, ends, wakes = self.cycles, self.commits, self.ends, self.wakes

        def traced_write(batches: list) -> None:
            cycles.append(clock())
            write_batches(batches)

        def traced_notify(partitions: Any = None) -> None:
            commits.append(clock())
            ends.append(plog.end_offset)
            notify(partitions)

        writer._write_batches = traced_write
        broker._notify_data = traced_notify
        consumer._waiter.on_wake = lambda: wakes.append(clock())

    def split(self, sched: list[int], sent: list[int], received: list[int]
              ) -> dict[str, list[int]]:
        """Per record (offset = index + first), the ns spent in each of STAGES."""
        cycles, commits, ends, wakes = self.cycles, self.commits, self.ends, self.wakes
        out: dict[str, list[int]] = {name: [] for name, _ in STAGES}
        first = self.first_offset
        for i, (t0, s, r) in enumerate(zip(sched, sent, received)):
            k = bisect.bisect_right(ends, first + i)  # the commit that made it visible
            c = commits[k] if k < len(commits) else r
            j = bisect.bisect_left(cycles, s)  # the first cycle after the send wrote it
            cyc = cycles[j] if j < len(cycles) and cycles[j] <= c else c
            w = bisect.bisect_left(wakes, c)
            woke = wakes[w] if w < len(wakes) and wakes[w] <= r else c
            for name, x in zip(out, (s - t0, cyc - s, c - cyc, woke - c, r - woke)):
                out[name].append(x)
        return out


def _schedstat(tid: int) -> tuple[int, int] | None:
    """(ns on a CPU, ns runnable but waiting for a CPU) of one thread (Linux)."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            on_cpu, waiting, _slices = map(int, f.read().split())
    except (OSError, ValueError):
        return None
    return on_cpu, waiting


class ThreadClock:
    """CPU time and run-queue wait of named threads, each from begin() to finish().

    Run-queue wait is time a thread was ready to run but no CPU ran it (other threads
    or processes had them): the operating system's share of a latency tail, which no
    change in the code can remove. Waiting for the interpreter lock is not in it (a
    thread waiting for the lock sleeps). Each name is begun and finished once, by any
    thread, while its thread is alive.
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.begun: dict[str, tuple[int, tuple[int, int] | None]] = {}
        self.shares: dict[str, tuple[float, float]] = {}

    def begin(self, name: str, tid: int | None) -> None:
        if tid is not None:
            self.ids[name] = tid
            self.begun[name] = (time.perf_counter_ns(), _schedstat(tid))

    def finish(self, name: str) -> None:
        if name not in self.begun:
            return
        t0, a = self.begun[name]
        b = _schedstat(self.ids[name])
        wall = max(1, time.perf_counter_ns() - t0)
        if a is not None and b is not None:
            self.shares[name] = ((b[0] - a[0]) / wall, (b[1] - a[1]) / wall)


class MachineLoad:
    """CPU use of the whole machine between two readings of /proc/stat (Linux).

    Latency percentiles on a shared machine depend on what else runs: this says how
    busy the machine was outside this process (other processes, including a peer's
    server) and how much time the hypervisor stole, as shares of all CPUs.
    """

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[list[int], float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        t = os.times()
        return fields, t.user + t.system

    def summary(self) -> str | None:
        end = self._read()
        if self.start is None or end is None:
            return None
        (a, own_a), (b, own_b) = self.start, end
        d = [y - x for x, y in zip(a, b)]
        total = sum(d[:8])  # user nice system idle iowait irq softirq steal
        if total <= 0:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = d[0] + d[1] + d[2] + d[5] + d[6]
        others = max(0.0, busy - (own_b - own_a) * hz)
        return (f"machine load during the runs: {others / total:.0%} of all CPU time in "
                f"other processes, {d[7] / total:.0%} stolen by the hypervisor")
