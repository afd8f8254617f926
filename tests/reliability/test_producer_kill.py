"""Producer kill -9: every acknowledged record survives, once, in order.

Child processes produce self-checking records (``checker.payload``) and print one line
per acknowledged record from the producer callback, which runs after the commit. The
parent kills them with SIGKILL — at a random moment, or at an injected point through
the writer's ``on_point`` seam (just before a commit, after a commit but before any
acknowledgement, around the flush) — then reopens the store and checks it with the
shared checker. Some rounds start a second process that waits for the store and takes
over as soon as the first dies; the takeover time is measured.
"""

import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from checker import assert_clean, check, report
from helpers import child_env, finish

import mqlog

POINTS = ["before_commit", "after_commit", "before_sync", "after_sync"]

CHILD = r"""
import os, signal, sys, time
import mqlog
from mqlog.errors import BrokerLockedError
sys.path.insert(0, sys.argv[5])
from checker import payload

path, writer, acks, point = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
acks = "all" if acks == "all" else 1
while True:  # a second process waits here until the first one dies
    try:
        broker = mqlog.open(path)
        break
    except BrokerLockedError:
        time.sleep(0.005)  # polling another process's lock: no condition to wait on
print("opened", time.monotonic(), flush=True)
if "c" not in broker.topics():
    broker.create_topic("c", partitions=3)
if point != "none":
    hits = [0]
    def on_point(name):
        if name == point:
            hits[0] += 1
            if hits[0] >= 3:
                os.kill(os.getpid(), signal.SIGKILL)
    broker._writer.on_point = on_point
out = sys.stdout
def acked(i, md):
    out.write(f"ack {md.partition} {md.offset} {i}\n")
    out.flush()
p = broker.producer(acks=acks, batch_size=4096)
i = 0
while True:
    p.send("c", payload(writer, i), key=b"k%d" % (i % 11)).add_callback(acked, i)
    i += 1
    if i % 500 == 0:
        p.flush()
"""


def start(path, writer, acks, point):
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.Popen([sys.executable, "-c", CHILD, path, str(writer), acks, point,
                             here], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=child_env())


def read_acks(child, writer, acked, stop_after, deadline):
    """Collect acks until ``stop_after`` of them or the deadline; returns True if the
    child is still running."""
    for line in child.stdout:
        if line.startswith("ack "):
            _, part, offset, i = line.split()
            acked[(int(part), int(offset))] = (writer, int(i))
            if len(acked) >= stop_after or time.monotonic() > deadline:
                return True
    return False


def run_round(path, rnd, acks, rng, acked):
    point = rng.choice(POINTS + ["none", "none"]) if acks == "all" else \
        rng.choice(["before_commit", "after_commit", "none", "none"])
    takeover = rng.random() < 0.3
    first = start(path, 2 * rnd, acks, point)
    children = [first]
    watchdog = threading.Timer(60, lambda: [c.kill() for c in children])
    watchdog.start()
    takeover_s = None
    second = None
    try:
        assert first.stdout.readline().startswith("opened"), first.stderr.read()
        if takeover:  # started once the first owns the store: it waits for the lock
            second = start(path, 2 * rnd + 1, acks, "none")
            children.append(second)
        running = read_acks(first, 2 * rnd, acked, len(acked) + rng.randint(1, 2500),
                            time.monotonic() + 20)
        if running:
            first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        rest, _ = finish(first)
        for line in rest.splitlines():
            if line.startswith("ack "):
                _, part, offset, i = line.split()
                acked[(int(part), int(offset))] = (2 * rnd, int(i))
        assert first.returncode == -signal.SIGKILL, first.returncode
        if second is not None:
            opened = second.stdout.readline()
            assert opened.startswith("opened"), second.stderr.read()
            takeover_s = max(0.0, float(opened.split()[1]) - killed_at)
            read_acks(second, 2 * rnd + 1, acked, len(acked) + rng.randint(1, 500),
                      time.monotonic() + 20)
            second.send_signal(signal.SIGKILL)
            rest, _ = finish(second)
            for line in rest.splitlines():
                if line.startswith("ack "):
                    _, part, offset, i = line.split()
                    acked[(int(part), int(offset))] = (2 * rnd + 1, int(i))
    finally:
        watchdog.cancel()
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
    return point, takeover_s


@pytest.mark.parametrize("acks", ["1", "all"])
def test_producer_kill9_loses_no_acknowledged_record(tmp_path, acks, long_run):
    rounds = 50 if long_run else 10
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path = str(tmp_path / "store")
    acked = {}
    points, takeovers = [], []
    for rnd in range(rounds):
        point, takeover_s = run_round(path, rnd, acks, rng, acked)
        points.append(point)
        if takeover_s is not None:
            takeovers.append(takeover_s)
    with mqlog.open(path) as broker:
        problems = []
        for tlog in broker._topics.values():
            for plog in tlog.partitions:
                problems.extend(plog.verify(broker._store))
        starts = {p.partition: p.log_start for p in broker._topics["c"].partitions}
        figures = check(broker.messages("c"), acked, starts)
    report("producer_kill9", seed=seed, acks=acks, rounds=rounds,
           injected={p: points.count(p) for p in sorted(set(points))},
           takeover_max_s=round(max(takeovers, default=0.0), 3), store_problems=len(problems),
           **figures)
    assert figures["acked"] > 0
    assert_clean(figures, f"seed {seed}")
    assert problems == []
    assert max(takeovers, default=0.0) < 1.0  # a waiting writer takes over within 1 s
    with mqlog.open(path) as broker:  # and the store still takes writes
        end = broker._topics["c"].partitions[0].end_offset
        with broker.producer() as p:
            assert p.send("c", b"after", partition=0).get(10).offset == end
