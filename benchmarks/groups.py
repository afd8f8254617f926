"""Consumer-group benchmarks: rebalance time and group consume throughput.

    python benchmarks/groups.py [--rounds R] [--records N] [--markdown]

- ``rebalance``: 7 members (threads, each polling with ``timeout_ms=5``) own 64
  partitions; an 8th joins (then leaves, alternately). Measured: from the join/leave
  call until every partition is owned again and every member has synced the group's
  current generation. Eager (``range``) vs cooperative (``cooperative-sticky``, two
  rounds). Median and max of the rounds.
- ``group consume``: N records over 8 partitions read by one group of 4 consumer threads
  vs a single consumer (the baseline, same run). Python threads share one interpreter
  lock, so 4 consumers cannot beat one on CPU; the figure shows what coordination costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mqlog  # noqa: E402


def _group_settled(broker: mqlog.Broker, group: str, partitions: int) -> bool:
    coord = broker._coordinator
    with coord._lock:
        g = coord._groups.get(group)
        if g is None or g.state is not mqlog.GroupState.STABLE:
            return False
        if len(g.owners) != partitions:
            return False
        return all(m.generation == g.generation and m.joined_round == g.round
                   for m in g.members.values())


def bench_rebalance(strategy: str, rounds: int, members: int = 8,
                    partitions: int = 64) -> list[float]:
    with mqlog.open() as broker:
        broker.create_topic("rb", partitions=partitions)
        stop = threading.Event()
        consumers: list = []

        def run(c):
            while not stop.is_set():
                c.poll(timeout_ms=5)

        def start_member():
            c = broker.consumer("rb", group_id="bench", partition_assignment_strategy=[
                strategy], enable_auto_commit=False)
            t = threading.Thread(target=run, args=(c,), daemon=True)
            consumers.append((c, t))
            t.start()

        for _ in range(members - 1):
            start_member()
        deadline = time.monotonic() + 30
        while not _group_settled(broker, "bench", partitions):
            assert time.monotonic() < deadline, "group never settled"
            stop.wait(0.001)
        times = []
        extra_stop = None
        for r in range(rounds):
            start = time.perf_counter()
            if r % 2 == 0:
                extra_stop = threading.Event()
                c = broker.consumer("rb", group_id="bench", partition_assignment_strategy=[
                    strategy], enable_auto_commit=False)

                def run_extra(c=c, ev=extra_stop):
                    while not ev.is_set() and not stop.is_set():
                        c.poll(timeout_ms=5)
                    c.close()

                t = threading.Thread(target=run_extra, daemon=True)
                t.start()
                # Wait until the newcomer is in and the group has settled again.
                while not (_group_settled(broker, "bench", partitions) and
                           len(broker._coordinator.describe("bench").members) == members):
                    stop.wait(0.0005)
            else:
                extra_stop.set()
                while not (_group_settled(broker, "bench", partitions) and
                           len(broker._coordinator.describe("bench").members) == members - 1):
                    stop.wait(0.0005)
            times.append(time.perf_counter() - start)
        stop.set()
        for c, t in consumers:
            t.join(10)
            c.close()
        return times


def bench_group_consume(n: int, threads: int, partitions: int = 8) -> float:
    with mqlog.open() as broker:
        broker.create_topic("gc", partitions=partitions)
        with broker.producer() as p:
            per = n // partitions
            for part in range(partitions):
                p.send_batch("gc", [os.urandom(100)] * per, partition=part).get(600)
        total = per * partitions
        counted = [0]
        lock = threading.Lock()
        done = threading.Event()

        def consume():
            c = broker.consumer("gc", group_id="g", auto_offset_reset="earliest",
                                enable_auto_commit=False)
            while not done.is_set():
                got = c.poll(timeout_ms=20)
                k = sum(len(v) for v in got.values())
                if k:
                    with lock:
                        counted[0] += k
                        if counted[0] >= total:
                            done.set()
            c.close(autocommit=False)

        start = time.perf_counter()
        ts = [threading.Thread(target=consume, daemon=True) for _ in range(threads)]
        for t in ts:
            t.start()
        done.wait(600)
        elapsed = time.perf_counter() - start
        for t in ts:
            t.join(30)
        return total / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    lines = [
        f"Rebalance: 8 members (threads) over 64 partitions, {args.rounds} rounds (a "
        "member joins, then leaves, alternately); target < 50 ms median.",
        "",
        "| protocol | median ms | max ms | meets |",
        "| --- | ---: | ---: | --- |",
    ]
    for strategy, label in (("range", "eager (range)"),
                            ("cooperative-sticky", "cooperative (cooperative-sticky)")):
        times = bench_rebalance(strategy, args.rounds)
        med = statistics.median(times) * 1000
        lines.append(f"| {label} | {med:.1f} | {max(times) * 1000:.1f} | "
                     f"{'yes' if med < 50 else 'no'} |")
    single = statistics.median(bench_group_consume(args.records, 1) for _ in range(3))
    four = statistics.median(bench_group_consume(args.records, 4) for _ in range(3))
    lines += [
        "",
        f"Group consume: {args.records:,} records of 100 bytes over 8 partitions, "
        "median of 3 runs.",
        "",
        "| consumers | records/s | vs 1 consumer |",
        "| --- | ---: | ---: |",
        f"| 1 (baseline) | {single:,.0f} | 1.00 |",
        f"| 4 threads, one group | {four:,.0f} | {four / single:.2f} |",
    ]
    text = "\n".join(lines)
    print(text if args.markdown else "\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
