"""Conformance: the same Kafka client behaviours against mqlog's confluent-kafka drop-in
and against the real confluent-kafka client talking to librdkafka's mock cluster.

Every test takes the ``kafka`` fixture, parametrised as ``mqlog`` (``mqlog.confluent``
over a temporary broker) and ``confluent`` (``confluent_kafka`` with a mock cluster
started by ``test.mock.num.brokers``, loopback only, no network). The test bodies are
identical; where the mock cluster lacks a feature, the test runs on the drop-in only
(``@mqlog_only``) and a comment says why.

Facts of the mock that shape the tests: it auto-creates a topic with 4 partitions on
the first metadata request for it (so every test topic has 4 partitions, created the
same way on both sides); it cannot create topics with other partition counts or
configs; a group's first join waits 3 s (``group.initial.rebalance.delay.ms``, not
settable from Python) and later rebalances ``session.timeout.ms`` - 1 s, hence
``session.timeout.ms=3500`` for the group tests. Waits are bounded everywhere.
"""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from typing import Any

import pytest

import mqlog
from mqlog import _bootstrap
from mqlog.partitioner import murmur2 as java_murmur2

PARTITIONS = 4  # what librdkafka's mock cluster gives an auto-created topic
_names = itertools.count()


class Env:
    """One side of the comparison: the client module plus a cluster to talk to."""

    def __init__(self, name: str, ck: Any, bootstrap: str, owner: Any = None,
                 broker: mqlog.Broker | None = None) -> None:
        self.name = name
        self.ck = ck
        self.real = name == "confluent"
        self.bootstrap = bootstrap
        self.owner = owner  # the real client's mock-cluster owner
        self.broker = broker  # the drop-in's broker
        self.clients: list[Any] = []

    def topic(self) -> str:
        """A new topic with PARTITIONS partitions (the mock creates it on the first
        metadata request for it)."""
        name = f"conf-{next(_names)}"
        if self.real:
            md = self.owner.list_topics(name, timeout=10)
            assert len(md.topics[name].partitions) == PARTITIONS
        else:
            self.broker.create_topic(name, PARTITIONS)
        return name

    def conf(self, **settings: Any) -> dict[str, Any]:
        """Base config (plus ``settings``, with ``_`` in keys meaning ``.``)."""
        conf = {"bootstrap.servers": self.bootstrap, "log_level": 0}
        conf.update({k.replace("_", "."): v for k, v in settings.items()})
        return conf

    def producer(self, conf: dict[str, Any] | None = None) -> Any:
        p = self.ck.Producer({**self.conf(), **(conf or {})})
        self.clients.append(p)
        return p

    def consumer(self, group: str | None = None, conf: dict[str, Any] | None = None) -> Any:
        base = self.conf(**{"group_id": group or f"g-{next(_names)}"})
        # Fast fetches and the shortest group timings the mock supports.
        base.update({"fetch.wait.max.ms": 10, "session.timeout.ms": 3500,
                     "heartbeat.interval.ms": 100})
        c = self.ck.Consumer({**base, **(conf or {})})
        self.clients.append(c)
        return c

    def close(self) -> None:
        for c in reversed(self.clients):
            try:
                if isinstance(c, self.ck.Consumer):
                    c.close()
                else:
                    c.flush(5)
            except Exception:  # already closed by the test
                pass
        self.clients.clear()


@pytest.fixture(params=["mqlog", "confluent"])
def kafka(request, monkeypatch):
    if request.param == "mqlog":
        import mqlog.confluent as ck

        monkeypatch.delenv(_bootstrap.ENV, raising=False)
        broker = mqlog.open()
        with _bootstrap.install(broker):
            env = Env("mqlog", ck, "kafka-1:9092,kafka-2:9092", broker=broker)
            yield env
            env.close()
        broker.close()
        return
    ck = pytest.importorskip("confluent_kafka")
    owner = ck.Producer({"bootstrap.servers": "", "test.mock.num.brokers": 1,
                         "log_level": 0})
    md = owner.list_topics(timeout=10)
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in md.brokers.values())
    env = Env("confluent", ck, bootstrap, owner=owner)
    yield env
    env.close()
    owner.flush(5)


# A behaviour librdkafka's mock cluster cannot show: checked on the drop-in only (each
# use says why in a comment).
mqlog_only = pytest.mark.parametrize("kafka", ["mqlog"], indirect=True)


# -- helpers -------------------------------------------------------------------------

def collect(consumer: Any, stop, timeout: float = 10.0) -> list:
    """Poll until ``stop(messages)`` is true (or fail after ``timeout`` s)."""
    out: list = []
    deadline = time.monotonic() + timeout
    while not stop(out):
        assert time.monotonic() < deadline, f"gave up waiting; got {describe(out)}"
        m = consumer.poll(0.1)
        if m is not None:
            out.append(m)
    return out


