"""Thread soak: 8 producer and 8 consumer threads in 3 groups, retention on, for a
bounded time (6 s; 60 s with --long), under a stall watchdog.

Must hold: no stall over 5 s; every acknowledged record is consumed by every group (none
expires unseen); each key's records arrive in order; the data file stays within 1.5x its
size after the first retention cycle.
"""

import faulthandler
import os
import sys
import threading
import time

from checker import parse, payload, report

import mqlog
from mqlog.errors import CommitFailedError

GROUPS = {"g0": 3, "g1": 3, "g2": 2}
PARTITIONS = 8


def test_thread_soak(tmp_path, long_run):
    duration = 60.0 if long_run else 6.0
    path = str(tmp_path / "soak")
    faulthandler.dump_traceback_later(duration + 120, exit=False, file=sys.stderr)
    stop = threading.Event()
    producing = threading.Event()
    producing.set()
    acked = {}
    acked_lock = threading.Lock()
    seen = {g: [] for g in GROUPS}
    seen_lock = threading.Lock()
    last_progress = [time.monotonic()]
    stalls = []
    errors = []
    sizes = []
    try:
        with mqlog.open(path, cleaner_interval_ms=250) as broker:
            broker.create_topic("soak", partitions=PARTITIONS,
                                config={"retention.ms": 2500})

            def produce(w):
                try:
                    with broker.producer() as p:
                        i = 0
                        while producing.is_set():
                            def ack(i, md):
                                with acked_lock:
                                    acked[(md.partition, md.offset)] = (w, i)
                                last_progress[0] = time.monotonic()
                            p.send("soak", payload(w, i), key=b"w%d-k%d" % (w, i % 16)) \
                                .add_callback(ack, i)
                            i += 1
                            if i % 100 == 0:
                                p.flush()
                                # Pacing: ~1,000 records/s per producer, so three groups
                                # can keep up well within retention.ms.
                                stop.wait(0.1)
                except Exception as exc:  # handed to the test
                    errors.append(repr(exc))

            def consume(group):
                try:
                    c = broker.consumer("soak", group_id=group, auto_offset_reset="earliest",
                                        enable_auto_commit=False, max_poll_records=200)
                    while not stop.is_set():
                        batch = c.poll(timeout_ms=50)
                        if batch:
                            last_progress[0] = time.monotonic()
                            with seen_lock:
                                for tp, recs in batch.items():
                                    seen[group].extend(
                                        (tp.partition, r.offset, parse(r.value), r.key)
                                        for r in recs)
                            try:
                                c.commit()
                            except CommitFailedError:
                                pass  # a rebalance took the partitions: re-read later
                    c.close()
                except Exception as exc:  # handed to the test
                    errors.append(repr(exc))

            def watch():
                data = os.path.join(path, "data.mdb")
                while not stop.is_set():
                    gap = time.monotonic() - last_progress[0]
                    if gap > 5:
                        stalls.append(gap)
                    sizes.append((broker._topics["soak"].partitions[0].log_start > 0,
                                  os.path.getsize(data)))
                    stop.wait(0.1)  # sampling period

            threads = [threading.Thread(target=produce, args=(w,), daemon=True)
                       for w in range(8)]
            threads += [threading.Thread(target=consume, args=(g,), daemon=True)
                        for g, n in GROUPS.items() for _ in range(n)]
            watcher = threading.Thread(target=watch, daemon=True)
            for t in threads + [watcher]:
                t.start()
            stop.wait(duration)  # the soak itself
            producing.clear()
            for t in threads[:8]:
                t.join(60)
            # Let the groups drain what was produced, then stop everyone.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with seen_lock, acked_lock:
                    if all(len({(p, o) for p, o, _, _ in seen[g]}) >= len(acked)
                           for g in GROUPS):
                        break
                stop.wait(0.05)
            stop.set()
            for t in threads[8:] + [watcher]:
                t.join(60)
                assert not t.is_alive()
    finally:
        faulthandler.cancel_dump_traceback_later()
    figures = {}
    for g in GROUPS:
        got = {(p, o) for p, o, _, _ in seen[g]}
        figures[f"{g}_lost"] = sum(1 for pos in acked if pos not in got)
        order = 0
        last = {}
        firsts = set()
        for p, o, ident, key in seen[g]:
            if (p, o) in firsts or ident is None:
                continue  # a re-delivery after a rebalance: order is judged on firsts
            firsts.add((p, o))
            if key in last and ident[1] <= last[key]:
                order += 1
            last[key] = ident[1]
        figures[f"{g}_order_violations"] = order
    after_first = [size for retained, size in sizes if retained]
    growth = (sizes[-1][1] / after_first[0]) if after_first else 0.0
    report("thread_soak", seconds=duration, acked=len(acked), errors=len(errors),
           stalls=len(stalls), file_growth_after_first_retention=round(growth, 2),
           retention_cycles=bool(after_first), **figures)
    assert errors == [], errors[:3]
    assert stalls == []
    assert all(v == 0 for v in figures.values()), figures
    assert after_first, "retention never ran during the soak"
    assert growth <= 1.5
