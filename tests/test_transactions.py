"""Exactly-once: idempotent producers, transactions, read_committed, recovery, cleaning.

Faults come through seams (``LogWriter.lose_acks``, ``fail_next_commit``, ``paused()``,
the producer's writer-thread sequence state), never through patches; waits are on the
broker's data condition (``poll(timeout_ms=...)``) with generous deadlines, never sleeps.
"""

import gc
import subprocess
import sys
import threading
import time

import pytest

import mqlog
from mqlog import TopicPartition
from mqlog._transactions import control_type
from mqlog.batch import decode
from mqlog.errors import (
    CommitFailedError,
    DiskFullError,
    IllegalStateError,
    InvalidConfigError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumberError,
    ProducerFencedError,
    TransactionAbortableError,
    UnknownTopicOrPartitionError,
)
from helpers import child_env, in_one_transaction, run_python

TP = TopicPartition
WATCHDOG = 10.0  # seconds any wait below may take before the test fails


# -- helpers ---------------------------------------------------------------------------


def stored(broker, topic, partition=0):
    """Every stored batch of a partition, decoded (markers included)."""
    tlog = broker._topics[topic]
    with broker._store.read() as txn:
        return [decode(raw) for _, raw in txn.batches(tlog.topic_id, partition, 0)]


def markers(broker, topic, partition=0):
    """``[(offset, "commit"|"abort")]`` of a partition's control batches."""
    return [(b.base_offset, control_type(b.keys[0]))
            for b in stored(broker, topic, partition) if b.is_control]


def reader(broker, *tps, committed=True, **kw):
    """A consumer assigned ``tps`` from the start (read_committed by default)."""
    c = broker.consumer(auto_offset_reset="earliest",
                        isolation_level="read_committed" if committed else "read_uncommitted",
                        **kw)
    c.assign(list(tps))
    return c


def available(consumer):
    """Values of every record the consumer can return now (no waiting)."""
    out = []
    while True:
        got = consumer.poll(timeout_ms=0)
        if not got:
            return out
        out.extend(r.value for tp in sorted(got) for r in got[tp])


def wait_for(consumer, n, timeout=WATCHDOG):
    """Poll (waiting on the broker's data condition) until ``n`` records came back."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {out} arrived within {timeout} s"
        for recs in consumer.poll(timeout_ms=remaining * 1000).values():
            out.extend(r.value for r in recs)
    return out


def txn_producer(broker, tid="tx", **kw):
    p = broker.producer(transactional_id=tid, **kw)
    p.init_transactions()
    return p


def end(broker, topic, partition=0):
    return broker._partition(TP(topic, partition)).end_offset


def queue_job_while_paused(broker, fn):
    """Start ``fn`` (which submits one writer job and waits for it) in a thread while
    the writer is paused; return once its job is queued. Join the thread after."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    queued = len(broker._writer._jobs)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + WATCHDOG
    while len(broker._writer._jobs) <= queued:
        assert time.monotonic() < deadline, "the job was never queued"
        t.join(0.005)  # waits on the thread, bounded; not a synchronisation sleep
    return t, box


# -- idempotence -----------------------------------------------------------------------


def test_idempotent_producer_gets_an_id_and_stamps_batches(broker):
    broker.create_topic("t", partitions=2)
    p = broker.producer(enable_idempotence=True)
    other = broker.producer(enable_idempotence=True)
    assert p._pid >= 0 and other._pid >= 0 and p._pid != other._pid
    for i in range(3):
        p.send("t", b"%d" % i, partition=0).get(10)
    p.send_batch("t", [b"a", b"b"], partition=0).get(10)
    p.send("t", b"x", partition=1).get(10)
    plain = broker.producer()
    plain.send("t", b"plain", partition=1).get(10)
    batches = stored(broker, "t", 0)
    assert [(b.producer_id, b.producer_epoch, b.base_sequence, len(b.values))
            for b in batches] == [(p._pid, 0, 0, 1), (p._pid, 0, 1, 1), (p._pid, 0, 2, 1),
                                  (p._pid, 0, 3, 2)]
    assert not any(b.is_transactional for b in batches)
    # Sequences count per partition; a plain producer's batches carry none.
    assert [(b.producer_id, b.base_sequence) for b in stored(broker, "t", 1)] == [
        (p._pid, 0), (-1, -1)]
    broker._check()


def test_idempotence_needs_acks_all(broker):
    for acks in (0, 1, "1"):
        with pytest.raises(InvalidConfigError, match=f"acks={acks!r} conflicts with "
                                                     "idempotence"):
            broker.producer(enable_idempotence=True, acks=acks)
        with pytest.raises(InvalidConfigError, match="use acks='all'"):
            broker.producer(transactional_id="x", acks=acks)
    assert broker.producer(enable_idempotence=True)._acks == -1  # the default becomes 'all'
    assert broker.producer(enable_idempotence=True, acks="all")._acks == -1
    assert broker.producer(transactional_id="x")._acks == -1
    assert broker.producer()._acks == 1  # unchanged without idempotence
    broker._check()



@pytest.mark.parametrize("idempotent", [True, False])
def test_retried_batch_is_written_once_only_with_idempotence(broker, idempotent):
    broker.create_topic("t")
    p = broker.producer(enable_idempotence=idempotent, acks="all")
    p.send("t", b"before").get(10)
    broker._writer.lose_acks = 1  # the writer writes the next batch again, as a retry
    md = p.send("t", b"once", key=b"k").get(10)
    assert broker._writer.lose_acks == 0  # the seam fired
    stored_values = [(r.offset, r.value) for r in broker.messages("t")]
    if idempotent:
        assert stored_values == [(0, b"before"), (1, b"once")]
        assert md.offset == 1  # the offset it got the first time
    else:  # the same seam stores a duplicate: the check above can fail
        assert stored_values == [(0, b"before"), (1, b"once"), (2, b"once")]
    p.send("t", b"after").get(10)  # the sequence goes on past the retry
    assert broker.messages("t")[-1].value == b"after"
    broker._check()


def test_retry_of_several_batches_in_one_commit_is_deduplicated(broker):
    broker.create_topic("t", partitions=2)
    p = broker.producer(enable_idempotence=True)
    with broker._writer.paused():
        futures = [p.send("t", b"%d" % i, partition=i % 2) for i in range(6)]
        p.send_batch("t", [b"b1", b"b2"], partition=0)
        broker._writer.lose_acks = 1
    p.flush(10)
    assert [f.get(10).offset for f in futures] == [0, 0, 1, 1, 2, 2]
    assert [r.value for r in broker.messages("t")] == [
        b"0", b"2", b"4", b"b1", b"b2", b"1", b"3", b"5"]
    broker._check()


def test_out_of_order_sequence_is_refused(broker):
    broker.create_topic("t", partitions=2)
    p = broker.producer(enable_idempotence=True)
    p.send("t", b"0", partition=0).get(10)
    p.send("t", b"other", partition=1).get(10)
    plog = broker._partition(TP("t", 0))
    with broker._writer.paused():  # _next_seq belongs to the writer thread
        p._next_seq[plog] += 3  # records 1..3 "went missing"
        gap = p.send("t", b"gap", partition=0)
    with pytest.raises(OutOfOrderSequenceNumberError,
                       match=r"t\[0\] .* starts at sequence 4, expected 1: records between"):
        gap.get(10)
    # The producer's later records to that partition fail too (no hole is ever filled
    # behind the application's back), other partitions carry on.
    with pytest.raises(OutOfOrderSequenceNumberError, match="create a new producer"):
        p.send("t", b"later", partition=0).get(10)
    assert p.send("t", b"fine", partition=1).get(10).offset == 1
    assert [r.value for r in broker.messages("t")] == [b"0", b"other", b"fine"]
    # A new producer (new id) starts over.
    q = broker.producer(enable_idempotence=True)
    assert q.send("t", b"new", partition=0).get(10).offset == 1
    broker._check()


