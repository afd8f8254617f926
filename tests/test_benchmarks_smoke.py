"""Smoke runs of the benchmark scripts, so they never rot.

Each script runs in a subprocess with tiny sizes (seconds) and ``--markdown``; the test
checks that it exits 0 and prints at least one well-formed markdown table. Timings
are never asserted: CI machines are noisy. A script fails here only by crashing or by
its own checks of what it read back (compare.py, latency.py and growth.py raise on wrong
results; the last tests here prove that latency.py and growth.py do).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")

# (script, tiny arguments); the scripts in CHARTS also get --charts <tmp_path>.
SCRIPTS = [
    ("throughput.py", ["--records", "2000", "--runs", "1"]),
    ("groups.py", ["--rounds", "2", "--records", "2000"]),
    ("retention.py", ["--rounds", "2", "--records", "200"]),
    ("transactions.py", ["--records", "1000", "--runs", "1"]),
    ("compare.py", ["--records", "400", "--runs", "1", "--budget", "0.05"]),
    # --stages also exercises the probes on the broker's private writer and waiters.
    ("latency.py", ["--rates", "2000,20000", "--seconds", "0.1", "--warmup", "0.05",
                    "--runs", "1", "--stages"]),
    ("growth.py", ["--sizes", "2000,20000", "--seeks", "50", "--runs", "1", "--reopens",
                   "2", "--produce", "1000"]),
    ("wakeups.py", ["--sends", "100", "--idle", "0,3", "--runs", "1"]),
]
# Per script drawing charts: the files it must write (it may add more with the same
# prefix), and a row every run must print. They get --charts <tmp_path>/img, as run.py
# passes the img folder beside its --out, and their chart links must resolve from
# tmp_path, where run.py would write the markdown.
CHARTS = {
    "compare.py": (["compare-100B.png", "compare-1KiB.png"], "| mqlog |"),
    "latency.py": (["latency-percentiles.png"], "| writer pickup |"),
    "growth.py": (["growth-costs.png"], "| reopen (ms) |"),
    "serve.py": (["serve-rates.png"], "| confluent-kafka | produce, acks=1 |"),
}
# serve.py needs kio (the serve extra, part of the test extra) to start mqlog serve.
if os.path.exists(os.path.join(BENCH, "serve.py")) and importlib.util.find_spec("kio"):
    SCRIPTS.append(("serve.py", ["--records", "2000", "--runs", "1", "--skip-tansu"]))

_SEPARATOR = re.compile(r"^\|( *:?-{3,}:? *\|)+$")
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def markdown_tables(text: str) -> list[list[str]]:
    """Every block of consecutive lines that start with ``|``."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def check_table(rows: list[str]) -> None:
    """A header row, a separator row, then data rows, all with the same cell count."""
    assert len(rows) >= 3, f"a table needs a header, a separator and a row: {rows}"
    assert _SEPARATOR.match(rows[1]), f"bad separator row: {rows[1]!r}"
    width = rows[0].count("|")
    for row in rows:
        assert row.endswith("|"), f"row does not end with '|': {row!r}"
        assert row.count("|") == width, f"{row!r} has another cell count than {rows[0]!r}"


def test_check_table_rejects_malformed_tables():
    check_table(["| a | b |", "| --- | ---: |", "| 1 | 2 |"])
    for bad in (["| a | b |", "| --- | ---: |"],
                ["| a | b |", "| a | b |", "| 1 | 2 |"],
                ["| a | b |", "| --- | ---: |", "| 1 | 2 | 3 |"],
                ["| a | b |", "| --- | ---: |", "| 1 | 2"]):
        with pytest.raises(AssertionError):
            check_table(bad)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script,args", SCRIPTS, ids=[s for s, _ in SCRIPTS])
def test_script_runs_and_prints_a_table(script, args, tmp_path):
    charts = tmp_path / "img"
    if script in CHARTS:
        args = [*args, "--charts", str(charts)]
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), "--markdown", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=110,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (
        f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}")
    tables = markdown_tables(proc.stdout)
    assert tables, f"{script} printed no markdown table:\n{proc.stdout[-3000:]}"
    for rows in tables:
        check_table(rows)
    if script in CHARTS:
        files, row = CHARTS[script]
        assert row in proc.stdout, f"{script} printed no {row!r} row:\n{proc.stdout[-3000:]}"
        if importlib.util.find_spec("matplotlib"):
            written = os.listdir(charts)
            assert set(files) <= set(written), f"{script} wrote {written}, not {files}"
            prefix = files[0].split("-")[0] + "-"
            assert all(f.startswith(prefix) and f.endswith(".png") for f in written), written
            links = _IMAGE.findall(proc.stdout)
            assert links, f"{script} links no chart:\n{proc.stdout[-3000:]}"
            for link in links:
                assert (tmp_path / link).is_file(), \
                    f"{script} links {link!r}, which is not a chart beside its markdown"


def _load(script: str):
    """Import a benchmark script from its file (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{script[:-3]}",
                                                  os.path.join(BENCH, script))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lose", [None, 300])
def test_latency_fails_only_when_records_are_lost(lose):
    """run_once measures a pipe that delivers everything, and raises on one that drops."""
    latency = _load("latency.py")

    class Queue(latency.Pipe):  # an in-memory pipe that loses record `lose`
        def __init__(self):
            self.cond = threading.Condition()
            self.items = []

        def send(self, values):
            with self.cond:
                self.items += [v for v in values
                               if latency.HEAD.unpack_from(v)[0] != lose]
                self.cond.notify_all()

        def receive(self, timeout):
            with self.cond:
                if not self.items:
                    self.cond.wait(timeout)
                out, self.items = self.items, []
            return out

    class Target(latency.Target):
        name = "in-memory queue"

        def open(self):
            return Queue()

    rate, seconds = 2000, 0.1  # 500 warm-up records, then 200 counted
    if lose is not None:
        with pytest.raises(latency.LostRecordsError, match=f"expected record {lose}, got "
                                                           f"{lose + 1}"):
            latency.run_once(Target(), rate, seconds)
        return
    result = latency.run_once(Target(), rate, seconds)
    assert len(result.latency) == int(rate * seconds)
    assert 0 <= result.pct(0.5) <= result.pct(0.99) <= result.pct(1.0)
    assert result.achieved > 0


@pytest.mark.parametrize("shift", [0, 1])
def test_growth_fails_only_on_a_wrong_record(shift):
    """time_seeks checks every record it reads back against the offset it asked for."""
    growth = _load("growth.py")

    class Reader:  # returns the record `shift` places after the one asked for
        name = "fake"

        def open(self):
            return lambda off: (off + shift, growth.value_of(off + shift))

        def close(self):
            pass

    if shift:
        with pytest.raises(growth.WrongResultError, match="returned offset"):
            growth.time_seeks([(Reader(), 100)], seeks=5, runs=1, seed=1)
        return
    [(p50s, p99s, faults)] = growth.time_seeks([(Reader(), 100)], seeks=5, runs=2, seed=1)
    assert len(p50s) == len(p99s) == len(faults) == 2
    assert all(a <= b for a, b in zip(p50s, p99s))
