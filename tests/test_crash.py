"""Crash safety: SIGKILL a producing process and check every acknowledged record.

A child process produces keyed records and prints one line per acknowledged record
(from the producer callback, which runs after the commit). The parent kills it with
SIGKILL at a random moment, reopens the store and checks that every acknowledged record
is present exactly once at its acknowledged offset, with its exact value, that offsets
are dense, and that each partition's records from one round are in send order.
"""

import hashlib
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

import mqlog
from helpers import child_env

CHILD = r"""
import hashlib, sys, mqlog
path, rnd, acks = sys.argv[1], int(sys.argv[2]), sys.argv[3]
acks = "all" if acks == "all" else 1

def value(rnd, i):
    tag = f"{rnd}:{i}:".encode()
    return tag + hashlib.sha256(tag).hexdigest().encode() * (1 + i % 7)

broker = mqlog.open(path)
if "c" not in broker.topics():
    broker.create_topic("c", partitions=3)
out = sys.stdout
def acked(i, md):
    out.write(f"{md.partition} {md.offset} {i}\n")
    out.flush()
p = broker.producer(acks=acks, batch_size=4096)
print("ready", flush=True)
i = 0
while True:
    p.send("c", value(rnd, i), key=b"k%d" % (i % 11)).add_callback(acked, i)
    i += 1
    if i % 500 == 0:
        p.flush()
"""


def expected_value(rnd: int, i: int) -> bytes:
    tag = f"{rnd}:{i}:".encode()
    return tag + hashlib.sha256(tag).hexdigest().encode() * (1 + i % 7)


def run_round(path: str, rnd: int, acks: str, rng: random.Random) -> dict:
    """Start a producer child, kill it at a random moment; return its acks."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, path, str(rnd), acks],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=child_env())
    acked = {}
    # Watchdog: a child that stops printing is killed, so the loop below ends.
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        target = rng.randint(1, 3000)
        deadline = time.monotonic() + 30
        for line in child.stdout:
            part, offset, i = map(int, line.split())
            acked[(part, offset)] = i
            if len(acked) >= target or time.monotonic() > deadline:
                break
        child.send_signal(signal.SIGKILL)
        # Acks printed before the kill landed still count: read the rest of the pipe.
        rest, _ = child.communicate(timeout=30)
        for line in rest.splitlines():
            if line.count(" ") == 2:
                part, offset, i = map(int, line.split())
                acked[(part, offset)] = i
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return acked


def check_store(path: str, all_acked: dict) -> dict:
    """Verify the reopened store against every round's acknowledgements."""
    figures = {"acked": 0, "lost_acked": 0, "duplicates": 0, "gaps": 0,
               "torn_values": 0, "order_violations": 0}
    with mqlog.open(path) as broker:
        broker._check()
        records = broker.messages("c")
        by_pos = {(r.partition, r.offset): r for r in records}
        seen_values = set()
        last = {}
        for r in records:
            tag = r.value.split(b":", 2)
            rnd, i = int(tag[0]), int(tag[1])
            if r.value != expected_value(rnd, i):
                figures["torn_values"] += 1
            if (rnd, i) in seen_values:
                figures["duplicates"] += 1
            seen_values.add((rnd, i))
            prev = last.get((r.partition, rnd))
            if prev is not None and i <= prev:
                figures["order_violations"] += 1
            last[(r.partition, rnd)] = i
        for p in range(3):
            offsets = sorted(off for part, off in by_pos if part == p)
            figures["gaps"] += sum(1 for a, b in zip(offsets, offsets[1:]) if b != a + 1)
            if offsets and offsets[0] != 0:
                figures["gaps"] += 1
        for rnd, acked in all_acked.items():
            for (part, offset), i in acked.items():
                figures["acked"] += 1
                r = by_pos.get((part, offset))
                if r is None or r.value != expected_value(rnd, i):
                    figures["lost_acked"] += 1
    return figures


@pytest.mark.parametrize("acks", ["1", "all"])
def test_sigkill_loses_no_acknowledged_record(tmp_path, acks, long_run):
    rounds = 30 if long_run else 4
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path = str(tmp_path / "store")
    all_acked = {}
    for rnd in range(rounds):
        all_acked[rnd] = run_round(path, rnd, acks, rng)
    figures = check_store(path, all_acked)
    print({"seed": seed, "rounds": rounds, "acks": acks, **figures})
    assert figures["acked"] > 0
    assert {k: v for k, v in figures.items() if k != "acked"} == {
        "lost_acked": 0, "duplicates": 0, "gaps": 0, "torn_values": 0,
        "order_violations": 0}, f"seed {seed}"
    # And the store still takes writes at the next offset.
    with mqlog.open(path) as broker:
        end = broker.consumer().end_offsets([mqlog.TopicPartition("c", 0)])
        with broker.producer() as p:
            assert p.send("c", b"after", partition=0).get(10).offset == end[
                mqlog.TopicPartition("c", 0)]