def test_failed_commit_does_not_burn_sequence_numbers(broker):
    """A commit that fails (disk full) writes nothing: the batch's sequence numbers
    must be reused, or every later record of the producer there looks like a gap."""
    broker.create_topic("t")
    p = broker.producer(enable_idempotence=True)
    p.send("t", b"0").get(10)
    with broker._writer.paused():
        broker._writer.fail_next_commit = DiskFullError("no space (injected)")
        lost = p.send("t", b"lost")
    with pytest.raises(DiskFullError, match="injected"):
        lost.get(10)
    assert p.send("t", b"1").get(10).offset == 1
    assert [b.base_sequence for b in stored(broker, "t")] == [0, 1]
    broker._check()


def test_duplicate_older_than_the_window_is_not_written_again(broker):
    broker.create_topic("t")
    p = broker.producer(enable_idempotence=True)
    for i in range(7):
        p.send("t", b"%d" % i).get(10)
    # Replaying a batch the window forgot is refused rather than written twice.
    with broker._writer.paused():
        p._next_seq[broker._partition(TP("t", 0))] = 0
        replay = p.send("t", b"0")
    with pytest.raises(OutOfOrderSequenceNumberError, match="starts at sequence 0, "
                                                             "expected 7"):
        replay.get(10)
    assert len(broker.messages("t")) == 7
    broker._check()


def _expire_windows(broker) -> int:
    """Drop every sequence window now, as a day without batches would (writer job)."""
    txns = broker._txns
    txns.producer_id_expiration_s = 0.0
    try:
        return broker._writer.run(lambda txn: None,
                                  lambda _: txns.expire_windows(time.monotonic()))
    finally:
        txns.producer_id_expiration_s = 86_400.0


def test_expired_window_is_rebuilt_from_the_log(broker):
    """A producer idle past producer.id.expiration (or a client of `mqlog serve` that
    outlived a restart) has no window in memory: its next batch must neither be refused
    as a gap nor, if it is a retry, written twice."""
    broker.create_topic("t", partitions=2)
    p = broker.producer(enable_idempotence=True)
    for i in range(7):
        p.send("t", b"%d" % i, partition=0).get(10)
    p.send("t", b"other", partition=1).get(10)
    assert _expire_windows(broker) == 2
    assert p.send("t", b"7", partition=0).get(10).offset == 7  # not a gap
    # A retry of batch 5 (its answer "lost"), after the windows expired again: it
    # resolves to the offset it got the first time, and nothing is written.
    _expire_windows(broker)
    with broker._writer.paused():  # _next_seq belongs to the writer thread
        p._next_seq[broker._partition(TP("t", 0))] = 5
        retry = p.send("t", b"5", partition=0)
    assert retry.get(10).offset == 5
    assert [r.value for r in broker.messages("t") if r.partition == 0] == [
        b"%d" % i for i in range(8)]
    # Older than the rebuilt window (the log's last 5 batches): refused, as before.
    _expire_windows(broker)
    with broker._writer.paused():
        p._next_seq[broker._partition(TP("t", 0))] = 1
        replay = p.send("t", b"1", partition=0)
    with pytest.raises(OutOfOrderSequenceNumberError, match="starts at sequence 1"):
        replay.get(10)
    assert len([r for r in broker.messages("t") if r.partition == 0]) == 8
    broker._check()


def test_live_producer_idle_past_the_expiry_on_a_busy_partition_keeps_sending(broker):
    """Window expiry is for producers that vanished (clients of `mqlog serve`): a live
    producer idle for a day while others wrote more batches than a rebuild looks back
    over must not have its next batch refused as a gap."""
    broker.create_topic("t")
    p = broker.producer(enable_idempotence=True)
    p.send("t", b"first").get(10)
    with broker.producer(batch_size=1) as busy:  # one batch per record
        for i in range(1001):
            busy.send("t", b"%d" % i)
        busy.flush(30)
    _expire_windows(broker)
    assert p.send("t", b"again").get(10).offset == 1002
    broker._check()


def test_window_rebuilt_from_a_compacted_batch_keeps_its_sequence_span(broker):
    """Compaction dropping the last records of a producer's batch must not shorten the
    sequence span a rebuilt window reads from it (Kafka keeps a cleaned batch's last
    offset for this): else the producer's next batch is refused as a gap, and a retry
    of the cleaned batch is not recognised."""
    broker.create_topic("t", config={"cleanup.policy": "compact",
                                     "min.compaction.lag.ms": 0})
    p = broker.producer(enable_idempotence=True)
    p.send("t", b"x", key=b"x", partition=0).get(10)
    assert p.send_batch("t", [b"a1", b"b1"], keys=[b"a", b"b"],
                        partition=0).get(10).offsets() == [(0, 1), (0, 2)]
    # The producer's newest batch is never compacted while its state may live (see
    # test_compaction_keeps_a_producers_newest_batch_for_its_window): write another.
    p.send("t", b"z", key=b"z", partition=0).get(10)
    with broker.producer() as other:  # supersedes key b, the batch's last record
        other.send("t", b"b2", key=b"b", partition=0).get(10)
        other.send("t", b"c", key=b"c", partition=0).get(10)  # the newest stays whole
    assert broker.run_cleaner().records_removed == 1
    assert _expire_windows(broker) == 1
    assert p.send("t", b"a2", key=b"a", partition=0).get(10).offset == 6  # not a gap
    # A retry of the cleaned batch (sequences 1..2) resolves to its first offset: the
    # window rebuilt from the log reads the batch's whole sequence span.
    _expire_windows(broker)
    with broker._writer.paused():  # _next_seq belongs to the writer thread
        p._next_seq[broker._partition(TP("t", 0))] = 1
        retry = p.send_batch("t", [b"a1", b"b1"], keys=[b"a", b"b"], partition=0)
    assert retry.get(10).offsets() == [(0, 1), (0, 2)]
    assert [r.value for r in broker.messages("t")] == [
        b"x", b"a1", b"z", b"b2", b"c", b"a2"]
    broker._check()


def test_compaction_keeps_a_producers_newest_batch_for_its_window(broker):
    """Compaction leaves an idempotent producer's newest batch whole while its state
    may live: removing it would make a window rebuilt from the log (a wire producer
    after a restart) end at an older batch, and the producer's next batch would be
    refused as a sequence gap."""
    broker.create_topic("t", config={"cleanup.policy": "compact",
                                     "min.compaction.lag.ms": 0})
    p = broker.producer(enable_idempotence=True)
    p.send("t", b"x", key=b"x", partition=0).get(10)  # sequence 0, survives
    p.send("t", b"a1", key=b"a", partition=0).get(10)  # sequence 1, its newest batch
    with broker.producer() as other:
        other.send("t", b"a2", key=b"a", partition=0).get(10)  # supersedes a1
        other.send("t", b"c", key=b"c", partition=0).get(10)
    broker.run_cleaner()
    assert [r.value for r in broker.messages("t")] == [b"x", b"a1", b"a2", b"c"]
    assert _expire_windows(broker) == 1  # the window is rebuilt from the log next
    assert p.send("t", b"y", key=b"y", partition=0).get(10).offset == 4  # not a gap
    broker.run_cleaner()  # a1 is no longer p's newest batch: it goes now
    assert [r.value for r in broker.messages("t")] == [b"x", b"a2", b"c", b"y"]
    broker._check()


def test_windows_of_idle_producers_expire(broker):
    broker.create_topic("t")
    idle = broker.producer(enable_idempotence=True)
    idle.send("t", b"a").get(10)
    txns = broker._txns
    # Nothing is idle for a day yet; with a zero expiry, the idle producer's goes.
    assert broker._writer.run(lambda txn: None,
                              lambda _: txns.expire_windows(time.monotonic())) == 0
    assert _expire_windows(broker) == 1
    assert idle.send("t", b"b").get(10).offset == 1


