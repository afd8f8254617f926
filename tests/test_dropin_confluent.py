"""mqlog.confluent beyond what the conformance suite can compare with the real client:
fault injection, mqlog's errors as KafkaError codes, threads, transactions, LogAppendTime,
group events (lost partitions), config handling and the AdminClient."""

from __future__ import annotations

import gc
import logging
import pickle
import random
import threading
import time

import pytest

import mqlog
from mqlog import _bootstrap
from mqlog import errors as mqerrors
from mqlog.confluent import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
    admin,
    consistent,
    fnv1a,
    murmur2,
)
from mqlog.confluent.error import to_kafka_error

BOOT = "kafka-1:9092"


@pytest.fixture
def broker(monkeypatch):
    """A temporary broker that the drop-ins' ``bootstrap.servers`` resolve to."""
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    b = mqlog.open()
    with _bootstrap.install(b):
        yield b
    b.close()


def _dotted(conf: dict) -> dict:
    """Keyword settings as librdkafka keys (``linger_ms`` -> ``linger.ms``); Python
    callbacks (``on_delivery``, ``on_commit``) keep their names."""
    return {k if k.startswith("on_") else k.replace("_", "."): v for k, v in conf.items()}


def producer(**conf) -> Producer:
    return Producer({"bootstrap.servers": BOOT, **_dotted(conf)})


def consumer(group: str = "g", **conf) -> Consumer:
    return Consumer({"bootstrap.servers": BOOT, "group.id": group,
                     "auto.offset.reset": "earliest", **_dotted(conf)})


def collect(c: Consumer, n: int, timeout: float = 10.0) -> list[Message]:
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, f"got only {len(out)} of {n}"
        m = c.poll(0.1)
        if m is not None:
            out.append(m)
    return out


def write(broker, topic: str, values, partition: int = 0) -> None:
    with broker.producer() as p:
        for v in values:
            p.send(topic, v, partition=partition)


# -- delivery reports ------------------------------------------------------------------

def test_send_faults_reach_the_delivery_callback(broker):
    broker.create_topic("t", 2)
    reports = []
    p = producer()
    broker.faults.fail_next("send", mqerrors.KafkaTimeoutError)
    broker.faults.fail_next("send", KafkaException(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS,
                                                              "injected", retriable=True)))
    for i in range(3):
        p.produce("t", b"v%d" % i, partition=1,
                  on_delivery=lambda err, msg: reports.append((err, msg.value())))
    assert p.flush(10) == 0
    (e1, v1), (e2, v2), (e3, v3) = reports
    assert e1.code() == KafkaError._MSG_TIMED_OUT and e1.retriable() and v1 == b"v0"
    assert e2.code() == KafkaError.NOT_ENOUGH_REPLICAS and e2.str() == "injected"
    assert e3 is None and v3 == b"v2"
    assert [r.value for r in broker.messages("t")] == [b"v2"]  # failed sends wrote nothing


