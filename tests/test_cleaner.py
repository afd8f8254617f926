"""Retention, compaction and delete_records."""

import os
import time

import pytest
from helpers import in_one_transaction

import mqlog
from mqlog import TopicPartition, batch
from mqlog.errors import OffsetOutOfRangeError

TP0 = TopicPartition("t", 0)
DAY = 86_400_000


def now_ms():
    return time.time_ns() // 1_000_000


def produce(broker, topic, items, **kw):
    """items: (key, value, timestamp); one batch per call (flush after each)."""
    with broker.producer(**kw) as p:
        for key, value, ts in items:
            p.send(topic, value, key=key, timestamp_ms=ts, partition=0)
            p.flush()


def offsets(broker, topic="t"):
    return [r.offset for r in broker.messages(topic)]


def test_retention_ms_deletes_old_batches_from_the_start(broker):
    broker.create_topic("t", config={"retention.ms": DAY})
    old, new = now_ms() - 3 * DAY, now_ms()
    produce(broker, "t", [(None, b"old%d" % i, old) for i in range(5)] +
            [(None, b"new%d" % i, new) for i in range(3)])
    stats = broker.run_cleaner()
    assert stats.batches_deleted == 5 and stats.bytes_reclaimed > 0
    assert offsets(broker) == [5, 6, 7]  # offsets are never renumbered
    c = broker.consumer(auto_offset_reset="earliest")
    assert c.beginning_offsets([TP0]) == {TP0: 5}
    assert broker.run_cleaner() == mqlog.CleanerStats()  # nothing more to do
    broker._check()


def test_retention_stops_at_first_young_batch(broker):
    broker.create_topic("t", config={"retention.ms": DAY})
    old = now_ms() - 3 * DAY
    produce(broker, "t", [(None, b"a", old), (None, b"b", now_ms()), (None, b"c", old)])
    broker.run_cleaner()
    assert offsets(broker) == [1, 2]  # whole batches from the start only


def test_retention_bytes(broker):
    broker.create_topic("t", config={"retention.bytes": 1000, "retention.ms": -1})
    produce(broker, "t", [(None, os.urandom(200), now_ms()) for _ in range(20)])
    broker.run_cleaner()
    kept = broker.messages("t")
    assert 0 < len(kept) < 20
    assert kept[-1].offset == 19 and [r.offset for r in kept] == list(range(20 - len(kept), 20))
    size = sum(len(r.value) for r in kept)
    assert size <= 1000


def test_everything_expired_leaves_an_empty_log_at_the_end(data_dir):
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t", config={"retention.ms": 1000})
        produce(broker, "t", [(None, b"x", now_ms() - DAY)] * 3)
        broker.run_cleaner()
        assert broker.messages("t") == []
        with broker.producer() as p:
            assert p.send("t", b"next").get(10).offset == 3
    with mqlog.open(data_dir) as broker:  # log start and end survive a reopen
        c = broker.consumer()
        assert c.beginning_offsets([TP0]) == {TP0: 3}
        assert c.end_offsets([TP0]) == {TP0: 4}
        broker._check()


@pytest.mark.parametrize("reset, expected", [("earliest", [5, 6]), ("latest", [])])
def test_consumer_before_log_start_follows_reset(broker, reset, expected):
    broker.create_topic("t", config={"retention.ms": DAY})
    produce(broker, "t", [(None, b"x", now_ms() - 3 * DAY)] * 5 +
            [(None, b"y", now_ms())] * 2)
    c = broker.consumer(group_id="g", auto_offset_reset=reset, enable_auto_commit=False)
    c.assign([TP0])
    c.seek(TP0, 1)
    c.commit({TP0: 2})  # committed offset that retention will pass
    broker.run_cleaner()
    got = [r.offset for recs in c.poll(timeout_ms=100).values() for r in recs]
    assert got == expected
    fresh = broker.consumer(group_id="g", auto_offset_reset=reset)
    fresh.assign([TP0])
    assert fresh.position(TP0) == (5 if reset == "earliest" else 7)


def test_reset_none_raises_below_log_start(broker):
    broker.create_topic("t", config={"retention.ms": DAY})
    produce(broker, "t", [(None, b"x", now_ms() - 3 * DAY)] * 3 + [(None, b"y", now_ms())])
    c = broker.consumer(auto_offset_reset="none")
    c.assign([TP0])
    c.seek(TP0, 0)
    broker.run_cleaner()
    with pytest.raises(OffsetOutOfRangeError, match="offset 0 is out of range.*3..4"):
        c.poll()