def test_idle_transactional_ids_are_forgotten_after_the_expiration(data_dir):
    """Ids unused for transactional.id.expiration (7 days) go, with their stored state;
    ids with a live producer or an open transaction stay. The cleaner does it."""
    with mqlog.open(data_dir, cleaner_interval_ms=None) as broker:
        broker.create_topic("t")
        for name in ("gone", "live", "open"):
            p = broker.producer(transactional_id=name)
            p.init_transactions()
            p.begin_transaction()
            p.send("t", name.encode())
            if name != "open":
                p.commit_transaction()
            if name == "gone":
                p.close()
                del p  # no live producer holds the id
            elif name == "live":
                live = p
            else:
                still_open = p
        txns = broker._txns
        now = time.time_ns() // 1_000_000
        assert txns.expire_ids(now) == 0  # nothing is a week old
        assert txns.expire_ids(now + 604_800_000 + 1000) == 1  # a week later
        assert sorted(txns._ids) == ["live", "open"]
        # Through the cleaner, with a zero expiration: the live and open ids stay.
        txns.transactional_id_expiration_ms = 0
        broker.run_cleaner()
        assert sorted(txns._ids) == ["live", "open"]
        still_open.commit_transaction()
        # The name starts afresh: a new producer id.
        again = broker.producer(transactional_id="gone")
        again.init_transactions()
        assert again._pid not in (live._pid, still_open._pid)
        live.close()
        still_open.close()
        again.close()
        del live, still_open, again, p
        gc.collect()  # a closed producer may sit in a reference cycle until collected
        assert txns.expire_ids(time.time_ns() // 1_000_000 + 1) == 3
        assert txns._ids == {}
    with mqlog.open(data_dir) as broker:  # nothing stored comes back
        assert broker._txns._ids == {}
        with broker._store.read() as txn:
            assert list(txn.meta_items(b"x")) == []
        assert [r.value for r in broker.messages("t", isolation_level="read_committed")] \
            == [b"gone", b"live", b"open"]


# -- transactions: basics --------------------------------------------------------------


def test_commit_makes_records_visible_and_markers_take_offsets(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    f = [p.send("t", b"a"), p.send("t", b"b")]
    p.commit_transaction()
    assert [x.get(10).offset for x in f] == [0, 1]
    p.begin_transaction()
    assert p.send("t", b"c").get(10).offset == 3  # offset 2 is the commit marker
    p.commit_transaction()
    assert markers(broker, "t") == [(2, "commit"), (4, "commit")]
    assert end(broker, "t") == 5
    for committed in (True, False):
        c = reader(broker, TP("t", 0), committed=committed)
        got = c.poll(timeout_ms=0)[TP("t", 0)]
        assert [(r.offset, r.value) for r in got] == [(0, b"a"), (1, b"b"), (3, b"c")]
        assert c.position(TP("t", 0)) == 5  # past the last marker
        assert c.poll(timeout_ms=0) == {}
    assert [r.value for r in broker.messages("t")] == [b"a", b"b", b"c"]
    batches = stored(broker, "t")
    assert all(b.is_transactional for b in batches)
    assert {(b.producer_id, b.producer_epoch) for b in batches} == {(p._pid, p._epoch)}
    assert [b.base_sequence for b in batches if not b.is_control] == [0, 2]
    broker._check()


def test_abort_hides_records_from_read_committed_only(broker):
    broker.create_topic("t")
    with broker.producer() as plain:
        plain.send("t", b"before").get(10)
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"aborted-1")
    p.send("t", b"aborted-2")
    p.abort_transaction()
    p.begin_transaction()
    p.send("t", b"kept")
    p.commit_transaction()
    assert markers(broker, "t") == [(3, "abort"), (5, "commit")]
    assert available(reader(broker, TP("t", 0))) == [b"before", b"kept"]
    assert available(reader(broker, TP("t", 0), committed=False)) == [
        b"before", b"aborted-1", b"aborted-2", b"kept"]
    # Small polls step over the aborted records and the markers the same way.
    c = reader(broker, TP("t", 0), max_poll_records=1)
    assert [[r.offset for r in c.poll(timeout_ms=0)[TP("t", 0)]] for _ in range(2)] == [
        [0], [4]]
    broker._check()


def test_small_polls_read_a_committed_transactional_batch_in_pieces(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send_batch("t", [b"%d" % i for i in range(5)], partition=0)
    p.commit_transaction()
    c = reader(broker, TP("t", 0), max_poll_records=2)
    offsets = []
    while True:
        got = c.poll(timeout_ms=0)
        if not got:
            break
        offsets.append([r.offset for r in got[TP("t", 0)]])
    assert offsets == [[0, 1], [2, 3], [4]]
    assert c.position(TP("t", 0)) == 6
    broker._check()


@pytest.mark.parametrize("committed", [True, False])
def test_small_polls_decode_a_transactional_batch_once(broker, committed):
    """Each poll continues in the batch the previous one decoded, a transactional
    batch too: decoding it again per poll cost ~7x on a topic written in
    transactions (1000-record batches, 50-record polls)."""
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send_batch("t", [b"%d" % i for i in range(10)], partition=0)
    p.commit_transaction()
    c = reader(broker, TP("t", 0), committed=committed, max_poll_records=3)
    assert [r.offset for r in c.poll(timeout_ms=0)[TP("t", 0)]] == [0, 1, 2]
    decoded = c._cache[TP("t", 0)][1]
    assert [r.offset for r in c.poll(timeout_ms=0)[TP("t", 0)]] == [3, 4, 5]
    assert c._cache[TP("t", 0)][1] is decoded
    broker._check()


def test_seeking_around_aborted_records_and_markers(broker):
    broker.create_topic("t")
    p, q = txn_producer(broker, "p"), txn_producer(broker, "q")
    p.begin_transaction()
    p.send_batch("t", [b"kept-%d" % i for i in range(4)], partition=0)
    p.commit_transaction()  # marker at 4
    p.begin_transaction()
    p.send_batch("t", [b"aborted-%d" % i for i in range(3)], partition=0).get(10)  # 5..7
    q.begin_transaction()
    q.send("t", b"open", partition=0).get(10)  # 8: the last stable offset
    p.abort_transaction()  # marker at 9
    c = reader(broker, TP("t", 0), max_poll_records=3)
    assert [r.value for r in c.poll(timeout_ms=0)[TP("t", 0)]] == [
        b"kept-0", b"kept-1", b"kept-2"]
    assert [r.value for r in c.poll(timeout_ms=0)[TP("t", 0)]] == [b"kept-3"]
    assert c.position(TP("t", 0)) == 8  # the aborted batch was decoded last
    for seek, expected in ((6, []), (1, [b"kept-1", b"kept-2", b"kept-3"])):
        c.seek(TP("t", 0), seek)
        assert available(c) == expected
        assert c.position(TP("t", 0)) == 8
    q.commit_transaction()  # marker at 10
    assert available(c) == [b"open"]
    c.seek(TP("t", 0), 10)  # into the marker decoded last
    assert available(c) == []
    assert c.position(TP("t", 0)) == 11
    broker._check()



def test_transaction_spans_topics_and_partitions_atomically(broker):
    broker.create_topic("a", partitions=3)
    broker.create_topic("b", partitions=1)
    p = txn_producer(broker)
    tps = [TP("a", 0), TP("a", 1), TP("a", 2), TP("b", 0)]
    c = reader(broker, *tps)
    p.begin_transaction()
    for tp in tps:
        p.send(tp.topic, b"%s%d" % (tp.topic.encode(), tp.partition), partition=tp.partition)
    p.flush(10)
    assert available(c) == []  # nothing of it before the commit, in any partition
    assert c.end_offsets(tps) == {tp: 0 for tp in tps}
    p.commit_transaction()
    assert sorted(available(c)) == [b"a0", b"a1", b"a2", b"b0"]
    for tp in tps:
        assert markers(broker, tp.topic, tp.partition) == [(1, "commit")]
    p.begin_transaction()
    p.send("a", b"x", partition=2)
    p.send("b", b"y", partition=0)
    p.abort_transaction()
    # Only the partitions the aborted transaction touched get a marker.
    assert [len(markers(broker, tp.topic, tp.partition)) for tp in tps] == [1, 1, 2, 2]
    assert available(c) == []
    broker._check()


def test_send_outside_a_transaction_is_refused(broker):
    p = broker.producer(transactional_id="tx")
    with pytest.raises(IllegalStateError, match=r"needs init_transactions\(\) and "
                                                r"begin_transaction\(\) before send"):
        p.send("t", b"x")
    p.init_transactions()
    with pytest.raises(IllegalStateError, match=r"only send inside a transaction: call "
                                                r"begin_transaction\(\) first"):
        p.send("t", b"x")
    with pytest.raises(IllegalStateError, match="begin_transaction"):
        p.send_batch("t", [b"x"])
    p.begin_transaction()
    p.send("t", b"ok")
    p.commit_transaction()
    with pytest.raises(IllegalStateError, match="begin_transaction"):
        p.send("t", b"after commit")
    assert [r.value for r in broker.messages("t")] == [b"ok"]
    broker._check()



def test_transactional_calls_in_the_wrong_order(broker):
    plain = broker.producer()
    with pytest.raises(IllegalStateError, match="create it with transactional_id="):
        plain.begin_transaction()
    with pytest.raises(IllegalStateError, match="needs a transactional producer"):
        plain.init_transactions()
    p = broker.producer(transactional_id="tx")
    with pytest.raises(IllegalStateError, match=r"cannot begin_transaction\(\) while the "
                       r"producer is in state 'uninitialized': call init_transactions"):
        p.begin_transaction()
    with pytest.raises(IllegalStateError, match="call init_transactions"):
        p.commit_transaction()
    p.init_transactions()
    with pytest.raises(IllegalStateError, match="state 'ready'"):
        p.init_transactions()
    for call in (p.commit_transaction, p.abort_transaction,
                 lambda: p.send_offsets_to_transaction({}, "g")):
        with pytest.raises(IllegalStateError, match=r"call begin_transaction\(\) first"):
            call()
    p.begin_transaction()
    with pytest.raises(IllegalStateError, match=r"commit_transaction\(\) or "
                                                r"abort_transaction\(\) first"):
        p.begin_transaction()
    p.abort_transaction()
    p.close()
    with pytest.raises(mqlog.errors.ClosedError):
        p.begin_transaction()
    broker._check()



def test_bad_transactional_config(broker):
    for bad in ("", 5):
        with pytest.raises(InvalidConfigError, match="transactional_id="):
            broker.producer(transactional_id=bad)
    for bad in (0, -1, "5"):
        with pytest.raises(InvalidConfigError, match="transaction_timeout_ms="):
            broker.producer(transactional_id="x", transaction_timeout_ms=bad)


def test_empty_transactions_commit_and_abort(broker):
    p = txn_producer(broker)
    for _ in range(3):
        p.begin_transaction()
        p.commit_transaction()
        p.begin_transaction()
        p.abort_transaction()
    assert broker.topics() == {}
    broker._check()



def test_retried_transactional_batch_is_written_once(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    broker._writer.lose_acks = 1
    assert p.send("t", b"once").get(10).offset == 0
    p.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == [b"once"]
    assert markers(broker, "t") == [(1, "commit")]
    broker._check()


# -- fencing ---------------------------------------------------------------------------


def test_init_transactions_fences_the_older_producer_and_aborts_its_transaction(broker):
    broker.create_topic("t")
    old = txn_producer(broker)
    old.begin_transaction()
    old.send("t", b"zombie").get(10)
    new = txn_producer(broker)
    assert new._epoch == old._epoch + 1 and new._pid == old._pid
    assert markers(broker, "t") == [(1, "abort")]
    with pytest.raises(ProducerFencedError, match="a newer producer with transactional_id "
                                                  "'tx' called init_transactions"):
        old.send("t", b"more")
    for call in (old.commit_transaction, old.abort_transaction, old.begin_transaction):
        with pytest.raises(ProducerFencedError, match="close it and create a new producer"):
            call()
    new.begin_transaction()
    new.send("t", b"fresh")
    new.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == [b"fresh"]
    old.close()  # a fenced producer closes without trying to abort
    assert markers(broker, "t") == [(1, "abort"), (3, "commit")]
    broker._check()


def test_queued_batches_of_a_fenced_producer_are_refused(broker):
    broker.create_topic("t")
    old = txn_producer(broker)
    new = broker.producer(transactional_id="tx")
    old.begin_transaction()
    with broker._writer.paused():
        zombie = old.send("t", b"zombie")
        t, box = queue_job_while_paused(broker, new.init_transactions)
    t.join(WATCHDOG)
    assert not t.is_alive() and "error" not in box
    with pytest.raises(ProducerFencedError, match=r"t\[0\] carries epoch 0 .* fenced: a "
                                                  "newer producer"):
        zombie.get(10)
    assert broker.messages("t") == []
    assert end(broker, "t") == 0
    broker._check()



@pytest.mark.parametrize("zombie_first", [True, False])
def test_zombie_commit_and_successor_init_in_one_write(broker, zombie_first):
    """A zombie's commit and its successor's init_transactions() in one write: each
    job must see what the one before it did, not the memory its apply has yet to
    change. Otherwise the committed transaction got a second (abort) marker that hid
    it although its offsets were stored, or the zombie's commit passed and the epoch
    went back, so the successor's first record passed for a retry of the zombie's."""
    broker.create_topic("t")
    zombie = txn_producer(broker)
    zombie.begin_transaction()
    zombie.send("t", b"zombie").get(10)
    zombie.send_offsets_to_transaction({TP("t", 0): 1}, "g")
    successor = broker.producer(transactional_id="tx")
    calls = [zombie.commit_transaction, successor.init_transactions]
    results = in_one_transaction(broker, *(calls if zombie_first else calls[::-1]))
    if zombie_first:
        assert results == [None, None]
        assert markers(broker, "t") == [(1, "commit")]
        assert broker.committed_offset("g", TP("t", 0)).offset == 1
        visible = [b"zombie"]
    else:
        assert results[0] is None and isinstance(results[1], ProducerFencedError)
        assert markers(broker, "t") == [(1, "abort")]
        assert broker.committed_offset("g", TP("t", 0)) is None
        visible = []
    assert successor._epoch == zombie._epoch + 1
    successor.begin_transaction()
    assert successor.send("t", b"successor").get(10).offset == 2
    successor.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == visible + [b"successor"]
    broker._check()


def test_racing_init_transactions_each_keep_the_epoch_they_bumped(broker):
    """Of two init_transactions() racing for one id, the one whose bump came last wins
    and the other is fenced at once. Adopting the newest epoch let both write with
    it: each one's records passed for retries of the other's (acknowledged, never
    written) and a zombie's records were committed by the winner."""
    broker.create_topic("t")
    txn_producer(broker).close()
    first, second = (broker.producer(transactional_id="tx") for _ in range(2))
    results = in_one_transaction(broker, first.init_transactions,
                                 second.init_transactions)
    assert results[1] is None
    assert isinstance(results[0], ProducerFencedError)
    assert "init_transactions() at the same time" in str(results[0])
    with pytest.raises(ProducerFencedError, match="close it and create a new producer"):
        first.begin_transaction()
    second.begin_transaction()
    second.send("t", b"winner").get(10)
    second.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == [b"winner"]
    broker._check()


def test_commit_whose_flush_failed_is_not_abortable(data_dir):
    """The markers and offsets were committed but not flushed: the transaction is
    over (readers see it), so abort_transaction() must not pretend to undo it."""
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t")
        p = txn_producer(broker)
        p.begin_transaction()
        p.send("t", b"v").get(10)
        p.send_offsets_to_transaction({TP("t", 0): 1}, "g")
        broker._writer.fail_next_sync = DiskFullError("flush failed (injected)")
        with pytest.raises(DiskFullError, match=r"'tx' was committed \(readers see it and "
                                                r"its offsets are stored\) but flushing "
                                                r"it to disk failed: flush failed"):
            p.commit_transaction()
        with pytest.raises(IllegalStateError, match="call begin_transaction"):
            p.abort_transaction()
        assert available(reader(broker, TP("t", 0))) == [b"v"]
        assert broker.committed_offset("g", TP("t", 0)).offset == 1
        p.begin_transaction()  # the producer goes on
        p.send("t", b"w")
        p.commit_transaction()
        broker._check()


def test_fence_reason_is_not_stale_after_a_timeout(broker):
    """A producer fenced by init_transactions() is told so, even when an earlier holder
    of the id was fenced by the transaction timeout."""
    broker.create_topic("t")
    first = txn_producer(broker, transaction_timeout_ms=100)
    first.begin_transaction()
    first.send("t", b"times out").get(10)
    with broker.producer() as plain:
        plain.send("t", b"later").get(10)
    assert wait_for(reader(broker, TP("t", 0)), 1) == [b"later"]  # the abort ran
    second = txn_producer(broker)
    third = broker.producer(transactional_id="tx")
    second.begin_transaction()
    with broker._writer.paused():
        zombie = second.send("t", b"zombie")
        t, _ = queue_job_while_paused(broker, third.init_transactions)
    t.join(WATCHDOG)
    with pytest.raises(ProducerFencedError) as info:
        zombie.get(10)
    assert "newer producer" in str(info.value)
    assert "transaction_timeout_ms" not in str(info.value)
    broker._check()



def test_transaction_timeout_aborts_and_fences(broker):
    broker.create_topic("t")
    p = txn_producer(broker, transaction_timeout_ms=200)
    p.begin_transaction()
    p.send("t", b"left open").get(10)
    with broker.producer() as plain:
        plain.send("t", b"after").get(10)
    c = reader(broker, TP("t", 0))
    # The writer aborts the transaction after ~0.2 s; the consumer, held at the last
    # stable offset until then, wakes up for it.
    assert wait_for(c, 1) == [b"after"]
    assert markers(broker, "t") == [(2, "abort")]
    with pytest.raises(ProducerFencedError, match="stayed open longer than "
                                                  "transaction_timeout_ms=200"):
        p.send("t", b"x")
    with pytest.raises(ProducerFencedError, match="transaction_timeout_ms"):
        p.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == [b"after"]
    again = txn_producer(broker)  # the id is usable again, at a higher epoch
    assert again._epoch > p._epoch
    again.begin_transaction()
    again.send("t", b"ok")
    again.commit_transaction()
    assert available(c) == [b"ok"]
    broker._check()


def test_timed_out_transaction_whose_abort_was_not_flushed_fences_once(data_dir):
    """The abort of a timed-out transaction committed but its flush failed: the
    producer is fenced for the timeout at once, not a second later (after a second
    epoch bump) as if a newer producer had taken the id."""
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t")
        p = txn_producer(broker, transaction_timeout_ms=200)
        epoch = p._epoch
        p.begin_transaction()
        p.send("t", b"left open").get(10)
        broker._writer.fail_next_sync = DiskFullError("flush failed (injected)")
        with broker.producer() as plain:
            plain.send("t", b"after").get(10)
        assert wait_for(reader(broker, TP("t", 0)), 1) == [b"after"]
        with pytest.raises(ProducerFencedError, match="stayed open longer than "
                                                      "transaction_timeout_ms=200"):
            p.commit_transaction()
        assert broker._txns._ids["tx"].epoch == epoch + 1
        broker._check()


# -- failures inside a transaction -----------------------------------------------------


def test_failed_record_makes_commit_abortable(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"good").get(10)
    with broker._writer.paused():
        broker._writer.fail_next_commit = DiskFullError("no space (injected)")
        bad = p.send("t", b"bad")
    with pytest.raises(DiskFullError):
        bad.get(10)
    with pytest.raises(TransactionAbortableError, match=r"cannot commit: a record in it "
                       r"failed \(no space \(injected\)\); call abort_transaction"):
        p.commit_transaction()
    with pytest.raises(IllegalStateError, match="call abort_transaction"):
        p.begin_transaction()
    p.abort_transaction()
    p.begin_transaction()
    assert p.send("t", b"next").get(10).offset == 2  # no sequence gap
    p.commit_transaction()
    assert markers(broker, "t") == [(1, "abort"), (3, "commit")]
    assert available(reader(broker, TP("t", 0))) == [b"next"]
    broker._check()


def test_record_for_a_deleted_topic_makes_commit_abortable(broker):
    broker.create_topic("gone")
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"kept-in-t").get(10)
    with broker._writer.paused():
        lost = p.send("gone", b"x")
        t, box = queue_job_while_paused(broker, lambda: broker.delete_topic("gone"))
    t.join(WATCHDOG)
    assert "error" not in box
    with pytest.raises(UnknownTopicOrPartitionError, match="no longer exists"):
        lost.get(10)
    with pytest.raises(TransactionAbortableError, match="no longer exists"):
        p.commit_transaction()
    p.abort_transaction()
    assert available(reader(broker, TP("t", 0))) == []
    p.begin_transaction()
    p.send("t", b"next")
    p.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == [b"next"]
    broker._check()


def test_topic_deleted_with_an_open_transaction_in_it(broker):
    broker.create_topic("a")
    broker.create_topic("b")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("a", b"in a").get(10)
    p.send("b", b"in b").get(10)
    broker.delete_topic("a")
    p.commit_transaction()  # the deleted partition simply gets no marker
    assert markers(broker, "b") == [(1, "commit")]
    assert available(reader(broker, TP("b", 0))) == [b"in b"]
    broker.create_topic("a")
    assert available(reader(broker, TP("a", 0))) == []
    broker._check()


def test_refused_record_inside_a_transaction_makes_commit_abortable(broker):
    """As Kafka's transaction manager: a record refused by send() spoils the
    transaction, so it cannot commit without it."""
    broker.create_topic("t", config={"max.message.bytes": 100})
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"small")
    with pytest.raises(MessageSizeTooLargeError):
        p.send("t", b"x" * 200)
    with pytest.raises(TransactionAbortableError, match="abort_transaction"):
        p.commit_transaction()
    with pytest.raises(IllegalStateError, match="abort_transaction"):
        p.send("t", b"more")
    p.abort_transaction()
    p.begin_transaction()
    p.send("t", b"next")
    p.commit_transaction()
    assert available(reader(broker, TP("t", 0))) == [b"next"]


def test_refused_records_inside_an_aborted_transaction_leave_nothing(broker):
    broker.create_topic("t", config={"max.message.bytes": 100})
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"small")
    with pytest.raises(MessageSizeTooLargeError, match="exceeds the limit of 100 bytes"):
        p.send("t", b"x" * 200)
    with pytest.raises(UnknownTopicOrPartitionError, match="partition 3 does not exist"):
        p.send("t", b"y", partition=3)
    p.abort_transaction()
    assert available(reader(broker, TP("t", 0))) == []
    broker._check()



