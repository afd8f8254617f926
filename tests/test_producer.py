"""Producer: futures, placement, batching, sizes, backpressure, threads."""

import json
import threading
import time

import pytest

import mqlog
from mqlog import TopicPartition
from mqlog.errors import (
    ClosedError,
    DiskFullError,
    IllegalStateError,
    InvalidConfigError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from mqlog.partitioner import partition_for_key


def test_send_returns_metadata(broker):
    with broker.producer() as p:
        md = p.send("t", b"hello", key=b"k", timestamp_ms=1234).get(10)
    assert md.topic == "t" and md.partition == 0 and md.offset == 0
    assert md.topic_partition == TopicPartition("t", 0)
    assert md.timestamp == 1234
    assert (md.serialized_key_size, md.serialized_value_size) == (1, 5)
    assert md.serialized_header_size == -1


def test_future_api(broker):
    p = broker.producer()
    fut = p.send("t", b"x")
    got, errs = [], []
    fut.add_callback(got.append).add_errback(errs.append)
    md = fut.result(10)
    assert fut.is_done and fut.done() and fut.succeeded() and not fut.failed()
    assert fut.exception is None and fut.value == md
    assert got == [md] and errs == []
    late = []
    fut.add_callback(lambda extra, m: late.append((extra, m.offset)), "tag")
    assert late == [("tag", 0)]  # already done: runs at once


def test_offsets_dense_and_ordered(broker):
    with broker.producer() as p:
        futures = [p.send("t", b"%d" % i) for i in range(1000)]
    assert [f.get(10).offset for f in futures] == list(range(1000))
    assert [r.value for r in broker.messages("t")] == [b"%d" % i for i in range(1000)]


def test_keyed_records_follow_kafka_partitioner(broker):
    broker.create_topic("t", partitions=7)
    keys = [b"user-%d" % i for i in range(200)]
    with broker.producer() as p:
        futures = [p.send("t", b"v", key=k) for k in keys]
    for k, f in zip(keys, futures):
        assert f.get(10).partition == partition_for_key(k, 7)


def test_keyless_records_stick_to_one_partition_per_batch(broker):
    broker.create_topic("t", partitions=4)
    p = broker.producer(linger_ms=60_000)
    with broker._writer.paused():
        futures = [p.send("t", b"v") for _ in range(50)]
    p.flush(10)
    parts = {f.get(10).partition for f in futures}
    assert len(parts) == 1  # one open batch, one partition
    # After the batch is gone, the next keyless batch may move elsewhere; over many
    # batches every partition is used.
    seen = set()
    for _ in range(40):
        fut = p.send("t", b"v")
        p.flush(10)
        seen.add(fut.get(10).partition)
    assert seen == {0, 1, 2, 3}


def test_custom_partitioner(broker):
    broker.create_topic("t", partitions=3)
    calls = []

    def last(key, all_partitions, available):
        calls.append((key, list(all_partitions), list(available)))
        return all_partitions[-1]

    with broker.producer(partitioner=last) as p:
        assert p.send("t", b"v", key=b"k").get(10).partition == 2
        assert p.send("t", b"v", partition=0).get(10).partition == 0  # explicit wins
    assert calls == [(b"k", [0, 1, 2], [0, 1, 2])]
    with broker.producer(partitioner=lambda *a: 9) as p:
        with pytest.raises(UnknownTopicOrPartitionError, match="returned 9"):
            p.send("t", b"v")


def test_headers_tombstones_serializers(broker):
    with broker.producer(value_serializer=lambda v: json.dumps(v).encode(),
                         key_serializer=str.encode) as p:
        p.send("t", {"a": 1}, key="k1", headers=[("trace", b"42")]).get(10)
        p.send("t", None, key="k1").get(10)  # tombstone: serializer not applied
    recs = broker.messages("t")
    assert recs[0].value == b'{"a": 1}' and recs[0].key == b"k1"
    assert recs[0].headers == [("trace", b"42")] and recs[0].serialized_header_size == 7
    assert recs[1].value is None and recs[1].serialized_value_size == -1


def test_type_errors_raise_from_send(broker):
    p = broker.producer()
    with pytest.raises(TypeError, match="value must be bytes or None, got str"):
        p.send("t", "text")
    with pytest.raises(TypeError, match="key must be bytes or None, got int"):
        p.send("t", b"v", key=5)
    with pytest.raises(TypeError, match="header"):
        p.send("t", b"v", headers=[("h", "text")])
    with pytest.raises(ValueError, match="timestamp_ms=-5"):
        p.send("t", b"v", timestamp_ms=-5)
    assert p.send("t", bytearray(b"ok"), key=memoryview(b"k")).get(10).offset == 0
    assert [r.value for r in broker.messages("t")] == [b"ok"]


def test_size_limits(broker):
    p = broker.producer(max_request_size=1000)
    with pytest.raises(MessageSizeTooLargeError, match="exceeds the limit of 1000 bytes"):
        p.send("t", b"x" * 1000)
    broker.create_topic("small", config={"max.message.bytes": 500})
    q = broker.producer()
    with pytest.raises(MessageSizeTooLargeError, match="'small'"):
        q.send("small", b"x" * 600)
    with pytest.raises(MessageSizeTooLargeError):
        q.send_batch("small", [b"ok", b"x" * 600])
    assert q.send("small", b"x" * 100).get(10).offset == 0
    assert len(broker.messages("small")) == 1  # the refused records left nothing


def test_unknown_topic_and_partition(data_dir):
    with mqlog.open(data_dir, auto_create_topics=False) as b:
        p = b.producer()
        with pytest.raises(UnknownTopicOrPartitionError, match="auto_create_topics is off"):
            p.send("nope", b"x")
        b.create_topic("t", partitions=2)
        with pytest.raises(UnknownTopicOrPartitionError, match="partition 2 does not exist"):
            p.send("t", b"x", partition=2)
        assert p.partitions_for("t") == {0, 1}


def test_acks_zero_resolves_at_once(broker):
    broker.create_topic("t")
    p = broker.producer(acks=0)
    with broker._writer.paused():
        fut = p.send("t", b"x")
        assert fut.is_done
        assert fut.get(0).offset == -1
    p.flush(10)
    assert len(broker.messages("t")) == 1


def test_acks_all_flushes(data_dir):
    with mqlog.open(data_dir) as b:
        flushes = b._writer.flushes
        with b.producer(acks="all") as p:
            p.send("t", b"x").get(10)
        assert b._writer.flushes > flushes
        with b.producer(acks=1) as p:
            before = b._writer.flushes
            p.send("t", b"y").get(10)
            assert b._writer.flushes == before  # acks=1 never waits for a flush


def test_bad_config():
    with mqlog.open() as b:
        with pytest.raises(InvalidConfigError, match="acks=2"):
            b.producer(acks=2)
        with pytest.raises(InvalidConfigError, match="compression_type 'zip'"):
            b.producer(compression_type="zip")
        with pytest.raises(InvalidConfigError, match="batch_size"):
            b.producer(batch_size=0)
        with pytest.raises(TypeError):
            b.producer(bogus=1)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(broker, codec):
    with broker.producer(compression_type=codec) as p:
        for i in range(300):
            p.send("t", b"payload %d " % i * 10, key=b"k")
    recs = broker.messages("t")
    assert [r.value for r in recs] == [b"payload %d " % i * 10 for i in range(300)]


def test_linger_holds_batches_until_flush(broker):
    p = broker.producer(linger_ms=60_000)
    fut = p.send("t", b"x")
    with pytest.raises(KafkaTimeoutError):
        fut.get(0.1)  # lingering: not written yet
    p.flush(10)
    assert fut.get(0).offset == 0


def test_linger_expiry_writes_without_flush(broker):
    p = broker.producer(linger_ms=20)
    assert p.send("t", b"x").get(10).offset == 0


def test_backpressure_blocks_then_times_out(broker):
    broker.create_topic("t")
    p = broker.producer(buffer_memory=10_000, max_block_ms=200, batch_size=1000)
    with broker._writer.paused():
        with pytest.raises(KafkaTimeoutError, match="buffer_memory"):
            for _ in range(1000):
                p.send("t", b"x" * 100)
    p.flush(10)


def test_backpressure_waits_for_writer(broker):
    broker.create_topic("t")
    p = broker.producer(buffer_memory=20_000, batch_size=2000)
    with broker._writer.paused():
        sent = []

        def producer_thread():
            for _ in range(500):
                sent.append(p.send("t", b"x" * 100))

        t = threading.Thread(target=producer_thread, daemon=True)
        t.start()
        t.join(0.3)
        assert t.is_alive()  # blocked by the full buffer, not growing without bound
        assert p._buffered <= 20_000 + 2000
    t.join(10)
    assert not t.is_alive() and len(sent) == 500
    p.flush(10)
    assert len(broker.messages("t")) == 500


def test_failed_commit_fails_futures_and_loses_nothing_written(broker):
    with broker.producer() as p:
        p.send("t", b"kept").get(10)
        broker._writer.fail_next_commit = DiskFullError("disk full (injected)")
        fut = p.send("t", b"failed")
        with pytest.raises(DiskFullError, match="injected"):
            fut.get(10)
        assert fut.failed() and isinstance(fut.exception, DiskFullError)
        after = p.send("t", b"after").get(10)
    assert [r.value for r in broker.messages("t")] == [b"kept", b"after"]
    assert after.offset == 1  # offsets stay dense
    broker._check()


def test_errback_on_deleted_topic(broker):
    broker.create_topic("gone")
    p = broker.producer()
    errors = []
    with broker._writer.paused():
        fut = p.send("gone", b"x")
        fut.add_errback(errors.append)
    broker.delete_topic("gone")  # queued behind the pause; runs before the batch
    with pytest.raises(UnknownTopicOrPartitionError, match="no longer exists"):
        fut.get(10)
    assert len(errors) == 1


def test_send_batch(broker):
    broker.create_topic("t", partitions=3)
    p = broker.producer(batch_size=500)
    md = p.send_batch("t", [b"v%d" % i for i in range(100)], partition=1).get(10)
    assert md.partitions == (mqlog.PartitionBatch(1, 0, 100),)
    keys = [b"k%d" % (i % 10) for i in range(60)]
    md = p.send_batch("t", [b"x"] * 60, keys=keys).get(10)
    assert md.count == 60
    by_part = {pb.partition: pb for pb in md.partitions}
    for k in set(keys):
        assert partition_for_key(k, 3) in by_part
    recs = broker.messages("t")
    for pb in md.partitions:
        got = [r for r in recs if r.partition == pb.partition
               and pb.base_offset <= r.offset < pb.base_offset + pb.count]
        assert len(got) == pb.count
        assert all(partition_for_key(r.key, 3) == pb.partition for r in got)
    with pytest.raises(ValueError, match="2 values but 1 keys"):
        p.send_batch("t", [b"a", b"b"], keys=[b"k"])
    with pytest.raises(TypeError):
        p.send_batch("t", [b"a", "b"])


def test_send_and_send_batch_keep_partition_order(broker):
    p = broker.producer(linger_ms=60_000)
    p.send("t", b"first", partition=0)
    p.send_batch("t", [b"second", b"third"], partition=0)
    p.send("t", b"fourth", partition=0)
    p.flush(10)
    assert [r.value for r in broker.messages("t")] == [b"first", b"second", b"third",
                                                       b"fourth"]


def test_send_batch_acks_zero(broker):
    p = broker.producer(acks=0)
    md = p.send_batch("t", [b"a", b"b"]).get(0)
    assert md.partitions[0].base_offset == -1
    p.flush(10)
    assert len(broker.messages("t")) == 2


def test_many_threads_share_one_producer(broker):
    broker.create_topic("t", partitions=4)
    p = broker.producer()
    n_threads, per_thread = 8, 2000

    def work(tid):
        futures = [p.send("t", b"%d:%d" % (tid, i), key=b"thread-%d" % tid)
                   for i in range(per_thread)]
        return [f.get(30).offset for f in futures]

    results = {}
    threads = []
    for tid in range(n_threads):
        t = threading.Thread(target=lambda tid=tid: results.__setitem__(tid, work(tid)))
        threads.append(t)
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    recs = broker.messages("t")
    assert len(recs) == n_threads * per_thread
    for tid in range(n_threads):
        offsets = results[tid]
        assert offsets == sorted(offsets)  # each thread's records stay in order
        mine = [r.value for r in recs if r.key == b"thread-%d" % tid]
        assert mine == [b"%d:%d" % (tid, i) for i in range(per_thread)]
    broker._check()


def test_flush_timeout_and_close(broker):
    broker.create_topic("t")
    p = broker.producer()
    with broker._writer.paused():
        p.send("t", b"x")
        with pytest.raises(KafkaTimeoutError, match="flush did not complete"):
            p.flush(0.1)
    p.close()
    p.close()
    assert p.closed
    with pytest.raises(ClosedError, match="producer is closed"):
        p.send("t", b"y")
    assert len(broker.messages("t")) == 1


def test_get_inside_callback_does_not_deadlock(broker):
    p = broker.producer()
    outcome = []

    def callback(md):
        other = p.send("t", b"second")
        try:
            other.get(0.5)
            outcome.append("got")
        except KafkaTimeoutError as exc:
            outcome.append(str(exc))

    p.send("t", b"first").add_callback(callback)
    p.flush(10)
    deadline = time.monotonic() + 10
    while not outcome and time.monotonic() < deadline:
        p.flush(1)
    assert outcome and "inside a producer callback" in outcome[0]


def test_topic_changes_during_concurrent_sends_lose_and_duplicate_nothing(broker):
    """Routes are replaced when topics change; sends racing that must not append to
    batches the writer already took (review finding: duplicates, lost futures)."""
    broker.create_topic("t", partitions=3)
    p = broker.producer(linger_ms=2)
    stop = threading.Event()

    def churn_topics():
        i = 0
        while not stop.is_set():
            broker.create_topic(f"other-{i}")
            i += 1

    def sender(tid):
        return [p.send("t", b"%d-%d" % (tid, i)) for i in range(3000)]

    churner = threading.Thread(target=churn_topics, daemon=True)
    churner.start()
    results = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, sender(t)))
               for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    churner.join(30)
    p.flush(30)
    for futures in results.values():
        for f in futures:
            f.get(10)
    values = [r.value for r in broker.messages("t")]
    assert len(values) == 12000 and len(set(values)) == 12000
    assert p._buffered == 0 and p._open_count == 0 and not p._incomplete
    broker._check()


