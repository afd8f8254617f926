"""The consume-transform-produce helper: outputs, guarantees, failures, stopping."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest
from helpers import child_env, run_in_thread

import mqlog
from mqlog.errors import InvalidConfigError


def fill(broker, n: int, partitions: int = 3, topic: str = "in") -> list[bytes]:
    broker.create_topic(topic, partitions)
    p = broker.producer()
    values = [b"%d" % i for i in range(n)]
    for i, v in enumerate(values):
        p.send(topic, v, key=b"k%d" % (i % 7))
    p.flush()
    return values


def committed_output(broker, topic: str = "out") -> list[mqlog.ConsumerRecord]:
    """Every committed record of ``topic`` (a read_committed consumer, from the start)."""
    c = broker.consumer(isolation_level="read_committed", auto_offset_reset="earliest")
    tps = [mqlog.TopicPartition(topic, p) for p in range(broker.topics()[topic].partitions)]
    c.assign(tps)
    out = []
    while True:
        got = c.poll(timeout_ms=0, max_records=100_000)
        if not got:
            break
        for recs in got.values():
            out.extend(recs)
    c.close()
    return out


def test_exactly_once_transforms_every_record_once(broker):
    values = fill(broker, 1200)
    stats = mqlog.pipeline(broker, "in", "out", "etl", lambda r: r.value + b"!",
                           idle_timeout_ms=200, max_records=250)
    assert stats.inputs == stats.outputs == 1200
    assert stats.transactions >= 1200 // 250 and stats.aborted == 0 and stats.lag == 0
    out = committed_output(broker)
    assert sorted(r.value for r in out) == sorted(v + b"!" for v in values)
    # Keys are kept, so per-key order carries over to the sink.
    by_key: dict = {}
    for r in sorted(out, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(r.key, []).append(int(r.value[:-1]))
    assert all(seq == sorted(seq) for seq in by_key.values())
    ends = {tp: off for tp, off in broker.admin().lag("etl").items()}
    assert all(g.lag == 0 for g in ends.values())
    broker._check()


def test_transform_shapes_none_value_pair_and_list(broker):
    fill(broker, 30, partitions=1)

    def transform(r):
        n = int(r.value)
        if n % 3 == 0:
            return None
        if n % 3 == 1:
            return (b"new", r.value)
        return [r.value, (b"x", b"y")]

    stats = mqlog.pipeline(broker, "in", "out", "etl", transform, idle_timeout_ms=100)
    assert stats.inputs == 30 and stats.outputs == 10 + 2 * 10
    out = committed_output(broker)
    assert Counter(r.key for r in out)[b"new"] == 10
    assert Counter(r.key for r in out)[b"x"] == 10


def test_a_failing_transform_aborts_rewinds_and_raises(broker):
    fill(broker, 100, partitions=1)
    seen = Counter()

    def flaky(r):
        seen[r.value] += 1
        if r.value == b"57" and seen[r.value] == 1:
            raise RuntimeError("boom")
        return r.value

    with pytest.raises(RuntimeError, match="boom"):
        mqlog.pipeline(broker, "in", "out", "etl", flaky, idle_timeout_ms=100,
                       max_records=20)
    # The failed transaction's outputs are invisible; a rerun redoes exactly them.
    assert len(committed_output(broker)) == 40
    stats = mqlog.pipeline(broker, "in", "out", "etl", flaky, idle_timeout_ms=100)
    out = committed_output(broker)
    assert sorted(int(r.value) for r in out) == list(range(100))
    assert stats.inputs == 60


@pytest.mark.parametrize("guarantee", ["at_least_once", "at_most_once"])
def test_other_guarantees_process_everything_when_nothing_fails(broker, guarantee):
    values = fill(broker, 300)
    stats = mqlog.pipeline(broker, "in", "out", "etl", lambda r: r.value,
                           guarantee=guarantee, idle_timeout_ms=150)
    assert stats.inputs == stats.outputs == 300
    assert sorted(r.value for r in broker.messages("out")) == sorted(values)
    assert broker.admin().lag("etl") and all(
        g.lag == 0 for g in broker.admin().lag("etl").values())


def test_parallel_pipelines_in_one_group_share_the_work_exactly_once(broker):
    values = fill(broker, 3000, partitions=4)
    pipes = [mqlog.Pipeline(broker, "in", "out", "etl", lambda r: r.value,
                            max_records=50) for _ in range(3)]
    runs = [run_in_thread(lambda p=p: p.run(idle_timeout_ms=800)) for p in pipes]
    for t, box in runs:
        t.join(60)
        assert not t.is_alive() and "error" not in box, box
    out = committed_output(broker)
    assert Counter(r.value for r in out) == Counter(values)  # each once, despite rebalances
    assert sum(box["result"].inputs for _, box in runs) == 3000


def test_stop_from_another_thread_ends_at_a_transaction_boundary(broker):
    fill(broker, 50, partitions=1)
    pipe = mqlog.Pipeline(broker, "in", "out", "etl", lambda r: r.value)
    progressed = threading.Event()
    pipe._on_progress = lambda stats: progressed.set() if stats.inputs else None
    pipe._progress_interval = 0
    t, box = run_in_thread(pipe.run)
    assert progressed.wait(10)
    pipe.stop()
    t.join(10)
    assert not t.is_alive() and box["result"].inputs == 50
    assert box["result"].lag == 0 and pipe.consumer is None  # closed: left the group
    assert not broker.admin().describe_consumer_groups(["etl"])["etl"].members


def test_bad_settings_are_refused(broker):
    with pytest.raises(InvalidConfigError, match="guarantee"):
        mqlog.Pipeline(broker, "in", "out", "etl", str, guarantee="twice")
    with pytest.raises(InvalidConfigError, match="transform"):
        mqlog.Pipeline(broker, "in", "out", "etl", None)
    with pytest.raises(InvalidConfigError, match="group_id"):
        mqlog.Pipeline(broker, "in", "out", "", str)


SIGTERM_CHILD = r"""
import sys, mqlog
broker = mqlog.open(sys.argv[1])
def transform(r):
    if r.offset == 5:
        print("working", flush=True)
    return r.value