def test_close_aborts_an_open_transaction(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"never committed")
    c = reader(broker, TP("t", 0))
    p.close()
    assert markers(broker, "t") == [(1, "abort")]
    assert c.end_offsets([TP("t", 0)]) == {TP("t", 0): 2}  # not stuck
    assert available(c) == []
    assert broker._partition(TP("t", 0)).open_txns == {}
    broker._check()


def test_abort_that_timed_out_can_be_retried(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    with broker._writer.paused():
        p.send("t", b"x")
        with pytest.raises(KafkaTimeoutError):
            p.abort_transaction(timeout=0.05)
    p.abort_transaction()
    assert broker._partition(TP("t", 0)).open_txns == {}
    assert markers(broker, "t") == [(1, "abort")]
    p.begin_transaction()
    with broker._writer.paused():
        p.send("t", b"y")
        with pytest.raises(KafkaTimeoutError):
            p.abort_transaction(timeout=0.05)
    p.close()  # and close() aborts it too, rather than leaving it to the timeout
    assert broker._partition(TP("t", 0)).open_txns == {}
    assert markers(broker, "t") == [(1, "abort"), (3, "abort")]
    broker._check()


# -- offsets in transactions -----------------------------------------------------------


def test_offsets_become_visible_only_on_commit(broker):
    broker.create_topic("in", partitions=2)
    broker.create_topic("out")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("out", b"r")
    p.send_offsets_to_transaction({TP("in", 0): 5}, "g")
    p.send_offsets_to_transaction(
        {TP("in", 1): mqlog.OffsetAndMetadata(7, "meta", -1), TP("in", 0): 6}, "g")
    p.flush(10)
    assert broker.committed_offset("g", TP("in", 0)) is None
    p.commit_transaction()
    assert broker.committed_offset("g", TP("in", 0)).offset == 6  # merged, latest wins
    assert broker.committed_offset("g", TP("in", 1))[:2] == (7, "meta")
    c = broker.consumer(group_id="g")
    assert c.committed(TP("in", 1)) == 7
    # Aborted offsets are discarded.
    p.begin_transaction()
    p.send_offsets_to_transaction({TP("in", 0): 100}, "g")
    p.abort_transaction()
    assert broker.committed_offset("g", TP("in", 0)).offset == 6
    # Offsets-only transactions commit too.
    p.begin_transaction()
    p.send_offsets_to_transaction({TP("in", 0): 8}, "other")
    p.commit_transaction()
    assert broker.group_offsets("other") == {TP("in", 0): mqlog.OffsetAndMetadata(8, "", -1)}
    broker._check()


def test_send_offsets_validates(broker):
    broker.create_topic("in")
    p = txn_producer(broker)
    p.begin_transaction()
    with pytest.raises(TypeError, match="group_metadata"):
        p.send_offsets_to_transaction({TP("in", 0): 1}, 5)
    with pytest.raises(InvalidConfigError, match="non-empty str"):
        p.send_offsets_to_transaction({TP("in", 0): 1}, "")
    with pytest.raises(ValueError, match="commit an int >= 0"):
        p.send_offsets_to_transaction({TP("in", 0): -1}, "g")
    with pytest.raises(UnknownTopicOrPartitionError):
        p.send_offsets_to_transaction({TP("nope", 0): 1}, "g")
    p.commit_transaction()  # the refused calls left nothing behind
    assert broker.committed_offset("g", TP("in", 0)) is None
    broker._check()



def consume_group(broker, *consumers, rounds=6):
    for _ in range(rounds):
        for c in consumers:
            c.poll(timeout_ms=10)


def test_rebalance_refuses_offsets_sent_with_stale_group_metadata(broker):
    broker.create_topic("in", partitions=2)
    broker.create_topic("out")
    with broker.producer() as plain:
        plain.send("in", b"a", partition=0)
        plain.send("in", b"b", partition=1)
    a = broker.consumer("in", group_id="g", auto_offset_reset="earliest",
                        enable_auto_commit=False)
    assert len(wait_for(a, 2)) == 2
    meta = a.group_metadata()
    assert meta.group_id == "g" and meta.generation_id >= 0 and meta.member_id
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("out", b"processed")
    p.send_offsets_to_transaction({TP("in", 0): 1, TP("in", 1): 1}, meta)
    b = broker.consumer("in", group_id="g", enable_auto_commit=False)
    consume_group(broker, a, b)  # the rebalance takes a partition from `a`
    assert len(a.assignment()) == 1
    with pytest.raises(CommitFailedError, match="generation .* is stale"):
        p.commit_transaction()
    # Nothing was written: no marker, no offsets.
    assert end(broker, "out") == 1 and markers(broker, "out") == []
    assert broker.group_offsets("g") == {}
    with pytest.raises(IllegalStateError, match="call abort_transaction"):
        p.send("out", b"x")
    p.abort_transaction()
    assert markers(broker, "out") == [(1, "abort")]
    assert broker.group_offsets("g") == {}
    # With the current metadata, for a partition it owns, the next one commits.
    (owned,) = a.assignment()
    p.begin_transaction()
    p.send("out", b"again")
    p.send_offsets_to_transaction({owned: 1}, a.group_metadata())
    p.commit_transaction()
    assert broker.group_offsets("g") == {owned: mqlog.OffsetAndMetadata(1, "", -1)}
    assert available(reader(broker, TP("out", 0))) == [b"again"]
    broker._check()


def test_offsets_of_a_departed_member_are_refused(broker):
    broker.create_topic("in")
    a = broker.consumer("in", group_id="g", enable_auto_commit=False)
    consume_group(broker, a, rounds=2)
    meta = a.group_metadata()
    p = txn_producer(broker)
    p.begin_transaction()
    p.send_offsets_to_transaction({TP("in", 0): 0}, meta)
    a.close()
    with pytest.raises(CommitFailedError, match="no longer in the group"):
        p.commit_transaction()
    p.abort_transaction()
    assert broker.group_offsets("g") == {}
    broker._check()



def test_offsets_by_group_id_are_accepted_while_the_group_has_members(broker):
    """The group-id form (Kafka's pre-KIP-447 API) is not fenced: Kafka's coordinator
    accepts transactional offsets without a member id even for a non-empty group."""
    broker.create_topic("in")
    with broker.producer() as plain:
        plain.send("in", b"a")
    c = broker.consumer("in", group_id="g", auto_offset_reset="earliest",
                        enable_auto_commit=False)
    assert wait_for(c, 1) == [b"a"]
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("out", b"processed")
    p.send_offsets_to_transaction({TP("in", 0): 1}, "g")
    p.commit_transaction()
    assert c.committed(TP("in", 0)) == 1


# -- read_committed --------------------------------------------------------------------
    broker._check()



def test_read_committed_stops_at_the_last_stable_offset(broker):
    broker.create_topic("t")
    tp = TP("t", 0)
    plain = broker.producer()
    plain.send("t", b"before").get(10)
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"in txn").get(10)
    plain.send("t", b"after-1").get(10)
    plain.send("t", b"after-2").get(10)
    rc, ru = reader(broker, tp), reader(broker, tp, committed=False)
    assert available(rc) == [b"before"]
    assert rc.position(tp) == 1
    assert rc.poll(timeout_ms=30) == {}  # waits, and returns nothing past the LSO
    assert available(ru) == [b"before", b"in txn", b"after-1", b"after-2"]
    assert rc.end_offsets([tp]) == {tp: 1}
    assert ru.end_offsets([tp]) == {tp: 4}
    late_rc, late_ru = reader(broker, tp), reader(broker, tp, committed=False)
    late_rc.seek_to_end()
    late_ru.seek_to_end()
    assert (late_rc.position(tp), late_ru.position(tp)) == (1, 4)
    latest = broker.consumer(isolation_level="read_committed", auto_offset_reset="latest")
    latest.assign([tp])
    assert latest.position(tp) == 1
    # A blocked poll wakes up for the commit.
    p.commit_transaction()
    assert wait_for(rc, 3) == [b"in txn", b"after-1", b"after-2"]
    assert rc.position(tp) == 5 and rc.end_offsets([tp]) == {tp: 5}
    assert available(late_rc) == [b"in txn", b"after-1", b"after-2"]
    assert available(late_ru) == []
    broker._check()


