"""mqlog serve: real Kafka clients (kafka-python, confluent-kafka, aiokafka) over the wire.

Every test starts a server on an ephemeral port with ``broker.serve(port=0)`` and
checks what the clients see against the broker itself (``broker.messages``...).
Raw-protocol tests speak the wire with kio (the schemas the server uses) to pin the
answers to requests no well-behaved client sends.
"""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import aiokafka
import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import ConfigResource as CConfigResource
from confluent_kafka.admin import NewPartitions as CNewPartitions
from confluent_kafka.admin import NewTopic as CNewTopic
from kio.index import load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

import mqlog
from mqlog import TopicPartition
from tests.helpers import child_env

TIMEOUT = 15.0

# kafka-python's names, bound by the _kafka_python fixture while this module's tests run.
# Not imported at collection: tests/test_pytest_plugin.py plants its own `kafka` package
# and needs the name free in sys.modules while its tests run.
KafkaProducer = KafkaConsumer = KTopicPartition = KafkaAdminClient = None
NewTopic = NewPartitions = ConfigResource = ConfigResourceType = None


def load_kafka_python(namespace: dict) -> None:
    """Bind kafka-python's classes in a test module's globals."""
    import kafka
    from kafka import admin

    namespace.update(
        KafkaProducer=kafka.KafkaProducer, KafkaConsumer=kafka.KafkaConsumer,
        KTopicPartition=kafka.TopicPartition, KafkaAdminClient=admin.KafkaAdminClient,
        NewTopic=admin.NewTopic, NewPartitions=admin.NewPartitions,
        ConfigResource=admin.ConfigResource, ConfigResourceType=admin.ConfigResourceType)


def forget_kafka_python() -> None:
    """Drop kafka-python from sys.modules (objects made from it keep working)."""
    for name in [n for n in sys.modules if n == "kafka" or n.startswith("kafka.")]:
        del sys.modules[name]


@pytest.fixture(scope="module", autouse=True)
def _kafka_python():
    load_kafka_python(globals())
    yield
    forget_kafka_python()



# -- helpers ----------------------------------------------------------------------------

def kp(handle, **config):
    """A kafka-python producer on the server (short timeouts: failures fail fast)."""
    return KafkaProducer(bootstrap_servers=handle.bootstrap_servers,
                         request_timeout_ms=10_000, max_block_ms=10_000, **config)


def kc(handle, **config):
    return KafkaConsumer(bootstrap_servers=handle.bootstrap_servers,
                         request_timeout_ms=10_000, fetch_max_wait_ms=100, **config)


def poll_kafka(consumer, count, timeout=TIMEOUT):
    """Poll a kafka-python consumer until ``count`` records arrived (or time is up)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            out.extend(records)
    return out


def poll_confluent(consumer, count, timeout=TIMEOUT):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        m = consumer.poll(0.2)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append(m)
    return out


def ck_config(handle, **extra):
    return {"bootstrap.servers": handle.bootstrap_servers, "socket.timeout.ms": 10_000,
            "log_level": 3, **extra}


class Raw:
    """A hand-driven Kafka connection: kio objects in, kio objects out."""

    def __init__(self, address, timeout=TIMEOUT):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.correlation = 0

    def close(self):
        self.sock.close()

    def frame(self, request, version=None, correlation=None, client_id="raw"):
        cls = type(request)
        flexible = cls.__header_schema__.__flexible__
        buf = io.BytesIO()
        buf.write(struct.pack(">hhi", cls.__api_key__,
                              cls.__version__ if version is None else version,
                              self.correlation if correlation is None else correlation))
        cid = client_id.encode()
        buf.write(struct.pack(">h", len(cid)) + cid)
        if flexible:
            buf.write(b"\0")
        entity_writer(cls)(buf, request)
        body = buf.getvalue()
        return struct.pack(">i", len(body)) + body

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        """One response frame's bytes (without the size prefix); b'' at end of stream."""
        head = self._exact(4)
        if not head:
            return b""
        return self._exact(struct.unpack(">i", head)[0])

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:  # closed with our unread bytes pending: a reset
                return buf
            if not chunk:
                return buf
            buf += chunk
        return buf

    def parse(self, frame, api_key, version):
        cls = load_response_schema(api_key, version)
        pos = 4 + (1 if cls.__header_schema__.__flexible__ else 0)
        return struct.unpack_from(">i", frame)[0], entity_reader(cls)(frame, pos)[0]

    def call(self, request):
        self.correlation += 1
        self.send(self.frame(request))
        frame = self.recv()
        cid, response = self.parse(frame, type(request).__api_key__, type(request).__version__)
        assert cid == self.correlation
        return response


def api_versions_request(version=3):
    from importlib import import_module

    mod = import_module(f"kio.schema.api_versions.v{version}.request")
    if version >= 3:
        return mod.ApiVersionsRequest(client_software_name="raw",
                                      client_software_version="1")
    return mod.ApiVersionsRequest()


def wire_batch(values, producer_id=-1, epoch=-1, base_sequence=-1, timestamp=1000):
    """Kafka RecordBatch v2 bytes for ``values`` (built from mqlog's own codec)."""
    from mqlog import batch as mbatch
    from mqlog.server._encoder import encode_stored

    body = mbatch.encode(values, None, timestamp, producer_id=producer_id,
                         producer_epoch=epoch, base_sequence=base_sequence)
    return encode_stored(mbatch.with_base_offset(0, body))


def produce_request(topic, records, acks=1, version=9):
    from importlib import import_module

    mod = import_module(f"kio.schema.produce.v{version}.request")
    import datetime

    return mod.ProduceRequest(
        transactional_id=None, acks=acks, timeout=datetime.timedelta(seconds=10),
        topic_data=(mod.TopicProduceData(name=topic, partition_data=(
            mod.PartitionProduceData(index=0, records=records),)),))


# -- version negotiation and error answers -----------------------------------------------

def test_api_versions_advertises_what_is_served(served):
    broker, handle = served
    raw = Raw(handle.address)
    response = raw.call(api_versions_request(3))
    assert response.error_code == ErrorCode.none
    versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert versions[18] == (0, 4)  # ApiVersions (v4: kafka-python 3's first try)
    assert versions[0][0] == 3 and versions[0][1] >= 9  # Produce (RecordBatch v2 only)
    assert versions[1][0] == 4  # Fetch
    for key in (2, 3, 19, 20, 22, 32, 37):
        assert key in versions
    # Every advertised (key, version) decodes: the server registered only kio's schemas.
    from mqlog.server._apis import advertised_versions

    assert sorted(versions.items()) == [(k, (lo, hi)) for k, lo, hi in advertised_versions()]
    raw.close()


