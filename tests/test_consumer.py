"""Consumer: assignment, poll, positions, seeks, offsets, commits, wake-ups."""

import threading
import time

import pytest

import mqlog
from mqlog import OffsetAndMetadata, TopicPartition
from mqlog.errors import (
    ClosedError,
    IllegalStateError,
    InvalidConfigError,
    OffsetOutOfRangeError,
    UnknownTopicOrPartitionError,
)

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def produce(broker, n, topic="t", partition=0, **kw):
    with broker.producer() as p:
        return [p.send(topic, b"v%d" % i, partition=partition, **kw).get(10)
                for i in range(n)]


def consumer(broker, *tps, **kw):
    kw.setdefault("auto_offset_reset", "earliest")
    c = broker.consumer(**kw)
    c.assign(list(tps) or [TP0])
    return c


def drain(c, timeout_ms=100):
    out = []
    while True:
        got = c.poll(timeout_ms=timeout_ms)
        if not got:
            return out
        for recs in got.values():
            out.extend(recs)


def test_poll_returns_records_in_order(broker):
    produce(broker, 20)
    c = consumer(broker)
    recs = drain(c)
    assert [r.offset for r in recs] == list(range(20))
    assert [r.value for r in recs] == [b"v%d" % i for i in range(20)]
    assert recs[0].topic == "t" and recs[0].partition == 0 and recs[0].timestamp_type == 0
    assert c.position(TP0) == 20


def test_max_records_and_max_poll_records(broker):
    produce(broker, 50)
    c = consumer(broker, max_poll_records=7)
    assert len(c.poll(timeout_ms=100)[TP0]) == 7
    assert len(c.poll(timeout_ms=100, max_records=3)[TP0]) == 3
    assert c.position(TP0) == 10


def test_poll_spreads_over_partitions(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, 100, partition=0)
    produce(broker, 100, partition=1)
    c = consumer(broker, TP0, TP1, max_poll_records=50)
    first = c.poll(timeout_ms=100)
    second = c.poll(timeout_ms=100)
    assert set(first) | set(second) == {TP0, TP1}  # no partition starves


def test_small_polls_over_large_batches(broker):
    with broker.producer() as p:
        p.send_batch("t", [b"%d" % i for i in range(5000)], partition=0).get(10)
    c = consumer(broker, max_poll_records=3)
    seen = [r.offset for r in drain(c)]
    assert seen == list(range(5000))


def test_poll_without_assignment(broker):
    c = broker.consumer()
    with pytest.raises(IllegalStateError, match="assign"):
        c.poll()


def test_assign_unknown_partition(broker):
    broker.create_topic("t")
    c = broker.consumer()
    with pytest.raises(UnknownTopicOrPartitionError):
        c.assign([TopicPartition("t", 3)])
    with pytest.raises(UnknownTopicOrPartitionError):
        c.assign([TopicPartition("missing", 0)])
    with pytest.raises(TypeError):
        c.assign(["t"])


def test_poll_timeout_is_honoured(broker):
    broker.create_topic("t")
    c = consumer(broker)
    start = time.monotonic()
    assert c.poll(timeout_ms=200) == {}
    elapsed = time.monotonic() - start
    assert 0.15 <= elapsed < 5  # waited, and did not hang


def test_blocking_poll_wakes_on_produce(broker):
    broker.create_topic("t")
    c = consumer(broker)
    result = {}

    def poll():
        start = time.monotonic()
        result["records"] = c.poll(timeout_ms=20_000)
        result["waited"] = time.monotonic() - start

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    t.join(0.2)
    assert t.is_alive()  # blocked waiting for data
    with broker.producer() as p:
        p.send("t", b"wake")
    t.join(10)
    assert not t.is_alive()
    assert [r.value for r in result["records"][TP0]] == [b"wake"]
    assert result["waited"] < 10  # woken by the commit, not by the 20 s timeout


def test_wakeup_interrupts_poll_and_iteration(broker):
    broker.create_topic("t")
    c = consumer(broker)
    out = {}

    def poll():
        out["poll"] = c.poll(timeout_ms=30_000)
        out["iter"] = list(c)  # consumer_timeout_ms=None: would block forever

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    t.join(0.2)
    c.wakeup()
    deadline = time.monotonic() + 10
    while "poll" not in out and time.monotonic() < deadline:
        t.join(0.05)
    assert out.get("poll") == {}
    t.join(0.2)
    c.wakeup()
    t.join(10)
    assert not t.is_alive() and out["iter"] == []


def test_iteration_stops_after_consumer_timeout(broker):
    produce(broker, 5)
    c = consumer(broker, consumer_timeout_ms=200)
    start = time.monotonic()
    assert [r.offset for r in c] == [0, 1, 2, 3, 4]
    assert time.monotonic() - start < 10


def test_iteration_positions_advance_per_record(broker):
    produce(broker, 10)
    c = consumer(broker, group_id="g", enable_auto_commit=False, consumer_timeout_ms=100)
    it = iter(c)
    next(it), next(it), next(it)
    assert c.position(TP0) == 3
    c.commit()
    assert c.committed(TP0) == 3  # only what was handed out is committed