def test_read_committed_wakes_when_another_thread_commits(broker):
    broker.create_topic("t")
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"x").get(10)
    c = reader(broker, TP("t", 0))
    assert c.poll(timeout_ms=0) == {}
    done = threading.Event()

    def commit():
        p.commit_transaction()
        done.set()

    t = threading.Thread(target=commit, daemon=True)
    t.start()
    assert wait_for(c, 1) == [b"x"]
    t.join(WATCHDOG)
    assert done.is_set()
    broker._check()



def test_last_stable_offset_is_the_oldest_open_transaction(broker):
    broker.create_topic("t")
    tp = TP("t", 0)
    first, second = txn_producer(broker, "one"), txn_producer(broker, "two")
    first.begin_transaction()
    second.begin_transaction()
    first.send("t", b"one-a").get(10)
    second.send("t", b"two-a").get(10)
    first.send("t", b"one-b").get(10)
    c = reader(broker, tp)
    assert c.end_offsets([tp]) == {tp: 0}
    second.commit_transaction()
    assert c.end_offsets([tp]) == {tp: 0}  # still held by the older transaction
    assert available(c) == []
    first.abort_transaction()
    assert c.end_offsets([tp]) == {tp: 5}
    assert available(c) == [b"two-a"]
    assert markers(broker, "t") == [(3, "commit"), (4, "abort")]
    broker._check()


