"""Broker: lifecycle, topics, persistence, fork detection."""

import os

import pytest
from helpers import in_one_transaction

import mqlog
from mqlog import TopicPartition
from mqlog.errors import (
    ClosedError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidTopicError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)


def test_temporary_broker_is_deleted_on_close():
    b = mqlog.open()
    path = b.path
    assert b.temporary and os.path.isdir(path)
    b.close()
    b.close()  # idempotent
    assert not os.path.exists(path)
    assert b.closed
    for call in (b.topics, lambda: b.create_topic("x"), b.producer, b.consumer,
                 lambda: b.messages("x")):
        with pytest.raises(ClosedError, match="closed"):
            call()


def test_context_manager_and_repr(data_dir):
    with mqlog.open(data_dir) as b:
        assert "open" in repr(b) and data_dir in repr(b)
    assert "closed" in repr(b)
    assert os.path.isdir(data_dir)  # a real directory stays


def test_handles_closed_with_broker():
    b = mqlog.open()
    p = b.producer()
    c = b.consumer()
    b.close()
    with pytest.raises(ClosedError):
        p.send("t", b"x")
    with pytest.raises(ClosedError):
        c.assign([TopicPartition("t", 0)])


@pytest.mark.parametrize("name", ["", ".", "..", "a b", "x" * 250, "tópico", "a/b",
                                  "ok\n"])
def test_invalid_topic_names(broker, name):
    with pytest.raises(InvalidTopicError, match="is invalid"):
        broker.create_topic(name)


def test_valid_topic_names(broker):
    for name in ["a", "x" * 249, "orders.v1_2-b", "..."]:
        assert broker.create_topic(name).name == name
    with pytest.raises(TypeError):
        broker.create_topic(b"bytes")


def test_create_list_delete(broker):
    info = broker.create_topic("orders", partitions=3, config={"retention.ms": "1000"})
    assert info == mqlog.TopicInfo("orders", 3, {"retention.ms": 1000})
    assert broker.topics() == {"orders": info}
    with pytest.raises(TopicExistsError, match="'orders' already exists"):
        broker.create_topic("orders")
    broker.delete_topic("orders")
    assert broker.topics() == {}
    with pytest.raises(UnknownTopicOrPartitionError, match="'orders' does not exist"):
        broker.delete_topic("orders")


def test_partition_count_validation(broker):
    with pytest.raises(InvalidPartitionsError, match="partitions=0"):
        broker.create_topic("t", partitions=0)
    with pytest.raises(InvalidPartitionsError):
        broker.create_topic("t", partitions="3")
    broker.create_topic("t", partitions=2)
    with pytest.raises(InvalidPartitionsError, match="must be larger"):
        broker.create_partitions("t", 2)
    assert broker.create_partitions("t", 5).partitions == 5
    with pytest.raises(UnknownTopicOrPartitionError):
        broker.create_partitions("nope", 5)


def test_bad_config_names_key(broker):
    with pytest.raises(InvalidConfigError, match="unknown topic config key 'retention_ms'.*"
                       "did you mean 'retention.ms'"):
        broker.create_topic("t", config={"retention_ms": 5})
    with pytest.raises(InvalidConfigError, match="cleanup.policy"):
        broker.create_topic("t", config={"cleanup.policy": "shred"})
    assert "t" not in broker.topics()  # a refused create leaves nothing


def test_concurrent_creates_of_one_name_make_one_topic(broker):
    import threading

    results = []

    def create():
        try:
            broker.create_topic("same")
            results.append("ok")
        except TopicExistsError:
            results.append("exists")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["exists"] * 7 + ["ok"]
    assert list(broker.topics()) == ["same"]


def test_reopen_keeps_topics_records_offsets(data_dir):
    with mqlog.open(data_dir) as b:
        b.create_topic("orders", partitions=2, config={"cleanup.policy": "compact"})
        with b.producer() as p:
            for i in range(10):
                p.send("orders", b"v%d" % i, key=b"k%d" % (i % 3))
        b.commit_offsets("billing", {TopicPartition("orders", 0): 2})
        before = b.messages("orders")
    with mqlog.open(data_dir) as b:
        assert b.topics()["orders"].config == {"cleanup.policy": "compact"}
        assert b.messages("orders") == before
        assert b.committed_offset("billing", TopicPartition("orders", 0)).offset == 2
        # Offsets continue densely after reopen.
        with b.producer() as p:
            md = p.send("orders", b"more", key=b"k", partition=0).get(10)
        ends = [r.offset for r in before if r.partition == 0]
        assert md.offset == (ends[-1] + 1 if ends else 0)
        b._check()


