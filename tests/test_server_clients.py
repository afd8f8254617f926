"""mqlog serve with the real Kafka clients from PyPI: codecs, idempotence, transactions,
admin calls and a server restart under a running producer, checked end to end.

Each test drives kafka-python, aiokafka or confluent-kafka (librdkafka) the way an
application does, then checks what the client got back against what the store holds
(``broker.messages``, ``group_offsets``) and what other clients read over the wire.
Servers come from the ``mqlog_server`` fixture (a fresh store per test); the restart
tests serve a data directory twice.

What Kafka guarantees and these tests pin, and what mqlog does not (yet) do, is listed
in docs/serve.md ("Differences from Kafka").
"""

from __future__ import annotations

import asyncio
import sys
import time
import typing

import aiokafka
import confluent_kafka
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, \
    TopicCollection
from confluent_kafka import admin as cadmin

import mqlog
from mqlog import TopicPartition

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 15.0
CODECS = ["gzip", "snappy", "lz4", "zstd"]

# kafka-python, bound while this module's tests run (as in tests/test_server.py):
# tests/test_pytest_plugin.py plants its own `kafka` package and needs the name free in
# sys.modules while its tests run, so it is neither imported at collection nor kept.
kafka: typing.Any = None


@pytest.fixture(scope="module", autouse=True)
def _kafka_python():
    global kafka
    import kafka as real_kafka

    kafka = real_kafka
    yield
    kafka = None
    for name in [n for n in sys.modules if n == "kafka" or n.startswith("kafka.")]:
        del sys.modules[name]


# -- helpers ---------------------------------------------------------------------------

Row = tuple  # (partition, offset, key, value, headers): one record as any client saw it


def row(partition, offset, key, value, headers) -> Row:
    return (partition, offset, key, value, tuple((k, bytes(v)) for k, v in headers or ()))


def stored_rows(server, topic: str, isolation_level: str = "read_uncommitted") -> list[Row]:
    return [row(r.partition, r.offset, r.key, r.value, r.headers)
            for r in server.messages(topic, isolation_level)]