def test_two_transactions_ending_in_one_write(broker):
    broker.create_topic("t", partitions=2)
    one, two = txn_producer(broker, "one"), txn_producer(broker, "two")
    one.begin_transaction()
    two.begin_transaction()
    one.send("t", b"one", partition=0).get(10)
    two.send("t", b"two", partition=0).get(10)
    two.send("t", b"two-1", partition=1).get(10)
    commits = broker._writer.commits
    results = in_one_transaction(broker, one.commit_transaction, two.abort_transaction)
    assert results == [None, None]
    assert broker._writer.commits == commits + 1  # both markers in one write
    assert markers(broker, "t", 0) == [(2, "commit"), (3, "abort")]
    assert markers(broker, "t", 1) == [(1, "abort")]
    assert end(broker, "t", 0) == 4 and end(broker, "t", 1) == 2
    assert available(reader(broker, TP("t", 0), TP("t", 1))) == [b"one"]
    broker._check()


WRITER_CHILD = r"""
import sys
import mqlog
with mqlog.open(sys.argv[1]) as b:
    b.create_topic("t")
    p = b.producer(transactional_id="tx")
    p.init_transactions()
    p.begin_transaction()
    p.send("t", b"open").get(10)
    b.producer().send("t", b"plain").get(10)
    print("open", flush=True)
    sys.stdin.readline()
    p.commit_transaction()
    print("committed", flush=True)
    sys.stdin.readline()
"""