stats = mqlog.pipeline(broker, "in", "out", "etl", transform, max_records=10)
print("stopped", stats.inputs, flush=True)
broker.close()
"""


def test_sigterm_stops_gracefully_committing_the_current_transaction(data_dir):
    with mqlog.open(data_dir) as b:
        fill(b, 2000, partitions=2)
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_CHILD, data_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())
    try:
        assert proc.stdout.readline().strip() == "working"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    inputs = int(out.split()[-1])
    with mqlog.open(data_dir) as b:
        out_records = committed_output(b)
        committed = sum(om.offset for om in b.group_offsets("etl").values())
        # Everything committed is output exactly once, and nothing more.
        assert committed == inputs == len(out_records)
        assert len({r.value for r in out_records}) == len(out_records)
        assert all(not plog.open_txns for plog in b._topics["out"].partitions)


def test_chained_pipelines_reach_zero_lag_on_a_transactional_source(broker):
    values = fill(broker, 400, partitions=2)
    first = mqlog.pipeline(broker, "in", "mid", "one", lambda r: r.value,
                           idle_timeout_ms=150, max_records=64)
    second = mqlog.pipeline(broker, "mid", "out", "two", lambda r: r.value + b"'",
                            idle_timeout_ms=150, max_records=64)
    assert first.inputs == second.inputs == 400
    # "mid" holds commit markers after the records; the committed offsets are past
    # them (the consumer's position), so the second group has no lag of one per
    # partition (a classic of offsets taken as last record + 1).
    assert second.lag == 0
    assert all(g.lag == 0 for g in broker.admin().lag("two").values())
    assert sorted(r.value for r in committed_output(broker)) == sorted(
        v + b"'" for v in values)
