"""Consumer kill -9: a process that owns the store and consumes in a group is killed
mid-batch, restarted, and the group resumes.

Three commit patterns: ``manual`` (process, then commit: at-least-once), ``auto``
(auto-commit: at-least-once) and ``before`` (commit, then process: at-most-once). The
child prints ``proc P O`` after processing each record and ``commit P O`` after each
commit returns. Checks: at-least-once loses nothing; after every restart each partition
resumes exactly at its committed offset; duplicates only inside the window between the
last commit and the kill; at-most-once processes nothing twice.
"""

import random
import signal
import subprocess
import sys
import threading

import pytest
from checker import report
from helpers import child_env, finish

import mqlog
from mqlog import TopicPartition

PARTITIONS, PER_PARTITION = 3, 400

CHILD = r"""
import sys, mqlog
path, mode = sys.argv[1], sys.argv[2]
broker = mqlog.open(path)
c = broker.consumer("k", group_id="g", auto_offset_reset="earliest",
                    enable_auto_commit=(mode == "auto"), auto_commit_interval_ms=20,
                    max_poll_records=7)
out = sys.stdout
idle = 0
while idle < 20:
    batch = c.poll(timeout_ms=50)
    if not batch:
        idle += 1
        continue
    idle = 0
    if mode == "before":
        c.commit()
        for tp in batch:
            out.write(f"commit {tp.partition} {c.position(tp)}\n")
        out.flush()
    for tp, recs in batch.items():
        for r in recs:
            out.write(f"proc {r.partition} {r.offset}\n")
            out.flush()
    if mode == "manual":
        c.commit()
        for tp in batch:
            out.write(f"commit {tp.partition} {c.position(tp)}\n")
        out.flush()
c.close()
print("done", flush=True)
"""


def run_child(path, mode, kill_after, rng):
    """Run one child; kill it after ``kill_after`` processed records (None: let it
    finish). Returns (processed [(p, o)], finished)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, path, mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=child_env())
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    processed = []
    finished = False
    try:
        for line in child.stdout:
            if line.startswith("proc "):
                _, p, o = line.split()
                processed.append((int(p), int(o)))
                if kill_after is not None and len(processed) >= kill_after:
                    child.send_signal(signal.SIGKILL)
                    break
            elif line.strip() == "done":
                finished = True
        rest, err = finish(child)
        for line in rest.splitlines():
            if line.startswith("proc "):
                _, p, o = line.split()
                processed.append((int(p), int(o)))
            elif line.strip() == "done":
                finished = True
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert finished or child.returncode == -signal.SIGKILL, err
    return processed, finished


def committed(path):
    with mqlog.open(path) as b:
        return {p: (om.offset if (om := b.committed_offset("g", TopicPartition("k", p)))
                    else 0) for p in range(PARTITIONS)}


@pytest.mark.parametrize("mode", ["manual", "auto", "before"])
def test_consumer_kill9_resumes_from_committed(tmp_path, mode, long_run):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path = str(tmp_path / "store")
    with mqlog.open(path) as b:
        b.create_topic("k", partitions=PARTITIONS)
        with b.producer() as p:
            for part in range(PARTITIONS):
                p.send_batch("k", [b"%d" % i for i in range(PER_PARTITION)],
                             partition=part).get(30)
    everything = {(p, o) for p in range(PARTITIONS) for o in range(PER_PARTITION)}
    seen: list = []
    kills = 0
    resume_errors = 0
    window_violations = 0
    for _ in range(200):
        before = committed(path)
        kill_after = rng.randint(1, 150) if kills < (12 if long_run else 5) else None
        processed, finished = run_child(path, mode, kill_after, rng)
        # Resume exactly at the committed offset, per partition.
        firsts = {}
        for p, o in processed:
            firsts.setdefault(p, o)
        resume_errors += sum(1 for p, o in firsts.items() if o != before[p])
        # A record processed again must lie in the window after the last commit.
        done_before = set(seen)
        window_violations += sum(1 for p, o in processed
                                 if (p, o) in done_before and o < before[p])
        seen.extend(processed)
        if finished:
            break
        kills += 1
    counts = {}
    for item in seen:
        counts[item] = counts.get(item, 0) + 1
    lost = len(everything - set(seen))
    duplicates = sum(n - 1 for n in counts.values())
    report("consumer_kill9", mode=mode, seed=seed, kills=kills, records=len(everything),
           lost=lost, duplicates=duplicates, resume_errors=resume_errors,
           window_violations=window_violations)
    assert kills >= 1 and resume_errors == 0 and window_violations == 0, f"seed {seed}"
    if mode == "before":  # at-most-once: never twice; losses only from the kill windows
        assert duplicates == 0, f"seed {seed}"
    else:  # at-least-once: nothing lost
        assert lost == 0, f"seed {seed}"