def test_readonly_broker_holds_read_committed_at_another_writers_open_transaction(
        data_dir):
    child = subprocess.Popen([sys.executable, "-c", WRITER_CHILD, data_dir],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=child_env())
    watchdog = threading.Timer(WATCHDOG * 3, child.kill)  # a hung child fails the test
    watchdog.start()
    try:
        assert child.stdout.readline() == "open\n"
        with mqlog.open(data_dir, readonly=True) as ro:
            rc = reader(ro, TP("t", 0))
            assert available(rc) == []
            assert rc.end_offsets([TP("t", 0)]) == {TP("t", 0): 0}
            assert available(reader(ro, TP("t", 0), committed=False)) == [
                b"open", b"plain"]
            child.stdin.write("commit\n")
            child.stdin.flush()
            assert child.stdout.readline() == "committed\n"
            assert wait_for(rc, 2) == [b"open", b"plain"]
        child.stdin.write("exit\n")
        child.stdin.flush()
        assert child.wait(WATCHDOG * 3) == 0
    finally:
        watchdog.cancel()
        child.kill()


def test_bad_isolation_level(broker):
    with pytest.raises(InvalidConfigError, match="isolation_level='serializable'"):
        broker.consumer(isolation_level="serializable")


# -- durability across reopen ----------------------------------------------------------

CHILD = r"""
import os, sys
import mqlog
b = mqlog.open(sys.argv[1])
b.create_topic("t", partitions=2)
p = b.producer(transactional_id="tx")
p.init_transactions()
p.begin_transaction()
p.send("t", b"committed", partition=0)
p.send_offsets_to_transaction({mqlog.TopicPartition("t", 1): 3}, "g")
p.commit_transaction()
p.begin_transaction()
p.send("t", b"open-0", partition=0)
p.send("t", b"open-1", partition=1)
p.send_offsets_to_transaction({mqlog.TopicPartition("t", 1): 9}, "g")
p.flush(10)
q = b.producer()
q.send("t", b"after", partition=0).get(10)
print(p._pid, p._epoch, flush=True)
os._exit(0)  # killed: no close, no abort
"""


def test_transaction_left_open_by_a_killed_process_is_aborted_on_reopen(data_dir):
    out = run_python(CHILD, data_dir).stdout.split()
    child_pid, child_epoch = int(out[0]), int(out[1])
    with mqlog.open(data_dir) as broker:
        tps = [TP("t", 0), TP("t", 1)]
        for tp in tps:
            assert broker._partition(tp).open_txns == {}
        # The abort fenced the dead producer's epoch: a client that outlived the
        # restart (over `mqlog serve`) cannot finish the half-aborted transaction.
        assert broker._txns._ids["tx"].epoch == child_epoch + 1
        assert markers(broker, "t", 0) == [(1, "commit"), (4, "abort")]
        assert markers(broker, "t", 1) == [(1, "abort")]
        c = reader(broker, *tps)
        assert c.end_offsets(tps) == {TP("t", 0): 5, TP("t", 1): 2}  # not stuck
        assert available(c) == [b"committed", b"after"]
        assert broker.committed_offset("g", TP("t", 1)).offset == 3
        p = txn_producer(broker)
        assert p._pid == child_pid and p._epoch > child_epoch
        p.begin_transaction()
        p.send("t", b"new", partition=1)
        p.commit_transaction()
        assert stored(broker, "t", 1)[-2].producer_epoch == p._epoch
        assert available(c) == [b"new"]
        broker._check()
    # A second reopen finds nothing to abort, and keeps the aborted index.
    with mqlog.open(data_dir) as broker:
        assert broker._txns.recover() == 0
        assert available(reader(broker, TP("t", 0))) == [b"committed", b"after"]
        assert len(available(reader(broker, TP("t", 0), committed=False))) == 3
        broker._check()


def test_aborted_transactions_stay_hidden_after_reopen(data_dir):
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t")
        p = txn_producer(broker)
        p.begin_transaction()
        p.send("t", b"aborted")
        p.abort_transaction()
        p.begin_transaction()
        p.send("t", b"committed")
        p.commit_transaction()
        p.begin_transaction()
        p.send("t", b"open at close")
        epoch = p._epoch
    with mqlog.open(data_dir) as broker:  # close() aborted the open one
        assert markers(broker, "t") == [(1, "abort"), (3, "commit"), (5, "abort")]
        assert available(reader(broker, TP("t", 0))) == [b"committed"]
        assert txn_producer(broker)._epoch == epoch + 1
        broker._check()
    with mqlog.open(data_dir, readonly=True) as ro:
        assert available(reader(ro, TP("t", 0))) == [b"committed"]


def test_idempotent_ids_are_not_reused_after_reopen(data_dir):
    with mqlog.open(data_dir) as broker:
        first = broker.producer(enable_idempotence=True)._pid
    with mqlog.open(data_dir) as broker:
        assert broker.producer(enable_idempotence=True)._pid > first


# -- retention and compaction ----------------------------------------------------------

COMPACT = {"cleanup.policy": "compact", "min.compaction.lag.ms": 0}


def test_compaction_never_lets_an_aborted_record_supersede_a_committed_one(broker):
    broker.create_topic("t", config=COMPACT)
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"v1", key=b"k")
    p.commit_transaction()
    p.begin_transaction()
    p.send("t", b"v2", key=b"k")
    p.send("t", None, key=b"gone")  # an aborted tombstone deletes nothing either
    p.abort_transaction()
    p.begin_transaction()  # the producer's newest batch stays whole: not the aborted one
    p.send("t", b"later", key=b"later")
    p.commit_transaction()
    with broker.producer() as plain:
        plain.send("t", b"g1", key=b"gone").get(10)
        for i in range(3):  # later batches make the transactions' batches cleanable
            plain.send("t", b"o%d" % i, key=b"other").get(10)
    before = markers(broker, "t")
    stats = broker.run_cleaner()
    # The two aborted records and o0 (the newest batch, o2, is never compacted, so o1
    # survives this run).
    assert stats.records_removed == 3
    assert markers(broker, "t") == before == [(1, "commit"), (4, "abort"), (6, "commit")]
    got = [(r.key, r.value) for r in available_records(reader(broker, TP("t", 0)))]
    assert got == [(b"k", b"v1"), (b"later", b"later"), (b"gone", b"g1"),
                   (b"other", b"o1"), (b"other", b"o2")]
    assert [(r.key, r.value) for r in broker.messages("t")] == got
    broker._check()


def available_records(consumer):
    out = []
    while True:
        got = consumer.poll(timeout_ms=0)
        if not got:
            return out
        for tp in sorted(got):
            out.extend(got[tp])


def test_compaction_stops_at_an_open_transaction(broker):
    broker.create_topic("t", config=COMPACT)
    with broker.producer() as plain:
        plain.send("t", b"v1", key=b"k").get(10)
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"v2", key=b"k").get(10)
    with broker.producer() as plain:
        for i in range(3):
            plain.send("t", b"o%d" % i, key=b"other").get(10)
    broker.run_cleaner()  # v2 is undecided: it must not supersede v1
    p.abort_transaction()
    assert [(r.key, r.value) for r in available_records(reader(broker, TP("t", 0)))] == [
        (b"k", b"v1"), (b"other", b"o0"), (b"other", b"o1"), (b"other", b"o2")]
    broker.run_cleaner()
    assert [r.value for r in available_records(reader(broker, TP("t", 0)))] == [
        b"v1", b"o2"]
    broker._check()


