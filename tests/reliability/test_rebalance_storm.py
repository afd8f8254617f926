"""Rebalance storm: members join and leave every 100-500 ms — closing cleanly, being
dropped without close(), or stalling into zombies — while records keep arriving.

Must hold: every record is processed (at-least-once), no partition is ever owned by two
members, zombie commits are refused, and committed offsets never go backwards.
"""

import gc
import random
import threading
import time

import pytest
from checker import report

import mqlog
from mqlog.errors import CommitFailedError

PARTITIONS = 6


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_rebalance_storm(tmp_path, strategy, long_run):
    seed = random.randrange(1 << 30)
    duration = 30.0 if long_run else 4.0
    processed = set()
    errors = []
    zombie_commits = {"refused": 0, "accepted": 0}
    backwards = []
    lock = threading.Lock()
    stop = threading.Event()
    with mqlog.open(str(tmp_path / "s"), cleaner_interval_ms=None) as broker:
        broker.create_topic("s", partitions=PARTITIONS)
        coord = broker._coordinator

        def member_life(rng):
            c = broker.consumer("s", group_id="storm", auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=50,
                                partition_assignment_strategy=[strategy],
                                max_poll_interval_ms=400)
            end = time.monotonic() + rng.uniform(0.1, 0.5)
            fate = rng.choice(["close", "close", "drop", "zombie"])
            try:
                while time.monotonic() < end and not stop.is_set():
                    batch = c.poll(timeout_ms=20)
                    coord._check()  # one owner per partition, at every step
                    for tp, recs in batch.items():
                        with lock:
                            processed.update((tp.partition, r.offset) for r in recs)
                    try:
                        c.commit()
                    except CommitFailedError:
                        pass  # lost its partitions to a rebalance meanwhile: fine
                if fate == "zombie":
                    owned = set(c.assignment())
                    # Stall past max_poll_interval_ms (unless the test is ending).
                    stalled = not stop.wait(0.6)
                    coord.describe("storm")  # runs the expiry even if the others idle
                    if owned and stalled:
                        try:
                            c.commit({tp: 0 for tp in owned})
                            zombie_commits["accepted"] += 1
                        except CommitFailedError:
                            zombie_commits["refused"] += 1
                    c.close(autocommit=False)
                elif fate == "close":
                    c.close()
                else:  # dropped without close(): leaves when collected
                    del c
                    gc.collect()
            except Exception as exc:  # handed to the test
                errors.append(repr(exc))

        def churn(worker):
            rng = random.Random(seed + worker)
            while not stop.is_set():
                member_life(rng)

        def watch_commits():
            last = {}
            while not stop.is_set():
                for tp, om in broker.group_offsets("storm").items():
                    if om.offset < last.get(tp, 0):
                        backwards.append((tp, last[tp], om.offset))
                    last[tp] = om.offset
                stop.wait(0.01)  # sampling period

        producer = broker.producer()
        threads = [threading.Thread(target=churn, args=(w,), daemon=True) for w in range(4)]
        threads.append(threading.Thread(target=watch_commits, daemon=True))
        for t in threads:
            t.start()
        sent = 0
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline and not errors:
            for _ in range(60):
                producer.send("s", b"%d" % sent, partition=sent % PARTITIONS)
                sent += 1
            producer.flush()
            stop.wait(0.02)  # pacing the producer
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        # Whatever is left is read by one last member from the committed offsets.
        last = broker.consumer("s", group_id="storm", auto_offset_reset="earliest",
                               partition_assignment_strategy=[strategy])
        idle = 0
        while idle < 10:
            batch = last.poll(timeout_ms=50)
            idle = 0 if batch else idle + 1
            for tp, recs in batch.items():
                processed.update((tp.partition, r.offset) for r in recs)
        last.close()
    everything = {(i % PARTITIONS, i // PARTITIONS) for i in range(sent)}
    lost = len(everything - processed)
    report("rebalance_storm", strategy=strategy, seed=seed, records=sent, lost=lost,
           zombie_commits_refused=zombie_commits["refused"],
           zombie_commits_accepted=zombie_commits["accepted"],
           commits_backwards=len(backwards), errors=len(errors))
    assert errors == [], errors[:3]
    assert lost == 0, f"seed {seed}"
    assert zombie_commits["accepted"] == 0 and backwards == [], f"seed {seed}"