def test_compaction_keeps_latest_per_key_with_offsets(broker):
    broker.create_topic("t")  # keyless records can only predate the switch to compact
    t = now_ms()
    produce(broker, "t", [(b"a", b"a1", t), (b"b", b"b1", t), (b"a", b"a2", t),
                          (b"c", b"c1", t), (b"b", b"b2", t), (None, b"keyless", t)])
    broker.admin().alter_topic_config("t", {"cleanup.policy": "compact"})
    produce(broker, "t", [(b"a", b"a3", t)])
    stats = broker.run_cleaner()
    # The newest batch (a3) is never compacted, so a2 survives until a later run.
    got = [(r.offset, r.key, r.value) for r in broker.messages("t")]
    assert got == [(2, b"a", b"a2"), (3, b"c", b"c1"), (4, b"b", b"b2"),
                   (5, None, b"keyless"), (6, b"a", b"a3")]
    assert stats.records_removed == 2
    produce(broker, "t", [(b"z", b"z1", t)])
    broker.run_cleaner()
    assert [(r.offset, r.value) for r in broker.messages("t")] == [
        (3, b"c1"), (4, b"b2"), (5, b"keyless"), (6, b"a3"), (7, b"z1")]
    c = broker.consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    c.seek(TP0, 1)  # inside a gap: reads continue at the next kept offset
    assert [r.offset for recs in c.poll(timeout_ms=100).values() for r in recs][0] == 3
    broker._check()


def test_compaction_in_multi_record_batches(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact"})
    with broker.producer(linger_ms=60_000) as p:
        for i in range(100):
            p.send("t", b"v%d" % i, key=b"k%d" % (i % 10), partition=0)
    with broker.producer() as p:
        p.send("t", b"last", key=b"other", partition=0)
    broker.run_cleaner()
    recs = broker.messages("t")
    assert [r.value for r in recs] == [b"v%d" % i for i in range(90, 100)] + [b"last"]
    assert [r.offset for r in recs] == list(range(90, 101))


def test_tombstones_removed_after_delete_retention(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact",
                                     "delete.retention.ms": DAY})
    old, new = now_ms() - 2 * DAY, now_ms()
    produce(broker, "t", [(b"a", b"a1", old), (b"a", None, old), (b"b", b"b1", new),
                          (b"b", None, new), (b"c", b"c1", new)])
    broker.run_cleaner()
    got = [(r.key, r.value) for r in broker.messages("t")]
    # a's old tombstone is gone (and a with it); b's fresh tombstone stays.
    assert got == [(b"b", None), (b"c", b"c1")]


def test_min_compaction_lag(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact",
                                     "min.compaction.lag.ms": DAY})
    t = now_ms()
    produce(broker, "t", [(b"a", b"1", t), (b"a", b"2", t), (b"a", b"3", t)])
    assert broker.run_cleaner().records_removed == 0  # too young to compact
    assert len(broker.messages("t")) == 3


def test_compact_and_delete(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact,delete",
                                     "retention.ms": DAY})
    old, t = now_ms() - 3 * DAY, now_ms()
    produce(broker, "t", [(b"a", b"old", old), (b"a", b"1", t), (b"a", b"2", t),
                          (b"b", b"x", t)])
    broker.run_cleaner()
    assert [(r.offset, r.value) for r in broker.messages("t")] == [(2, b"2"), (3, b"x")]