def test_seek_and_seek_to(broker):
    produce(broker, 10)
    c = consumer(broker)
    c.seek(TP0, 7)
    assert [r.offset for r in drain(c)] == [7, 8, 9]
    c.seek_to_beginning()
    assert c.position(TP0) == 0
    c.seek_to_end(TP0)
    assert c.position(TP0) == 10
    assert c.poll(timeout_ms=0) == {}
    with pytest.raises(IllegalStateError, match="not assigned"):
        c.seek(TP1, 0)
    with pytest.raises(ValueError, match="seek offset -1"):
        c.seek(TP0, -1)


@pytest.mark.parametrize("reset, expected", [("earliest", list(range(10))),
                                             ("latest", [])])
def test_seek_past_end_applies_reset(broker, reset, expected):
    produce(broker, 10)
    c = consumer(broker, auto_offset_reset=reset)
    c.seek(TP0, 500)  # accepted lazily, as Kafka does
    assert [r.offset for r in drain(c)] == expected
    assert c.position(TP0) == 10


def test_reset_none_raises(broker):
    produce(broker, 3)
    c = consumer(broker, auto_offset_reset="none", group_id="g")
    with pytest.raises(OffsetOutOfRangeError, match="no committed offset for t\\[0\\]") as e:
        c.poll()
    assert e.value.partitions == {TP0: 3}
    c.seek(TP0, 99)
    with pytest.raises(OffsetOutOfRangeError, match="offset 99 is out of range.*0..3"):
        c.poll()
    c.seek(TP0, 1)
    assert [r.offset for r in drain(c)] == [1, 2]


def test_latest_starts_at_end(broker):
    produce(broker, 5)
    c = consumer(broker, auto_offset_reset="latest")
    assert c.poll(timeout_ms=0) == {}
    produce(broker, 1)
    assert [r.offset for r in drain(c)] == [5]


def test_pause_resume(broker):
    broker.create_topic("t", partitions=2)
    produce(broker, 3, partition=0)
    produce(broker, 3, partition=1)
    c = consumer(broker, TP0, TP1)
    c.pause(TP1)
    assert c.paused() == {TP1}
    assert {r.partition for r in drain(c)} == {0}
    c.resume(TP1)
    assert c.paused() == set()
    assert {r.partition for r in drain(c)} == {1}


def test_beginning_end_offsets(broker):
    produce(broker, 4)
    c = consumer(broker)
    assert c.beginning_offsets([TP0]) == {TP0: 0}
    assert c.end_offsets([TP0]) == {TP0: 4}


def test_offsets_for_times(broker):
    broker.create_topic("t")
    with broker.producer() as p:
        for i, ts in enumerate([1000, 2000, 1500, 3000, 3000, 5000]):
            p.send("t", b"%d" % i, timestamp_ms=ts)
            p.flush()  # one batch per record: exercises the index across batches
    c = consumer(broker)
    found = c.offsets_for_times({TP0: 1500})[TP0]
    assert (found.offset, found.timestamp) == (1, 2000)  # first offset with ts >= 1500
    assert c.offsets_for_times({TP0: 0})[TP0].offset == 0
    assert c.offsets_for_times({TP0: 3000})[TP0].offset == 3
    assert c.offsets_for_times({TP0: 4999})[TP0] == mqlog.OffsetAndTimestamp(5, 5000, -1)
    assert c.offsets_for_times({TP0: 5001})[TP0] is None
    with pytest.raises(ValueError):
        c.offsets_for_times({TP0: -1})


def test_offsets_for_times_within_one_batch(broker):
    with broker.producer(linger_ms=60_000) as p:
        for i, ts in enumerate([10, 20, 30, 40]):
            p.send("t", b"%d" % i, timestamp_ms=ts)
    c = consumer(broker)
    assert c.offsets_for_times({TP0: 25})[TP0].offset == 2


def test_deserializers(broker):
    with broker.producer() as p:
        p.send("t", b"42", key=b"k")
        p.send("t", None, key=b"k2")
    c = consumer(broker, key_deserializer=bytes.decode, value_deserializer=int)
    recs = drain(c)
    assert [(r.key, r.value) for r in recs] == [("k", 42), ("k2", None)]


def test_commit_and_committed(broker):
    produce(broker, 10)
    c = consumer(broker, group_id="g", enable_auto_commit=False)
    assert c.committed(TP0) is None
    drain(c)
    c.commit()
    assert c.committed(TP0) == 10
    c.commit({TP0: OffsetAndMetadata(4, "meta")})
    assert c.committed(TP0, metadata=True) == OffsetAndMetadata(4, "meta", -1)
    c.close()
    c2 = consumer(broker, group_id="g", auto_offset_reset="latest")
    assert [r.offset for r in drain(c2)][:1] == [4]  # resumes at the committed offset
    other = consumer(broker, group_id="other")
    assert other.committed(TP0) is None  # groups are independent