def describe(msgs: list) -> list:
    return [(m.partition(), m.offset(), m.error() and m.error().name()) for m in msgs]


def records(msgs: list) -> list:
    return [m for m in msgs if m.error() is None]


def eofs(msgs: list) -> list:
    return [m for m in msgs if m.error() is not None and m.error().name() == "_PARTITION_EOF"]


def produce(kafka: Env, topic: str, items: list[tuple[int, bytes]], **conf: Any) -> None:
    """Write ``(partition, value)`` records and wait for every delivery report."""
    p = kafka.producer(conf)
    errors = []
    for partition, value in items:
        p.produce(topic, value, partition=partition,
                  on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(10) == 0 and errors == []


def fnv1a_partition(key: bytes, n: int) -> int:
    h = 0x811C9DC5
    for byte in key:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return abs(h - (1 << 32) if h & 0x80000000 else h) % n


KEYS = [b"a", b"user-1", b"user-2", b"hello world", bytes(range(40)), b"\xff" * 7,
        b"order-12345", "ünïcode".encode()]


def delivered_partitions(kafka: Env, topic: str, keys: list, **conf: Any) -> list[int]:
    p = kafka.producer(conf)
    got: dict[int, int] = {}
    for i, key in enumerate(keys):
        p.produce(topic, b"v", key=key,
                  on_delivery=lambda err, msg, i=i: got.__setitem__(i, msg.partition()))
    assert p.flush(10) == 0
    return [got[i] for i in range(len(keys))]


# -- placement -----------------------------------------------------------------------

def test_default_partitioner_places_keys_by_crc32(kafka):
    topic = kafka.topic()
    assert delivered_partitions(kafka, topic, KEYS) == [
        zlib.crc32(k) % PARTITIONS for k in KEYS]


@pytest.mark.parametrize("partitioner, expected, null_is_random", [
    ("consistent", lambda k: zlib.crc32(k) % PARTITIONS, False),
    ("consistent_random", lambda k: zlib.crc32(k) % PARTITIONS, True),
    ("murmur2", lambda k: (java_murmur2(k) & 0x7FFFFFFF) % PARTITIONS, False),
    ("murmur2_random", lambda k: (java_murmur2(k) & 0x7FFFFFFF) % PARTITIONS, True),
    ("fnv1a", lambda k: fnv1a_partition(k, PARTITIONS), False),
    ("fnv1a_random", lambda k: fnv1a_partition(k, PARTITIONS), True),
])
def test_partitioner_setting_switches_keyed_placement(kafka, partitioner, expected,
                                                      null_is_random):
    topic = kafka.topic()
    keys = KEYS + ([] if partitioner == "consistent_random" else [b""])
    assert delivered_partitions(kafka, topic, keys, partitioner=partitioner) == [
        expected(k) for k in keys]
    placed = delivered_partitions(kafka, topic, [None] * 3, partitioner=partitioner)
    assert all(0 <= p < PARTITIONS for p in placed)
    if not null_is_random:  # a null key hashes as the empty key
        assert placed == [expected(b"")] * 3


def test_unknown_partitioner_is_refused(kafka):
    with pytest.raises(kafka.ck.KafkaException) as e:
        kafka.ck.Producer(kafka.conf(partitioner="round-robin"))
    assert e.value.args[0].code() == kafka.ck.KafkaError._INVALID_ARG


# -- producing and delivery reports --------------------------------------------------

def test_delivery_reports_are_served_only_by_poll_in_the_calling_thread(kafka):
    topic = kafka.topic()
    p = kafka.producer()
    reports = []
    for i in range(5):
        p.produce(topic, b"v%d" % i, partition=0, on_delivery=lambda err, msg: reports.append(
            (threading.current_thread(), err, msg.offset())))
    # The records are written (a consumer sees them) but no report ran yet.
    c = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    c.assign([kafka.ck.TopicPartition(topic, 0)])
    assert len(records(collect(c, lambda out: len(records(out)) == 5))) == 5
    # len() counts the records not yet reported (librdkafka adds protocol requests).
    assert reports == [] and len(p) >= 5
    deadline = time.monotonic() + 10
    while len(reports) < 5 and time.monotonic() < deadline:
        p.poll(0.5)
    assert [(t, e, o) for t, e, o in reports] == [
        (threading.current_thread(), None, i) for i in range(5)]
    assert len(p) == 0 and p.poll(0) == 0


def test_delivery_report_fields(kafka):
    topic = kafka.topic()
    p = kafka.producer()
    got = []
    p.produce(topic, "välue", key="kéy", partition=2, timestamp=1_600_000_000_123,
              headers={"h": b"1"}, on_delivery=lambda err, msg: got.append((err, msg)))
    p.produce(topic, b"x", partition=2, callback=lambda err, msg: got.append((err, msg)))
    assert p.flush(10) == 0
    (err, msg), (err2, msg2) = got
    assert err is None and msg.error() is None and err2 is None
    assert (msg.topic(), msg.partition(), msg.offset()) == (topic, 2, 0)
    assert (msg.key(), msg.value()) == ("kéy".encode(), "välue".encode())
    assert len(msg) == len("välue".encode()) and msg2.offset() == 1
    assert msg.headers() is None  # confluent-kafka does not carry headers to reports
    assert isinstance(msg.latency(), float) and msg.latency() >= 0
    if not kafka.real:
        # The mock acknowledges every produce with LogAppendTime 1234: only the
        # drop-in can show the CreateTime a real broker reports for a CreateTime topic.
        assert msg.timestamp() == (kafka.ck.TIMESTAMP_CREATE_TIME, 1_600_000_000_123)


def test_flush_returns_zero_and_len_counts_unserved_reports(kafka):
    topic = kafka.topic()
    p = kafka.producer()
    for i in range(20):
        p.produce(topic, b"v", key=b"%d" % i)
    assert len(p) == 20
    assert p.flush(10) == 0 and len(p) == 0
    assert p.flush(0) == 0


def test_full_local_queue_raises_buffer_error(kafka):
    topic = kafka.topic()
    p = kafka.producer({"queue.buffering.max.messages": 3})
    for _ in range(3):
        p.produce(topic, b"v")
    with pytest.raises(BufferError):
        p.produce(topic, b"v")
    assert p.flush(10) == 0
    p.produce(topic, b"v")  # served reports free the queue
    assert p.flush(10) == 0


def test_produce_refuses_bad_arguments(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    p = kafka.producer({"message.max.bytes": 1000})
    p.list_topics(topic, timeout=10)  # librdkafka knows the partition count from here
    with pytest.raises(ck.KafkaException) as e:
        p.produce(topic, b"v", partition=PARTITIONS)
    assert e.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION
    with pytest.raises(ck.KafkaException) as e:
        p.produce(topic, b"x" * 2000)
    assert e.value.args[0].code() == ck.KafkaError.MSG_SIZE_TOO_LARGE
    for bad in (5, bytearray(b"v"), 1.5):
        with pytest.raises(TypeError):
            p.produce(topic, bad)
    with pytest.raises(TypeError):
        p.produce(topic, b"v", key=7)
    with pytest.raises(TypeError):
        p.produce(5, b"v")
    with pytest.raises(TypeError):
        p.produce(topic, b"v", headers=5)
    with pytest.raises(TypeError):
        p.produce(topic, b"v", headers=[("h", 5)])
    with pytest.raises(TypeError):
        p.produce(topic, b"v", bogus=1)
    assert len(p) == 0


def test_config_errors_are_librdkafkas(kafka):
    ck = kafka.ck
    for bad in ({"foo.bar": 1}, {"acks": "banana"}, {"linger.ms": "abc"},
                {"enable.idempotence": "yes"}, {"linger_ms": 5}):
        with pytest.raises(ck.KafkaException) as e:
            ck.Producer(kafka.conf(**{}) | bad)
        assert e.value.args[0].code() == ck.KafkaError._INVALID_ARG, bad
    with pytest.raises(ValueError, match="group.id"):
        ck.Consumer(kafka.conf())
    with pytest.raises(TypeError):
        ck.Producer("bootstrap.servers=x")
    with pytest.raises(TypeError):
        ck.Producer(kafka.conf() | {"error_cb": 5})
    p = ck.Producer(kafka.conf() | {"acks": "all", "linger.ms": 2.5, "compression.type": "lz4",
                                    "enable.idempotence": "true", "client.id": "conf"})
    kafka.clients.append(p)


def test_closed_producer_raises_runtime_error(kafka):
    topic = kafka.topic()
    p = kafka.producer()
    p.produce(topic, b"v")
    assert p.close() is True and p.close() is True
    with pytest.raises(RuntimeError, match="closed"):
        p.produce(topic, b"v")
    with pytest.raises(RuntimeError, match="closed"):
        p.flush(0)


# -- consuming -----------------------------------------------------------------------

def test_consumed_message_fields_and_create_time(kafka):
    topic = kafka.topic()
    p = kafka.producer()
    headers = [("h", b"1"), ("h", b"2"), ("n", None)]
    p.produce(topic, b"value", key=b"key", partition=1, timestamp=1_600_000_000_000,
              headers=headers)
    p.produce(topic, None, key=b"tomb", partition=1, timestamp=1_600_000_000_001)
    assert p.flush(10) == 0
    c = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    c.assign([kafka.ck.TopicPartition(topic, 1)])
    first, second = records(collect(c, lambda out: len(records(out)) == 2))
    assert (first.topic(), first.partition(), first.offset()) == (topic, 1, 0)
    assert (first.key(), first.value(), first.headers()) == (b"key", b"value", headers)
    assert first.timestamp() == (kafka.ck.TIMESTAMP_CREATE_TIME, 1_600_000_000_000)
    assert first.error() is None and len(first) == 5
    assert (second.key(), second.value(), second.headers(), len(second)) == (
        b"tomb", None, None, 0)


@mqlog_only  # the mock cannot give a topic a config (no CreateTopics, no AlterConfigs)
def test_log_append_time_topics(kafka):
    ck = kafka.ck
    topic = f"lat-{next(_names)}"
    kafka.broker.create_topic(topic, PARTITIONS, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    reports = []
    p = kafka.producer()
    p.produce(topic, b"v", partition=0, timestamp=5,
              on_delivery=lambda err, msg: reports.append(msg.timestamp()))
    assert p.flush(10) == 0
    assert reports[0][0] == ck.TIMESTAMP_LOG_APPEND_TIME
    c = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    c.assign([ck.TopicPartition(topic, 0)])
    (m,) = collect(c, lambda o: len(o) == 1)
    kind, ts = m.timestamp()
    assert kind == ck.TIMESTAMP_LOG_APPEND_TIME and ts >= before


def test_partition_eof_events(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"a"), (0, b"b"), (0, b"c"), (1, b"d"), (1, b"e")])
    c = kafka.consumer(conf={"auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.assign([ck.TopicPartition(topic, p) for p in range(PARTITIONS)])
    msgs = collect(c, lambda out: len(eofs(out)) == PARTITIONS)
    assert {(m.partition(), m.offset()) for m in eofs(msgs)} == {(0, 3), (1, 2), (2, 0), (3, 0)}
    assert all(m.topic() == topic for m in eofs(msgs))
    for part in (0, 1):  # each partition's EOF comes after its last record
        seq = [m for m in msgs if m.partition() == part]
        assert seq[-1].error() is not None and all(m.error() is None for m in seq[:-1])
    produce(kafka, topic, [(0, b"f")])
    more = collect(c, lambda out: len(eofs(out)) == 1)
    assert [(m.partition(), m.offset(), m.error() and m.error().code()) for m in more] == [
        (0, 3, None), (0, 4, ck.KafkaError._PARTITION_EOF)]
    assert c.poll(0.3) is None  # reported once per end offset
    quiet = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    quiet.assign([ck.TopicPartition(topic, p) for p in range(PARTITIONS)])
    got = collect(quiet, lambda out: len(out) == 6)
    assert records(got) == got and quiet.poll(0.3) is None  # no EOF events by default


def test_consume_returns_up_to_num_messages(kafka):
    topic = kafka.topic()
    produce(kafka, topic, [(0, b"%d" % i) for i in range(5)])
    c = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    c.assign([kafka.ck.TopicPartition(topic, 0)])
    first = c.consume(2, 10)
    assert [m.offset() for m in first] == [0, 1]
    start = time.monotonic()
    rest = c.consume(100, 0.5)
    assert [m.offset() for m in rest] == [2, 3, 4]
    assert time.monotonic() - start >= 0.4  # waits for the whole batch or the timeout
    assert c.consume(0, 0) == []
    with pytest.raises(ValueError):
        c.consume(2_000_000, 0)


def test_poll_without_assignment_returns_none(kafka):
    c = kafka.consumer()
    assert c.poll(0.1) is None and c.assignment() == []
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.poll(0)


# -- positions, seek, assignment -----------------------------------------------------

def test_position_and_seek(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"%d" % i) for i in range(4)])
    c = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    tp = ck.TopicPartition(topic, 0)
    c.assign([tp])
    assert c.position([tp])[0].offset == ck.OFFSET_INVALID
    assert [m.offset() for m in records(collect(c, lambda o: len(records(o)) == 3))] == [0, 1, 2]
    assert c.position([tp])[0].offset == 3
    c.seek(ck.TopicPartition(topic, 0, 1))
    assert c.position([tp])[0].offset == ck.OFFSET_INVALID  # until a message is returned
    assert records(collect(c, lambda o: len(records(o)) == 1))[0].offset() == 1
    c.seek(ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING))
    assert records(collect(c, lambda o: len(records(o)) == 1))[0].offset() == 0
    c.seek(ck.TopicPartition(topic, 0, ck.OFFSET_END))
    assert c.poll(0.3) is None
    with pytest.raises(ck.KafkaException) as e:
        c.seek(ck.TopicPartition(topic, 1, 0))  # a partition of the topic, not assigned
    assert e.value.args[0].code() == ck.KafkaError._STATE
    with pytest.raises(ck.KafkaException) as e:
        c.seek(ck.TopicPartition(kafka.topic(), 0, 0))  # a topic it does not read
    assert e.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION


def test_assign_start_offsets(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"%d" % i) for i in range(5)])
    c = kafka.consumer(conf={"auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.commit(offsets=[ck.TopicPartition(topic, 0, 2)], asynchronous=False)

    def first_offset(offset: int) -> int:
        c.assign([ck.TopicPartition(topic, 0, offset)])
        return records(collect(c, lambda o: len(records(o)) == 1))[0].offset()

    assert first_offset(ck.OFFSET_STORED) == 2
    assert first_offset(ck.OFFSET_INVALID) == 2
    assert first_offset(ck.OFFSET_BEGINNING) == 0
    assert first_offset(3) == 3
    assert first_offset(100) == 0  # out of range: auto.offset.reset=earliest
    c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_END)])
    assert c.poll(0.3) is None
    assert [(tp.topic, tp.partition) for tp in c.assignment()] == [(topic, 0)]
    c.unassign()
    assert c.assignment() == []


def test_auto_offset_reset_error_reports_and_stops_the_partition(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"a"), (0, b"b")])
    c = kafka.consumer(conf={"auto.offset.reset": "error"})
    c.assign([ck.TopicPartition(topic, 0)])  # nothing committed: no offset to start from
    (event,) = collect(c, lambda o: len(o) == 1)
    assert event.error().code() == ck.KafkaError._AUTO_OFFSET_RESET
    assert (event.topic(), event.partition(), event.offset()) == (topic, 0, None)
    with pytest.raises(ck.KafkaException) as e:
        c.seek(ck.TopicPartition(topic, 0, 1))
    assert e.value.args[0].code() == ck.KafkaError._STATE
    c.assign([ck.TopicPartition(topic, 0, 100)])
    (event,) = collect(c, lambda o: len(o) == 1)
    assert event.error().code() == ck.KafkaError._AUTO_OFFSET_RESET and event.offset() == 100
    c.assign([ck.TopicPartition(topic, 0, 1)])  # a valid start offset recovers
    assert [m.value() for m in collect(c, lambda o: len(o) == 1)] == [b"b"]