def test_compression_kept_by_compaction(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact"})
    with broker.producer(compression_type="zstd", linger_ms=60_000) as p:
        for i in range(50):
            p.send("t", b"value-%d" % i * 20, key=b"k%d" % (i % 5), partition=0)
    with broker.producer() as p:
        p.send("t", b"tail", key=b"t", partition=0)
    broker.run_cleaner()
    with broker._store.read() as txn:
        (_, raw), *_ = list(txn.batches(0 + broker._topics["t"].topic_id, 0, 0))
    assert batch.decode(raw).codec == "zstd"
    assert len(broker.messages("t")) == 6


def test_delete_records(broker):
    with broker.producer(linger_ms=60_000) as p:
        for i in range(10):
            p.send("t", b"%d" % i, partition=0)
    with broker.producer() as p:
        for i in range(10, 15):
            p.send("t", b"%d" % i, partition=0).get(10)
    admin = broker.admin()
    assert admin.delete_records({TP0: 12}) == {TP0: 12}
    assert offsets(broker) == [12, 13, 14]  # mid-batch start: earlier records hidden
    c = broker.consumer(auto_offset_reset="earliest")
    c.assign([TP0])
    assert [r.offset for recs in c.poll(timeout_ms=100).values() for r in recs] == [
        12, 13, 14]
    with pytest.raises(OffsetOutOfRangeError, match="outside 0..15"):
        broker.delete_records(TP0, 99)
    assert broker.delete_records(TP0, -1) == 15
    assert broker.messages("t") == []
    broker._check()


def test_background_cleaner_runs_on_its_interval():
    with mqlog.open(cleaner_interval_ms=20) as broker:
        broker.create_topic("t", config={"retention.ms": 1000})
        produce(broker, "t", [(None, b"x", now_ms() - DAY)] * 3 +
                [(None, b"y", now_ms())])
        deadline = time.monotonic() + 10
        while broker.messages("t")[0].offset != 3 and time.monotonic() < deadline:
            broker._data_cond.acquire()
            broker._data_cond.wait(0.05)  # woken when the cleaner moves the log start
            broker._data_cond.release()
        assert [r.offset for r in broker.messages("t")] == [3]


def test_space_is_reused_under_retention(tmp_path):
    """Steady produce plus retention: the file stops growing (LMDB reuses free pages)."""
    path = str(tmp_path / "d")
    value = os.urandom(1000)
    sizes = []
    with mqlog.open(path, cleaner_interval_ms=None) as broker:
        broker.create_topic("t", config={"retention.bytes": 300_000, "retention.ms": -1})
        with broker.producer() as p:
            for _ in range(12):
                p.send_batch("t", [value] * 500, partition=0).get(30)
                broker.run_cleaner()
                sizes.append(os.path.getsize(os.path.join(path, "data.mdb")))
    print({"data_mdb_bytes_per_round": sizes})
    assert sizes[-1] <= sizes[5] * 1.1, sizes  # flat after the first rounds
    assert sizes[-1] < 12 * 500 * 1000  # far below what 12 rounds wrote


def test_log_append_time_topic(broker):
    broker.create_topic("t", config={"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    with broker.producer() as p:
        md = p.send("t", b"x", timestamp_ms=5).get(10)  # the producer's time is replaced
    (r,) = broker.messages("t")
    assert r.timestamp_type == 1 and before <= r.timestamp <= now_ms()
    assert md.timestamp == r.timestamp  # the metadata reports the broker's time, as Kafka


def test_compacted_topic_refuses_keyless_records(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact"})
    p = broker.producer()
    with pytest.raises(mqlog.errors.InvalidRecordError, match="needs a key"):
        p.send("t", b"no key")
    with pytest.raises(mqlog.errors.InvalidRecordError, match="needs a key"):
        p.send_batch("t", [b"a", b"b"], keys=[b"k", None])
    assert p.send("t", b"v", key=b"k").get(10).offset == 0
    assert len(broker.messages("t")) == 1


def test_two_delete_records_in_one_transaction_keep_the_larger_start(data_dir):
    with mqlog.open(data_dir) as broker:
        with broker.producer() as p:
            p.send_batch("t", [b"x"] * 200, partition=0).get(10)
        in_one_transaction(broker, lambda: broker.delete_records(TP0, 150),
                           lambda: broker.delete_records(TP0, 50))
        assert broker._topics["t"].partitions[0].log_start == 150
    with mqlog.open(data_dir) as broker:
        assert broker._topics["t"].partitions[0].log_start == 150
        assert broker.messages("t")[0].offset == 150


def test_time_index_still_finds_older_records_after_retention(broker):
    broker.create_topic("t", config={"retention.bytes": 10, "retention.ms": -1})
    produce(broker, "t", [(None, b"a", 1000), (None, b"b", 500), (None, b"c", 2000)])
    broker.delete_records(TP0, 1)
    c = broker.consumer()
    found = c.offsets_for_times({TP0: 400})[TP0]
    assert (found.offset, found.timestamp) == (1, 500)


def test_concurrent_alters_and_growth_are_all_kept(data_dir):
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t", partitions=2)
        admin = broker.admin()
        in_one_transaction(broker,
                           lambda: admin.alter_topic_config("t", {"retention.ms": 5000}),
                           lambda: admin.alter_topic_config("t", {"cleanup.policy": "compact"}),
                           lambda: broker.create_partitions("t", 4))
        expected = {"retention.ms": 5000, "cleanup.policy": "compact"}
        assert broker.topics()["t"].config == expected
    with mqlog.open(data_dir) as broker:
        info = broker.topics()["t"]
        assert info.partitions == 4 and info.config == expected


def test_group_deleted_and_committed_in_one_transaction(broker):
    broker.create_topic("t")
    broker.commit_offsets("g", {TP0: 3})
    in_one_transaction(broker, lambda: broker.delete_group("g"),
                       lambda: broker.commit_offsets("g", {TP0: 7}))
    assert broker.committed_offset("g", TP0).offset == 7  # the later commit survives