def test_committed_transactional_records_compact_like_others(broker):
    broker.create_topic("t", config=COMPACT)
    p = txn_producer(broker)
    for v in (b"v1", b"v2", b"v3"):
        p.begin_transaction()
        p.send("t", v, key=b"k")
        p.commit_transaction()
    with broker.producer() as plain:
        plain.send("t", b"x", key=b"x").get(10)
    broker.run_cleaner()
    assert [r.value for r in broker.messages("t")] == [b"v3", b"x"]
    assert markers(broker, "t") == [(1, "commit"), (3, "commit"), (5, "commit")]
    b = stored(broker, "t")[2]
    assert (b.base_offset, b.is_transactional, b.producer_id) == (4, True, p._pid)
    assert available(reader(broker, TP("t", 0))) == [b"v3", b"x"]
    broker._check()


def test_compaction_removes_markers_once_their_transactions_are_empty(data_dir):
    """A marker goes when no record of its transaction is left and it is older than
    delete.retention.ms; an abort marker takes its aborted-index entry along, in the
    store too. Markers of transactions with a kept record stay."""
    day = 86_400_000
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t", config=COMPACT)
        p = txn_producer(broker)
        for value in (b"v1", b"v2"):  # v2 supersedes v1: the first transaction empties
            p.begin_transaction()
            p.send("t", value, key=b"k")
            p.commit_transaction()
        p.begin_transaction()
        p.send("t", b"v3", key=b"k")
        p.abort_transaction()
        p.begin_transaction()  # the producer's newest batch, kept whole: not v3's
        p.send("t", b"tail", key=b"tail")
        p.commit_transaction()
        with broker.producer() as plain:
            for i in range(3):  # later batches make the transactions' ones cleanable
                plain.send("t", b"o%d" % i, key=b"other%d" % i).get(10)
        plog = broker._partition(TP("t", 0))
        all_markers = [(1, "commit"), (3, "commit"), (5, "abort"), (7, "commit")]
        assert markers(broker, "t") == all_markers
        assert plog.aborted == {p._pid: [(4, 5)]}

        broker.run_cleaner()  # the markers are younger than delete.retention.ms
        assert markers(broker, "t") == all_markers
        assert plog.aborted == {p._pid: [(4, 5)]}

        stats = broker._cleaner.run(now_ms=time.time_ns() // 1_000_000 + 2 * day)
        # v2 and tail are kept: so are their markers.
        assert markers(broker, "t") == [(3, "commit"), (7, "commit")]
        assert plog.aborted == {}
        assert stats.records_removed == 2  # the two markers (v1 and v3 went before)
        values = [b"v2", b"tail", b"o0", b"o1", b"o2"]
        assert available(reader(broker, TP("t", 0))) == values
        assert [r.value for r in broker.messages("t")] == values
        broker._check()
    with mqlog.open(data_dir) as broker:  # the aborted index in the store agrees
        assert broker._partition(TP("t", 0)).aborted == {}
        assert available(reader(broker, TP("t", 0))) == values
        broker._check()


def test_the_aborted_index_outlives_reads_older_than_the_compaction(broker):
    """A read whose snapshot still holds an aborted transaction's records (compaction
    deleted them after it began) judges them by the in-memory aborted index: the
    entry must stay until that read ends, or read_committed would return them."""
    from mqlog.log import fetch

    broker.create_topic("t", config=COMPACT)
    p = txn_producer(broker)
    p.begin_transaction()
    p.send("t", b"ABORTED", key=b"k")
    p.abort_transaction()
    p.begin_transaction()
    p.send("t", b"tail", key=b"tail")  # the producer's newest batch
    p.commit_transaction()
    with broker.producer() as plain:
        for i in range(3):
            plain.send("t", b"o%d" % i, key=b"o%d" % i).get(10)
    plog = broker._partition(TP("t", 0))
    later = time.time_ns() // 1_000_000 + 2 * 86_400_000
    with broker._store.read() as txn:  # begun before the compaction
        broker._cleaner.run(now_ms=later)
        assert markers(broker, "t") == [(3, "commit")]  # the abort marker went
        assert plog.aborted == {p._pid: [(0, 1)]}  # kept for the read still open
        recs, _, _ = fetch(txn, plog, 0, 100, None, True)
        assert b"ABORTED" not in [r.value for r in recs]
    broker._cleaner.run(now_ms=later)  # no older read is left: the entry goes
    assert plog.aborted == {}
    assert available(reader(broker, TP("t", 0))) == [b"tail", b"o0", b"o1", b"o2"]
    broker._check()


def test_compaction_keeps_the_marker_of_a_transaction_with_records_in_other_batches(
        broker):
    broker.create_topic("t", config=COMPACT)
    p = txn_producer(broker, batch_size=1)  # one batch per record
    p.begin_transaction()
    p.send("t", b"a1", key=b"a")
    p.send("t", b"b1", key=b"b")
    p.commit_transaction()
    p.begin_transaction()
    p.send("t", b"a2", key=b"a")  # supersedes a1 only: b1 keeps the first marker alive
    p.commit_transaction()
    with broker.producer() as plain:
        plain.send("t", b"x", key=b"x").get(10)
    broker._cleaner.run(now_ms=time.time_ns() // 1_000_000 + 2 * 86_400_000)
    assert markers(broker, "t") == [(2, "commit"), (4, "commit")]
    assert available(reader(broker, TP("t", 0))) == [b"b1", b"a2", b"x"]
    broker._check()


def test_retention_prunes_the_aborted_index(data_dir):
    with mqlog.open(data_dir) as broker:
        broker.create_topic("t")
        p = txn_producer(broker)
        p.begin_transaction()
        p.send("t", b"aborted")
        p.abort_transaction()
        p.begin_transaction()
        p.send("t", b"kept")
        p.commit_transaction()
        plog = broker._partition(TP("t", 0))
        assert plog.aborted == {p._pid: [(0, 1)]}
        broker.delete_records(TP("t", 0), 2)
        assert plog.aborted == {}
        assert available(reader(broker, TP("t", 0))) == [b"kept"]
        broker._check()
    with mqlog.open(data_dir) as broker:
        assert broker._partition(TP("t", 0)).aborted == {}
        with broker._store.read() as txn:
            assert list(txn.meta_items(b"a")) == []


RACING_CHILD = r"""
import os, sys, threading
import mqlog
b = mqlog.open(sys.argv[1])
b.create_topic("t")
for i in range(40):
    pair = [b.producer(transactional_id="id%d" % i) for _ in range(2)]
    threads = [threading.Thread(target=p.init_transactions) for p in pair]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (live,) = [p for p in pair if p._fenced is None]  # the other was fenced
    live.begin_transaction()
    live.send("t", b"open %d" % i)
    live.flush(10)
print(b._txns._ids["id0"].epoch, flush=True)
os._exit(0)  # killed with 40 transactions open
"""


def test_racing_first_init_transactions_keep_one_state_per_id(data_dir):
    """Two producers calling init_transactions() for a new id at once must share one
    stored state: a second one would shadow the first on reopen, so its open
    transaction would never be aborted and read_committed consumers would be stuck."""
    epoch = int(run_python(RACING_CHILD, data_dir).stdout)
    with mqlog.open(data_dir) as broker:
        with broker._store.read() as txn:
            names = [mqlog._store.loads_json(raw)["id"] for _, raw in txn.meta_items(b"x")]
        assert sorted(names) == sorted("id%d" % i for i in range(40))
        plog = broker._partition(TP("t", 0))
        assert plog.open_txns == {}
        c = reader(broker, TP("t", 0))
        assert c.end_offsets([TP("t", 0)]) == {TP("t", 0): 80}
        assert available(c) == []
        # Recovery's abort bumped the epoch once, init_transactions() once more.
        assert txn_producer(broker, "id0")._epoch == epoch + 2
        broker._check()