def test_delivery_callbacks_run_in_the_polling_thread_only(broker):
    broker.create_topic("t", 4)
    p = producer()
    threads = set()

    def produce_some(n: int) -> None:
        for i in range(n):
            p.produce("t", b"v", key=b"%d" % i,
                      on_delivery=lambda err, msg: threads.add(threading.current_thread()))

    workers = [threading.Thread(target=produce_some, args=(250,)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert not any(w.is_alive() for w in workers)
    deadline = time.monotonic() + 10
    while len(broker.messages("t")) < 1000:  # written by mqlog's writer thread...
        assert time.monotonic() < deadline
        threading.Event().wait(0.01)
    assert threads == set() and len(p) == 1000  # ...which ran no callback

    poller = threading.Thread(target=p.flush, args=(10,))
    poller.start()
    poller.join(10)
    assert threads == {poller} and len(p) == 0


def test_a_raising_delivery_callback_propagates_and_keeps_later_reports(broker):
    p = producer()
    served = []

    def boom(err, msg):
        raise RuntimeError("callback failed")

    p.produce("t", b"a", on_delivery=boom)
    p.produce("t", b"b", on_delivery=lambda err, msg: served.append(msg.value()))
    with pytest.raises(RuntimeError, match="callback failed"):
        p.flush(10)
    assert p.flush(10) == 0 and served == [b"b"]


def test_default_callback_and_delivery_report_only_error(broker):
    broker.create_topic("t", 1)
    seen = []
    p = producer(on_delivery=lambda err, msg: seen.append((err, msg.value())),
                 delivery_report_only_error=True)
    p.produce("t", b"ok")
    p.produce("t", b"bad", partition=0, on_delivery=lambda err, msg: seen.append("own"))
    broker.faults.fail_next("send", mqerrors.DiskFullError("disk full"))
    p.produce("t", b"lost")
    assert p.flush(10) == 0
    assert len(seen) == 1 and seen[0][0].code() == KafkaError.KAFKA_STORAGE_ERROR
    with pytest.raises(TypeError, match="bool"):
        producer(delivery_report_only_error="yes")


def test_broker_refusals_are_delivery_errors(broker):
    broker.create_topic("compacted", 1, {"cleanup.policy": "compact"})
    errors = []
    p = producer()
    p.produce("bad topic!", b"v", on_delivery=lambda err, msg: errors.append(err))
    p.produce("compacted", b"no key", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(10) == 0
    assert [e.code() for e in errors] == [KafkaError.TOPIC_EXCEPTION, KafkaError.INVALID_RECORD]


def test_unknown_topic_without_auto_creation(monkeypatch):
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    with mqlog.open(auto_create_topics=False) as b, _bootstrap.install(b):
        p = producer()
        with pytest.raises(KafkaException) as e:
            p.produce("nope", b"v")
        assert e.value.args[0].code() == KafkaError._UNKNOWN_TOPIC and len(p) == 0
        md = p.list_topics("nope")
        assert md.topics["nope"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_producer_settings_reach_mqlog(broker):
    with pytest.raises(KafkaException) as e:
        producer(enable_idempotence=True, acks=1)
    assert e.value.args[0].code() == KafkaError._INVALID_ARG
    got = []
    p = producer(acks=0, compression_type="zstd", linger_ms=0)
    p.produce("t", b"v" * 100, on_delivery=lambda err, msg: got.append((err, msg.offset())))
    assert p.flush(10) == 0 and got == [(None, None)]  # acks=0: nothing waited, no offset
    assert broker.messages("t")[0].value == b"v" * 100


def test_produce_batch_and_purge(broker):
    broker.create_topic("t", 2)
    p = producer()
    msgs = [{"value": b"a"}, {"value": b"b", "key": b"k", "partition": 1},
            {"value": b"c", "partition": 7}]
    assert p.produce_batch("t", msgs) == 2
    assert msgs[2]["_error"].code() == KafkaError._UNKNOWN_PARTITION
    p.purge()
    assert len(broker.messages("t")) == 2  # nothing is dropped: the records were written
    assert p.flush(10) == 0
    with pytest.raises(TypeError):
        p.produce_batch("t", "not a list")


def test_random_partitioners_are_sticky(broker):
    broker.create_topic("t", 4)
    random.seed(7)
    spread = producer(sticky_partitioning_linger_ms=0)
    parts = []
    for _ in range(200):
        spread.produce("t", b"v", on_delivery=lambda err, msg: parts.append(msg.partition()))
    spread.flush(10)
    assert set(parts) == {0, 1, 2, 3}
    sticky = producer(sticky_partitioning_linger_ms=60000, partitioner="murmur2_random")
    parts.clear()
    for _ in range(50):
        sticky.produce("t", b"v", on_delivery=lambda err, msg: parts.append(msg.partition()))
    sticky.flush(10)
    assert len(set(parts)) == 1


def test_partition_helper_functions():
    # Values checked against confluent_kafka.consistent/murmur2/fnv1a.
    assert [consistent(b"a", 4), murmur2(b"a", 4), fnv1a(b"a", 4)] == [3, 0, 0]
    assert [consistent(b"", 4), murmur2(b"", 4), fnv1a(b"", 4)] == [0, 1, 3]
    assert [consistent(b"hello world", 4), murmur2(b"hello world", 4)] == [1, 3]
    with pytest.raises(TypeError):
        consistent("a", 4)
    with pytest.raises(ValueError):
        murmur2(b"a", 0)


# -- transactions --------------------------------------------------------------------

def test_transactions_commit_offsets_atomically_and_fence(broker):
    broker.create_topic("in", 1)
    broker.create_topic("out", 1)
    write(broker, "in", [b"a", b"b"])
    c = consumer("etl", enable_auto_commit=False)
    c.assign([TopicPartition("in", 0)])
    msgs = collect(c, 2)
    tx = producer(transactional_id="etl-1")
    tx.init_transactions(10)
    tx.begin_transaction()
    for m in msgs:
        tx.produce("out", m.value().upper())
    tx.send_offsets_to_transaction([TopicPartition("in", 0, msgs[-1].offset() + 1)],
                                   c.consumer_group_metadata())
    assert c.committed([TopicPartition("in", 0)])[0].offset == OFFSET_INVALID
    tx.commit_transaction(10)
    assert c.committed([TopicPartition("in", 0)])[0].offset == 2
    assert [r.value for r in broker.messages("out", "read_committed")] == [b"A", b"B"]

    tx.begin_transaction()
    tx.produce("out", b"never")
    newer = producer(transactional_id="etl-1")
    newer.init_transactions(10)  # fences the first and aborts its transaction
    with pytest.raises(KafkaException) as e:
        tx.commit_transaction(10)
    assert e.value.args[0].fatal() and e.value.args[0].code() == KafkaError._FENCED
    assert [r.value for r in broker.messages("out", "read_committed")] == [b"A", b"B"]


def test_read_committed_is_the_default_isolation(broker):
    broker.create_topic("t", 1)
    tx = producer(transactional_id="open-txn")
    tx.init_transactions(10)
    tx.begin_transaction()
    tx.produce("t", b"pending")
    tx.flush(10)  # written, but its transaction is still open
    default, uncommitted = consumer("a"), consumer("b", isolation_level="read_uncommitted")
    for c in (default, uncommitted):
        c.assign([TopicPartition("t", 0)])
    assert [m.value() for m in collect(uncommitted, 1)] == [b"pending"]
    assert default.poll(0.2) is None
    assert default.get_watermark_offsets(TopicPartition("t", 0)) == (0, 0)  # stable end
    tx.commit_transaction(10)
    assert [m.value() for m in collect(default, 1)] == [b"pending"]


# -- consumer --------------------------------------------------------------------------

def test_poll_faults_are_error_messages(broker):
    broker.create_topic("t", 1)
    write(broker, "t", [b"a"])
    c = consumer()
    c.assign([TopicPartition("t", 0)])
    broker.faults.fail_next("poll", mqerrors.KafkaTimeoutError)
    broker.faults.fail_next("poll", mqerrors.UnknownTopicOrPartitionError("gone"))
    first, second = c.poll(1), c.consume(5, 1)
    assert first.error().code() == KafkaError._TIMED_OUT and first.error().retriable()
    assert [m.error().code() for m in second] == [KafkaError.UNKNOWN_TOPIC_OR_PART]
    assert c.poll(5).value() == b"a"


def test_commit_faults_raise_or_go_to_on_commit(broker):
    broker.create_topic("t", 1)
    results = []
    c = consumer(enable_auto_commit=False,
                 on_commit=lambda err, parts: results.append((err, parts[0].error)))
    c.assign([TopicPartition("t", 0)])
    broker.faults.fail_next("commit", mqerrors.CommitFailedError("rebalanced"), times=2)
    with pytest.raises(KafkaException) as e:
        c.commit(offsets=[TopicPartition("t", 0, 0)], asynchronous=False)
    assert e.value.args[0].code() == KafkaError.ILLEGAL_GENERATION
    assert "rebalanced" in e.value.args[0].str()
    c.commit(offsets=[TopicPartition("t", 0, 0)])
    assert results == []
    c.poll(0)
    assert [(err.code(), perr.code()) for err, perr in results] == [
        (KafkaError.ILLEGAL_GENERATION, KafkaError.ILLEGAL_GENERATION)]
    assert c.committed([TopicPartition("t", 0)])[0].offset == OFFSET_INVALID


def test_kafka_python_errors_injected_into_confluent_clients_keep_their_meaning(broker):
    # docs/testing.md injects kafka.errors classes; an app on confluent-kafka must meet
    # the same condition (ILLEGAL_GENERATION, _MSG_TIMED_OUT...), not _FAIL.
    from mqlog.kafka import errors as kp

    broker.create_topic("t", 1)
    reports = []
    p = producer()
    broker.faults.fail_next("send", kp.KafkaTimeoutError)
    broker.faults.fail_next("send", kp.NotLeaderForPartitionError)
    for _ in range(2):
        p.produce("t", b"x", on_delivery=lambda err, msg: reports.append(err))
    p.flush(10)
    assert [(e.code(), e.retriable()) for e in reports] == [
        (KafkaError._MSG_TIMED_OUT, True), (KafkaError.NOT_LEADER_FOR_PARTITION, True)]
    c = consumer(enable_auto_commit=False)
    c.assign([TopicPartition("t", 0)])
    broker.faults.fail_next("commit", kp.CommitFailedError)
    with pytest.raises(KafkaException) as e:
        c.commit(offsets=[TopicPartition("t", 0, 0)], asynchronous=False)
    assert e.value.args[0].code() == KafkaError.ILLEGAL_GENERATION
    c.close()


def test_clients_are_context_managers(broker):
    # confluent-kafka 2.13+ (its examples/context_manager_example.py).
    reports = []
    with admin.AdminClient({"bootstrap.servers": BOOT}) as a:
        a.create_topics([admin.NewTopic("cm", 1)])["cm"].result()
    with pytest.raises(RuntimeError, match="closed"):
        a.list_topics()
    with producer() as p:
        p.produce("cm", b"v", key=b"k", callback=lambda err, msg: reports.append(err))
    assert reports == [None]  # leaving the block flushed and served the report
    with pytest.raises(RuntimeError, match="closed"):
        p.produce("cm", b"w")
    with consumer("cm-group") as c:
        c.subscribe(["cm"])
        assert collect(c, 1)[0].value() == b"v"
    with pytest.raises(RuntimeError, match="Consumer closed"):
        c.poll(0)
    # the stored offset was committed on the way out (auto-commit on close)
    assert broker.group_offsets("cm-group")[mqlog.TopicPartition("cm", 0)].offset == 1
    assert broker.messages("cm")[0].value == b"v"


def test_evicted_member_gets_on_lost_then_rejoins(broker):
    broker.create_topic("t", 2)
    events = []
    c = consumer("grp")
    c.subscribe(["t"], on_assign=lambda cons, parts: events.append(("assign", len(parts))),
                on_revoke=lambda cons, parts: events.append(("revoke", len(parts))),
                on_lost=lambda cons, parts: events.append(("lost", len(parts))))
    c.poll(0.2)
    assert events == [("assign", 2)]
    assert len(broker.faults.expire_member("grp")) == 1
    c.poll(0.2)
    assert events == [("assign", 2), ("lost", 2), ("assign", 2)]
    # Without on_lost, lost partitions go to on_revoke.
    c.subscribe(["t"], on_revoke=lambda cons, parts: events.append(("revoke", len(parts))))
    c.poll(0.2)
    broker.faults.expire_member("grp")
    c.poll(0.2)
    assert events[-1] == ("revoke", 2)


def test_a_raising_rebalance_callback_propagates_from_poll(broker):
    broker.create_topic("t", 1)
    c = consumer()

    def on_assign(cons, parts):
        raise ValueError("bad assign handler")

    c.subscribe(["t"], on_assign=on_assign)
    with pytest.raises(ValueError, match="bad assign handler"):
        c.poll(0.5)
    assert len(c.assignment()) == 1  # the assignment itself went through


def test_on_assign_can_choose_start_offsets(broker):
    broker.create_topic("t", 2)
    write(broker, "t", [b"a", b"b", b"c"], partition=0)
    c = consumer("seeker", auto_offset_reset="latest")

    def from_beginning(cons, parts):
        for tp in parts:
            tp.offset = OFFSET_BEGINNING if tp.partition == 0 else OFFSET_INVALID
        cons.assign(parts)

    c.subscribe(["t"], on_assign=from_beginning)
    assert [m.value() for m in collect(c, 3)] == [b"a", b"b", b"c"]


def test_offsets_stored_in_on_revoke_are_committed(broker):
    broker.create_topic("t", 1)
    write(broker, "t", [b"a", b"b", b"c"])
    c = consumer("store", enable_auto_offset_store=False)

    def on_revoke(cons, parts):
        cons.store_offsets(offsets=[TopicPartition("t", 0, 2)])

    c.subscribe(["t"], on_revoke=on_revoke)
    collect(c, 3)
    c.close()
    assert broker.admin().list_consumer_group_offsets("store")[
        mqlog.TopicPartition("t", 0)].offset == 2


def test_pattern_subscription_follows_new_topics(broker):
    broker.create_topic("ord-1", 1)
    broker.create_topic("plain", 1)
    broker.create_topic("other", 1)
    c = consumer()
    c.subscribe(["^ord-.*", "plain"])
    c.poll(0.2)
    assert {tp.topic for tp in c.assignment()} == {"ord-1", "plain"}
    broker.create_topic("ord-2", 1)
    write(broker, "ord-2", [b"x"])
    assert collect(c, 1)[0].topic() == "ord-2"


def test_pause_rewinds_buffered_records(broker):
    broker.create_topic("t", 2)
    for p in (0, 1):
        write(broker, "t", [b"%d" % i for i in range(300)], partition=p)
    c = consumer()
    c.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
    seen = {0: [], 1: []}
    for m in collect(c, 50):
        seen[m.partition()].append(m.offset())
    c.pause([TopicPartition("t", 0)])
    c.seek(TopicPartition("t", 1, 290))
    c.resume([TopicPartition("t", 0)])
    for m in collect(c, 300 - len(seen[0]) + 10):
        seen[m.partition()].append(m.offset())
    assert seen[0] == list(range(300))  # nothing skipped or repeated around the pause
    assert seen[1][-10:] == list(range(290, 300))


def test_tail_offsets_and_committed_errors(broker):
    broker.create_topic("t", 1)
    write(broker, "t", [b"%d" % i for i in range(5)])
    c = consumer()
    c.assign([TopicPartition("t", 0, -2000 - 2)])  # librdkafka's OFFSET_TAIL(2)
    assert [m.offset() for m in collect(c, 2)] == [3, 4]
    (tp,) = c.committed([TopicPartition("nope", 0)])
    assert tp.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_closed_consumer(broker):
    c = consumer()
    c.close()
    c.close()
    for call in (lambda: c.poll(0), c.assignment, lambda: c.subscribe(["t"]),
                 lambda: c.commit(offsets=[TopicPartition("t", 0, 1)])):
        with pytest.raises(RuntimeError, match="Consumer closed"):
            call()


# -- config, values, metadata ----------------------------------------------------------

def test_config_handling(broker, caplog):
    for bad in ({"dr_msg_cb": print}, {"interceptors": 1}, {"sasl.jaas.config": "x"},
                {"on_commit": print}):
        with pytest.raises(KafkaException) as e:
            producer(**{k.replace(".", "_"): v for k, v in bad.items()})
        assert e.value.args[0].code() == KafkaError._INVALID_ARG
    with pytest.raises(KafkaException, match="queue.buffering.max.ms"):
        producer(queue_buffering_max_ms=10**9)
    with caplog.at_level(logging.WARNING, logger="mqlog.confluent"):
        Producer({"metadata.broker.list": BOOT, "session.timeout.ms": 1000,
                  "security.protocol": "sasl_ssl", "sasl.username": "u",
                  "ssl.ca.location": "/nonexistent", "test.mock.num.brokers": 3})
    assert "session.timeout.ms is a consumer property" in caplog.text
    # default.topic.config and keyword arguments are merged into the config.
    for conf, kwargs in (({"default.topic.config": {"acks": "banana"}}, {}),
                         ({}, {"linger.ms": "soon"})):
        with pytest.raises(KafkaException, match="Invalid value"):
            Producer({"bootstrap.servers": BOOT, **conf}, **kwargs)
    with pytest.raises(KafkaException, match="partition.assignment.strategy"):
        consumer(partition_assignment_strategy="sticky-ish")


def test_bootstrap_mqlog_path_selects_a_durable_store(tmp_path, monkeypatch):
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    url = f"mqlog://{tmp_path / 'store'}"
    p = Producer({"bootstrap.servers": url})
    p.produce("t", b"kept")
    assert p.flush(10) == 0
    store = _bootstrap.resolve(url)
    assert [r.value for r in store.messages("t")] == [b"kept"]
    store.close()


def test_error_mapping_and_values():
    cases = {
        mqerrors.MessageSizeTooLargeError("x"): KafkaError.MSG_SIZE_TOO_LARGE,
        mqerrors.OffsetOutOfRangeError("x"): KafkaError.OFFSET_OUT_OF_RANGE,
        mqerrors.TopicExistsError("x"): KafkaError.TOPIC_ALREADY_EXISTS,
        mqerrors.InvalidConfigError("x"): KafkaError.INVALID_CONFIG,
        mqerrors.IllegalStateError("x"): KafkaError._STATE,
        mqerrors.FencedInstanceIdError("x"): KafkaError.FENCED_INSTANCE_ID,
        ValueError("x"): KafkaError._FAIL,
    }
    for exc, code in cases.items():
        assert to_kafka_error(exc).code() == code, exc
    assert to_kafka_error(mqerrors.TransactionAbortableError("x")).txn_requires_abort()
    err = KafkaError(KafkaError._STATE, "why", fatal=True)
    assert pickle.loads(pickle.dumps(err)).fatal() and str(err).startswith("KafkaError{FATAL")
    assert KafkaError(12345).name() == "ERR_12345?"
    tp = TopicPartition("t", 1, 5, "meta")
    assert pickle.loads(pickle.dumps(tp)) == tp
    m = Message(topic="t", value=b"v", timestamp=(TIMESTAMP_CREATE_TIME, 9))
    m.set_value(b"vv")
    m.set_headers([("h", b"x")])
    assert (m.value(), m.headers(), len(m), m.offset()) == (b"vv", [("h", b"x")], 2, None)


def test_version_attribute():
    # confluent_kafka.__version__ is what apps log; it agrees with version().
    import mqlog.confluent

    assert mqlog.confluent.__version__ == mqlog.confluent.version()[0]


def test_metadata(broker):
    p = producer()
    md = p.list_topics("auto-made")  # a producer's metadata request creates the topic
    assert len(md.topics["auto-made"].partitions) == 1 and "auto-made" in broker.topics()
    c = consumer()
    assert c.list_topics("not-made").topics["not-made"].error is not None
    assert "not-made" not in broker.topics()
    assert p.cluster_id() == c.cluster_id() and len(p.cluster_id()) == 22
    (node,) = md.brokers.values()
    assert md.topics["auto-made"].partitions[0].leader == node.id


# -- admin -----------------------------------------------------------------------------

def test_admin_topics_and_configs(broker):
    a = admin.AdminClient({"bootstrap.servers": BOOT})
    fs = a.create_topics([admin.NewTopic("t", 3, config={"retention.ms": "1000"}),
                          admin.NewTopic("u")])
    assert [f.result() for f in fs.values()] == [None, None]
    assert broker.topics()["t"].partitions == 3
    errors = {
        "t": admin.NewTopic("t", 1),
        "zero": admin.NewTopic("zero", 0),
        "badcfg": admin.NewTopic("badcfg", 1, config={"retention.ms": "soon"}),
        "bad name!": admin.NewTopic("bad name!", 1),
    }
    codes = {name: a.create_topics([nt])[name].exception().args[0].code()
             for name, nt in errors.items()}
    assert codes == {"t": KafkaError.TOPIC_ALREADY_EXISTS, "zero": KafkaError.INVALID_PARTITIONS,
                     "badcfg": KafkaError.INVALID_CONFIG, "bad name!": KafkaError.TOPIC_EXCEPTION}
    assert a.create_topics([admin.NewTopic("dry", 1)], validate_only=True)["dry"].result() is None
    assert "dry" not in broker.topics()
    with pytest.raises(ValueError):
        a.create_topics([])
    assert a.create_partitions([admin.NewPartitions("t", 5)])["t"].result() is None
    assert a.create_partitions([admin.NewPartitions("t", 2)])["t"].exception().args[0].code() \
        == KafkaError.INVALID_PARTITIONS
    res = admin.ConfigResource("topic", "t")
    entries = a.describe_configs([res])[res].result()
    assert entries["retention.ms"].value == "1000"
    assert entries["retention.ms"].source == admin.ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert entries["cleanup.policy"].is_default
    res.add_incremental_config(admin.ConfigEntry(
        "cleanup.policy", "compact", incremental_operation=admin.AlterConfigOpType.APPEND))
    res.add_incremental_config(admin.ConfigEntry(
        "retention.ms", None, incremental_operation=admin.AlterConfigOpType.DELETE))
    assert a.incremental_alter_configs([res])[res].result() is None
    assert dict(broker.topics()["t"].config) == {"cleanup.policy": "compact,delete"}
    full = admin.ConfigResource(admin.ResourceType.TOPIC, "t", set_config={"retention.ms": 5})
    assert a.alter_configs([full])[full].result() is None
    assert dict(broker.topics()["t"].config) == {"retention.ms": 5}
    desc = a.describe_topics(admin.TopicCollection(["t", "nope"]))
    assert len(desc["t"].result().partitions) == 5
    assert desc["nope"].exception().args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert a.describe_cluster().result().nodes[0].host == "mqlog"
    assert a.delete_topics(["u", "nope"])["nope"].exception().args[0].code() == \
        KafkaError.UNKNOWN_TOPIC_OR_PART
    assert "u" not in broker.topics()
    assert a.create_acls([object()]).popitem()[1].exception().args[0].code() == \
        KafkaError._NOT_IMPLEMENTED


def test_admin_groups_offsets_and_records(broker):
    broker.create_topic("t", 1)
    write(broker, "t", [b"%d" % i for i in range(5)])
    a = admin.AdminClient({"bootstrap.servers": BOOT})
    c = consumer("grp")
    c.subscribe(["t"])
    collect(c, 5)
    c.commit(asynchronous=False)
    (listing,) = a.list_consumer_groups().result().valid
    assert (listing.group_id, listing.state) == ("grp", admin.ConsumerGroupState.STABLE)
    desc = a.describe_consumer_groups(["grp", "ghost"])
    (member,) = desc["grp"].result().members
    assert [(tp.topic, tp.partition) for tp in member.assignment.topic_partitions] == [("t", 0)]
    assert desc["ghost"].result().state == admin.ConsumerGroupState.DEAD
    assert a.delete_consumer_groups(["grp"])["grp"].exception().args[0].code() == \
        KafkaError.NON_EMPTY_GROUP
    assert a.delete_consumer_groups(["ghost"])["ghost"].exception().args[0].code() == \
        KafkaError.GROUP_ID_NOT_FOUND
    request = [admin.ConsumerGroupTopicPartitions("grp")]
    offsets = a.list_consumer_group_offsets(request)["grp"].result().topic_partitions
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [("t", 0, 5)]
    alter = [admin.ConsumerGroupTopicPartitions("grp", [TopicPartition("t", 0, 1)])]
    assert a.alter_consumer_group_offsets(alter)["grp"].exception().args[0].code() == \
        KafkaError.UNKNOWN_MEMBER_ID
    c.close()
    assert a.alter_consumer_group_offsets(alter)["grp"].result().topic_partitions[0].offset == 1
    tp0 = TopicPartition("t", 0)
    spec = {tp0: admin.OffsetSpec.latest()}
    assert a.list_offsets(spec)[tp0].result().offset == 5
    assert a.delete_records([TopicPartition("t", 0, 2)])[tp0].result().low_watermark == 2
    assert a.list_offsets({tp0: admin.OffsetSpec.earliest()})[tp0].result().offset == 2
    latest_ts = a.list_offsets({tp0: admin.OffsetSpec.max_timestamp()})[tp0].result()
    assert latest_ts.offset >= 2 and latest_ts.timestamp > 0
    assert a.delete_consumer_groups(["grp"])["grp"].result() is None
    assert a.list_consumer_groups().result().valid == []


def test_a_dropped_producer_is_released_with_its_records_written(broker):
    p = producer(linger_ms=60000)  # nothing is written before the linger ends...
    p.produce("t", b"never flushed")
    del p
    gc.collect()
    producer()  # ...but the next producer closes the dropped one, writing its records
    assert [r.value for r in broker.messages("t")] == [b"never flushed"]
