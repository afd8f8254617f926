"""PartitionLog: verify() finds damage; fetch and time lookups."""

import mqlog
from mqlog import TopicPartition, batch


def test_verify_finds_gaps_overlaps_and_damage(broker):
    broker.create_topic("t")
    with broker.producer() as p:
        for i in range(3):
            p.send("t", b"v%d" % i).get(10)
    plog = broker._topics["t"].partitions[0]
    tid = plog.topic_id
    assert plog.verify(broker._store) == []
    # A batch that overlaps the one at offset 1, and one past the end offset.
    body = batch.encode([b"x", b"y"], None, 1)
    broker._writer.run(lambda txn: txn.replace_batch(tid, 0, 0, batch.with_base_offset(
        0, body)))
    problems = " ".join(plog.verify(broker._store))
    assert "overlaps" in problems
    broker._writer.run(lambda txn: txn.replace_batch(tid, 0, 9, batch.with_base_offset(
        9, body)))
    problems = " ".join(plog.verify(broker._store))
    assert "past the end offset 3" in problems and "missing" in problems
    # A flipped byte: the CRC catches it.
    raw = bytearray(batch.with_base_offset(1, batch.encode([b"v1"], None, 1)))
    raw[-1] ^= 1
    broker._writer.run(lambda txn: txn.replace_batch(tid, 0, 1, bytes(raw)))
    assert "CRC-32C" in " ".join(plog.verify(broker._store))


def test_compacted_partitions_may_have_gaps(broker):
    broker.create_topic("t", config={"cleanup.policy": "compact"})
    with broker.producer() as p:
        for v in (b"a", b"b", b"c"):
            p.send("t", v, key=b"k").get(10)
    broker.run_cleaner()
    plog = broker._topics["t"].partitions[0]
    assert plog.verify(broker._store, dense=False) == []
    assert any("missing" in x for x in plog.verify(broker._store, dense=True))


def test_delete_records_inside_a_batch_keeps_invariants(broker):
    with broker.producer(linger_ms=60_000) as p:
        for i in range(10):
            p.send("t", b"%d" % i, partition=0)
    broker.delete_records(TopicPartition("t", 0), 4)
    assert [r.offset for r in broker.messages("t")] == list(range(4, 10))
    broker._check()
    c = broker.consumer(auto_offset_reset="earliest")
    c.assign([TopicPartition("t", 0)])
    assert c.offsets_for_times({TopicPartition("t", 0): 0})[TopicPartition("t", 0)].offset == 4
    assert isinstance(broker._topics["t"].partitions[0], mqlog.log.PartitionLog)