def wait_until(predicate, what: str, timeout: float = TIMEOUT) -> None:
    """Call ``predicate`` (each call does real work: a client poll) until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kp_producer(server, **config):
    """A kafka-python producer with short timeouts (a failure fails fast)."""
    return kafka.KafkaProducer(bootstrap_servers=server.bootstrap_servers,
                               request_timeout_ms=10_000, max_block_ms=10_000, **config)


def kp_consumer(server, *topics, **config):
    return kafka.KafkaConsumer(*topics, bootstrap_servers=server.bootstrap_servers,
                               request_timeout_ms=10_000, fetch_max_wait_ms=100, **config)


def ck_config(server, **extra) -> dict:
    return {"bootstrap.servers": server.bootstrap_servers, "socket.timeout.ms": 10_000,
            "log_level": 3, **extra}


def kp_read_to_end(consumer, tps) -> list[Row]:
    """Everything a kafka-python consumer delivers on ``tps`` from the beginning until its
    position reaches the end offset (the last stable offset for read_committed)."""
    consumer.assign(tps)
    consumer.seek_to_beginning()
    end = consumer.end_offsets(tps)
    out: list[Row] = []

    def step() -> bool:
        for records in consumer.poll(timeout_ms=100).values():
            out.extend(row(r.partition, r.offset, r.key, r.value, r.headers)
                       for r in records)
        return all(consumer.position(tp) >= end[tp] for tp in tps)

    wait_until(step, f"kafka-python to read {tps} to {end}")
    return sorted(out)


def ck_read_to_end(consumer, topic: str, partitions: int) -> list[Row]:
    """As :func:`kp_read_to_end`, for a librdkafka consumer."""
    tps = [confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
           for p in range(partitions)]
    consumer.assign(tps)
    end = {p: consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p),
                                             timeout=TIMEOUT, cached=False)[1]
           for p in range(partitions)}
    out: list[Row] = []

    def at_end() -> bool:
        positions = consumer.position([confluent_kafka.TopicPartition(topic, p)
                                       for p in range(partitions)])
        return all(tp.offset >= end[tp.partition] for tp in positions)

    def step() -> bool:
        m = consumer.poll(0.1)
        if m is not None:
            assert m.error() is None, m.error()
            out.append(row(m.partition(), m.offset(), m.key(), m.value(), m.headers()))
        return at_end()

    wait_until(step, f"librdkafka to read {topic} to {end}")
    return sorted(out)


async def aio_read_to_end(server, topic: str, partitions: int, **config) -> list[Row]:
    """As :func:`kp_read_to_end`, for an aiokafka consumer."""
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=server.bootstrap_servers,
                                         fetch_max_wait_ms=100, **config)
    await consumer.start()
    try:
        tps = [aiokafka.TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Row] = []
        deadline = time.monotonic() + TIMEOUT
        while not all([await consumer.position(tp) >= end[tp] for tp in tps]):
            assert time.monotonic() < deadline, f"aiokafka did not read {topic} to {end}"
            for records in (await consumer.getmany(timeout_ms=100)).values():
                out.extend(row(r.partition, r.offset, r.key, r.value, r.headers)
                           for r in records)
        return sorted(out)
    finally:
        await consumer.stop()


def payload(client: str, i: int) -> tuple[bytes, bytes, list]:
    """Key, value and headers of record ``i``; values compress well."""
    return (b"k%d" % i, b"%s-%d-" % (client.encode(), i) + b"abcdefgh" * 8,
            [("i", b"%d" % i), ("client", client.encode())])


# -- every codec, every client ---------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_each_client_produces_compressed_and_each_client_reads_it(mqlog_server, codec):
    """kafka-python, aiokafka and librdkafka each produce with ``codec`` (idempotent)
    into their own partition; every client reads all three back over the wire, and the
    store holds the same records. kafka-python needs the codec packages of the test
    extra for snappy, lz4 and zstd; it refuses to start without them."""
    server = mqlog_server
    server.create_topic("z", 3)
    n = 20
    expected: list[Row] = []

    with kp_producer(server, compression_type=codec, enable_idempotence=True,
                     linger_ms=5) as producer:
        futures = [producer.send("z", payload("kp", i)[1], key=payload("kp", i)[0],
                                 headers=payload("kp", i)[2], partition=0)
                   for i in range(n)]
        offsets = [f.get(TIMEOUT).offset for f in futures]
    assert offsets == list(range(n))
    expected += [row(0, i, *payload("kp", i)) for i in range(n)]

    async def aio_produce() -> list[int]:
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=server.bootstrap_servers, compression_type=codec,
            enable_idempotence=True, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send("z", payload("aio", i)[1],
                                           key=payload("aio", i)[0],
                                           headers=payload("aio", i)[2], partition=1)
                       for i in range(n)]
            return [md.offset for md in await asyncio.gather(*futures)]
        finally:
            await producer.stop()

    assert asyncio.run(aio_produce()) == list(range(n))
    expected += [row(1, i, *payload("aio", i)) for i in range(n)]

    producer = confluent_kafka.Producer(ck_config(
        server, **{"compression.type": codec, "enable.idempotence": True,
                   "linger.ms": 5}))
    delivered: list = []
    for i in range(n):
        key, value, headers = payload("ck", i)
        producer.produce("z", value, key, partition=2, headers=headers,
                         on_delivery=lambda err, m: delivered.append((err, m.offset())))
    assert producer.flush(TIMEOUT) == 0
    assert delivered == [(None, i) for i in range(n)]
    expected += [row(2, i, *payload("ck", i)) for i in range(n)]

    expected.sort()
    assert stored_rows(server, "z") == expected
    consumer = kp_consumer(server)
    try:
        assert kp_read_to_end(consumer, [kafka.TopicPartition("z", p)
                                         for p in range(3)]) == expected
    finally:
        consumer.close()
    assert asyncio.run(aio_read_to_end(server, "z", 3)) == expected
    consumer = confluent_kafka.Consumer(ck_config(server, **{"group.id": "unused"}))
    try:
        assert ck_read_to_end(consumer, "z", 3) == expected
    finally:
        consumer.close()


# -- kafka-python: idempotence and transactions ------------------------------------------

def test_kafka_python_idempotent_producer_with_many_batches_in_flight(mqlog_server):
    """Small batches, five in flight per connection: each partition keeps send order,
    once each, and every acknowledged offset is where the store has the record."""
    server = mqlog_server
    server.create_topic("idem", 3)
    with kp_producer(server, enable_idempotence=True, acks="all", batch_size=256,
                     linger_ms=0, max_in_flight_requests_per_connection=5,
                     compression_type="lz4") as producer:
        futures = [(i, producer.send("idem", b"%03d" % i + b"." * 40, partition=i % 3))
                   for i in range(150)]
        acked = {(md.partition, md.offset): i for i, md in
                 ((i, f.get(TIMEOUT)) for i, f in futures)}
    records = server.messages("idem")
    assert len(records) == 150
    for r in records:
        i = acked[(r.partition, r.offset)]
        assert r.value == b"%03d" % i + b"." * 40
    for p in range(3):
        assert [int(r.value[:3]) for r in records if r.partition == p] == \
            list(range(p, 150, 3))


def test_kafka_python_consume_transform_produce_with_an_aborted_round(mqlog_server):
    """A group member reads, a transactional producer writes the transformed records and
    the group's offsets in one transaction. The first transaction is aborted and the
    input re-read: its output and its offsets never become visible."""
    server = mqlog_server
    server.create_topic("kin", 2)
    server.create_topic("kout", 2)
    with server.broker.producer() as p:
        for i in range(10):
            p.send("kin", b"%d" % i, key=b"%d" % i, partition=i % 2)
    consumer = kp_consumer(server, "kin", group_id="ktx", enable_auto_commit=False,
                           auto_offset_reset="earliest", isolation_level="read_committed")
    producer = kp_producer(server, transactional_id="ktx-1")
    try:
        producer.init_transactions()
        done = {0: 0, 1: 0}  # committed progress per input partition
        rounds = {"aborted": 0}  # how many records the aborted transaction held

        def one_round() -> bool:
            batch = consumer.poll(timeout_ms=200)
            if batch:
                producer.begin_transaction()
                offsets = {}
                for tp, records in batch.items():
                    for r in records:
                        producer.send("kout", b"t" + r.value, key=r.key,
                                      partition=tp.partition)
                    offsets[tp] = kafka.OffsetAndMetadata(records[-1].offset + 1, "", -1)
                producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                if not rounds["aborted"]:
                    producer.flush()  # written to the log before the abort
                    producer.abort_transaction()
                    rounds["aborted"] = sum(len(records) for records in batch.values())
                    assert server.committed("ktx") == {}  # the abort dropped the offsets
                    for tp, records in batch.items():
                        consumer.seek(tp, records[0].offset)  # read them again
                else:
                    producer.commit_transaction()
                    for tp, o in offsets.items():
                        done[tp.partition] = o.offset
            return done == {0: 5, 1: 5}

        wait_until(one_round, "every input record transformed in a committed transaction")
    finally:
        producer.close(timeout=5)
        consumer.close()
    assert server.committed("ktx") == {TopicPartition("kin", 0): 5,
                                       TopicPartition("kin", 1): 5}
    want = sorted((r.partition, r.key, b"t" + r.value) for r in server.messages("kin"))
    committed = server.messages("kout", "read_committed")
    assert sorted((r.partition, r.key, r.value) for r in committed) == want
    everything = server.messages("kout")
    assert len(everything) == len(committed) + rounds["aborted"] > len(committed)
    # Wire consumers agree: read_committed skips the aborted records, read_uncommitted
    # does not.
    tps = [kafka.TopicPartition("kout", p) for p in range(2)]
    reader = kp_consumer(server, isolation_level="read_committed")
    try:
        got = kp_read_to_end(reader, tps)
    finally:
        reader.close()
    assert got == sorted(row(r.partition, r.offset, r.key, r.value, r.headers)
                         for r in committed)
    reader = kp_consumer(server)
    try:
        assert len(kp_read_to_end(reader, tps)) == len(everything)
    finally:
        reader.close()


# -- aiokafka ----------------------------------------------------------------------------

def test_aiokafka_transactions_commit_abort_and_read_committed(mqlog_server):
    """Committed, aborted (with offsets) and committed (with offsets) transactions; an
    aiokafka read_committed consumer reads to the end and never sees the aborted one."""
    server = mqlog_server
    server.create_topic("atx")
    tp = aiokafka.TopicPartition("atx", 0)

    async def main():
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=server.bootstrap_servers,
                                             transactional_id="aio-tx")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait("atx", b"first", key=b"a")
            await producer.begin_transaction()
            await producer.send_and_wait("atx", b"aborted", key=b"b")
            await producer.send_offsets_to_transaction({tp: 1}, "aio-g")
            await producer.abort_transaction()
            assert server.committed("aio-g") == {}
            async with producer.transaction():
                await producer.send_and_wait("atx", b"second", key=b"c")
                await producer.send_offsets_to_transaction({tp: 3}, "aio-g")
        finally:
            await producer.stop()
        committed = await aio_read_to_end(server, "atx", 1,
                                          isolation_level="read_committed")
        uncommitted = await aio_read_to_end(server, "atx", 1)
        return committed, uncommitted

    committed, uncommitted = asyncio.run(main())
    assert [r[3] for r in committed] == [b"first", b"second"]
    assert [r[3] for r in uncommitted] == [b"first", b"aborted", b"second"]
    assert committed == stored_rows(server, "atx", "read_committed")
    assert server.committed("aio-g") == {TopicPartition("atx", 0): 3}


def test_aiokafka_admin_client(mqlog_server):
    """Every topic call of AIOKafkaAdminClient, with the errors Kafka answers (topic
    exists, replication factor above 1, fewer partitions, unknown topic)."""
    server = mqlog_server
    with server.broker.producer() as p:
        for i in range(6):
            p.send("data", b"%d" % i)

    async def main():
        admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap_servers,
                                    request_timeout_ms=10_000)
        await admin.start()
        try:
            return await admin_calls(admin)
        finally:
            await admin.close()

    async def admin_calls(admin):
        out = {}
        made = await admin.create_topics([NewTopic("adm", 3, 1,
                                                   topic_configs={"retention.ms": "5000"})])
        out["create"] = [(t[0], t[1]) for t in made.topic_errors]
        again = await admin.create_topics([NewTopic("adm", 1, 1), NewTopic("rf", 1, 3)])
        out["create again"] = [(t[0], t[1]) for t in again.topic_errors]
        checked = await admin.create_topics([NewTopic("dry", 2, 1)], validate_only=True)
        out["validate only"] = [(t[0], t[1]) for t in checked.topic_errors]
        out["list"] = sorted(await admin.list_topics())
        described = await admin.describe_topics(["adm"])
        out["describe"] = [(t["topic"], t["error_code"], [(p["partition"], p["leader"])
                                                         for p in t["partitions"]])
                           for t in described]
        cluster = await admin.describe_cluster()
        out["cluster"] = (cluster["cluster_id"], cluster["controller_id"],
                          [(b["node_id"], b["port"]) for b in cluster["brokers"]])
        [topic_configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "adm")])
        [resource] = topic_configs.to_object()["resources"]
        out["configs"] = (resource["error_code"], {
            e["config_names"]: e["config_value"] for e in resource["config_entries"]})
        [broker_configs] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, "0")])
        [resource] = broker_configs.to_object()["resources"]
        out["broker configs"] = {e["config_names"]: e["config_value"]
                                 for e in resource["config_entries"]}
        [altered] = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "adm",
                            configs={"retention.ms": "7000"})])
        out["alter"] = [r[0] for r in altered.resources]
        out["config after alter"] = dict(server.topics()["adm"].config)
        await admin.create_partitions({"adm": NewPartitions(5)})
        out["partitions"] = server.topics()["adm"].partitions
        with pytest.raises(aiokafka.errors.InvalidPartitionsError):
            await admin.create_partitions({"adm": NewPartitions(2)})
        out["delete records"] = await admin.delete_records(
            {aiokafka.TopicPartition("data", 0): RecordsToDelete(2)})
        out["coordinator"] = await admin.find_coordinator("viewers")
        deleted = await admin.delete_topics(["adm", "never-made"])
        out["delete"] = sorted((t[0], t[1]) for t in deleted.topic_error_codes)
        return out

    out = asyncio.run(main())
    assert out["create"] == [("adm", 0)]
    assert out["create again"] == [("adm", 36), ("rf", 38)]  # exists; replication factor
    assert out["validate only"] == [("dry", 0)]
    assert "dry" not in server.topics() and "rf" not in server.topics()
    assert out["list"] == ["adm", "data"]
    assert out["describe"] == [("adm", 0, [(0, 0), (1, 0), (2, 0)])]
    assert out["cluster"] == ("mqlog", 0, [(0, server.port)])
    assert out["configs"][0] == 0 and out["configs"][1]["retention.ms"] == "5000"
    assert out["broker configs"]["broker.id"] == "0"
    assert out["alter"] == [0]
    assert out["config after alter"] == {"retention.ms": 7000}  # the whole set replaced
    assert out["partitions"] == 5
    assert out["delete records"] == {aiokafka.TopicPartition("data", 0): 2}
    assert server.messages("data")[0].offset == 2
    assert out["coordinator"] == 0
    assert out["delete"] == [("adm", 0), ("never-made", 3)]
    assert "adm" not in server.topics()


def test_aiokafka_admin_sees_a_live_group_and_its_offsets(mqlog_server):
    """AIOKafkaAdminClient's group calls on a group whose member is an aiokafka
    consumer."""
    server = mqlog_server
    server.create_topic("g", 2)
    with server.broker.producer() as p:
        for i in range(4):
            p.send("g", b"%d" % i, partition=i % 2)

    async def main():
        consumer = aiokafka.AIOKafkaConsumer(
            "g", bootstrap_servers=server.bootstrap_servers, group_id="aio-live",
            client_id="live-1", auto_offset_reset="earliest", enable_auto_commit=False,
            heartbeat_interval_ms=100)
        await consumer.start()
        admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap_servers)
        await admin.start()
        try:
            n = 0
            deadline = time.monotonic() + TIMEOUT
            while n < 4:
                assert time.monotonic() < deadline, "the group member read nothing"
                n += sum(len(v) for v in (await consumer.getmany(timeout_ms=100)).values())
            await consumer.commit()
            groups = sorted(await admin.list_consumer_groups())
            [described] = await admin.describe_consumer_groups(["aio-live"])
            offsets = await admin.list_consumer_group_offsets("aio-live")
            return groups, described.to_object()["groups"], offsets
        finally:
            await admin.close()
            await consumer.stop()

    groups, described, offsets = asyncio.run(main())
    assert groups == [("aio-live", "consumer")]
    [group] = described
    assert (group["error_code"], group["group"], group["state"], group["protocol_type"]) \
        == (0, "aio-live", "Stable", "consumer")
    [member] = group["members"]
    assert member["client_id"] == "live-1"
    assert {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()} == \
        {("g", 0): 2, ("g", 1): 2}


def test_an_api_the_server_does_not_offer_gets_an_error_answer_not_a_closed_socket(
        mqlog_server):
    """aiokafka's connection forced to send DescribeAcls (not advertised): the answer is
    the request's own response layout with UNSUPPORTED_VERSION, and the same connection
    serves the next request."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.admin import DescribeAclsRequest, DescribeAclsRequest_v1
    from aiokafka.protocol.metadata import MetadataRequest

    class DescribeAclsV1(DescribeAclsRequest):
        """Sent as v1 whatever the server advertises (aiokafka would refuse to send it:
        the server lists no version of DescribeAcls)."""

        def prepare(self, versions):
            return self.build(DescribeAclsRequest_v1)

    async def main():
        conn = await create_conn(mqlog_server.host, mqlog_server.port)
        try:
            answer = await asyncio.wait_for(conn.send(DescribeAclsV1(
                resource_type=1, resource_name=None, resource_pattern_type_filter=3,
                principal=None, host=None, operation=1, permission_type=1)), TIMEOUT)
            alive = conn.connected()
            metadata = await asyncio.wait_for(conn.send(MetadataRequest([])), TIMEOUT)
            return answer, alive, metadata
        finally:
            conn.close()

    answer, alive, metadata = asyncio.run(main())
    assert answer.error_code == 35  # UNSUPPORTED_VERSION
    assert alive
    assert [b[0] for b in metadata.brokers] == [0]


