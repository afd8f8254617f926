"""Throughput of the core log against the raw py-lmdb floor, measured in one run.

    python benchmarks/throughput.py [--records N] [--runs R] [--markdown]

Cases (100-byte values, 3 partitions, a temporary broker, acks=1):

- ``send keyless``: ``producer.send(topic, value)`` N times, then ``flush()``.
- ``send keyed (10k keys)``: the same with keys drawn from 10,000 distinct keys.
- ``send keyed (unique)``: every record a new key (no key->partition cache hits).
- ``send_batch``: one ``send_batch(topic, values)`` call, wait for its future.
- ``consume (poll)``: a consumer assigned to every partition, ``poll()`` until empty.

Floors, on the same machine in the same run: the same value bytes packed into batches
of the producer's batch size and written with cursor puts in one LMDB transaction
(``lmdb write floor``), and read back with one cursor scan, each batch cut into its
records (``lmdb read floor``). ``vs floor`` is mqlog's rate divided by the floor's.

Reported figures are medians over the runs. Nothing here asserts a speed: machines are
shared and noisy; the ratios are the stable part.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lmdb  # noqa: E402  (the floor is raw py-lmdb)

import mqlog  # noqa: E402

VALUE_SIZE = 100
PARTITIONS = 3
TARGETS = {  # issue #2's targets on a 2-core machine, records/s
    "send keyless": 750_000,
    "send keyed (10k keys)": 400_000,
    "send_batch": 2_000_000,
    "consume (poll)": 1_500_000,
}


def _fresh_broker() -> mqlog.Broker:
    broker = mqlog.open()
    broker.create_topic("bench", partitions=PARTITIONS)
    return broker


def bench_send(n: int, keys: list[bytes] | None) -> float:
    value = os.urandom(VALUE_SIZE)
    with _fresh_broker() as broker:
        producer = broker.producer()
        send = producer.send
        start = time.perf_counter()
        if keys is None:
            for _ in range(n):
                send("bench", value)
        else:
            nkeys = len(keys)
            for i in range(n):
                send("bench", value, key=keys[i % nkeys])
        producer.flush()
        return time.perf_counter() - start


def bench_send_batch(n: int) -> float:
    values = [os.urandom(VALUE_SIZE)] * n
    with _fresh_broker() as broker:
        producer = broker.producer()
        start = time.perf_counter()
        producer.send_batch("bench", values).get(600)
        return time.perf_counter() - start


def bench_consume(n: int) -> float:
    with _fresh_broker() as broker:
        with broker.producer() as producer:
            per = n // PARTITIONS
            for p in range(PARTITIONS):
                producer.send_batch("bench", [os.urandom(VALUE_SIZE)] * (
                    per if p < PARTITIONS - 1 else n - per * (PARTITIONS - 1)),
                    partition=p).get(600)
        consumer = broker.consumer(auto_offset_reset="earliest")
        consumer.assign([mqlog.TopicPartition("bench", p) for p in range(PARTITIONS)])
        count = 0
        start = time.perf_counter()
        while True:
            got = consumer.poll(timeout_ms=0)
            if not got:
                break
            for records in got.values():
                count += len(records)
        elapsed = time.perf_counter() - start
        assert count == n, (count, n)
        return elapsed


def _with_gc_threshold(fn: Callable[[int], float], n: int) -> float:
    """Run ``fn`` with a larger generation-0 GC threshold (a user-side tuning)."""
    old = gc.get_threshold()
    gc.set_threshold(10_000, old[1], old[2])
    try:
        return fn(n)
    finally:
        gc.set_threshold(*old)


def _floor_env(path: str) -> lmdb.Environment:
    return lmdb.open(path, map_size=1 << 34, sync=False, metasync=False, max_dbs=2)


def _floor_batches(n: int, per_batch: int) -> list[list[bytes]]:
    value = os.urandom(VALUE_SIZE)
    return [[value] * min(per_batch, n - i) for i in range(0, n, per_batch)]


def bench_floor_write(n: int) -> float:
    per_batch = 16384 // (VALUE_SIZE + 16)
    batches = _floor_batches(n, per_batch)
    path = tempfile.mkdtemp(prefix="mqlog-floor-")
    try:
        env = _floor_env(path)
        start = time.perf_counter()
        with env.begin(write=True) as txn:
            cur = txn.cursor()
            offset = 0
            for records in batches:
                count = len(records)
                packed = struct.pack(f">{count}i", *map(len, records)) + b"".join(records)
                cur.put(struct.pack(">IIQ", 1, 0, offset), packed, append=True)
                offset += count
        elapsed = time.perf_counter() - start
        env.close()
        return elapsed
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_floor_read(n: int) -> float:
    per_batch = 16384 // (VALUE_SIZE + 16)
    path = tempfile.mkdtemp(prefix="mqlog-floor-")
    try:
        env = _floor_env(path)
        with env.begin(write=True) as txn:
            cur = txn.cursor()
            offset = 0
            for records in _floor_batches(n, per_batch):
                count = len(records)
                packed = struct.pack(f">{count}i", *map(len, records)) + b"".join(records)
                cur.put(struct.pack(">IIQ", 1, 0, offset), packed, append=True)
                offset += count
        start = time.perf_counter()
        count = 0
        with env.begin() as txn:
            for _key, packed in txn.cursor():
                k = (len(packed)) // (VALUE_SIZE + 4)
                ends = range(4 * k, len(packed) + 1, VALUE_SIZE)
                records = list(map(packed.__getitem__, map(slice, ends, ends[1:])))
                count += len(records)
        elapsed = time.perf_counter() - start
        env.close()
        assert count == n, (count, n)
        return elapsed
    finally:
        shutil.rmtree(path, ignore_errors=True)


def median_rate(fn: Callable[[int], float], n: int, runs: int) -> float:
    times = [fn(n) for _ in range(runs)]
    return n / statistics.median(times)


def run(n: int, runs: int) -> list[tuple[str, float, float | None]]:
    keys10k = [b"key-%05d" % i for i in range(10_000)]
    unique = [b"key-%09d" % i for i in range(n)]
    write_floor = median_rate(bench_floor_write, n, runs)
    read_floor = median_rate(bench_floor_read, n, runs)
    rows = [
        ("send keyless", median_rate(lambda k: bench_send(k, None), n, runs), write_floor),
        ("send keyed (10k keys)", median_rate(lambda k: bench_send(k, keys10k), n, runs),
         write_floor),
        ("send keyed (unique)", median_rate(lambda k: bench_send(k, unique), n, runs),
         write_floor),
        ("send_batch", median_rate(bench_send_batch, n, runs), write_floor),
        ("consume (poll)", median_rate(bench_consume, n, runs), read_floor),
        ("consume (poll), gc gen0 threshold 10000",
         median_rate(lambda k: _with_gc_threshold(bench_consume, k), n, runs), read_floor),
        ("lmdb write floor", write_floor, None),
        ("lmdb read floor", read_floor, None),
    ]
    return rows


def render(rows: list[tuple[str, float, float | None]], n: int, runs: int) -> str:
    lines = [
        f"{n:,} records of {VALUE_SIZE} bytes, {PARTITIONS} partitions, acks=1, median of "
        f"{runs} runs, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.",
        "",
        "| case | records/s | MB/s | vs floor | target | meets |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, rate, floor in rows:
        target = TARGETS.get(name)
        meets = "" if target is None else (
            "yes" if rate >= target else f"no ({rate / target:.0%})")
        lines.append(
            f"| {name} | {rate:,.0f} | {rate * VALUE_SIZE / 1e6:,.1f} | "
            f"{'' if floor is None else f'{rate / floor:.2f}'} | "
            f"{'' if target is None else f'{target:,}'} | "
            f"{meets} |"
        )
    return "\n".join(lines)


NOTES = """\
Where the time goes (measured with callgrind instruction counts and per-thread CPU
time, since wall-clock figures on this shared machine vary by ±30% between runs):