def test_pause_and_resume(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"a0"), (0, b"a1"), (1, b"b0"), (1, b"b1")])
    c = kafka.consumer(conf={"auto.offset.reset": "earliest"})
    c.assign([ck.TopicPartition(topic, 0), ck.TopicPartition(topic, 1)])
    c.pause([ck.TopicPartition(topic, 0), ck.TopicPartition(topic, 3)])  # 3: not assigned
    got = collect(c, lambda o: len(o) == 2)
    assert sorted(m.value() for m in got) == [b"b0", b"b1"] and c.poll(0.3) is None
    c.resume([ck.TopicPartition(topic, 0)])
    assert sorted(m.value() for m in collect(c, lambda o: len(o) == 2)) == [b"a0", b"a1"]


def test_incremental_assign_and_unassign(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    c = kafka.consumer()
    c.incremental_assign([ck.TopicPartition(topic, 0)])
    c.incremental_assign([ck.TopicPartition(topic, 2)])
    assert [tp.partition for tp in c.assignment()] == [0, 2]
    with pytest.raises(ck.KafkaException) as e:
        c.incremental_assign([ck.TopicPartition(topic, 2)])
    assert e.value.args[0].code() == ck.KafkaError._CONFLICT
    c.incremental_unassign([ck.TopicPartition(topic, 0)])
    assert [tp.partition for tp in c.assignment()] == [2]
    with pytest.raises(ck.KafkaException) as e:
        c.incremental_unassign([ck.TopicPartition(topic, 3)])
    assert e.value.args[0].code() == ck.KafkaError._INVALID_ARG


def test_watermark_offsets(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"a"), (0, b"b"), (0, b"c")])
    c = kafka.consumer()
    assert c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10) == (0, 3)
    assert c.get_watermark_offsets(ck.TopicPartition(topic, 3), timeout=10) == (0, 0)
    with pytest.raises(ck.KafkaException) as e:
        c.get_watermark_offsets(ck.TopicPartition(topic, PARTITIONS + 5), timeout=5)
    assert e.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION


@mqlog_only  # the mock's ListOffsets handler ignores timestamps (always answers -1)
def test_offsets_for_times(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    p = kafka.producer()
    for i in range(3):
        p.produce(topic, b"v", partition=0, timestamp=1000 + 10 * i)
    assert p.flush(10) == 0
    c = kafka.consumer()
    got = c.offsets_for_times([ck.TopicPartition(topic, 0, 1015), ck.TopicPartition(topic, 0, 5),
                               ck.TopicPartition(topic, 0, 99999)], timeout=10)
    assert [tp.offset for tp in got] == [2, 0, -1]


# -- commits -------------------------------------------------------------------------

def test_commit_variants(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    TP = ck.TopicPartition
    produce(kafka, topic, [(0, b"a"), (0, b"b"), (0, b"c"), (1, b"d")])
    c = kafka.consumer(conf={"auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TP(topic, 0), TP(topic, 1)])
    msgs = records(collect(c, lambda o: len(records(o)) == 4))
    first_p0 = next(m for m in msgs if m.partition() == 0)
    got = c.commit(message=first_p0, asynchronous=False)
    assert [(tp.topic, tp.partition, tp.offset) for tp in got] == [(topic, 0, 1)]
    assert [tp.offset for tp in c.committed([TP(topic, 0), TP(topic, 1)], timeout=10)] == [
        1, ck.OFFSET_INVALID]
    got = c.commit(offsets=[TP(topic, 1, 1)], asynchronous=False)
    assert [(tp.partition, tp.offset) for tp in got] == [(1, 1)]
    # The stored offsets (after each message returned): partition 1's equals what was
    # just committed, so it is listed with OFFSET_INVALID (nothing new to commit).
    got = c.commit(asynchronous=False)
    assert sorted((tp.partition, tp.offset) for tp in got) == [(0, 3), (1, ck.OFFSET_INVALID)]
    assert [tp.offset for tp in c.committed([TP(topic, 0), TP(topic, 1)], timeout=10)] == [3, 1]
    for kwargs in ({}, {"offsets": [TP(topic, 0, -5)]}):
        with pytest.raises(ck.KafkaException) as e:
            c.commit(asynchronous=False, **kwargs)
        assert e.value.args[0].code() == ck.KafkaError._NO_OFFSET
    with pytest.raises(ValueError):
        c.commit(message=first_p0, offsets=[TP(topic, 0, 1)])
    with pytest.raises(ck.KafkaException) as e:
        c.commit(offsets=[TP(topic, PARTITIONS + 3, 1)], asynchronous=False)
    assert e.value.args[0].code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
    # Committing for a partition not assigned is allowed (a "simple" commit).
    assert c.commit(offsets=[TP(topic, 3, 0)], asynchronous=False)[0].offset == 0


def test_async_commit_reports_to_on_commit_from_poll(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(0, b"a"), (0, b"b")])
    seen = []
    def on_commit(err: Any, parts: list) -> None:
        seen.append((threading.current_thread(), err,
                     [(tp.topic, tp.partition, tp.offset) for tp in parts]))

    c = kafka.consumer(conf={"enable.auto.commit": False, "on_commit": on_commit})
    c.assign([ck.TopicPartition(topic, 0)])
    assert c.commit(offsets=[ck.TopicPartition(topic, 0, 2)]) is None
    assert seen == []  # served by poll only
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        c.poll(0.1)
    assert seen == [(threading.current_thread(), None, [(topic, 0, 2)])]
    c.commit(offsets=[ck.TopicPartition(topic, 0, 1)], asynchronous=False)
    c.poll(0.2)
    assert len(seen) == 1  # synchronous commits do not call on_commit


def test_store_offsets(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    TP = ck.TopicPartition
    produce(kafka, topic, [(0, b"a"), (0, b"b"), (0, b"c")])
    auto = kafka.consumer()
    auto.assign([TP(topic, 0)])
    with pytest.raises(ck.KafkaException) as e:
        auto.store_offsets(offsets=[TP(topic, 0, 1)])
    assert e.value.args[0].code() == ck.KafkaError._INVALID_ARG
    c = kafka.consumer(conf={"auto.offset.reset": "earliest", "enable.auto.commit": False,
                             "enable.auto.offset.store": False})
    c.assign([TP(topic, 0)])
    msgs = records(collect(c, lambda o: len(records(o)) == 3))
    with pytest.raises(ck.KafkaException) as e:
        c.commit(asynchronous=False)  # nothing stored yet
    assert e.value.args[0].code() == ck.KafkaError._NO_OFFSET
    c.store_offsets(msgs[0])
    got = c.commit(asynchronous=False)
    assert [(tp.partition, tp.offset) for tp in got] == [(0, 1)]
    c.store_offsets(offsets=[TP(topic, 0, 2)])
    assert c.commit(asynchronous=False)[0].offset == 2
    with pytest.raises(ck.KafkaException) as e:
        c.store_offsets(offsets=[TP(topic, 3, 1)])
    assert e.value.args[0].code() == ck.KafkaError._STATE


def test_auto_commit_commits_stored_offsets(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    TP = ck.TopicPartition
    produce(kafka, topic, [(0, b"a"), (0, b"b"), (0, b"c")])
    group = f"auto-{topic}"
    c = kafka.consumer(group, {"auto.offset.reset": "earliest", "auto.commit.interval.ms": 100})
    c.assign([TP(topic, 0)])
    assert len(records(collect(c, lambda o: len(records(o)) == 3))) == 3
    deadline = time.monotonic() + 10
    while c.committed([TP(topic, 0)], timeout=10)[0].offset != 3:
        assert time.monotonic() < deadline, "auto-commit never happened"
        c.poll(0.05)
    # On close, the stored offsets are committed too.
    c2 = kafka.consumer(f"close-{topic}", {"auto.offset.reset": "earliest",
                                           "auto.commit.interval.ms": 60000})
    c2.assign([TP(topic, 0)])
    assert len(records(collect(c2, lambda o: len(records(o)) == 2))) == 2
    c2.close()
    check = kafka.consumer(f"close-{topic}")
    assert check.committed([TP(topic, 0)], timeout=10)[0].offset == 2


# -- groups --------------------------------------------------------------------------

def test_subscribe_assigns_partitions_and_close_revokes_and_commits(kafka):
    topic = kafka.topic()
    ck = kafka.ck
    produce(kafka, topic, [(p, b"v%d" % p) for p in range(PARTITIONS)])
    events = []
    group = f"sub-{topic}"
    c = kafka.consumer(group, {"auto.offset.reset": "earliest"})
    c.subscribe([topic], on_assign=lambda cons, parts: events.append(
        ("assign", cons is c, sorted(tp.partition for tp in parts))),
        on_revoke=lambda cons, parts: events.append(
        ("revoke", cons is c, sorted(tp.partition for tp in parts))))
    got = records(collect(c, lambda o: len(records(o)) == PARTITIONS, timeout=20))
    assert sorted(m.value() for m in got) == [b"v%d" % p for p in range(PARTITIONS)]
    assert events == [("assign", True, list(range(PARTITIONS)))]
    assert sorted(tp.partition for tp in c.assignment()) == list(range(PARTITIONS))
    assert c.memberid()
    c.close()
    assert events[-1] == ("revoke", True, list(range(PARTITIONS)))
    check = kafka.consumer(group)
    committed = check.committed([ck.TopicPartition(topic, p) for p in range(PARTITIONS)],
                                timeout=10)
    assert [tp.offset for tp in committed] == [1] * PARTITIONS


def test_two_members_split_partitions_with_range(kafka):
    topic = kafka.topic()
    group = f"range-{topic}"
    conf = {"partition.assignment.strategy": "range"}
    a = kafka.consumer(group, conf)
    a.subscribe([topic])
    deadline = time.monotonic() + 20
    while len(a.assignment()) != PARTITIONS:
        assert time.monotonic() < deadline, "first member never got its partitions"
        a.poll(0.05)
    b = kafka.consumer(group, conf)
    b.subscribe([topic])
    while not (a.assignment() and b.assignment()
               and len(a.assignment()) + len(b.assignment()) == PARTITIONS):
        assert time.monotonic() < deadline, "the group never rebalanced"
        a.poll(0.05)
        b.poll(0.05)
    halves = sorted([sorted(tp.partition for tp in a.assignment()),
                     sorted(tp.partition for tp in b.assignment())])
    assert halves == [[0, 1], [2, 3]]  # range: contiguous halves


def test_cooperative_sticky_rebalances_incrementally(kafka):
    topic = kafka.topic()
    group = f"coop-{topic}"
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    events: dict[str, list] = {"a": [], "b": []}

    def subscribe(name: str) -> Any:
        c = kafka.consumer(group, conf)
        c.subscribe([topic], on_assign=lambda cons, parts: events[name].append(
            ("assign", sorted(tp.partition for tp in parts))),
            on_revoke=lambda cons, parts: events[name].append(
            ("revoke", sorted(tp.partition for tp in parts))))
        return c

    a = subscribe("a")
    deadline = time.monotonic() + 20
    while len(a.assignment()) != PARTITIONS:
        assert time.monotonic() < deadline, "first member never got its partitions"
        a.poll(0.05)
    b = subscribe("b")
    while not (len(a.assignment()) == len(b.assignment()) == PARTITIONS // 2):
        assert time.monotonic() < deadline, f"the group never rebalanced: {events}"
        a.poll(0.05)
        b.poll(0.05)
    assert events["a"][0] == ("assign", list(range(PARTITIONS)))
    # Incremental: a gives up exactly what b gets, and keeps the rest throughout.
    revoked = [p for kind, parts in events["a"] if kind == "revoke" for p in parts]
    gained = [p for kind, parts in events["b"] if kind == "assign" for p in parts]
    assert sorted(revoked) == sorted(gained) == sorted(tp.partition for tp in b.assignment())
    assert all(kind == "assign" for kind, _ in events["b"])


def test_subscribing_to_a_missing_topic_reports_an_error_event(kafka):
    ck = kafka.ck
    c = kafka.consumer()
    missing = f"missing-{next(_names)}"
    c.subscribe([missing])
    (event,) = collect(c, lambda o: len(o) == 1)
    assert event.error().code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
    assert event.topic() == missing
    with pytest.raises(TypeError):
        c.subscribe(missing)
    with pytest.raises(TypeError):
        c.subscribe([missing], on_assign=5)


# -- metadata, values, transactions --------------------------------------------------

def test_list_topics(kafka):
    topic = kafka.topic()
    p = kafka.producer()
    md = p.list_topics(topic, timeout=10)
    assert sorted(md.topics[topic].partitions) == list(range(PARTITIONS))
    assert md.topics[topic].error is None and md.brokers
    assert topic in p.list_topics(timeout=10).topics
    c = kafka.consumer()
    missing = c.list_topics(f"nope-{next(_names)}", timeout=10)
    (tm,) = missing.topics.values()
    assert tm.error.code() == kafka.ck.KafkaError.UNKNOWN_TOPIC_OR_PART and not tm.partitions


def test_error_and_partition_values(kafka):
    ck = kafka.ck
    E = ck.KafkaError
    eof = E(E._PARTITION_EOF)
    assert (eof.code(), eof.name(), eof.fatal(), eof.retriable()) == (-191, "_PARTITION_EOF",
                                                                      False, False)
    assert eof == E._PARTITION_EOF and E(3) == E(3, "other text") and E(3) != E(4)
    assert E(3) < E(4) and E(3, "why", fatal=True).fatal() and E(3, "why").str() == "why"
    assert E(E.UNKNOWN_TOPIC_OR_PART).name() == "UNKNOWN_TOPIC_OR_PART"
    exc = ck.KafkaException(eof)
    assert exc.args[0] is eof and "_PARTITION_EOF" in str(exc)
    tp = ck.TopicPartition("t", 1)
    assert (tp.topic, tp.partition, tp.offset, tp.metadata, tp.error) == (
        "t", 1, ck.OFFSET_INVALID, None, None)
    assert tp == ck.TopicPartition("t", 1, 5) and hash(tp) == hash(ck.TopicPartition("t", 1, 7))
    assert repr(tp) == ("TopicPartition{topic=t,partition=1,offset=-1001,leader_epoch=None,"
                        "error=None}")
    assert sorted([ck.TopicPartition("b", 0), ck.TopicPartition("a", 2),
                   ck.TopicPartition("a", 1)]) == [ck.TopicPartition("a", 1),
                                                    ck.TopicPartition("a", 2),
                                                    ck.TopicPartition("b", 0)]
    assert ck.TopicPartition(topic="t", partition=2, offset=9).offset == 9
    with pytest.raises(TypeError):
        ck.TopicPartition(5)
    assert (ck.OFFSET_BEGINNING, ck.OFFSET_END, ck.OFFSET_STORED, ck.OFFSET_INVALID) == (
        -2, -1, -1000, -1001)
    assert (ck.TIMESTAMP_NOT_AVAILABLE, ck.TIMESTAMP_CREATE_TIME,
            ck.TIMESTAMP_LOG_APPEND_TIME) == (0, 1, 2)
    m = ck.Message(topic="t", partition=1, offset=2, key=b"k", value=b"v",
                   headers=[("a", b"b")], timestamp=(1, 5))
    assert (m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(),
            m.timestamp(), m.error(), len(m)) == ("t", 1, 2, b"k", b"v", [("a", b"b")],
                                                  (1, 5), None, 1)


def test_transactional_api_errors(kafka):
    ck = kafka.ck
    topic = kafka.topic()
    plain = kafka.producer()
    for call in (lambda: plain.init_transactions(5), plain.begin_transaction):
        with pytest.raises(ck.KafkaException) as e:
            call()
        assert e.value.args[0].code() == ck.KafkaError._NOT_CONFIGURED
    tx = kafka.producer({"transactional.id": f"tx-{topic}"})
    tx.init_transactions(10)
    with pytest.raises(ck.KafkaException) as e:
        tx.produce(topic, b"outside a transaction")
    assert e.value.args[0].code() == ck.KafkaError._STATE
    with pytest.raises(ck.KafkaException) as e:
        tx.commit_transaction(5)
    assert e.value.args[0].code() == ck.KafkaError._STATE
    tx.begin_transaction()
    tx.produce(topic, b"in", partition=0)
    tx.commit_transaction(10)
    assert len(tx) == 0


@mqlog_only  # the mock writes no transaction markers: read_committed filters nothing
def test_read_committed_hides_aborted_transactions(kafka):
    ck = kafka.ck
    topic = kafka.topic()
    tx = kafka.producer({"transactional.id": f"tx-{topic}"})
    tx.init_transactions(10)
    for value, commit in ((b"kept", True), (b"aborted", False), (b"kept too", True)):
        tx.begin_transaction()
        tx.produce(topic, value, partition=0)
        (tx.commit_transaction if commit else tx.abort_transaction)(10)
    seen = {}
    for level in ("read_committed", "read_uncommitted"):
        c = kafka.consumer(conf={"auto.offset.reset": "earliest", "isolation.level": level,
                                 "enable.partition.eof": True})
        c.assign([ck.TopicPartition(topic, 0)])
        seen[level] = [m.value() for m in records(collect(c, lambda o: len(eofs(o)) == 1))]
    assert seen == {"read_committed": [b"kept", b"kept too"],
                    "read_uncommitted": [b"kept", b"aborted", b"kept too"]}