def test_api_versions_unsupported_version_gets_v0_fallback(served):
    _, handle = served
    raw = Raw(handle.address)
    # A client newer than us asks with ApiVersions v5 (a v4 body, flexible, labelled
    # v5); the answer is v0 with UNSUPPORTED_VERSION and our range, so it can retry
    # (KIP-511).
    raw.send(raw.frame(api_versions_request(4), version=5, correlation=7))
    cid, response = raw.parse(raw.recv(), 18, 0)
    assert cid == 7
    assert response.error_code == ErrorCode.unsupported_version
    assert {k.api_key: k.max_version for k in response.api_keys}[18] == 4
    # The connection stays usable: the retry at v3 works.
    assert raw.call(api_versions_request(3)).error_code == ErrorCode.none
    raw.close()


def test_unsupported_api_gets_error_response_and_keeps_connection(served):
    _, handle = served
    raw = Raw(handle.address)
    from kio.schema.describe_acls.v3.request import DescribeAclsRequest

    req = DescribeAclsRequest(resource_type_filter=1, resource_name_filter=None,
                              pattern_type_filter=1, principal_filter=None,
                              host_filter=None, operation=1, permission_type=1)
    response = raw.call(req)
    assert response.error_code == ErrorCode.unsupported_version
    # A key no schema knows: a bare error answer with the correlation id.
    raw.send(struct.pack(">ihhih", 10, 999, 0, 42, -1))
    frame = raw.recv()
    assert struct.unpack(">ih", frame) == (42, ErrorCode.unsupported_version)
    # An undecodable body of a supported API: INVALID_REQUEST, connection kept.
    body = struct.pack(">hhih", 3, 12, 43, -1) + b"\0" + b"\xff\xff\xff\xff\xff"
    raw.send(struct.pack(">i", len(body)) + body)
    cid, response = raw.parse(raw.recv(), 3, 12)
    assert cid == 43
    assert raw.call(api_versions_request(3)).error_code == ErrorCode.none
    raw.close()


def test_oversized_request_closes_only_that_connection(served):
    broker = mqlog.open()
    handle = broker.serve(port=0, max_request_bytes=4096)
    try:
        bad = Raw(handle.address)
        good = Raw(handle.address)
        bad.send(struct.pack(">i", 5000) + b"\0" * 100)
        assert bad.recv() == b""  # closed without an answer, as Kafka does
        assert good.call(api_versions_request(3)).error_code == ErrorCode.none
        bad.close()
        good.close()
    finally:
        handle.close()
        broker.close()


def test_serve_refuses_remote_bind_without_flag(broker):
    with pytest.raises(ValueError, match="allow_remote"):
        broker.serve(host="0.0.0.0", port=0)
    with pytest.raises(TypeError, match="unknown serve"):
        broker.serve(port=0, no_such_option=1)


def test_kafka_python_negotiates_and_round_trips(served):
    broker, handle = served
    with kp(handle) as producer:
        md = producer.send("neg", b"hello", key=b"k").get(TIMEOUT)
    assert (md.topic, md.partition, md.offset) == ("neg", 0, 0)
    assert [(r.key, r.value) for r in broker.messages("neg")] == [(b"k", b"hello")]


# -- produce -------------------------------------------------------------------------------

# kafka-python needs extra packages for snappy/lz4/zstd; librdkafka (below) covers them.
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_kafka_python_produce_compressed_and_consume(served, compression):
    broker, handle = served
    broker.create_topic("kp", partitions=3)
    with kp(handle, compression_type=compression, linger_ms=5) as producer:
        futures = [producer.send("kp", b"v%d" % i, key=b"key-%d" % (i % 7),
                                 headers=[("n", b"%d" % i)]) for i in range(60)]
        mds = [f.get(TIMEOUT) for f in futures]
    stored = {(r.partition, r.offset): r for r in broker.messages("kp")}
    assert len(stored) == 60
    for i, md in enumerate(mds):
        r = stored[(md.partition, md.offset)]
        assert (r.key, r.value, r.headers) == (b"key-%d" % (i % 7), b"v%d" % i,
                                                [("n", b"%d" % i)])
    # Keyed records land where Kafka's murmur2 partitioner puts them (the client
    # chose; the server kept its choice).
    from mqlog.partitioner import partition_for_key

    for i, md in enumerate(mds):
        assert md.partition == partition_for_key(b"key-%d" % (i % 7), 3)
    consumer = kc(handle)
    tp = KTopicPartition("kp", mds[0].partition)
    consumer.assign([tp])
    consumer.seek(tp, 1)
    expected = [r for r in broker.messages("kp") if r.partition == tp.partition][1:]
    got = poll_kafka(consumer, len(expected))
    consumer.close()
    assert [(r.offset, r.key, r.value, r.headers) for r in got] == \
        [(r.offset, r.key, r.value, r.headers) for r in expected]


def test_kafka_python_idempotent_producer(served):
    broker, handle = served
    with kp(handle, enable_idempotence=True, acks="all") as producer:
        for i in range(20):
            producer.send("idem", b"%d" % i)
        producer.flush(TIMEOUT)
    batches = broker.messages("idem")
    assert [r.value for r in batches] == [b"%d" % i for i in range(20)]


def test_idempotent_retry_is_written_once(served):
    broker, handle = served
    broker.create_topic("dup")
    raw = Raw(handle.address)
    from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
    import datetime

    init = raw.call(InitProducerIdRequest(
        transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60),
        producer_id=-1, producer_epoch=-1))
    assert init.error_code == ErrorCode.none and init.producer_id >= 0
    pid, epoch = init.producer_id, init.producer_epoch
    first = raw.call(produce_request("dup", wire_batch([b"a", b"b"], pid, epoch, 0)))
    again = raw.call(produce_request("dup", wire_batch([b"a", b"b"], pid, epoch, 0)))
    nxt = raw.call(produce_request("dup", wire_batch([b"c"], pid, epoch, 2)))
    gap = raw.call(produce_request("dup", wire_batch([b"e"], pid, epoch, 9)))
    part = lambda r: r.responses[0].partition_responses[0]  # noqa: E731
    assert (part(first).error_code, part(first).base_offset) == (ErrorCode.none, 0)
    assert (part(again).error_code, part(again).base_offset) == (ErrorCode.none, 0)
    assert (part(nxt).error_code, part(nxt).base_offset) == (ErrorCode.none, 2)
    assert part(gap).error_code == ErrorCode.out_of_order_sequence_number
    assert [r.value for r in broker.messages("dup")] == [b"a", b"b", b"c"]
    raw.close()