def test_send_batch_edge_cases(broker):
    p = broker.producer()
    assert p.send_batch("t", []).get(1).count == 0  # resolves at once
    with pytest.raises(ValueError, match="2\\*\\*63-1"):
        p.send("t", b"x", timestamp_ms=2**63)
    with pytest.raises(ValueError, match="2\\*\\*63-1"):
        p.send_batch("t", [b"x"], timestamp_ms=2**63)
    with pytest.raises(TypeError, match="timestamp_ms=1.5"):
        p.send("t", b"x", timestamp_ms=1.5)
    assert p.send("t", b"ok").get(10).offset == 0  # the writer was not poisoned


def test_get_without_timeout_inside_callback_raises(broker):
    p = broker.producer()
    outcome = []

    def callback(md):
        try:
            p.send("t", b"inner").get()  # no timeout: would deadlock the writer
        except KafkaTimeoutError as exc:
            outcome.append(str(exc))

    p.send("t", b"outer").add_callback(callback)
    p.flush(10)
    p.send("t", b"after").get(10)  # the writer is still alive
    assert outcome and "inside a producer callback" in outcome[0]


def test_waiting_calls_inside_a_callback_raise_instead_of_hanging(broker):
    """Callbacks run on the writer thread: flush(), close(), a send_batch future's get()
    and commit_transaction() there would wait for that thread forever (no timeout)."""
    p = broker.producer()
    txp = broker.producer(transactional_id="cb")
    txp.init_transactions()
    txp.begin_transaction()
    outcome: dict[str, str] = {}
    done = threading.Event()

    def attempt(name, call):
        try:
            call()
            outcome[name] = "returned"
        except (IllegalStateError, KafkaTimeoutError) as exc:
            outcome[name] = str(exc)

    def callback(md):
        p.send("t", b"inner")
        attempt("flush", p.flush)
        attempt("close", p.close)
        attempt("batch", p.send_batch("t", [b"a", b"b"]).get)
        txp.send("t", b"in txn")
        attempt("commit", txp.commit_transaction)
        done.set()

    p.send("t", b"outer").add_callback(callback)
    assert done.wait(30), "a call inside the callback hung"
    assert set(outcome) == {"flush", "close", "batch", "commit"}
    for name, text in outcome.items():
        assert "inside a producer callback" in text, (name, text)
    # Nothing was closed or spoiled: the producers carry on from outside the callback.
    p.send("t", b"after").get(10)
    p.flush(10)
    txp.commit_transaction()
    assert sorted(r.value for r in broker.messages("t")) == [
        b"a", b"after", b"b", b"in txn", b"inner", b"outer"]


def test_close_timeout_fails_unwritten_records(broker):
    broker.create_topic("t")
    p = broker.producer()
    errors = []
    with broker._writer.paused():
        fut = p.send("t", b"x")
        fut.add_errback(errors.append)
        with pytest.raises(KafkaTimeoutError):
            p.close(timeout=0.1)
    with pytest.raises(KafkaTimeoutError, match="closed before this record"):
        fut.get(10)
    assert len(errors) == 1
    with pytest.raises(ClosedError):
        p.flush()


def test_keyless_sticky_can_start_on_any_partition(broker):
    broker.create_topic("t", partitions=3)
    firsts = set()
    for _ in range(60):
        p = broker.producer()
        firsts.add(p.send("t", b"x").get(10).partition)
        p.close()
    assert firsts == {0, 1, 2}