def test_delete_topic_removes_data_and_offsets(data_dir):
    with mqlog.open(data_dir) as b:
        with b.producer() as p:
            p.send("t", b"x")
        b.commit_offsets("g", {TopicPartition("t", 0): 1})
        b.delete_topic("t")
        b.create_topic("t")
        assert b.messages("t") == []
        assert b.committed_offset("g", TopicPartition("t", 0)) is None
        assert b._store.stat()["entries"]["log"] == 0


def test_messages_order_and_unknown_topic(broker):
    broker.create_topic("t", partitions=2)
    with broker.producer() as p:
        p.send("t", b"a", partition=1)
        p.send("t", b"b", partition=0)
        p.send("t", b"c", partition=1)
    assert [(r.partition, r.offset, r.value) for r in broker.messages("t")] == [
        (0, 0, b"b"), (1, 0, b"a"), (1, 1, b"c")]
    with pytest.raises(UnknownTopicOrPartitionError):
        broker.messages("missing")


def test_use_after_fork_raises_in_child(data_dir):
    b = mqlog.open(data_dir)
    p = b.producer()
    pid = os.fork()
    if pid == 0:  # child: every call must refuse, pointing at the fix
        code = 1
        try:
            p.send("t", b"x")
        except ClosedError as exc:
            code = 0 if "before a fork" in str(exc) else 2
        try:
            b.topics()
            code = 3
        except ClosedError:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    # The parent is unaffected.
    assert p.send("t", b"y").get(10).offset == 0
    b.close()
    mqlog.open(data_dir).close()  # and the directory lock was released


def test_bad_open_arguments():
    with pytest.raises(InvalidPartitionsError):
        mqlog.open(num_partitions=0)
    with pytest.raises(TypeError):
        mqlog.open(fsync="yes")
    with pytest.raises(ValueError, match="readonly"):
        mqlog.open(readonly=True)


def test_num_partitions_default(data_dir):
    with mqlog.open(data_dir, num_partitions=4) as b:
        with b.producer() as p:
            p.send("auto", b"x")
        assert b.topics()["auto"].partitions == 4
        assert b.create_topic("explicit").partitions == 4


def test_create_partitions_twice_in_one_writer_cycle(data_dir):
    with mqlog.open(data_dir) as b:
        b.create_topic("t", partitions=2)
        grown = in_one_transaction(b, lambda: b.create_partitions("t", 4),
                                   lambda: b.create_partitions("t", 6))
        assert [info.partitions for info in grown] == [4, 6]
        assert b.topics()["t"].partitions == 6
        assert [p.partition for p in b._topics["t"].partitions] == list(range(6))
    with mqlog.open(data_dir) as b:
        assert b.topics()["t"].partitions == 6


def test_create_partitions_racing_delete_does_not_resurrect(data_dir):
    with mqlog.open(data_dir) as b:
        b.create_topic("t")
        _, error = in_one_transaction(b, lambda: b.delete_topic("t"),
                                      lambda: b.create_partitions("t", 3))
        assert isinstance(error, UnknownTopicOrPartitionError)
        assert "deleted meanwhile" in str(error)
    with mqlog.open(data_dir) as b:
        assert b.topics() == {}


def test_failed_flush_after_commit_keeps_memory_in_step(data_dir):
    from mqlog.errors import DiskFullError

    with mqlog.open(data_dir) as b:
        b._writer.fail_next_sync = DiskFullError("flush failed (injected)")
        with pytest.raises(DiskFullError, match="injected"):
            b.create_topic("t")  # committed, flush failed
        assert "t" in b.topics()  # memory follows the store
        with pytest.raises(TopicExistsError):
            b.create_topic("t")
    with mqlog.open(data_dir) as b:
        assert list(b.topics()) == ["t"]