- `send()` is pure Python: ~9,400 instructions per keyless call. A stripped-down send
  that only takes a lock, appends to two lists, reads the clock and builds the returned
  future already costs ~6,600, so the validation, routing and batching mqlog adds are
  about a third. The writer thread spends another ~0.5 µs per record (encoding columns,
  CRC-32C, LMDB puts and commits). Both run under one interpreter lock, so keyless
  `send` lands at 0.6-0.8 M records/s against the 750 k target.
- Locking: a send holds the producer's lock for a few bytecodes. Threads sharing one
  producer used to convoy on it (a thread blocked in `acquire()` turns every release
  into a kernel wake-up): four threads ran at 0.37x of one. A contended send now
  yields the interpreter to the holder before blocking, and four threads run at
  about the speed of one (the interpreter lock, not the producer's, is the limit;
  see the threads table in the side-by-side section).
- Keyed sends add the key column and the key->partition cache lookup; unique keys pay
  Kafka's murmur2 in pure Python (~1.8 µs) for every record.
- `send_batch` checks and sizes whole columns with C-level calls (`map(len, ...)`,
  slice sums), so per-record Python work nearly disappears.
- Consuming costs, per record: cutting the value out of the stored batch (one cached
  `struct` unpack cuts a whole column of equal-length values in C, ~20 ns a value;
  columns of varied lengths are sliced in a list comprehension, ~100 ns), and building
  one `ConsumerRecord` (`zip` plus `tuple.__new__` in C, ~250 ns: a namedtuple is a
  tuple subclass, which costs a second allocation and is always tracked by the cyclic
  garbage collector). Records without headers share the empty tuple rather than a list
  each, which halved the objects the collector tracks. The rest of the collector's
  share is what the row with generation-0 threshold 10000
  (`gc.set_threshold(10_000, 10, 10)`, a process-wide setting for the application to
  choose) shows.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    rows = run(args.records, args.runs)
    table = render(rows, args.records, args.runs)
    print(table + "\n\n" + NOTES if args.markdown else "\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