def test_init_producer_id_never_hands_out_a_named_id(served):
    # A client naming a producer id this store never gave it (kept from another server
    # or data directory) gets a new id, as from Kafka: it must not claim the id and
    # fence the producer that is given it later.
    broker, handle = served
    broker.create_topic("pids")
    raw = Raw(handle.address)
    from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
    import datetime

    claims = []
    for stale in (1, 2, 3):
        init = raw.call(InitProducerIdRequest(
            transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60),
            producer_id=stale, producer_epoch=0))
        assert init.error_code == ErrorCode.none
        claims.append((init.producer_id, init.producer_epoch))
        answer = raw.call(produce_request("pids", wire_batch(
            [b"stale"], init.producer_id, init.producer_epoch, 0)))
        assert answer.responses[0].partition_responses[0].error_code == ErrorCode.none
    raw.close()
    assert len({pid for pid, _ in claims}) == 3 and {e for _, e in claims} == {0}
    producer = kp(handle, enable_idempotence=True)
    try:
        producer.send("pids", b"fresh").get(timeout=TIMEOUT)
    finally:
        producer.close(timeout=5)
    assert [r.value for r in broker.messages("pids")] == [b"stale"] * 3 + [b"fresh"]


def init_transactional_id(raw, name, timeout_s=60.0):
    import datetime

    from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

    return raw.call(InitProducerIdRequest(
        transactional_id=name, transaction_timeout=datetime.timedelta(seconds=timeout_s),
        producer_id=-1, producer_epoch=-1))


def test_transactional_ids_idle_past_the_expiration_are_forgotten(served):
    from kio.schema.add_offsets_to_txn.v3.request import AddOffsetsToTxnRequest

    _, handle = served
    day = 24 * 3600.0
    now = [0.0]
    registry = handle._server.transactions()
    registry.clock = lambda: now[0]  # the registry's clock seam: time moves by days
    raw = Raw(handle.address)
    try:
        for i in range(5):
            assert init_transactional_id(raw, f"idle-{i}").error_code == ErrorCode.none
        kept = init_transactional_id(raw, "kept")
        assert len(registry) == 6
        now[0] = 6 * day  # "kept" is used again; the others are not
        used = raw.call(AddOffsetsToTxnRequest(
            transactional_id="kept", producer_id=kept.producer_id,
            producer_epoch=kept.producer_epoch, group_id="g"))
        assert used.error_code == ErrorCode.none
        now[0] = 7 * day + 1  # past the default 7 days for the idle ones only
        assert init_transactional_id(raw, "new").error_code == ErrorCode.none
        assert len(registry) == 2 and registry.get("idle-0") is None
        assert registry.get("kept") is not None
        # A forgotten id starts afresh, as any id does, with InitProducerId.
        again = init_transactional_id(raw, "idle-0")
        assert again.error_code == ErrorCode.none and len(registry) == 3
    finally:
        raw.close()


def test_transaction_timeouts_above_fifteen_minutes_are_refused(served):
    # Kafka's transaction.max.timeout.ms: an abandoned transaction must not hold
    # read_committed consumers back for longer (the client may ask for 24 days).
    _, handle = served
    raw = Raw(handle.address)
    try:
        assert init_transactional_id(raw, "long", 15 * 60 + 1).error_code == \
            ErrorCode.invalid_transaction_timeout
        assert init_transactional_id(raw, "long", 15 * 60).error_code == ErrorCode.none
    finally:
        raw.close()


def test_acks_zero_gets_no_answer_but_is_written(served):
    broker, handle = served
    broker.create_topic("a0")
    raw = Raw(handle.address)
    raw.correlation = 100
    raw.send(raw.frame(produce_request("a0", wire_batch([b"fire"]), acks=0)))
    # The next answer on the connection is for the next request: acks=0 had none.
    response = raw.call(produce_request("a0", wire_batch([b"sync"]), acks=1))
    assert response.responses[0].partition_responses[0].base_offset == 1
    assert [r.value for r in broker.messages("a0")] == [b"fire", b"sync"]
    raw.close()


def test_a_failed_acks_zero_produce_closes_the_connection(served):
    # Kafka's only way to tell an acks=0 producer that its request failed (a partition
    # it has stale metadata for, a bad batch): close the connection, so the client
    # reconnects and refreshes its metadata instead of sending into the void.
    broker, handle = served
    broker.create_topic("a0f")
    raw = Raw(handle.address)
    raw.send(raw.frame(produce_request("gone", wire_batch([b"x"]), acks=0)))
    raw.send(raw.frame(api_versions_request(3)))
    assert raw.recv() == b""
    raw.close()
    # A Produce whose body does not decode (its acks cannot be read) likewise: an
    # error answer would be read as the answer to the client's next request.
    raw = Raw(handle.address)
    body = struct.pack(">hhih", 0, 9, 7, -1) + b"\0" + b"\xff" * 8
    raw.send(struct.pack(">i", len(body)) + body)
    assert raw.recv() == b""
    raw.close()
    # A good acks=0 Produce still gets no answer and keeps the connection.
    raw = Raw(handle.address)
    raw.send(raw.frame(produce_request("a0f", wire_batch([b"ok"]), acks=0)))
    assert raw.call(api_versions_request(3)).error_code == ErrorCode.none
    raw.call(produce_request("a0f", wire_batch([b"sync"]), acks=1))  # written after it
    raw.close()
    assert [r.value for r in broker.messages("a0f")] == [b"ok", b"sync"]


def test_produce_errors_are_per_partition(served):
    broker, handle = served
    broker.create_topic("small", config={"max.message.bytes": 1000})
    raw = Raw(handle.address)
    big = raw.call(produce_request("small", wire_batch([b"x" * 5000])))
    assert big.responses[0].partition_responses[0].error_code == ErrorCode.message_too_large
    # Kafka checks the size first: an oversized batch is refused as such, unread, even
    # when it is damaged too.
    damaged = bytearray(wire_batch([b"x" * 5000]))
    damaged[-1] ^= 0xFF
    big = raw.call(produce_request("small", bytes(damaged)))
    part = big.responses[0].partition_responses[0]
    assert part.error_code == ErrorCode.message_too_large
    assert "exceeds the topic's max.message.bytes=1000" in part.error_message
    missing = raw.call(produce_request("nope", wire_batch([b"x"])))
    assert missing.responses[0].partition_responses[0].error_code == \
        ErrorCode.unknown_topic_or_partition
    corrupt = bytearray(wire_batch([b"abc"]))
    corrupt[-1] ^= 0xFF  # breaks the CRC
    bad = raw.call(produce_request("small", bytes(corrupt)))
    assert bad.responses[0].partition_responses[0].error_code == ErrorCode.corrupt_message
    assert broker.messages("small") == []
    assert "nope" not in broker.topics()
    raw.close()


