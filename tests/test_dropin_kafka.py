"""kafka-python drop-in (mqlog.kafka): code written for kafka-python 3.x, run as written.

Each test uses the drop-in the way a kafka-python user's code does, against
``bootstrap_servers="mqlog://<dir>"`` or against a broker installed for ordinary
addresses (``localhost:9092``), and checks the outcome end to end with
``broker.messages()`` where it matters.
"""

from __future__ import annotations

import json
import time
from json import dumps, loads

import pytest

import mqlog
from mqlog import _bootstrap
from mqlog.kafka import (
    ConsumerRebalanceListener,
    JsonSerializer,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from mqlog.kafka import errors as Errors
from mqlog.kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from mqlog.kafka.coordinator.assignors.range import RangePartitionAssignor
from mqlog.kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

BOOTSTRAP = "localhost:9092"


@pytest.fixture
def kafka(broker, monkeypatch):
    """A fresh broker that every ordinary address (``localhost:9092``) reaches."""
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    with _bootstrap.install(broker):
        yield broker


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The ``mqlog://`` address of a fresh directory; its broker is closed afterwards."""
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    address = f"mqlog://{tmp_path / 'store'}"
    yield address
    _bootstrap.resolve(address).close()


def create(topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(name=topic, num_partitions=partitions,
                                  replication_factor=1)])
    admin.close()