def test_commit_async_callback(broker):
    produce(broker, 3)
    c = consumer(broker, group_id="g", enable_auto_commit=False)
    drain(c)
    calls = []
    job = c.commit_async(callback=lambda offsets, exc: calls.append((offsets, exc)))
    job.wait(10)
    c.poll(timeout_ms=0)  # callbacks run in the consumer's own thread
    assert calls == [({TP0: OffsetAndMetadata(3, "", -1)}, None)]
    assert c.committed(TP0) == 3


def test_commit_needs_group(broker):
    produce(broker, 1)
    c = consumer(broker)
    with pytest.raises(IllegalStateError, match="group_id"):
        c.commit()
    with pytest.raises(IllegalStateError, match="group_id"):
        c.committed(TP0)


def test_commit_unknown_partition(broker):
    produce(broker, 1)
    c = consumer(broker, group_id="g")
    with pytest.raises(UnknownTopicOrPartitionError):
        c.commit({TopicPartition("t", 9): 1})
    with pytest.raises(ValueError):
        c.commit({TP0: -3})


def test_auto_commit_on_close_and_interval(broker):
    produce(broker, 5)
    c = consumer(broker, group_id="g", auto_commit_interval_ms=1)
    drain(c)
    time.sleep(0.01)  # let the 1 ms interval lapse (not synchronisation)
    c.poll(timeout_ms=0)  # auto-commit happens at the start of poll
    c._run_commit_callbacks(wait=True)
    assert broker.committed_offset("g", TP0).offset == 5
    produce(broker, 2)
    drain(c)
    c.close()
    assert broker.committed_offset("g", TP0).offset == 7
    c2 = consumer(broker, group_id="g2", enable_auto_commit=False)
    drain(c2)
    c2.close()
    assert broker.committed_offset("g2", TP0) is None
    c3 = consumer(broker, group_id="g3")
    drain(c3)
    c3.close(autocommit=False)
    assert broker.committed_offset("g3", TP0) is None


def test_close_is_idempotent(broker):
    c = broker.consumer()
    c.close()
    c.close()
    with pytest.raises(ClosedError):
        c.poll()


def test_bad_config(broker):
    with pytest.raises(InvalidConfigError, match="auto_offset_reset='first'"):
        broker.consumer(auto_offset_reset="first")
    with pytest.raises(InvalidConfigError, match="max_poll_records"):
        broker.consumer(max_poll_records=0)
    with pytest.raises(InvalidConfigError, match="isolation_level"):
        broker.consumer(isolation_level="dirty")


def test_deleted_topic_is_skipped(broker):
    broker.create_topic("a")
    produce(broker, 2, topic="a")
    produce(broker, 2)
    c = consumer(broker, TopicPartition("a", 0), TP0)
    broker.delete_topic("a")
    assert {r.topic for r in drain(c)} == {"t"}


def test_cached_batch_not_reused_after_topic_recreate(broker):
    with broker.producer() as p:
        p.send_batch("t", [b"old-%d" % i for i in range(100)], partition=0).get(10)
    c = consumer(broker, max_poll_records=50)
    assert c.poll(timeout_ms=100)[TP0][-1].value == b"old-49"
    broker.delete_topic("t")
    broker.create_topic("t")
    with broker.producer() as p:
        p.send_batch("t", [b"new-%d" % i for i in range(80)], partition=0).get(10)
    c.seek(TP0, 50)
    assert [r.value for r in drain(c)] == [b"new-%d" % i for i in range(50, 80)]


def test_auto_commit_skips_deleted_partitions(broker):
    broker.create_topic("a")
    produce(broker, 2)
    c = consumer(broker, TopicPartition("a", 0), TP0, group_id="g",
                 auto_commit_interval_ms=1)
    drain(c)
    broker.delete_topic("a")
    c._next_auto_commit = 0  # the interval has passed
    c.poll(timeout_ms=0)  # must not raise for the deleted topic
    c.close()
    assert broker.committed_offset("g", TP0).offset == 2


def test_readonly_consumer_does_not_auto_commit(tmp_path):
    path = str(tmp_path / "d")
    with mqlog.open(path) as b:
        with b.producer() as p:
            p.send("t", b"x")
    from helpers import run_python

    out = run_python(
        "import sys, mqlog\n"
        "b = mqlog.open(sys.argv[1], readonly=True)\n"
        "c = b.consumer(group_id='g', auto_offset_reset='earliest', auto_commit_interval_ms=1)\n"
        "c.assign([mqlog.TopicPartition('t', 0)])\n"
        "n = sum(len(v) for v in c.poll(timeout_ms=500).values())\n"
        "c._next_auto_commit = 0\n"
        "c.poll(timeout_ms=0)\n"
        "c.close()\n"
        "print(n)\n", path)
    assert out.stdout.strip() == "1"


def test_consumer_timeout_zero_is_allowed(broker):
    produce(broker, 2)
    c = consumer(broker, consumer_timeout_ms=0)
    assert [r.offset for r in c] == [0, 1]