def test_xerial_framed_snappy_batches_are_accepted(served):
    """snappy-java's framing (Java and kafka-python with python-snappy) besides raw."""
    import cramjam

    broker, handle = served
    broker.create_topic("xer")
    plain = bytearray(wire_batch([b"one", b"two"]))
    records = bytes(plain[61:])
    block = bytes(cramjam.snappy.compress_raw(records))
    framed = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", len(block)) \
        + block
    tail = struct.pack(">h", 2) + bytes(plain[23:57]) + bytes(plain[57:61]) + framed
    from mqlog.batch import crc32c

    batch = bytes(plain[:8]) + struct.pack(">iib", len(tail) + 9, 0, 2) + \
        struct.pack(">I", crc32c(tail)) + tail
    raw = Raw(handle.address)
    response = raw.call(produce_request("xer", batch))
    raw.close()
    assert response.responses[0].partition_responses[0].error_code == ErrorCode.none
    assert [r.value for r in broker.messages("xer")] == [b"one", b"two"]


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_confluent_idempotent_compressed_produce_and_consume(served, compression):
    broker, handle = served
    producer = confluent_kafka.Producer(ck_config(
        handle, **{"enable.idempotence": True, "compression.type": compression,
                   "linger.ms": 5}))
    for i in range(50):
        producer.produce("ck", value=b"value-%d" % i, key=b"k%d" % i,
                         headers=[("h", b"%d" % i)])
    assert producer.flush(TIMEOUT) == 0
    records = broker.messages("ck")
    assert [r.value for r in records] == [b"value-%d" % i for i in range(50)]
    assert records[7].headers == [("h", b"7")]
    consumer = confluent_kafka.Consumer(ck_config(
        handle, **{"group.id": "ck-reader", "enable.auto.commit": False}))
    consumer.assign([confluent_kafka.TopicPartition("ck", 0, 10)])
    got = poll_confluent(consumer, 40)
    consumer.close()
    assert [(m.offset(), m.key(), m.value()) for m in got] == \
        [(r.offset, r.key, r.value) for r in records[10:]]


def test_aiokafka_produce_and_consume(served):
    broker, handle = served

    async def main():
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=handle.bootstrap_servers,
                                             compression_type="gzip",
                                             enable_idempotence=True)
        await producer.start()
        try:
            mds = [await producer.send_and_wait("aio", b"m%d" % i, key=b"k")
                   for i in range(5)]
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=handle.bootstrap_servers,
                                             fetch_max_wait_ms=100)
        await consumer.start()
        try:
            tp = aiokafka.TopicPartition("aio", 0)
            consumer.assign([tp])
            consumer.seek(tp, 2)
            got = [await asyncio.wait_for(consumer.getone(), TIMEOUT) for _ in range(3)]
        finally:
            await consumer.stop()
        return mds, got

    mds, got = asyncio.run(main())
    assert [m.offset for m in mds] == [0, 1, 2, 3, 4]
    assert [(r.offset, r.value) for r in got] == [(2, b"m2"), (3, b"m3"), (4, b"m4")]
    assert [r.value for r in broker.messages("aio")] == [b"m%d" % i for i in range(5)]


# -- fetch and offsets ----------------------------------------------------------------------