# -- confluent-kafka ---------------------------------------------------------------------

def test_confluent_consume_transform_produce_with_an_aborted_round(mqlog_server):
    """librdkafka's consume-transform-produce loop: a subscribed member's group metadata
    (member id, generation) goes with the offsets (KIP-447); the first transaction is
    aborted and its input re-read."""
    server = mqlog_server
    server.create_topic("cin", 2)
    server.create_topic("cout", 2)
    with server.broker.producer() as p:
        for i in range(10):
            p.send("cin", b"%d" % i, key=b"%d" % i, partition=i % 2)
    consumer = confluent_kafka.Consumer(ck_config(server, **{
        "group.id": "ctx", "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "heartbeat.interval.ms": 100}))
    consumer.subscribe(["cin"])
    producer = confluent_kafka.Producer(ck_config(server, **{"transactional.id": "ctx-1"}))
    try:
        producer.init_transactions(TIMEOUT)
        done = {0: 0, 1: 0}
        aborted = []

        def one_round() -> bool:
            messages = [m for m in consumer.consume(10, 0.2) if m.error() is None]
            if messages:
                producer.begin_transaction()
                offsets: dict[int, int] = {}
                first: dict[int, int] = {}
                for m in messages:
                    producer.produce("cout", b"t" + m.value(), m.key(),
                                     partition=m.partition())
                    offsets[m.partition()] = m.offset() + 1
                    first.setdefault(m.partition(), m.offset())
                producer.send_offsets_to_transaction(
                    [confluent_kafka.TopicPartition("cin", p, o) for p, o in offsets.items()],
                    consumer.consumer_group_metadata(), TIMEOUT)
                if not aborted:
                    producer.flush(TIMEOUT)  # written before the abort
                    producer.abort_transaction(TIMEOUT)
                    aborted.append(len(messages))
                    assert server.committed("ctx") == {}
                    for p, o in first.items():
                        consumer.seek(confluent_kafka.TopicPartition("cin", p, o))
                else:
                    producer.commit_transaction(TIMEOUT)
                    done.update(offsets)
            return done == {0: 5, 1: 5}

        wait_until(one_round, "every input record transformed in a committed transaction")
    finally:
        consumer.close()
    assert server.committed("ctx") == {TopicPartition("cin", 0): 5,
                                       TopicPartition("cin", 1): 5}
    want = sorted((r.partition, r.key, b"t" + r.value) for r in server.messages("cin"))
    committed = server.messages("cout", "read_committed")
    assert sorted((r.partition, r.key, r.value) for r in committed) == want
    assert len(server.messages("cout")) == len(committed) + aborted[0]
    reader = confluent_kafka.Consumer(ck_config(server, **{
        "group.id": "reader", "isolation.level": "read_committed"}))
    try:
        assert ck_read_to_end(reader, "cout", 2) == stored_rows(server, "cout",
                                                                "read_committed")
    finally:
        reader.close()


def test_confluent_admin_groups_offsets_topics_and_list_offsets(mqlog_server):
    """The AdminClient calls tests/test_server.py does not make."""
    server = mqlog_server
    server.create_topic("t", 3)
    with server.broker.producer() as p:
        for i in range(9):
            p.send("t", b"%d" % i, partition=i % 3, timestamp_ms=1_000 + i)
    admin = cadmin.AdminClient(ck_config(server))
    consumer = confluent_kafka.Consumer(ck_config(server, **{
        "group.id": "g1", "client.id": "member-1", "auto.offset.reset": "earliest",
        "enable.auto.commit": False}))
    consumer.subscribe(["t"])
    got: list = []

    def read() -> bool:
        m = consumer.poll(0.1)
        if m is not None and m.error() is None:
            got.append(m)
        return len(got) == 9

    try:
        wait_until(read, "the member to read the topic")
        consumer.commit(asynchronous=False)
        listed = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(
            TIMEOUT)
        assert [(g.group_id, g.state, g.is_simple_consumer_group) for g in listed.valid] \
            == [("g1", ConsumerGroupState.STABLE, False)] and listed.errors == []
        assert admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(
            TIMEOUT).valid == []
        described = {k: f.result(TIMEOUT) for k, f in
                     admin.describe_consumer_groups(["g1", "nope"]).items()}
        g1 = described["g1"]
        assert (g1.state, g1.partition_assignor, g1.coordinator.id) == (
            ConsumerGroupState.STABLE, "range", 0)
        [member] = g1.members
        assert member.client_id == "member-1"
        assert sorted((tp.topic, tp.partition) for tp in member.assignment.topic_partitions) \
            == [("t", 0), ("t", 1), ("t", 2)]
        assert described["nope"].state == ConsumerGroupState.DEAD
    finally:
        consumer.close()  # LeaveGroup: the group is empty, its offsets stay

    [(name, future)] = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("g1")]).items()
    assert sorted((tp.partition, tp.offset) for tp in future.result(TIMEOUT).topic_partitions) \
        == [(0, 3), (1, 3), (2, 3)]
    altered = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        "g1", [confluent_kafka.TopicPartition("t", 0, 1)])])["g1"].result(TIMEOUT)
    assert [(tp.partition, tp.offset, tp.error) for tp in altered.topic_partitions] == \
        [(0, 1, None)]
    assert server.committed("g1") == {TopicPartition("t", 0): 1, TopicPartition("t", 1): 3,
                                      TopicPartition("t", 2): 3}
    assert [g.group_id for g in admin.list_consumer_groups(
        states={ConsumerGroupState.EMPTY}).result(TIMEOUT).valid] == ["g1"]
    assert admin.delete_consumer_groups(["g1"])["g1"].result(TIMEOUT) is None
    assert server.committed("g1") == {}

    topics = admin.describe_topics(TopicCollection(["t", "missing"]))
    t = topics["t"].result(TIMEOUT)
    assert (t.name, t.is_internal) == ("t", False)
    assert [(p.id, p.leader.id, [n.id for n in p.replicas]) for p in t.partitions] == \
        [(0, 0, [0]), (1, 0, [0]), (2, 0, [0])]
    with pytest.raises(confluent_kafka.KafkaException, match="UNKNOWN_TOPIC_OR_PART"):
        topics["missing"].result(TIMEOUT)

    spec = cadmin.OffsetSpec
    tp = confluent_kafka.TopicPartition
    answers = admin.list_offsets({tp("t", 0): spec.earliest(), tp("t", 1): spec.latest(),
                                  tp("t", 2): spec.for_timestamp(1_004)})
    assert {k.partition: (v.result(TIMEOUT).offset, v.result(TIMEOUT).timestamp)
            for k, v in answers.items()} == {0: (0, -1), 1: (3, -1), 2: (1, 1_005)}
    [newest] = admin.list_offsets({tp("t", 0): spec.max_timestamp()}).values()
    assert (newest.result(TIMEOUT).offset, newest.result(TIMEOUT).timestamp) == (2, 1_006)
    # An open transaction: read_committed's latest is the last stable offset.
    txn = server.broker.producer(transactional_id="open-one")
    try:
        txn.init_transactions()
        txn.begin_transaction()
        txn.send("t", b"pending", partition=0)
        txn.flush()
        committed_end = admin.list_offsets(
            {tp("t", 0): spec.latest()},
            isolation_level=confluent_kafka.IsolationLevel.READ_COMMITTED)
        uncommitted_end = admin.list_offsets({tp("t", 0): spec.latest()})
        assert [f.result(TIMEOUT).offset for f in committed_end.values()] == [3]
        assert [f.result(TIMEOUT).offset for f in uncommitted_end.values()] == [4]
        txn.abort_transaction()
    finally:
        txn.close()

    [broker_configs] = admin.describe_configs(
        [cadmin.ConfigResource("broker", "0")]).values()
    assert broker_configs.result(TIMEOUT)["broker.id"].value == "0"


