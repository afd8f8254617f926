"""Each delivery guarantee of ``mqlog.Pipeline`` holds — and only that one — under kill -9.

A child process runs a pipeline over a filled input topic and SIGKILLs itself at the
point where the guarantees differ; a second child finishes the work. Then every input
is looked for in the committed output:

- at-most-once, killed after the offsets were committed but before the outputs were
  written: some inputs are missing, none is duplicated;
- at-least-once, killed after the outputs were written but before the offsets were
  committed: some inputs are duplicated, none is missing;
- exactly-once, killed at the same points (and inside the commit): neither.

The "some" halves are asserted too: they prove the kill landed where it matters, so
the exactly-once figures are not zero by luck.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from checker import report
from helpers import run_python

import mqlog

N = 600
BATCH = 50

CHILD = r"""
import os, signal, sys
import mqlog
path, guarantee, point, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
broker = mqlog.open(path)
hits = [0]
def on_point(name):
    if name == point:
        hits[0] += 1
        if hits[0] >= nth:
            os.kill(os.getpid(), signal.SIGKILL)
pipe = mqlog.Pipeline(broker, "in", "out", "etl", lambda r: r.value,
                      guarantee=guarantee, max_records=int(sys.argv[5]))
if point != "none":
    pipe.on_point = on_point
stats = pipe.run(idle_timeout_ms=300)
print("done", stats.inputs, flush=True)
broker.close()
"""


def run_child(path: str, guarantee: str, point: str, nth: int = 3):
    return run_python(CHILD, path, guarantee, point, str(nth), str(BATCH), check=False,
                      timeout=120)


def figures(path: str) -> dict[str, int]:
    with mqlog.open(path) as b:
        c = b.consumer(isolation_level="read_committed", auto_offset_reset="earliest")
        c.assign([mqlog.TopicPartition("out", p) for p in range(2)])
        seen: Counter = Counter()
        while got := c.poll(timeout_ms=0, max_records=10_000):
            for recs in got.values():
                seen.update(int(r.value) for r in recs)
        c.close()
        lag = sum(g.lag for g in b.admin().lag("etl").values())
        b._check()
    return {"inputs": N, "outputs": sum(seen.values()),
            "duplicates": sum(n - 1 for n in seen.values() if n > 1),
            "missing": sum(1 for i in range(N) if i not in seen), "lag": lag}


@pytest.mark.parametrize("guarantee,point,expect", [
    ("at_most_once", "after_sends", "missing"),
    ("at_least_once", "after_flush", "duplicates"),
    ("exactly_once", "after_sends", None),
    ("exactly_once", "after_offsets", None),
    ("exactly_once", "inside_commit", None),
    ("exactly_once", "after_commit", None),
])
def test_guarantee_under_kill(tmp_path, guarantee, point, expect):
    path = str(tmp_path / "data")
    with mqlog.open(path) as b:
        b.create_topic("in", 2)
        b.create_topic("out", 2)
        p = b.producer(acks="all")
        for i in range(N):
            p.send("in", b"%d" % i, key=b"k%d" % (i % 5))
        p.flush()
    killed = run_child(path, guarantee, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = run_child(path, guarantee, "none")
    assert finished.returncode == 0, finished.stderr
    found = figures(path)
    report(f"guarantee_kill[{guarantee}@{point}]", guarantee=guarantee, point=point,
           **found)
    assert found["lag"] == 0
    if expect == "missing":
        assert found["duplicates"] == 0 and 0 < found["missing"] <= BATCH
    elif expect == "duplicates":
        assert found["missing"] == 0 and 0 < found["duplicates"] <= BATCH
    else:
        assert found["duplicates"] == found["missing"] == 0
        assert found["outputs"] == N