def test_in_process_and_wire_see_the_same_records(served):
    broker, handle = served
    broker.create_topic("mix", partitions=2)
    with broker.producer() as p:
        native = [p.send("mix", b"n%d" % i, partition=i % 2).get(TIMEOUT) for i in range(6)]
    with kp(handle) as producer:
        wire = [producer.send("mix", b"w%d" % i, partition=i % 2).get(TIMEOUT)
                for i in range(6)]
    # The wire producer's offsets continue the native ones.
    assert [m.offset for m in native] == [0, 0, 1, 1, 2, 2]
    assert [m.offset for m in wire] == [3, 3, 4, 4, 5, 5]
    # A wire consumer reads both; a native consumer reads both at the same offsets.
    consumer = kc(handle)
    tps = [KTopicPartition("mix", 0), KTopicPartition("mix", 1)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    over_wire = sorted((r.partition, r.offset, r.value) for r in poll_kafka(consumer, 12))
    consumer.close()
    native_consumer = broker.consumer(auto_offset_reset="earliest")
    native_consumer.assign([TopicPartition("mix", 0), TopicPartition("mix", 1)])
    local = []
    deadline = time.monotonic() + TIMEOUT
    while len(local) < 12 and time.monotonic() < deadline:
        for records in native_consumer.poll(timeout_ms=200).values():
            local.extend((r.partition, r.offset, r.value) for r in records)
    native_consumer.close()
    assert over_wire == sorted(local)
    assert len(over_wire) == 12


def test_fetch_long_poll_wakes_on_append(served):
    broker, handle = served
    broker.create_topic("lp")
    consumer = KafkaConsumer(bootstrap_servers=handle.bootstrap_servers,
                             fetch_max_wait_ms=8000, request_timeout_ms=20_000)
    tp = KTopicPartition("lp", 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    assert consumer.poll(timeout_ms=300) == {}  # a fetch is now parked on the server

    def produce_soon():
        with broker.producer() as p:
            p.send("lp", b"wake").get(TIMEOUT)

    started = time.monotonic()
    threading.Thread(target=produce_soon, daemon=True).start()
    got = poll_kafka(consumer, 1)
    elapsed = time.monotonic() - started
    consumer.close()
    assert [r.value for r in got] == [b"wake"]
    assert elapsed < 6.0  # woken by the append, not by fetch_max_wait_ms=8000


def test_list_offsets_earliest_latest_and_by_time(served):
    broker, handle = served
    broker.create_topic("times")
    with broker.producer() as p:
        for i in range(10):
            p.send("times", b"%d" % i, timestamp_ms=1_000_000 + i * 1000)
    broker.delete_records(TopicPartition("times", 0), 2)
    consumer = kc(handle)
    tp = KTopicPartition("times", 0)
    assert consumer.beginning_offsets([tp]) == {tp: 2}
    assert consumer.end_offsets([tp]) == {tp: 10}
    found = consumer.offsets_for_times({tp: 1_004_500})
    assert (found[tp].offset, found[tp].timestamp) == (5, 1_005_000)
    assert consumer.offsets_for_times({tp: 9_999_999}) == {tp: None}
    consumer.close()
    ck = confluent_kafka.Consumer(ck_config(handle, **{"group.id": "t"}))
    got = ck.offsets_for_times([confluent_kafka.TopicPartition("times", 0, 1_003_000)],
                               timeout=TIMEOUT)
    assert got[0].offset == 3
    low, high = ck.get_watermark_offsets(confluent_kafka.TopicPartition("times", 0),
                                         timeout=TIMEOUT)
    assert (low, high) == (2, 10)
    ck.close()


def list_offsets_v8(raw, topic, timestamp, isolation_level=0):
    """(offset, timestamp) answered by ListOffsets v8 for partition 0."""
    from kio.schema.list_offsets.v8 import request as lo

    response = raw.call(lo.ListOffsetsRequest(
        replica_id=-1, isolation_level=isolation_level, topics=(lo.ListOffsetsTopic(
            name=topic, partitions=(lo.ListOffsetsPartition(
                partition_index=0, current_leader_epoch=-1, timestamp=timestamp),)),)))
    part = response.topics[0].partitions[0]
    assert part.error_code == ErrorCode.none
    return part.offset, part.timestamp


def test_list_offsets_max_timestamp_reads_one_batch(served, monkeypatch):
    """ListOffsets -3 answers the first record with the largest timestamp, with
    timestamps out of order within and across batches, decoding one batch (the time
    index names it), not the partition."""
    from mqlog import batch as mbatch

    broker, handle = served
    broker.create_topic("mx")
    batches = [[5000, 9000, 1000], [2000, 12000, 3000, 12000], [7000, 11000],
               [12000, 100]] + [[500 + i] for i in range(30)]
    with broker.producer() as p:
        for stamps in batches:
            for ts in stamps:
                p.send("mx", b"v", timestamp_ms=ts)
            p.flush()  # one stored batch each
    decoded = []
    real_decode = mbatch.decode
    monkeypatch.setattr(mbatch, "decode", lambda raw, *a, **k: decoded.append(1) or
                        real_decode(raw, *a, **k))
    raw = Raw(handle.address)
    try:
        assert list_offsets_v8(raw, "mx", -3) == (4, 12000)  # not offset 6 or 9
        assert len(decoded) == 1
        # DeleteRecords cuts the batch holding offset 4: the index entry is stale, and
        # the batch that straddles the new log start counts only its kept records.
        broker.delete_records(TopicPartition("mx", 0), 5)
        decoded.clear()
        assert list_offsets_v8(raw, "mx", -3) == (6, 12000)
        assert len(decoded) <= 3  # the stale candidate, the straddling one, the winner
        broker.delete_records(TopicPartition("mx", 0), 7)
        assert list_offsets_v8(raw, "mx", -3) == (9, 12000)
        broker.delete_records(TopicPartition("mx", 0), 10)
        assert list_offsets_v8(raw, "mx", -3) == (40, 529)  # the largest of the tail
    finally:
        raw.close()


def test_list_offsets_max_timestamp_respects_read_committed(served):
    broker, handle = served
    broker.create_topic("mxt")
    with broker.producer() as plain:
        plain.send("mxt", b"old", timestamp_ms=1000).get(TIMEOUT)
    p = broker.producer(transactional_id="mx-1")
    p.init_transactions()
    p.begin_transaction()
    p.send("mxt", b"open", timestamp_ms=5000)
    p.flush()
    raw = Raw(handle.address)
    try:
        assert list_offsets_v8(raw, "mxt", -3) == (1, 5000)
        # Beyond the last stable offset: not visible to read_committed (as by time).
        assert list_offsets_v8(raw, "mxt", -3, isolation_level=1) == (-1, -1)
    finally:
        raw.close()
        p.abort_transaction()
        p.close()


def fetch_v11(raw, topic, partitions, max_bytes=1 << 20, partition_max_bytes=1 << 20,
              isolation_level=0, offset=0):
    """One Fetch v11 (no wait) of ``partitions`` of ``topic``; the partition answers."""
    import datetime

    from kio.schema.fetch.v11 import request as fr

    answer = raw.call(fr.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=max_bytes,
        isolation_level=isolation_level, session_id=0, session_epoch=-1,
        topics=(fr.FetchTopic(topic=topic, partitions=tuple(
            fr.FetchPartition(partition=p, current_leader_epoch=-1, fetch_offset=offset,
                              log_start_offset=-1, partition_max_bytes=partition_max_bytes)
            for p in partitions)),),
        forgotten_topics_data=(), rack_id=""))
    assert answer.error_code == ErrorCode.none
    [topic_answer] = answer.responses
    return topic_answer.partitions


def test_fetch_max_bytes_bounds_the_whole_response(served):
    # KIP-74: only the first batch of the first non-empty partition may exceed the
    # request's max_bytes; the other partitions answer with no records, not with one
    # oversized batch each.
    broker, handle = served
    broker.create_topic("big", partitions=4)
    with broker.producer() as producer:
        for p in range(4):
            producer.send("big", b"x" * 10_000, partition=p)
            producer.flush()
    raw = Raw(handle.address)
    try:
        def fetch(max_bytes):
            return [len(p.records or b"") for p in fetch_v11(raw, "big", range(4),
                                                              max_bytes=max_bytes)]

        sizes = fetch(5_000)
        assert sizes[0] > 10_000 and sizes[1:] == [0, 0, 0]
        sizes = fetch(25_000)  # two batches fit; the third would pass max_bytes
        assert sizes[0] > 0 and sizes[1] > 0 and sizes[2:] == [0, 0]
    finally:
        raw.close()


def test_the_servers_fetch_max_bytes_caps_what_a_fetch_asks_for():
    # Kafka's fetch.max.bytes: a client asking for 2 GiB gets at most the server's cap
    # (55 MiB by default), not a response as large as the partition.
    broker = mqlog.open()
    handle = broker.serve(port=0, fetch_max_bytes=64 * 1024)
    raw = Raw(handle.address)
    try:
        broker.create_topic("capped")
        with broker.producer() as producer:
            for _ in range(10):
                producer.send("capped", b"x" * 20_000)
                producer.flush()  # one stored batch each
        [part] = fetch_v11(raw, "capped", [0], max_bytes=2 ** 31 - 1,
                           partition_max_bytes=2 ** 31 - 1)
        assert 3 * 20_000 < len(part.records) <= 64 * 1024
        # A batch larger than the cap still goes out first (KIP-74), alone.
        with broker.producer() as producer:
            producer.send("capped", b"y" * 100_000, partition=0)
        [part] = fetch_v11(raw, "capped", [0], offset=10, max_bytes=2 ** 31 - 1,
                           partition_max_bytes=2 ** 31 - 1)
        assert 100_000 < len(part.records) < 101_000
    finally:
        raw.close()
        handle.close()
        broker.close()


def test_a_damaged_batch_fails_its_partition_not_the_whole_request(served):
    # One partition whose stored batch cannot be read answers KAFKA_STORAGE_ERROR in its
    # own error field; the other partitions of the same Fetch and ListOffsets are served.
    broker, handle = served
    broker.create_topic("dmg", partitions=2)
    with broker.producer() as producer:
        producer.send("dmg", b"good", partition=0)
        producer.send("dmg", b"bad", partition=1, timestamp_ms=5000)
    topic_id = broker._topics["dmg"].topic_id

    def damage(txn):
        stored = bytearray(txn.get_batch(topic_id, 1, 0))
        stored[-1] ^= 0xFF  # the payload no longer matches its checksum
        txn.replace_batch(topic_id, 1, 0, bytes(stored))

    broker._writer.run(damage)
    raw = Raw(handle.address)
    try:
        good, bad = fetch_v11(raw, "dmg", [0, 1])
        assert good.error_code == ErrorCode.none and good.records
        assert bad.error_code == ErrorCode.kafka_storage_error
        from kio.schema.list_offsets.v8 import request as lo

        answer = raw.call(lo.ListOffsetsRequest(
            replica_id=-1, isolation_level=0, topics=(lo.ListOffsetsTopic(
                name="dmg", partitions=tuple(lo.ListOffsetsPartition(
                    partition_index=p, current_leader_epoch=-1, timestamp=-3)
                    for p in (0, 1))),)))
        good, bad = answer.topics[0].partitions
        assert (good.error_code, good.offset) == (ErrorCode.none, 0)
        assert bad.error_code == ErrorCode.kafka_storage_error
    finally:
        raw.close()


def test_fetch_out_of_range_resets(served):
    broker, handle = served
    with broker.producer() as p:
        for i in range(5):
            p.send("oor", b"%d" % i)
    consumer = kc(handle, auto_offset_reset="earliest")
    tp = KTopicPartition("oor", 0)
    consumer.assign([tp])
    consumer.seek(tp, 50)  # beyond the end: the server says OFFSET_OUT_OF_RANGE
    got = poll_kafka(consumer, 5)
    consumer.close()
    assert [r.offset for r in got] == [0, 1, 2, 3, 4]


def test_read_committed_hides_aborted_transactions(served):
    broker, handle = served
    broker.create_topic("txn")
    p = broker.producer(transactional_id="tx-1")
    p.init_transactions()
    p.begin_transaction()
    p.send("txn", b"aborted")
    p.flush()
    p.abort_transaction()
    p.begin_transaction()
    p.send("txn", b"committed")
    p.commit_transaction()
    p.begin_transaction()
    p.send("txn", b"open")
    p.flush()
    with broker.producer() as plain:
        plain.send("txn", b"after-open").get(TIMEOUT)
    tp = KTopicPartition("txn", 0)
    committed = kc(handle, isolation_level="read_committed")
    committed.assign([tp])
    committed.seek(tp, 0)
    got = poll_kafka(committed, 1, timeout=3)
    assert committed.end_offsets([tp]) == {tp: 4}  # the last stable offset
    committed.close()
    uncommitted = kc(handle)
    uncommitted.assign([tp])
    uncommitted.seek(tp, 0)
    everything = poll_kafka(uncommitted, 4)
    uncommitted.close()
    p.abort_transaction()
    p.close()
    assert [r.value for r in got] == [b"committed"]
    assert [r.value for r in everything] == [b"aborted", b"committed", b"open",
                                             b"after-open"]


def test_confluent_transactions_commit_abort_offsets_and_fencing(served):
    broker, handle = served
    broker.create_topic("txw")
    broker.create_topic("src")
    producer = confluent_kafka.Producer(ck_config(handle, **{"transactional.id": "w1"}))
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce("txw", b"aborted")
    producer.flush(TIMEOUT)  # written before the abort: read_committed must skip it
    producer.abort_transaction(TIMEOUT)
    producer.begin_transaction()
    producer.produce("txw", b"committed")
    group = confluent_kafka.Consumer(ck_config(handle, **{"group.id": "txg"}))
    producer.send_offsets_to_transaction(
        [confluent_kafka.TopicPartition("src", 0, 42)], group.consumer_group_metadata(),
        TIMEOUT)
    producer.commit_transaction(TIMEOUT)
    group.close()
    assert [r.value for r in broker.messages("txw")] == [b"aborted", b"committed"]
    assert [r.value for r in broker.messages("txw", isolation_level="read_committed")] \
        == [b"committed"]
    assert broker.committed_offset("txg", TopicPartition("src", 0)).offset == 42
    # A wire read_committed consumer agrees (aborted list + markers skipped).
    reader = confluent_kafka.Consumer(ck_config(handle, **{
        "group.id": "txr", "isolation.level": "read_committed"}))
    reader.assign([confluent_kafka.TopicPartition("txw", 0, 0)])
    got = poll_confluent(reader, 1)
    reader.close()
    assert [m.value() for m in got] == [b"committed"]
    # A new producer with the same id fences the old one.
    newer = confluent_kafka.Producer(ck_config(handle, **{"transactional.id": "w1"}))
    newer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    producer.produce("txw", b"zombie")
    with pytest.raises(confluent_kafka.KafkaException) as info:
        producer.commit_transaction(TIMEOUT)
    assert info.value.args[0].fatal()
    assert b"zombie" not in [r.value for r in broker.messages(
        "txw", isolation_level="read_committed")]
    newer.begin_transaction()
    newer.produce("txw", b"newer")
    newer.commit_transaction(TIMEOUT)
    assert [r.value for r in broker.messages("txw", isolation_level="read_committed")] \
        == [b"committed", b"newer"]


def test_kafka_python_transaction(served):
    broker, handle = served
    with kp(handle, transactional_id="kpt") as producer:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send("kptx", b"in-txn")
        producer.commit_transaction()
    assert [r.value for r in broker.messages("kptx", isolation_level="read_committed")] \
        == [b"in-txn"]


# -- admin ---------------------------------------------------------------------------------

def test_kafka_python_admin(served):
    broker, handle = served
    admin = KafkaAdminClient(bootstrap_servers=handle.bootstrap_servers,
                             request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic("adm", 3, 1, topic_configs={"retention.ms": "5000"})])
        assert broker.topics()["adm"].partitions == 3
        assert broker.topics()["adm"].config["retention.ms"] == 5000
        with pytest.raises(Exception, match="TopicAlreadyExists"):
            admin.create_topics([NewTopic("adm", 1, 1)])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "adm")])
        assert configs["topic"]["adm"]["retention.ms"]["value"] == "5000"
        admin.create_partitions({"adm": NewPartitions(5)})
        assert broker.topics()["adm"].partitions == 5
        assert "adm" in admin.list_topics()
        admin.delete_topics(["adm"])
        assert "adm" not in broker.topics()
    finally:
        admin.close()