def test_a_group_with_only_offsets_is_listed_as_a_simple_consumer_group(mqlog_server):
    """A group that never had members (offsets set by an admin) has no protocol type:
    Kafka's ListGroups and DescribeGroups both answer "" for it, which librdkafka reports
    as a simple consumer group; a group whose members used the consumer protocol is
    not one."""
    server = mqlog_server
    server.create_topic("t")
    admin = cadmin.AdminClient(ck_config(server))
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        "offsets-only", [confluent_kafka.TopicPartition("t", 0, 0)])])[
        "offsets-only"].result(TIMEOUT)
    described = admin.describe_consumer_groups(["offsets-only"])["offsets-only"].result(
        TIMEOUT)
    listed = admin.list_consumer_groups().result(TIMEOUT)
    assert (described.state, described.is_simple_consumer_group) == (
        ConsumerGroupState.EMPTY, True)
    assert [(g.group_id, g.is_simple_consumer_group) for g in listed.valid] == [
        ("offsets-only", True)]


def test_confluent_admin_calls_the_server_does_not_offer_fail_fast(mqlog_server):
    """ACLs, SCRAM credentials and leader election are not advertised: librdkafka fails
    each call at once with _UNSUPPORTED_FEATURE (no hang) and the client keeps working."""
    server = mqlog_server
    server.create_topic("t")
    admin = cadmin.AdminClient(ck_config(server))
    acl_filter = cadmin.AclBindingFilter(
        cadmin.ResourceType.ANY, None, cadmin.ResourcePatternType.ANY, None, None,
        cadmin.AclOperation.ANY, cadmin.AclPermissionType.ANY)
    acl = cadmin.AclBinding(cadmin.ResourceType.TOPIC, "t", cadmin.ResourcePatternType.LITERAL,
                            "User:someone", "*", cadmin.AclOperation.READ,
                            cadmin.AclPermissionType.ALLOW)
    calls = {
        "describe_acls": lambda: [admin.describe_acls(acl_filter)],
        "create_acls": lambda: list(admin.create_acls([acl]).values()),
        "delete_acls": lambda: list(admin.delete_acls([acl_filter]).values()),
        "describe_user_scram_credentials": lambda: list(
            admin.describe_user_scram_credentials(["someone"]).values()),
        "elect_leaders": lambda: [admin.elect_leaders(
            confluent_kafka.ElectionType.PREFERRED, [confluent_kafka.TopicPartition("t", 0)])],
    }
    for name, call in calls.items():
        for future in call():
            with pytest.raises(confluent_kafka.KafkaException) as info:
                future.result(TIMEOUT)
            assert info.value.args[0].code() == confluent_kafka.KafkaError._UNSUPPORTED_FEATURE, \
                (name, info.value)
    assert "t" in admin.list_topics(timeout=TIMEOUT).topics