def poll_until(consumers, done, timeout=10.0):
    """Poll every consumer in turn until ``done()`` holds; returns the records seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached in time"
        for c in consumers:
            for records in c.poll(timeout_ms=20).values():
                seen.extend(records)
    return seen


def collect(consumer, n, timeout=10.0):
    """Poll ``consumer`` until it returned ``n`` records; returns them."""
    seen = []
    deadline = time.monotonic() + timeout
    while len(seen) < n:
        assert time.monotonic() < deadline, f"got {len(seen)} of {n} records in time"
        for records in consumer.poll(timeout_ms=50, max_records=n - len(seen)).values():
            seen.extend(records)
    return seen


# -- producing --------------------------------------------------------------------------


def test_tutorial_producer_and_consumer_run_as_written(kafka):
    producer = KafkaProducer(acks=0, compression_type='gzip',
                             bootstrap_servers=['localhost:9092'],
                             value_serializer=lambda x: dumps(x).encode('utf-8'))
    for e in range(100):
        data = {'number': e}
        producer.send('numtest', value=data)
    producer.flush()

    assert [loads(r.value) for r in kafka.messages("numtest")] == \
        [{"number": e} for e in range(100)]

    consumer = KafkaConsumer('numtest', bootstrap_servers=['localhost:9092'],
                             auto_offset_reset='earliest', enable_auto_commit=True,
                             group_id='my-group', consumer_timeout_ms=500,
                             value_deserializer=lambda x: loads(x.decode('utf-8')))
    got = [message.value['number'] for message in consumer]
    assert got == list(range(100))
    consumer.close()
    producer.close()


def test_version_attributes_read_as_kafka_pythons():
    # Apps log kafka.__version__ (or branch on it); kafka-python has both spellings.
    import mqlog.kafka
    from mqlog.kafka.version import __version__

    assert mqlog.kafka.__version__ == __version__
    assert tuple(int(p) for p in __version__.split(".")) >= (3, 0, 0)


def test_mqlog_address_opens_a_durable_store(store, tmp_path):
    producer = KafkaProducer(bootstrap_servers=store, acks="all")
    metadata = producer.send("orders", b"kept", key=b"k").get(timeout=10)
    assert (metadata.topic, metadata.partition, metadata.offset) == ("orders", 0, 0)
    producer.close()
    consumer = KafkaConsumer("orders", bootstrap_servers=[store], group_id="g",
                             auto_offset_reset="earliest", consumer_timeout_ms=200)
    assert [r.value for r in consumer] == [b"kept"]
    consumer.close()
    _bootstrap.resolve(store).close()
    with mqlog.open(str(tmp_path / "store")) as reopened:
        assert [r.value for r in reopened.messages("orders")] == [b"kept"]


def test_environment_maps_every_address_to_one_store(tmp_path, monkeypatch):
    address = f"mqlog://{tmp_path / 'shared'}"
    monkeypatch.setenv(_bootstrap.ENV, address)
    try:
        producer = KafkaProducer(bootstrap_servers="kafka-1:9092,kafka-2:9092")
        producer.send("t", b"x").get(timeout=10)
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=["elsewhere:9092"])
        assert admin.list_topics() == ["t"]
        admin.close()
    finally:
        _bootstrap.resolve(address).close()


def test_any_other_address_means_the_default_broker(monkeypatch):
    monkeypatch.delenv(_bootstrap.ENV, raising=False)
    topic = f"default-{time.monotonic_ns()}"
    producer = KafkaProducer(bootstrap_servers="kafka.example:9092")
    producer.send(topic, b"x").get(timeout=10)
    producer.close()
    assert [r.value for r in _bootstrap.default_broker().messages(topic)] == [b"x"]


def test_keyed_records_land_where_kafkas_java_client_puts_them(kafka):
    create("wide", 1000)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    # Partitions computed by Kafka's Java client for these keys over 1000 partitions.
    java = {b'': 681, b'a': 524, b'ab': 434, b'abc': 107, b'123456789': 566, b'\x00 ': 742}
    futures = {key: producer.send("wide", b"v", key=key) for key in java}
    assert {key: f.get(timeout=10).partition for key, f in futures.items()} == java
    again = producer.send("wide", b"v2", key=b"abc").get(timeout=10)
    assert again.partition == 107 and again.offset == 1
    producer.close()


def test_offsets_start_at_zero_and_are_per_partition(kafka):
    create("p3", 3)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    sent = [(p, producer.send("p3", b"%d" % i, partition=p).get(timeout=10))
            for i in range(9) for p in (i % 3,)]
    for p in range(3):
        assert [md.offset for q, md in sent if q == p] == [0, 1, 2]
    assert producer.partitions_for("p3") == {0, 1, 2}
    producer.close()


def test_record_and_metadata_have_kafka_python_fields(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    md = producer.send("t", value=b"value", key=b"key", headers=[("h", b"hv")],
                       timestamp_ms=1_700_000_000_000).get(timeout=10)
    assert md._fields == ("topic", "partition", "topic_partition", "offset", "timestamp",
                          "checksum", "serialized_key_size", "serialized_value_size",
                          "serialized_header_size")
    assert md.topic_partition == TopicPartition("t", 0)
    assert (md.timestamp, md.serialized_key_size, md.serialized_value_size,
            md.serialized_header_size) == (1_700_000_000_000, 3, 5, 3)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    (record,) = consumer.poll(timeout_ms=1000)[TopicPartition("t", 0)]
    assert record._fields == ("topic", "partition", "leader_epoch", "offset", "timestamp",
                              "timestamp_type", "key", "value", "headers", "checksum",
                              "serialized_key_size", "serialized_value_size",
                              "serialized_header_size")
    assert (record.key, record.value, record.headers, record.timestamp_type) == \
        (b"key", b"value", [("h", b"hv")], 0)
    assert record.serialized_header_size == 3
    # A record without headers has kafka-python's empty list (mqlog's own is ()),
    # from poll() and from iteration alike.
    producer.send("t", value=b"bare").get(timeout=10)
    (bare,) = consumer.poll(timeout_ms=1000)[TopicPartition("t", 0)]
    assert bare.headers == [] and isinstance(bare.headers, list)
    consumer.seek(TopicPartition("t", 0), 1)
    assert next(iter(consumer)).headers == []
    consumer.close()
    producer.close()


def test_serializers_and_deserializers_as_kafka_python(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, key_serializer=str.encode,
                             value_serializer=JsonSerializer())
    producer.send("users", {"name": "ada"}, key="u1")
    producer.send("users", None, key="u1")  # a Serializer object keeps the tombstone
    producer.close()
    plain = KafkaProducer(bootstrap_servers=BOOTSTRAP,
                          value_serializer=lambda v: json.dumps(v).encode())
    plain.send("users", None, key=b"u2")  # kafka-python calls plain callables with None
    plain.close()
    assert [r.value for r in kafka.messages("users")] == [b'{"name": "ada"}', None, b"null"]

    consumer = KafkaConsumer("users", bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                             key_deserializer=lambda k: k.decode(),
                             value_deserializer=JsonSerializer(), consumer_timeout_ms=200)
    assert [(r.key, r.value) for r in consumer] == \
        [("u1", {"name": "ada"}), ("u1", None), ("u2", None)]
    consumer.close()


# -- consuming --------------------------------------------------------------------------


def test_two_groups_have_independent_offsets(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(5):
        producer.send("events", b"%d" % i)
    producer.close()
    tp = TopicPartition("events", 0)
    a = KafkaConsumer("events", bootstrap_servers=BOOTSTRAP, group_id="a",
                      auto_offset_reset="earliest", enable_auto_commit=False)
    b = KafkaConsumer("events", bootstrap_servers=BOOTSTRAP, group_id="b",
                      auto_offset_reset="earliest", enable_auto_commit=False)
    assert [r.value for r in collect(a, 5)] == [b"0", b"1", b"2", b"3", b"4"]
    a.commit({tp: OffsetAndMetadata(2, "", -1)})
    assert [r.value for r in collect(b, 5)] == [b"0", b"1", b"2", b"3", b"4"]
    b.commit()
    assert (a.committed(tp), b.committed(tp)) == (2, 5)
    a.close()
    b.close()
    again = KafkaConsumer("events", bootstrap_servers=BOOTSTRAP, group_id="a",
                          enable_auto_commit=False)
    assert [r.offset for r in collect(again, 3)] == [2, 3, 4]
    again.close()


def test_group_members_split_the_partitions(kafka):
    create("work", 4)
    members = [KafkaConsumer("work", bootstrap_servers=BOOTSTRAP, group_id="workers",
                             partition_assignment_strategy=[RoundRobinPartitionAssignor,
                                                            RangePartitionAssignor])
               for _ in range(2)]

    def split() -> bool:
        a, b = (m.assignment() for m in members)
        return len(a) == len(b) == 2 and not a & b

    poll_until(members, split)
    assert members[0].assignment() | members[1].assignment() == \
        {TopicPartition("work", p) for p in range(4)}
    for m in members:
        m.close()


def test_commit_committed_seek_and_resume(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(10):
        producer.send("log", b"%d" % i)
    producer.close()
    tp = TopicPartition("log", 0)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id="g",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([tp])
    assert consumer.committed(tp) is None
    assert len(consumer.poll(timeout_ms=1000, max_records=4)[tp]) == 4
    consumer.commit()
    assert consumer.committed(tp) == consumer.position(tp) == 4
    consumer.commit({tp: OffsetAndMetadata(6, "checkpoint", -1)})
    assert consumer.committed(tp, metadata=True) == OffsetAndMetadata(6, "checkpoint", -1)
    consumer.seek(tp, 8)
    assert [r.offset for r in consumer.poll(timeout_ms=1000)[tp]] == [8, 9]
    consumer.seek_to_beginning(tp)
    assert consumer.position(tp) == 0
    consumer.seek_to_end()
    assert consumer.position(tp) == consumer.highwater(tp) == 10
    consumer.close()
    resumed = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id="g")
    resumed.assign([tp])
    assert resumed.position(tp) == 6  # from the committed offset
    resumed.close()


def test_consumer_timeout_ms_ends_iteration(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(3):
        producer.send("quiet", b"%d" % i)
    producer.close()
    consumer = KafkaConsumer("quiet", bootstrap_servers=BOOTSTRAP,
                             auto_offset_reset="earliest", consumer_timeout_ms=300)
    started = time.monotonic()
    assert [r.value for r in consumer] == [b"0", b"1", b"2"]
    assert 0.25 <= time.monotonic() - started < 5
    consumer.close()
    assert list(consumer) == []  # a closed consumer's iteration just stops


def test_rebalance_listener_hears_revocation_and_assignment(kafka):
    create("shared", 2)
    heard = []

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            heard.append(("revoked", sorted(revoked)))

        def on_partitions_assigned(self, assigned):
            heard.append(("assigned", sorted(assigned)))

    first = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id="rb")
    first.subscribe(["shared"], listener=Listener())
    poll_until([first], lambda: len(first.assignment()) == 2)
    assert heard[-1] == ("assigned", [TopicPartition("shared", 0), TopicPartition("shared", 1)])
    second = KafkaConsumer("shared", bootstrap_servers=BOOTSTRAP, group_id="rb")
    poll_until([first, second], lambda: len(first.assignment()) == len(second.assignment()) == 1)
    assert any(kind == "revoked" for kind, _ in heard[1:])
    assert heard[-1][0] == "assigned" and len(heard[-1][1]) == 1
    second.close()
    first.close()


def test_pause_resume_and_offset_lookups(kafka):
    create("tl", 2)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(4):
        producer.send("tl", b"x", partition=i % 2, timestamp_ms=1000 * (i + 1))
    producer.close()
    t0, t1 = TopicPartition("tl", 0), TopicPartition("tl", 1)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest")
    consumer.assign([t0, t1])
    consumer.pause(t0)
    assert consumer.paused() == {t0}
    assert set(consumer.poll(timeout_ms=500)) == {t1}
    consumer.resume(t0)
    assert set(consumer.poll(timeout_ms=500)) == {t0}
    assert consumer.beginning_offsets([t0, t1]) == {t0: 0, t1: 0}
    assert consumer.end_offsets([t0, t1]) == {t0: 2, t1: 2}
    found = consumer.offsets_for_times({t0: 2500, t1: 99_999})
    assert (found[t0].offset, found[t0].timestamp, found[t1]) == (1, 3000, None)
    assert consumer.topics() >= {"tl"} and consumer.partitions_for_topic("tl") == {0, 1}
    assert consumer.partitions_for_topic("missing") == set()
    assert consumer.metrics()["consumer-fetch-manager-metrics"]["records-consumed-total"] == 4
    consumer.close()


# -- transactions -------------------------------------------------------------------------


def test_transactions_through_the_dropin(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id="tx-1")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("tx", b"aborted")
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("tx", b"committed")
    producer.commit_transaction()
    assert [r.value for r in kafka.messages("tx", isolation_level="read_committed")] == \
        [b"committed"]
    reader = KafkaConsumer("tx", bootstrap_servers=BOOTSTRAP, isolation_level="read_committed",
                           auto_offset_reset="earliest", consumer_timeout_ms=200)
    assert [r.value for r in reader] == [b"committed"]
    reader.close()

    # consume-transform-produce: the input offsets commit with the output records
    source = KafkaConsumer("tx", bootstrap_servers=BOOTSTRAP, group_id="copier",
                           isolation_level="read_committed", auto_offset_reset="earliest",
                           enable_auto_commit=False)
    records = collect(source, 1)
    producer.begin_transaction()
    for r in records:
        producer.send("tx-copy", r.value.upper())
    tp = TopicPartition("tx", 0)
    producer.send_offsets_to_transaction({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)},
                                         source.group_metadata())
    producer.commit_transaction()
    assert source.committed(tp) == records[-1].offset + 1
    assert [r.value for r in kafka.messages("tx-copy", "read_committed")] == [b"COMMITTED"]
    source.close()

    newer = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id="tx-1")
    newer.init_transactions()  # fences the first producer
    with pytest.raises(Errors.ProducerFencedError, match="fenced"):
        producer.begin_transaction()
        producer.send("tx", b"zombie")
        producer.commit_transaction()
    newer.close()


# -- admin ----------------------------------------------------------------------------------


def test_admin_round_trip(kafka):
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="ops")
    result = admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=3,
                                           topic_configs={"retention.ms": "60000"})])
    assert result["topics"][0]["error_code"] == 0  # replication_factor 3: accepted, ignored
    assert "orders" in admin.list_topics()
    (described,) = admin.describe_topics(["orders"])
    assert [p["partition_index"] for p in described["partitions"]] == [0, 1, 2]
    assert admin.describe_topics(["nope"])[0]["error_code"] == 3

    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "orders")])
    assert configs["topic"]["orders"]["retention.ms"]["value"] == "60000"
    assert admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "orders",
                                               {"cleanup.policy": "compact"})]) == \
        {"topic": {"orders": "OK"}}
    everything = admin.describe_configs([ConfigResource("topic", "orders", ["cleanup.policy",
                                                                           "segment.bytes"])],
                                        config_filter="all")["topic"]["orders"]
    assert everything["cleanup.policy"]["value"] == "compact"
    assert everything["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"

    admin.create_partitions({"orders": NewPartitions(total_count=5)})
    assert KafkaProducer(bootstrap_servers=BOOTSTRAP).partitions_for("orders") == set(range(5))
    with pytest.raises(Errors.InvalidPartitionsError, match="must be larger"):
        admin.create_partitions({"orders": NewPartitions(2)})

    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(4):
        producer.send("orders", b"x", key=b"k%d" % i, partition=0)
    producer.close()
    consumer = KafkaConsumer("orders", bootstrap_servers=BOOTSTRAP, group_id="billing",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    poll_until([consumer], lambda: consumer.assignment())
    consumer.commit({TopicPartition("orders", 0): OffsetAndMetadata(3, "", -1)})
    assert ("billing", "consumer") in admin.list_consumer_groups()
    (info,) = admin.describe_consumer_groups(["billing"])
    assert info.group == "billing" and info.state == "Stable" and len(info.members) == 1
    assert dict(info.members[0].member_assignment.assignment)["orders"] == [0, 1, 2, 3, 4]
    assert admin.list_consumer_group_offsets("billing") == \
        {TopicPartition("orders", 0): OffsetAndMetadata(3, "", -1)}
    assert admin.delete_consumer_groups(["billing"]) == [("billing", Errors.NonEmptyGroupError)]
    consumer.close()
    assert admin.delete_consumer_groups(["billing", "ghost"]) == \
        [("billing", Errors.NoError), ("ghost", Errors.GroupIdNotFoundError)]

    deleted = admin.delete_records({TopicPartition("orders", 0): 2})
    assert deleted[TopicPartition("orders", 0)]["low_watermark"] >= 0
    with pytest.raises(Errors.TopicAlreadyExistsError):
        admin.create_topics([NewTopic("orders", 1, 1)])
    quiet = admin.create_topics([NewTopic("orders", 1, 1), NewTopic("fresh", 2, -1)],
                                raise_errors=False)
    assert [t["error_code"] for t in quiet["topics"]] == [36, 0]
    admin.delete_topics(["orders", "fresh"])
    with pytest.raises(Errors.UnknownTopicOrPartitionError):
        admin.delete_topics(["orders"])
    admin.close()


# -- errors and configuration -----------------------------------------------------------------


def test_core_errors_are_catchable_by_kafka_python_names(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, max_request_size=100)
    with pytest.raises(Errors.MessageSizeTooLargeError, match="exceeds"):
        producer.send("t", b"x" * 1000)
    create("two", 2)
    try:
        producer.send("two", b"x", partition=7).get(timeout=10)
    except Errors.UnknownTopicOrPartitionError as exc:
        assert exc.errno == 3 and exc.retriable and exc.invalid_metadata
        assert str(exc).startswith("[Error 3] UnknownTopicOrPartitionError: ")
        assert isinstance(exc.__cause__, mqlog.errors.MqlogError)
    else:
        pytest.fail("no UnknownTopicOrPartitionError")
    producer.close()
    with pytest.raises(Errors.IllegalStateError, match="closed"):
        producer.send("t", b"late")

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id="strict",
                             auto_offset_reset="none")
    with pytest.raises(Errors.IllegalStateError):
        consumer.poll()
    consumer.assign([TopicPartition("two", 0)])
    with pytest.raises(Errors.NoOffsetForPartitionError):
        consumer.poll(timeout_ms=10)
    consumer.close()

    member = KafkaConsumer("two", bootstrap_servers=BOOTSTRAP, group_id="evicted")
    poll_until([member], lambda: member.assignment())
    kafka.faults.expire_member("evicted")
    with pytest.raises(Errors.CommitFailedError):
        member.commit({TopicPartition("two", 0): OffsetAndMetadata(0, "", -1)})
    member.close()

    assert Errors.for_code(36) is Errors.TopicAlreadyExistsError
    assert Errors.for_code(9999).errno == 9999
    assert issubclass(Errors.KafkaTimeoutError, Errors.RetriableError)
    assert Errors.ProducerFencedError.errno == 90 and Errors.OffsetOutOfRangeError.errno == 1


def test_unknown_config_keys_are_refused_with_a_hint(kafka):
    with pytest.raises(Errors.KafkaConfigurationError, match="'bootstrap_servers'"):
        KafkaConsumer(**{"bootstrap.servers": BOOTSTRAP})
    with pytest.raises(ValueError, match="did you mean 'linger_ms'"):  # as kafka-python
        KafkaProducer(bootstrap_servers=BOOTSTRAP, linger=5)
    with pytest.raises(Errors.KafkaConfigurationError, match="bootstrap_timeout_ms"):
        KafkaAdminClient(bootstrap_servers=BOOTSTRAP, api_version_auto_timeout_ms=1000)
    with pytest.raises(Errors.KafkaConfigurationError, match="incompatible"):
        KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks=1)
    with pytest.raises(Errors.KafkaConfigurationError, match="custom kafka-python assignors"):
        KafkaConsumer(bootstrap_servers=BOOTSTRAP, partition_assignment_strategy=[object])
    # Keys about the network and security are accepted and ignored.
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_SSL",
                             sasl_mechanism="PLAIN", sasl_plain_username="u",
                             sasl_plain_password="p", ssl_cafile="/nowhere/ca.pem",
                             api_version=(3, 6), request_timeout_ms=5000, retries=5,
                             max_in_flight_requests_per_connection=1, client_id="app")
    assert producer.send("t", b"ok").get(timeout=10).offset == 0
    assert producer.metrics()["producer-metrics"]["record-send-total"] == 1
    producer.close()


def test_kafka_python_argument_checks(kafka):
    create("t", 1)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    with pytest.raises(ValueError, match="key or value"):
        producer.send("t")
    with pytest.raises(TypeError, match="headers"):
        producer.send("t", b"v", headers={"h": b"v"})
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    with pytest.raises(TypeError, match="list"):
        consumer.subscribe("t")
    with pytest.raises(ValueError, match="topics or pattern"):
        consumer.subscribe()
    with pytest.raises(ValueError, match="negative"):
        consumer.poll(timeout_ms=-1)
    with pytest.raises(Errors.IllegalStateError, match="group_id"):
        consumer.committed(TopicPartition("t", 0))
    tp = TopicPartition("t", 0)
    with pytest.raises(ValueError, match="Unassigned"):
        consumer.seek(tp, 0)
    consumer.assign([tp])
    with pytest.raises(ValueError, match="int >= 0"):
        consumer.seek(tp, -1)
    with pytest.raises(TypeError, match="TopicPartition"):
        consumer.position(("t", 0))
    with pytest.raises(Errors.IllegalStateError, match="exclusive"):
        consumer.subscribe(["t"])
    consumer.close()
    with pytest.raises(Errors.IllegalStateError, match="closed"):
        consumer.poll()


# -- fault injection -----------------------------------------------------------------------------


def test_injected_send_errors_fail_the_future(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    kafka.faults.fail_next("send", Errors.NotLeaderForPartitionError)
    kafka.faults.fail_next("send", mqlog.errors.KafkaTimeoutError)  # a core class: translated
    failed, timed_out = producer.send("t", b"lost"), producer.send("t", b"lost too")
    errors = []
    failed.add_errback(errors.append)
    assert failed.failed() and failed.retriable()
    assert errors == [failed.exception]
    assert isinstance(failed.exception, Errors.NotLeaderForPartitionError)
    with pytest.raises(Errors.KafkaTimeoutError, match="injected"):
        timed_out.get(timeout=10)
    assert producer.send("t", b"kept").get(timeout=10).offset == 0
    producer.close()
    assert [r.value for r in kafka.messages("t")] == [b"kept"]


def test_injected_commit_errors(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    producer.send("c", b"x").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id="cg",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    tp = TopicPartition("c", 0)
    consumer.assign([tp])
    consumer.poll(timeout_ms=1000)
    kafka.faults.fail_next("commit", Errors.CommitFailedError, times=2)
    with pytest.raises(Errors.CommitFailedError, match="injected"):
        consumer.commit()
    outcomes = []
    future = consumer.commit_async(callback=lambda offsets, exc: outcomes.append((offsets, exc)))
    consumer.poll(timeout_ms=0)  # callbacks run inside the consumer's calls
    assert future.failed() and isinstance(future.exception, Errors.CommitFailedError)
    assert outcomes == [({tp: OffsetAndMetadata(1, "", -1)}, future.exception)]
    assert consumer.committed(tp) is None
    ok = consumer.commit_async(callback=lambda offsets, exc: outcomes.append((offsets, exc)))
    consumer.commit()  # waits for the asynchronous commit queued before it
    consumer.poll(timeout_ms=0)
    assert ok.succeeded() and outcomes[-1][1] is None and consumer.committed(tp) == 1
    consumer.close()


def test_injected_poll_errors_and_latency(kafka):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    producer.send("p", b"x").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer("p", bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                             consumer_timeout_ms=200)
    kafka.faults.fail_next("poll", Errors.KafkaTimeoutError)
    with pytest.raises(Errors.KafkaTimeoutError, match="injected"):
        consumer.poll(timeout_ms=100)
    kafka.faults.fail_next("poll", mqlog.errors.IllegalStateError("broker moved"))
    with pytest.raises(Errors.IllegalStateError, match="broker moved"):
        next(consumer)
    kafka.faults.delay("poll", 0.1)
    started = time.monotonic()
    records = consumer.poll(timeout_ms=1000)
    assert time.monotonic() - started >= 0.1
    assert [r.value for r in records[TopicPartition("p", 0)]] == [b"x"]
    kafka.faults.clear()
    consumer.close()


# -- layout and pluggable parts -------------------------------------------------------------


def test_module_layout_mirrors_kafka_python():
    import importlib

    for module, names in {
        "mqlog.kafka": ["KafkaProducer", "KafkaConsumer", "KafkaAdminClient", "TopicPartition",
                        "OffsetAndMetadata", "ConsumerRebalanceListener"],
        "mqlog.kafka.errors": ["KafkaError", "BrokerResponseError", "NoBrokersAvailable",
                               "for_code"],
        "mqlog.kafka.admin": ["KafkaAdminClient", "NewTopic", "NewPartitions",
                              "ConfigResource", "ConfigResourceType"],
        "mqlog.kafka.structs": ["TopicPartition", "OffsetAndMetadata", "OffsetAndTimestamp"],
        "mqlog.kafka.consumer": ["KafkaConsumer"],
        "mqlog.kafka.consumer.subscription_state": ["ConsumerRebalanceListener"],
        "mqlog.kafka.consumer.fetcher": ["ConsumerRecord"],
        "mqlog.kafka.producer": ["KafkaProducer"],
        "mqlog.kafka.producer.future": ["FutureRecordMetadata", "RecordMetadata"],
        "mqlog.kafka.future": ["Future"],
        "mqlog.kafka.partitioner": ["DefaultPartitioner", "Partitioner", "murmur2"],
        "mqlog.kafka.serializer": ["Serializer", "Deserializer", "JsonSerializer"],
        "mqlog.kafka.coordinator.assignors.range": ["RangePartitionAssignor"],
        "mqlog.kafka.coordinator.assignors.roundrobin": ["RoundRobinPartitionAssignor"],
        "mqlog.kafka.coordinator.assignors.sticky.sticky_assignor": ["StickyPartitionAssignor"],
        "mqlog.kafka.coordinator.assignors.cooperative_sticky": ["CooperativeStickyAssignor"],
    }.items():
        imported = importlib.import_module(module)
        for name in names:
            assert hasattr(imported, name), f"{module}.{name}"
    from mqlog.kafka.structs import TopicPartition as KafkaTopicPartition

    assert KafkaTopicPartition is mqlog.TopicPartition  # values pass between the two APIs


def test_custom_partitioners_and_auto_create_off(kafka):
    from mqlog.kafka.partitioner import Partitioner

    create("parts", 4)

    class Last(Partitioner):
        def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
            return max(cluster.partitions_for_topic(topic))

    modern = KafkaProducer(bootstrap_servers=BOOTSTRAP, partitioner=Last())
    assert modern.send("parts", b"v").get(timeout=10).partition == 3
    modern.close()
    legacy = KafkaProducer(bootstrap_servers=BOOTSTRAP,  # kafka-python 2.x's form
                           partitioner=lambda key, all_partitions, available: 1)
    assert legacy.send("parts", b"v", key=b"k").get(timeout=10).partition == 1
    legacy.close()

    strict = KafkaProducer(bootstrap_servers=BOOTSTRAP, allow_auto_create_topics=False)
    future = strict.send("never-created", b"v")
    with pytest.raises(Errors.UnknownTopicOrPartitionError, match="allow_auto_create_topics"):
        future.get(timeout=10)
    strict.close()
    assert "never-created" not in kafka.topics()


def test_pattern_subscription_and_context_managers(kafka):
    create("metrics-a", 1)
    create("metrics-b", 1)
    with KafkaProducer(bootstrap_servers=BOOTSTRAP) as producer:
        producer.send("metrics-a", b"a")
        producer.send("metrics-b", b"b")
    with KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id="pat",
                       auto_offset_reset="earliest") as consumer:
        consumer.subscribe(pattern="^metrics-.*")
        assert sorted(r.value for r in collect(consumer, 2)) == [b"a", b"b"]
        assert consumer.subscription() == {"metrics-a", "metrics-b"}
    # leaving the block committed the positions (auto-commit on a clean exit)
    assert KafkaAdminClient(bootstrap_servers=BOOTSTRAP).list_consumer_group_offsets("pat") == {
        TopicPartition("metrics-a", 0): OffsetAndMetadata(1, "", -1),
        TopicPartition("metrics-b", 0): OffsetAndMetadata(1, "", -1)}