def test_describe_configs_reports_the_servers_limits():
    broker = mqlog.open()
    handle = broker.serve(port=0, queued_max_request_bytes=5 << 20, idle_timeout_s=42,
                          max_connections=7, transactional_id_expiration_s=3600,
                          fetch_max_bytes=3 << 20)
    admin = AdminClient(ck_config(handle))
    try:
        [future] = admin.describe_configs([CConfigResource("broker", "0")]).values()
        got = {k: v.value for k, v in future.result(TIMEOUT).items()}
        assert got["queued.max.request.bytes"] == str(5 << 20)
        assert got["fetch.max.bytes"] == str(3 << 20)
        assert got["connections.max.idle.ms"] == "42000"
        assert got["max.connections"] == "7"
        assert got["transactional.id.expiration.ms"] == "3600000"
        assert got["transaction.max.timeout.ms"] == "900000"
    finally:
        handle.close()
        broker.close()


def test_confluent_admin(served):
    broker, handle = served
    admin = AdminClient(ck_config(handle))
    for f in admin.create_topics([CNewTopic("cadm", 2, 1,
                                            config={"cleanup.policy": "compact"})]).values():
        f.result(TIMEOUT)
    assert broker.topics()["cadm"].config["cleanup.policy"] == "compact"
    bad = admin.create_topics([CNewTopic("bad name!", 1, 1)])["bad name!"]
    with pytest.raises(confluent_kafka.KafkaException, match="TOPIC_EXCEPTION"):
        bad.result(TIMEOUT)
    for f in admin.describe_configs([CConfigResource("topic", "cadm")]).values():
        entries = f.result(TIMEOUT)
    assert entries["cleanup.policy"].value == "compact"
    assert entries["retention.ms"].value == "604800000"
    for f in admin.create_partitions([CNewPartitions("cadm", 4)]).values():
        f.result(TIMEOUT)
    assert broker.topics()["cadm"].partitions == 4
    assert "cadm" in admin.list_topics(timeout=TIMEOUT).topics
    for f in admin.delete_topics(["cadm"]).values():
        f.result(TIMEOUT)
    assert "cadm" not in broker.topics()