# -- a server restart under a running idempotent producer ---------------------------------

class RestartRun(typing.NamedTuple):
    """What one client saw when the server restarted between its sends."""

    acked: list  # (offset, value) of every send the client reported written
    failed: list  # (value, error text) of every send the client reported failed
    stored: list  # (offset, value) of what the store holds afterwards


def _restart_scenario(data_dir: str, send_all) -> RestartRun:
    """Serve ``data_dir``; ``send_all(bootstrap, restart)`` produces, calling ``restart()``
    in the middle, which stops the server and the store, reopens the store and serves it
    on the same port (the client reconnects to the address it knows)."""
    broker = mqlog.open(data_dir)
    broker.create_topic("r")
    handle = broker.serve(port=0)
    state = {"broker": broker, "handle": handle}

    def restart() -> None:
        state["handle"].close()
        state["broker"].close()
        state["broker"] = mqlog.open(data_dir)
        state["handle"] = state["broker"].serve(port=handle.port)

    try:
        acked, failed = send_all(handle.bootstrap_servers, restart)
        stored = [(r.offset, r.value) for r in state["broker"].messages("r")]
    finally:
        state["handle"].close()
        state["broker"].close()
    return RestartRun(acked, failed, stored)


def _kafka_python_sends(bootstrap, restart):
    acked, failed = [], []
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                   acks="all", request_timeout_ms=5_000,
                                   max_block_ms=10_000, retry_backoff_ms=50,
                                   reconnect_backoff_ms=50)
    try:
        for i in range(10):
            if i == 5:
                restart()
            value = b"v%d" % i
            try:
                acked.append((producer.send("r", value).get(TIMEOUT).offset, value))
            except kafka.errors.KafkaError as exc:
                failed.append((value, repr(exc)))
    finally:
        producer.close(timeout=5)
    return acked, failed


