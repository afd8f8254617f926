"""Smoke runs of the benchmark scripts, so they never rot.

Each script runs in a subprocess with tiny sizes (seconds) and ``--markdown``; the test
checks that it exits 0 and prints at least one well-formed markdown table. Timings
are never asserted: CI machines are noisy. A script fails here only by crashing or by
its own checks of what it read back (compare.py raises on wrong results).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")

# (script, tiny arguments); compare.py also gets --charts <tmp_path>.
SCRIPTS = [
    ("throughput.py", ["--records", "2000", "--runs", "1"]),
    ("groups.py", ["--rounds", "2", "--records", "2000"]),
    ("retention.py", ["--rounds", "2", "--records", "200"]),
    ("transactions.py", ["--records", "1000", "--runs", "1"]),
    ("compare.py", ["--records", "400", "--runs", "1", "--budget", "0.05"]),
]
# serve.py needs kio (the serve extra, part of the test extra) to start mqlog serve.
if os.path.exists(os.path.join(BENCH, "serve.py")) and importlib.util.find_spec("kio"):
    SCRIPTS.append(("serve.py", ["--records", "2000", "--runs", "1", "--skip-tansu"]))

_SEPARATOR = re.compile(r"^\|( *:?-{3,}:? *\|)+$")


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
    if script == "compare.py":
        args = [*args, "--charts", str(tmp_path)]
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
    if script == "compare.py":
        assert "| mqlog |" in proc.stdout
        if importlib.util.find_spec("matplotlib"):
            assert sorted(os.listdir(tmp_path)) == ["compare-100B.png", "compare-1KiB.png"]
