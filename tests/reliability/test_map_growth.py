"""Map growth under load: a tiny initial map, 50 MiB written by several producer
threads while consumer threads read; the map grows many times with no error, no stall
over 1 s and nothing lost."""

import threading
import time

from checker import assert_clean, check, payload, report

import mqlog
from mqlog import TopicPartition


def test_map_grows_under_concurrent_writes_and_reads(tmp_path, long_run):
    total_bytes = (200 if long_run else 50) << 20
    writers, readers = 4, 3
    per_writer = total_bytes // writers // 1100
    path = str(tmp_path / "store")
    acked = {}
    acked_lock = threading.Lock()
    progress = []  # monotonic times of acknowledgements and reads
    errors = []
    with mqlog.open(path, map_size=256 * 1024, cleaner_interval_ms=None) as broker:
        broker.create_topic("g", partitions=4)
        start_size = broker._store.map_size()
        done = threading.Event()

        def write(w):
            try:
                with broker.producer() as p:
                    def on_ack(i, md):
                        with acked_lock:
                            acked[(md.partition, md.offset)] = (w, i)
                        progress.append(time.monotonic())
                    for i in range(per_writer):
                        p.send("g", payload(w, i) + b"." * 1000, partition=w % 4) \
                            .add_callback(on_ack, i)
            except Exception as exc:  # handed to the test
                errors.append(repr(exc))

        def read(r):
            try:
                c = broker.consumer(auto_offset_reset="earliest")
                c.assign([TopicPartition("g", p) for p in range(4)])
                while not done.is_set():
                    if c.poll(timeout_ms=50):
                        progress.append(time.monotonic())
                c.close()
            except Exception as exc:  # handed to the test
                errors.append(repr(exc))

        ws = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        rs = [threading.Thread(target=read, args=(r,)) for r in range(readers)]
        began = time.monotonic()
        for t in ws + rs:
            t.start()
        for t in ws:
            t.join(300)
        done.set()
        for t in rs:
            t.join(30)
        elapsed = time.monotonic() - began
        events = sorted(progress)
        stall = max((b - a for a, b in zip(events, events[1:])), default=0.0)
        grown = broker._store.map_size() // start_size
        records = [r._replace(value=r.value.rstrip(b".")) for r in broker.messages("g")]
        figures = check(records, acked)
    report("map_growth", written_mib=total_bytes >> 20, map_growth_factor=grown,
           max_stall_s=round(stall, 3), seconds=round(elapsed, 1), errors=len(errors),
           **figures)
    assert errors == []
    assert figures["acked"] == writers * per_writer
    assert_clean(figures, "map growth")
    assert grown >= 64  # the map really grew, many times
    assert stall < 1.0