def _aiokafka_sends(bootstrap, restart):
    async def main():
        acked, failed = [], []
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap,
                                             enable_idempotence=True,
                                             request_timeout_ms=5_000, retry_backoff_ms=50)
        await producer.start()
        try:
            for i in range(10):
                if i == 5:
                    restart()
                value = b"v%d" % i
                try:
                    md = await asyncio.wait_for(producer.send_and_wait("r", value), TIMEOUT)
                    acked.append((md.offset, value))
                except aiokafka.errors.KafkaError as exc:
                    failed.append((value, repr(exc)))
        finally:
            await producer.stop()
        return acked, failed

    return asyncio.run(main())


def _librdkafka_sends(bootstrap, restart):
    acked, failed = [], []
    producer = confluent_kafka.Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "log_level": 0,
        "reconnect.backoff.ms": 50, "message.timeout.ms": int(TIMEOUT * 1000)})
    for i in range(10):
        if i == 5:
            restart()
        value = b"v%d" % i
        reports: list = []
        try:
            producer.produce("r", value, on_delivery=lambda err, m, out=reports: out.append(
                (err, m.offset())))
            producer.flush(TIMEOUT)
        except (confluent_kafka.KafkaException, SystemError) as exc:
            # A fatal error: raised by produce(), or by flush() as the cause of a
            # SystemError (confluent-kafka 2.x raises it from the delivery callback).
            reports.append((exc.__cause__ or exc, None))
        if reports and reports[0][0] is None:
            acked.append((reports[0][1], value))
        else:
            failed.append((value, str(reports[0][0]) if reports else "no delivery report"))
    producer.flush(5)
    return acked, failed