def test_alter_configs_delete_records_describe_cluster(served):
    broker, handle = served
    broker.create_topic("alt", config={"retention.ms": 5000, "max.message.bytes": 2000})
    with broker.producer() as p:
        for i in range(10):
            p.send("alt", b"%d" % i)
    admin = KafkaAdminClient(bootstrap_servers=handle.bootstrap_servers,
                             request_timeout_ms=10_000)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "alt",
                                            configs={"retention.ms": "7000"})])
        assert dict(broker.topics()["alt"].config) == {"retention.ms": 7000,
                                                       "max.message.bytes": 2000}
        low = admin.delete_records({KTopicPartition("alt", 0): 4})
        assert low[KTopicPartition("alt", 0)]["low_watermark"] == 4
        cluster = admin.describe_cluster()
        assert cluster["brokers"] == [{"broker_id": 0, "host": "127.0.0.1",
                                       "port": handle.port, "rack": None}]
    finally:
        admin.close()
    assert broker.messages("alt")[0].offset == 4
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    cadmin = AdminClient(ck_config(handle))
    resource = CConfigResource("topic", "alt", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact",
                    incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    for f in cadmin.incremental_alter_configs([resource]).values():
        f.result(TIMEOUT)
    assert dict(broker.topics()["alt"].config) == {"max.message.bytes": 2000,
                                                   "cleanup.policy": "compact"}
    bad = CConfigResource("topic", "alt", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(confluent_kafka.KafkaException, match="INVALID_CONFIG"):
        for f in cadmin.incremental_alter_configs([bad]).values():
            f.result(TIMEOUT)
    for f in cadmin.delete_records([confluent_kafka.TopicPartition("alt", 0, 6)]).values():
        f.result(TIMEOUT)
    assert broker.messages("alt")[0].offset == 6
    assert cadmin.describe_cluster().result(TIMEOUT).cluster_id == "mqlog"


def metadata_request(*topics, allow_auto_create=True):
    from kio.schema.metadata.v12 import request as mreq

    return mreq.MetadataRequest(
        topics=tuple(mreq.MetadataRequestTopic(topic_id=None, name=t) for t in topics),
        allow_auto_topic_creation=allow_auto_create,
        include_topic_authorized_operations=False)


def test_metadata_auto_creates_topics_when_asked(served):
    broker, handle = served
    with kp(handle) as producer:
        assert producer.partitions_for("made") == {0}
    assert broker.topics()["made"].partitions == 1
    raw = Raw(handle.address)
    refused = raw.call(metadata_request("not-made", allow_auto_create=False))
    assert refused.topics[0].error_code == ErrorCode.unknown_topic_or_partition
    assert "not-made" not in broker.topics()
    made = raw.call(metadata_request("made-raw"))
    assert made.topics[0].error_code == ErrorCode.none
    assert [p.partition_index for p in made.topics[0].partitions] == [0]
    assert made.brokers[0].port == handle.port and made.brokers[0].node_id == 0
    raw.close()


def test_metadata_answers_odd_names_and_unknown_ids_per_topic(served):
    import uuid

    from kio.schema.metadata.v12 import request as mr

    broker, handle = served
    broker.create_topic("fine")
    raw = Raw(handle.address)
    try:
        stranger = uuid.UUID(int=77)
        answer = raw.call(mr.MetadataRequest(topics=(
            mr.MetadataRequestTopic(topic_id=None, name="\0odd"),
            mr.MetadataRequestTopic(topic_id=stranger, name=None),
            mr.MetadataRequestTopic(topic_id=None, name="fine")),
            allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        assert [(t.name, t.error_code) for t in answer.topics] == [
            ("\0odd", ErrorCode.invalid_topic_exception),
            (None, ErrorCode.unknown_topic_id), ("fine", ErrorCode.none)]
        assert answer.topics[1].topic_id == stranger
    finally:
        raw.close()


def test_metadata_auto_create_follows_broker_setting():
    broker = mqlog.open(auto_create_topics=False)
    handle = broker.serve(port=0)
    try:
        raw = Raw(handle.address)
        response = raw.call(metadata_request("absent"))
        raw.close()
        assert response.topics[0].error_code == ErrorCode.unknown_topic_or_partition
        assert "absent" not in broker.topics()
    finally:
        handle.close()
        broker.close()


# -- lifecycle -------------------------------------------------------------------------------

def test_restart_keeps_topics_and_data(data_dir):
    broker = mqlog.open(data_dir)
    handle = broker.serve(port=0)
    with kp(handle, acks="all") as producer:
        for i in range(5):
            producer.send("keep", b"%d" % i, partition=0)
        producer.flush(TIMEOUT)
    handle.close()
    broker.close()
    broker = mqlog.open(data_dir)
    handle = broker.serve(port=0)
    try:
        consumer = kc(handle)
        tp = KTopicPartition("keep", 0)
        consumer.assign([tp])
        consumer.seek_to_beginning()
        got = poll_kafka(consumer, 5)
        consumer.close()
        assert [(r.offset, r.value) for r in got] == [(i, b"%d" % i) for i in range(5)]
    finally:
        handle.close()
        broker.close()


def long_poll_fetch(topic):
    """A Fetch v12 of ``topic``[0] from offset 0 that waits up to 30 s for a byte."""
    import datetime

    from kio.schema.fetch.v12 import request as freq

    return freq.FetchRequest(
        cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(seconds=30),
        min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
        topics=(freq.FetchTopic(topic=topic, partitions=(freq.FetchPartition(
            partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=1 << 20),)),),
        forgotten_topics_data=(), rack_id="")


def test_close_ends_parked_fetch_and_answers_it(served):
    broker, handle = served
    broker.create_topic("park")
    raw = Raw(handle.address, timeout=TIMEOUT)
    fetch = long_poll_fetch("park")
    raw.correlation = 5
    raw.send(raw.frame(fetch))
    assert handle._server.wait_in_flight(1, TIMEOUT)  # the fetch is parked
    started = time.monotonic()
    handle.close()
    assert time.monotonic() - started < 10
    cid, response = raw.parse(raw.recv(), 1, 12)  # the in-flight request was answered
    assert cid == 5 and response.responses[0].partitions[0].records == b""
    assert raw.recv() == b""  # then the connection closed
    raw.close()


def test_parked_fetch_wakes_for_its_partition_and_forgets_its_watch(served):
    """A long poll watches the partitions it asked for: records to another topic leave
    it parked, records to its partition answer it, and its connection's watch goes
    when the connection closes."""
    broker, handle = served
    broker.create_topic("park")
    broker.create_topic("elsewhere")
    raw = Raw(handle.address, timeout=TIMEOUT)
    fetch = long_poll_fetch("park")
    raw.correlation = 7
    raw.send(raw.frame(fetch))
    server = handle._server
    assert server.wait_in_flight(1, TIMEOUT)
    with broker.producer() as p:
        for i in range(5):
            p.send("elsewhere", b"%d" % i).get(TIMEOUT)
        p.send("park", b"here").get(TIMEOUT)
    cid, response = raw.parse(raw.recv(), 1, 12)
    assert cid == 7
    records = response.responses[0].partitions[0].records
    assert records and b"here" in bytes(records)
    assert server.wait_in_flight(0, TIMEOUT)
    plog = broker._partition(mqlog.TopicPartition("park", 0))
    assert broker._wakeups.watching(plog) == 1  # the connection's waiter, kept for reuse
    raw.close()
    assert server.wait_connections(0, TIMEOUT)
    assert broker._wakeups.watching(plog) == 0


def test_a_produce_still_waiting_at_shutdown_is_failed_not_left_behind(served):
    # A Produce whose batch the writer has not taken when the grace period ends: the
    # batch is failed (never written later) and the request's thread ends with
    # close(), rather than waiting out its timeout on a queue nobody drains.
    from mqlog.server._appender import WireAppender

    broker, handle = served
    broker.create_topic("late")
    raw = Raw(handle.address)
    server = handle._server
    with broker._writer.paused():
        raw.send(raw.frame(produce_request("late", wire_batch([b"x"]))))
        assert server.wait_in_flight(1, TIMEOUT)
        handle.close(timeout=0.2)
        assert server.wait_connections(0, 5)  # the produce's thread ended
        with pytest.raises(mqlog.errors.ClosedError):
            server.appender()  # no new source of batches after close
    with broker.producer() as producer:  # a writer cycle: it drains every source
        producer.send("late", b"after").get(TIMEOUT)
    assert [r.value for r in broker.messages("late")] == [b"after"]
    assert not [p for p in broker._writer._producers if isinstance(p, WireAppender)]
    raw.close()


def test_broker_close_stops_its_server():
    import gc

    broker = mqlog.open()
    handle = broker.serve(port=0)
    address = handle.address
    closed = broker.serve(port=0)
    closed.close()
    del handle  # the broker still stops a server whose handle the caller dropped
    gc.collect()
    broker.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)


def test_cli_serve_stops_cleanly_on_sigterm(data_dir):
    child = subprocess.Popen(
        [sys.executable, "-m", "mqlog", "serve", "--data", data_dir, "--port", "0",
         "--max-connections", "5", "--idle-timeout-s", "30",
         "--queued-max-request-bytes", "2000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    timer = threading.Timer(TIMEOUT * 2, child.kill)
    timer.start()
    try:
        line = child.stdout.readline()
        assert "serving" in line, (line, child.stderr.read() if child.poll() else "")
        bootstrap = line.split(" on ")[1].split()[0]
        with KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10_000,
                           acks="all") as producer:
            producer.send("cli", b"over the wire").get(TIMEOUT)
        from kio.schema.describe_configs.v4 import request as dc

        host, port = bootstrap.rsplit(":", 1)
        raw = Raw((host, int(port)))
        answer = raw.call(dc.DescribeConfigsRequest(resources=(dc.DescribeConfigsResource(
            resource_type=4, resource_name="0", configuration_keys=None),),
            include_synonyms=False, include_documentation=False))
        raw.close()
        got = {c.name: c.value for c in answer.results[0].configs}
        assert (got["max.connections"], got["connections.max.idle.ms"],
                got["queued.max.request.bytes"]) == ("5", "30000", "2000000")
        child.send_signal(signal.SIGTERM)
        rest, err = child.communicate(timeout=TIMEOUT)
    finally:
        timer.cancel()
    assert child.returncode == 0, err
    assert "stopped" in rest
    with mqlog.open(data_dir) as broker:  # the store was closed cleanly and kept the record
        assert [r.value for r in broker.messages("cli")] == [b"over the wire"]


def test_cli_serve_needs_data():
    env = child_env()
    env.pop("MQLOG_DATA", None)
    proc = subprocess.run([sys.executable, "-m", "mqlog", "serve", "--port", "0"],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 2
    assert "--data" in proc.stderr
