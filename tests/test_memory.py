"""Memory stays bounded: backpressure on produce, max_poll_records on consume.

Measured in a child process as private anonymous memory (RssAnon): LMDB's mapped file
pages are shared file-backed pages and do not count.
"""

import json
import sys

import pytest

from helpers import run_python

CHILD = r"""
import json, os, sys, threading, mqlog

def rss_anon():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon")

peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_anon())
        stop.wait(0.005)  # a sampling period, not synchronisation

n = int(sys.argv[1])
broker = mqlog.open()
broker.create_topic("m", partitions=3)
value = os.urandom(100)
producer = broker.producer()
producer.send("m", value).get(10)
base = rss_anon()
t = threading.Thread(target=sample, daemon=True)
t.start()
send = producer.send
for i in range(n):
    send("m", value)
producer.flush()
stop.set(); t.join()
produce_peak = peak[0] - base

consumer = broker.consumer(auto_offset_reset="earliest", max_poll_records=500)
consumer.assign([mqlog.TopicPartition("m", p) for p in range(3)])
base = rss_anon()
peak[0] = 0
stop.clear()
t = threading.Thread(target=sample, daemon=True)
t.start()
count = 0
while True:
    got = consumer.poll(timeout_ms=0)
    if not got:
        break
    for recs in got.values():
        count += len(recs)
stop.set(); t.join()
print(json.dumps({"records": n, "produce_peak_mib": produce_peak / 2**20,
                  "consume_peak_mib": (peak[0] - base) / 2**20, "consumed": count}))
broker.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_produce_and_consume_memory_is_bounded():
    n = 1_000_000
    proc = run_python(CHILD, str(n), timeout=300)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["consumed"] == n + 1
    assert figures["produce_peak_mib"] <= 100, figures
    assert figures["consume_peak_mib"] <= 50, figures