_SENDERS = {"kafka-python": _kafka_python_sends, "aiokafka": _aiokafka_sends,
            "librdkafka": _librdkafka_sends}


@pytest.fixture(scope="module", params=list(_SENDERS))
def restart_run(request, tmp_path_factory) -> RestartRun:
    """One client's idempotent producer sending ten records one at a time, the server
    restarted (same store, same port) after the fifth; run once per client, shared by
    the tests below."""
    data_dir = str(tmp_path_factory.mktemp("restart") / "data")
    return _restart_scenario(data_dir, _SENDERS[request.param])


def test_restart_under_an_idempotent_producer_loses_no_ack_and_writes_no_duplicate(
        restart_run):
    """Kafka's guarantee for an idempotent producer: every acknowledged record is in the
    log once, at the offset it was acknowledged with, in send order; nothing is written
    twice. (A send reported failed may or may not be in the log.)"""
    acked, failed, stored = restart_run
    assert len(acked) >= 5, restart_run  # the sends before the restart
    assert set(acked) <= set(stored), restart_run
    values = [v for _, v in stored]
    assert len(values) == len(set(values)), f"duplicates written: {restart_run}"
    assert values == sorted(values, key=lambda v: int(v[1:])), restart_run
    assert set(values) <= {b"v%d" % i for i in range(10)}


def test_restart_under_an_idempotent_producer_keeps_it_producing(restart_run):
    """With Kafka a broker restart is invisible to an idempotent producer: the broker
    rebuilds each producer's sequence state from its log, so the next batch continues
    the sequence and is written. mqlog must do the same from the stored batch headers:
    with sequence windows kept in memory only, the first batch after the restart gets
    OUT_OF_ORDER_SEQUENCE_NUMBER, and then kafka-python loses that send and
    re-initialises, aiokafka fails every later send, librdkafka raises a fatal error."""
    acked, failed, stored = restart_run
    assert failed == [], restart_run
    assert [v for _, v in sorted(acked)] == [b"v%d" % i for i in range(10)]


def test_a_retry_after_a_restart_is_not_written_twice(data_dir):
    """A client whose batch was written but whose answer was lost (the server went down)
    retries the same batch after the restart. Kafka recognises the retry from the
    producer state it rebuilt from the log, answers with the first write's offset, and
    writes nothing. aiokafka's own connection and batch encoder send the requests: only
    the timing of a lost answer is hard to produce with a whole client, not the bytes of
    its retry."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.produce import ProduceRequest
    from aiokafka.protocol.transaction import InitProducerIdRequest
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    none, duplicate_sequence = 0, 46  # Kafka's error codes

    def batch(values, pid, epoch, sequence) -> bytes:
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=0,
                                            is_transactional=0, producer_id=pid,
                                            producer_epoch=epoch, base_sequence=sequence,
                                            batch_size=1 << 20)
        for i, value in enumerate(values):
            builder.append(i, timestamp=None, key=None, value=value, headers=[])
        return bytes(builder.build())

    async def produce(port, *batch_args) -> tuple[int, int]:
        conn = await create_conn("127.0.0.1", port)
        try:
            answer = await asyncio.wait_for(conn.send(ProduceRequest(
                None, -1, 10_000, [("dup", [(0, batch(*batch_args))])])), TIMEOUT)
        finally:
            conn.close()
        [(_, [partition])] = answer.topics
        return partition[1], partition[2]  # error code, base offset

    async def init_producer_id(port) -> tuple[int, int]:
        conn = await create_conn("127.0.0.1", port)
        try:
            answer = await asyncio.wait_for(
                conn.send(InitProducerIdRequest(None, 60_000)), TIMEOUT)
        finally:
            conn.close()
        assert answer.error_code == none
        return answer.producer_id, answer.producer_epoch

    with mqlog.open(data_dir) as broker, broker.serve(port=0) as handle:
        broker.create_topic("dup")
        pid, epoch = asyncio.run(init_producer_id(handle.port))
        first = asyncio.run(produce(handle.port, [b"a", b"b"], pid, epoch, 0))
    assert first == (none, 0)
    with mqlog.open(data_dir) as broker, broker.serve(port=0) as handle:
        # The retry of the batch whose answer was lost: no second copy, and the first
        # write's offset (DUPLICATE_SEQUENCE_NUMBER, which clients take as success,
        # would do too).
        code, offset = asyncio.run(produce(handle.port, [b"a", b"b"], pid, epoch, 0))
        stored = [r.value for r in broker.messages("dup")]
        # The producer's next batch continues its sequence.
        following = asyncio.run(produce(handle.port, [b"c"], pid, epoch, 2))
        final = [(r.offset, r.value) for r in broker.messages("dup")]
    assert stored == [b"a", b"b"]
    assert (code, offset) in ((none, 0), (duplicate_sequence, -1))
    assert following == (none, 2)
    assert final == [(0, b"a"), (1, b"b"), (2, b"c")]
