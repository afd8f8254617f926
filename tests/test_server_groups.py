"""Consumer groups and committed offsets over ``mqlog serve`` with real Kafka clients.

confluent-kafka (librdkafka), kafka-python and aiokafka consumers join groups run by the
broker's one GroupCoordinator, alone or together with in-process consumers, split
partitions, commit, leave, and find their offsets again after a restart. A raw-wire
client (kio's schemas) pins every registered version and the fencing error codes.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import socket
import struct
import textwrap
import threading
import time
import typing
from datetime import timedelta

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer

import mqlog
from mqlog import TopicPartition
from tests.helpers import run_python

# The real clients (test extras), bound when this module's tests start rather than at
# collection: tests/test_server.py drops kafka-python from sys.modules when its own
# tests end, and modules imported before that would then sit beside fresh copies.
confluent_kafka: typing.Any = None
kafka: typing.Any = None
aiokafka: typing.Any = None


@pytest.fixture(scope="module", autouse=True)
def _real_clients():
    global confluent_kafka, kafka, aiokafka
    import aiokafka as real_aiokafka
    import confluent_kafka as real_confluent
    import kafka as real_kafka

    confluent_kafka, kafka, aiokafka = real_confluent, real_kafka, real_aiokafka

pytestmark = pytest.mark.timeout(60)

DEADLINE_S = 20.0


@pytest.fixture
def server(broker):
    handle = broker.serve(port=0)
    yield handle
    handle.close()


def wait_until(predicate, what: str, timeout: float = DEADLINE_S) -> None:
    """Poll ``predicate`` (each call does real work: a client poll) until true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")


def produce(broker, topic: str, partitions: int, per_partition: int) -> None:
    with broker.producer() as p:
        for i in range(per_partition):
            for part in range(partitions):
                p.send(topic, value=f"{part}-{i}".encode(), partition=part)
        p.flush()


# -- a raw wire client ------------------------------------------------------------------

class Wire:
    """One connection speaking kio-encoded requests (what any Kafka client sends)."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation = 0

    def call(self, request, version: int | None = None):
        cls = type(request)
        version = cls.__version__ if version is None else version
        self.correlation += 1
        buf = io.BytesIO()
        if cls.__flexible__:
            entity_writer(RequestHeaderV2)(buf, RequestHeaderV2(
                request_api_key=cls.__api_key__, request_api_version=version,
                correlation_id=self.correlation, client_id="wire-test"))
        else:
            entity_writer(RequestHeaderV1)(buf, RequestHeaderV1(
                request_api_key=cls.__api_key__, request_api_version=version,
                correlation_id=self.correlation, client_id="wire-test"))
        entity_writer(cls)(buf, request)
        frame = buf.getvalue()
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self._read(4))[0]
        body = self._read(size)
        assert struct.unpack(">i", body[:4])[0] == self.correlation
        response_cls = load_response_schema(cls.__api_key__, version)
        offset = 4
        if response_cls.__flexible__:
            assert body[offset] == 0  # no tagged fields in the response header
            offset += 1
        response, _ = entity_reader(response_cls)(body, offset)
        return response

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, "server closed the connection"
            out += chunk
        return out

    def close(self) -> None:
        self.sock.close()


def element(cls: type, field: str) -> type:
    """The element class of the array field ``field`` of a kio class."""
    hint = typing.get_type_hints(cls)[field]
    for arg in typing.get_args(hint):  # unwrap Optional
        if typing.get_origin(arg) is tuple:
            hint = arg
    return typing.get_args(hint)[0]


def request(api_key: int, version: int, **fields):
    cls = load_request_schema(api_key, version)
    return cls(**fields)


def subscription(*topics: str) -> bytes:
    from mqlog.server._group_bridge import encode_subscription

    return encode_subscription(topics)


def decode_assignment(blob: bytes) -> list[tuple[str, int]]:
    from kio.schema.consumer_protocol_assignment.v0.data import ConsumerProtocolAssignment

    assert blob[:2] == b"\x00\x00"
    a, _ = entity_reader(ConsumerProtocolAssignment)(blob, 2)
    return sorted((t.topic, p) for t in a.assigned_partitions for p in t.partitions)


def join(wire: Wire, group: str, member_id: str = "", version: int = 5, topics=("t",),
         instance_id: str | None = None):
    fields = dict(group_id=group, session_timeout=timedelta(seconds=10),
                  rebalance_timeout=timedelta(seconds=10), member_id=member_id,
                  group_instance_id=instance_id, protocol_type="consumer")
    cls = load_request_schema(11, version)
    fields["protocols"] = (element(cls, "protocols")(name="range",
                                                      metadata=subscription(*topics)),)
    return wire.call(cls(**{k: v for k, v in fields.items()
                            if k in cls.__dataclass_fields__}))


def sync(wire: Wire, group: str, member_id: str, generation: int, version: int = 3):
    cls = load_request_schema(14, version)
    fields = dict(group_id=group, generation_id=generation, member_id=member_id,
                  group_instance_id=None, protocol_type="consumer", protocol_name="range",
                  assignments=())
    return wire.call(cls(**{k: v for k, v in fields.items()
                            if k in cls.__dataclass_fields__}))


def build(cls: type, **fields):
    """An instance of a kio class from the fields its version has."""
    return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


def commit(wire: Wire, group: str, member_id: str, generation: int, offsets: dict,
           version: int = 8, instance_id: str | None = None):
    cls = load_request_schema(8, version)
    Topic = element(cls, "topics")
    Partition = element(Topic, "partitions")
    by_topic: dict = {}
    for (t, p), off in offsets.items():
        by_topic.setdefault(t, []).append(build(
            Partition, partition_index=p, committed_offset=off, committed_leader_epoch=-1,
            committed_metadata="m"))
    response = wire.call(build(
        cls, group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
        group_instance_id=instance_id, retention_time=timedelta(milliseconds=-1),
        topics=tuple(Topic(name=t, partitions=tuple(ps)) for t, ps in by_topic.items())))
    return {(t.name, p.partition_index): p.error_code
            for t in response.topics for p in t.partitions}


# -- the consumer protocol's blobs -------------------------------------------------------

def _subscription_v(version: int, **fields) -> bytes:
    module = importlib.import_module(
        f"kio.schema.consumer_protocol_subscription.v{version}.data")
    cls = module.ConsumerProtocolSubscription
    if "owned_partitions" in cls.__dataclass_fields__:
        fields["owned_partitions"] = tuple(
            module.TopicPartition(topic=t, partitions=tuple(ps))
            for t, ps in fields["owned_partitions"].items())
    buf = io.BytesIO()
    buf.write(version.to_bytes(2, "big"))
    entity_writer(cls)(buf, build(cls, **fields))
    return buf.getvalue()


@pytest.mark.parametrize("version", range(0, 5))
def test_subscriptions_of_every_version_decode(version):
    from mqlog.server._group_bridge import decode_subscription

    blob = _subscription_v(min(version, 3), topics=("a", "b"), user_data=b"\x01\x02",
                           owned_partitions={"a": [0, 2], "b": [1]}, generation_id=7,
                           rack_id="r1")
    if version == 4:  # a later version appends fields: read as v3
        blob = b"\x00\x04" + blob[2:] + b"\x00\x00\x00\x09"
    topics, owned = decode_subscription(blob)
    assert topics == {"a", "b"}
    assert owned == (set() if version == 0 else {
        TopicPartition("a", 0), TopicPartition("a", 2), TopicPartition("b", 1)})


def test_a_subscription_claiming_absurd_counts_is_refused_before_kio_reads_it():
    # kio's native reader allocates what a count claims, 8 bytes per element: a blob
    # claiming 2**31 topics asks for 17 GB, and a failed allocation aborts the process.
    # The child caps its address space at 1 GiB, so without the length check it dies
    # (SIGABRT) instead of taking this test run with it.
    huge = (2 ** 31 - 1).to_bytes(4, "big")
    blobs = {
        "v1 topics": b"\x00\x01" + huge,
        "v1 owned partitions": b"\x00\x01" + bytes(4) + b"\xff\xff\xff\xff" + huge,
        "v3 partitions of an owned topic": b"\x00\x03" + bytes(4) + b"\xff\xff\xff\xff"
        + b"\x00\x00\x00\x01\x00\x01t" + huge,
        "v0 user data": b"\x00\x00" + bytes(4) + huge,
    }
    out = run_python(textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from mqlog.server._group_bridge import decode_subscription

        for name, blob in {blobs!r}.items():
            try:
                decode_subscription(blob)
            except ValueError as exc:
                print(f"{{name}}: {{exc}}")
            else:
                print(f"{{name}}: decoded")
        """)).stdout.splitlines()
    assert out == [
        "v1 topics: consumer subscription v1 is malformed: an array claims 2147483647 "
        "elements (at most 1000000)",
        "v1 owned partitions: consumer subscription v1 is malformed: an array claims "
        "2147483647 elements (at most 1000000)",
        "v3 partitions of an owned topic: consumer subscription v3 is malformed: an array "
        "claims 2147483647 elements (at most 1000000)",
        "v0 user data: consumer subscription v0 is malformed: a 2147483647-byte blob runs "
        "past the end",
    ]


# -- librdkafka --------------------------------------------------------------------------

def test_two_librdkafka_consumers_split_partitions_and_commit(broker, server):
    broker.create_topic("t", 4)
    produce(broker, "t", 4, 25)
    conf = {"bootstrap.servers": server.bootstrap_servers, "group.id": "rk",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "heartbeat.interval.ms": 100, "session.timeout.ms": 6000}
    consumers = [confluent_kafka.Consumer(dict(conf, **{"client.id": n})) for n in "ab"]
    seen: dict[int, set] = {0: set(), 1: set()}
    try:
        consumers[0].subscribe(["t"])

        def poll_all() -> None:
            for i, c in enumerate(consumers):
                m = c.poll(0.05)
                if m is not None and m.error() is None:
                    seen[i].add(m.value())
                    c.commit(message=m, asynchronous=False)

        wait_until(lambda: poll_all() or len(consumers[0].assignment()) == 4,
                   "the first consumer to get every partition")
        consumers[1].subscribe(["t"])
        wait_until(lambda: poll_all() or (len(consumers[0].assignment()) == 2 and
                                          len(consumers[1].assignment()) == 2),
                   "the partitions to be split 2/2")
        mine = [{p.partition for p in c.assignment()} for c in consumers]
        assert mine[0].isdisjoint(mine[1]) and mine[0] | mine[1] == {0, 1, 2, 3}
        wait_until(lambda: poll_all() or len(seen[0] | seen[1]) == 100, "all 100 records")
        wait_until(lambda: poll_all() or sum(
            o.offset for o in broker.group_offsets("rk").values()) == 100,
            "every partition committed to its end")
        group = broker.admin().describe_consumer_groups(["rk"])["rk"]
        assert group.state == "Stable" and len(group.members) == 2
        # Each wire member owns, in the coordinator, exactly what librdkafka was given.
        by_client = {m.client_id: {tp.partition for tp in m.assignment}
                     for m in group.members}
        assert by_client == {"a": mine[0], "b": mine[1]}
    finally:
        for c in consumers:
            c.close()
    assert broker.admin().describe_consumer_groups(["rk"])["rk"].members == ()


# -- kafka-python ------------------------------------------------------------------------

def kp_consumer(server, group: str, **config):
    return kafka.KafkaConsumer(
        "t", bootstrap_servers=server.bootstrap_servers, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False, heartbeat_interval_ms=100,
        session_timeout_ms=6000, consumer_timeout_ms=100, **config)


def test_kafka_python_group_commits_and_a_leave_reassigns(broker, server):
    broker.create_topic("t", 2)
    produce(broker, "t", 2, 10)
    first = kp_consumer(server, "kp", client_id="first")
    second = None
    try:
        values: list = []
        wait_until(lambda: values.extend(r.value for rs in first.poll(100).values()
                                         for r in rs) or len(values) == 20,
                   "every record")
        first.commit()
        assert {tp: o.offset for tp, o in broker.group_offsets("kp").items()} == {
            TopicPartition("t", 0): 10, TopicPartition("t", 1): 10}
        # A native consumer of the group sees what the wire consumer committed.
        native = broker.consumer(group_id="kp")  # not subscribed: no membership
        assert native.committed(TopicPartition("t", 0)) == 10
        native.close()
        assert first.committed(kafka.TopicPartition("t", 1)) == 10

        second = kp_consumer(server, "kp", client_id="second")

        def both_one() -> bool:
            first.poll(50)
            second.poll(50)
            return len(first.assignment()) == 1 and len(second.assignment()) == 1

        wait_until(both_one, "a 1/1 split")
        second.close()  # LeaveGroup: its partition goes back to the first consumer
        second = None
        wait_until(lambda: first.poll(50) is not None and len(first.assignment()) == 2,
                   "reassignment after the leave")
        group = broker.admin().describe_consumer_groups(["kp"])["kp"]
        assert [m.client_id for m in group.members] == ["first"]
    finally:
        first.close()
        if second is not None:
            second.close()


def test_kafka_python_admin_sees_groups_and_offsets(broker, server):
    broker.create_topic("t", 2)
    produce(broker, "t", 2, 3)
    c = kp_consumer(server, "adm", client_id="viewer")
    admin = kafka.KafkaAdminClient(bootstrap_servers=server.bootstrap_servers)
    try:
        wait_until(lambda: c.poll(50) is not None and len(c.assignment()) == 2, "assignment")
        c.commit({kafka.TopicPartition("t", 0): kafka.OffsetAndMetadata(2, "note", -1)})
        assert admin.list_groups() == [{"group_id": "adm", "group_state": "Stable",
                                        "group_type": "classic",
                                        "protocol_type": "consumer"}]
        assert admin.list_groups(states_filter=["Empty"]) == []
        offsets = admin.list_group_offsets({"adm": None})["adm"]
        assert offsets == {kafka.TopicPartition("t", 0): kafka.OffsetAndMetadata(2, "note", -1)}
        groups = admin.describe_groups(["adm", "nope"])
        desc = groups["adm"]
        assert (desc["group_state"], desc["protocol_type"], desc["protocol_data"]) == (
            "Stable", "consumer", "range")
        (member,) = desc["members"]
        assert member["client_id"] == "viewer"
        assert member["member_metadata"]["topics"] == ["t"]
        assert member["member_assignment"]["assigned_partitions"] == [
            {"topic": "t", "partitions": [0, 1]}]
        assert groups["nope"]["group_state"] == "Dead"
        assert admin.delete_groups(["adm"]) == {"adm": "NonEmptyGroupError"}
        c.close()  # LeaveGroup: the group is empty now
        assert admin.delete_groups(["adm", "nope"]) == {"adm": "OK",
                                                        "nope": "GroupIdNotFoundError"}
        assert broker.group_offsets("adm") == {}
    finally:
        admin.close()
        c.close()


def test_static_member_rejoins_without_a_rebalance(broker, server):
    broker.create_topic("t", 2)
    produce(broker, "t", 2, 1)
    other = broker.consumer("t", group_id="st")
    c = kp_consumer(server, "st", client_id="static", group_instance_id="inst-1")
    try:
        def split() -> bool:
            other.poll(timeout_ms=20)
            c.poll(20)
            return len(c.assignment()) == 1 and len(other.assignment()) == 1

        wait_until(split, "a 1/1 split")
        generation = broker.admin().describe_consumer_groups(["st"])["st"].generation
        mine = set(c.assignment())
        c.close()  # a static member sends no LeaveGroup: its slot stays
        c = kp_consumer(server, "st", client_id="static", group_instance_id="inst-1")
        wait_until(lambda: other.poll(timeout_ms=20) is not None and c.poll(20) is not None
                   and len(c.assignment()) == 1, "the static member's partition back")
        assert set(c.assignment()) == mine
        group = broker.admin().describe_consumer_groups(["st"])["st"]
        assert group.generation == generation  # no rebalance happened
        assert len(group.members) == 2
    finally:
        c.close()
        other.close()


# -- aiokafka ----------------------------------------------------------------------------

def test_aiokafka_group_commits_and_splits(broker, server):
    broker.create_topic("t", 2)
    produce(broker, "t", 2, 10)

    async def main() -> None:
        def make():
            return aiokafka.AIOKafkaConsumer(
                "t", bootstrap_servers=server.bootstrap_servers, group_id="aio",
                auto_offset_reset="earliest", enable_auto_commit=False,
                heartbeat_interval_ms=100)

        a = make()
        await a.start()
        b = None
        try:
            n = 0
            deadline = time.monotonic() + DEADLINE_S
            while n < 20 and time.monotonic() < deadline:
                got = await a.getmany(timeout_ms=200)
                n += sum(len(v) for v in got.values())
            assert n == 20
            await a.commit()
            assert sorted(o.offset for o in broker.group_offsets("aio").values()) == [10, 10]
            b = make()
            await b.start()
            while not (len(a.assignment()) == 1 and len(b.assignment()) == 1):
                assert time.monotonic() < deadline + DEADLINE_S, "no 1/1 split"
                await asyncio.gather(a.getmany(timeout_ms=50), b.getmany(timeout_ms=50))
            assert a.assignment() | b.assignment() == {
                aiokafka.TopicPartition("t", 0), aiokafka.TopicPartition("t", 1)}
            # b resumes from what a committed: nothing left to read.
            assert await b.committed(next(iter(b.assignment()))) == 10
        finally:
            await a.stop()
            if b is not None:
                await b.stop()

    asyncio.run(main())


# -- mixed groups ------------------------------------------------------------------------

def test_mixed_group_wire_and_in_process_consumers_split_and_share_offsets(broker, server):
    broker.create_topic("t", 4)
    produce(broker, "t", 4, 5)
    native = broker.consumer("t", group_id="mix", auto_offset_reset="earliest",
                             enable_auto_commit=False)
    wire = kp_consumer(server, "mix", client_id="wire")
    stop = threading.Event()
    errors: list = []
    native_owned: list = [set()]

    def run_native() -> None:  # the in-process member polls on its own thread
        try:
            while not stop.is_set():
                for tp, records in native.poll(timeout_ms=50).items():
                    native.commit({tp: records[-1].offset + 1})
                native_owned.append({tp.partition for tp in native.assignment()})
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    t = threading.Thread(target=run_native, daemon=True)
    t.start()
    try:
        def wire_poll() -> bool:
            for tp, records in wire.poll(50).items():
                wire.commit({tp: kafka.OffsetAndMetadata(records[-1].offset + 1, "", -1)})
            return len(wire.assignment()) == 2 and len(native_owned[-1]) == 2

        wait_until(wire_poll, "a 2/2 split between the wire and the native consumer")
        wire_parts = {tp.partition for tp in wire.assignment()}
        native_parts = native_owned[-1]
        assert wire_parts.isdisjoint(native_parts)
        assert wire_parts | native_parts == {0, 1, 2, 3}
        wait_until(lambda: wire_poll() is not None and sorted(
            o.offset for o in broker.group_offsets("mix").values()) == [5, 5, 5, 5],
            "both sides to commit to the end")
        # Each side reads what the other committed.
        for p in native_parts:
            assert wire.committed(kafka.TopicPartition("t", p)) == 5
        stop.set()
        t.join(10)
        for p in wire_parts:
            assert native.committed(TopicPartition("t", p)) == 5
        native.close()  # the native member leaves: the wire consumer gets everything
        wait_until(lambda: wire.poll(50) is not None and len(wire.assignment()) == 4,
                   "the wire consumer to take over every partition")
    finally:
        stop.set()
        t.join(10)
        wire.close()
        native.close()
    assert not errors


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_kafka_python_librdkafka_and_in_process_consumers_share_one_group(
        broker, server, strategy):
    """The three kinds of member in one group, each on its own thread, split six
    partitions two each, whether the group runs the eager or the cooperative protocol."""
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    broker.create_topic("t", 6)
    stop = threading.Event()
    changed = threading.Condition()
    owned: dict[str, set] = {}
    errors: list = []

    def report(name: str, partitions) -> None:
        with changed:
            owned[name] = {tp.partition for tp in partitions}
            changed.notify_all()

    def run(name: str, make, poll) -> None:
        try:
            c = make()
            try:
                while not stop.is_set():
                    poll(c)
                    report(name, c.assignment())
            finally:
                c.close()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    kp_strategy = CooperativeStickyAssignor if strategy != "range" \
        else RangePartitionAssignor
    members = {
        "kafka-python": (lambda: kafka.KafkaConsumer(
            "t", bootstrap_servers=server.bootstrap_servers, group_id="three",
            heartbeat_interval_ms=100, partition_assignment_strategy=[kp_strategy]),
            lambda c: c.poll(50)),
        "librdkafka": (lambda: _subscribed(confluent_kafka.Consumer({
            "bootstrap.servers": server.bootstrap_servers, "group.id": "three",
            "heartbeat.interval.ms": 100, "partition.assignment.strategy": strategy})),
            lambda c: c.poll(0.05)),
        "native": (lambda: broker.consumer("t", group_id="three",
                                           partition_assignment_strategy=[strategy]),
                   lambda c: c.poll(timeout_ms=50)),
    }
    threads = [threading.Thread(target=run, args=(n, *m), daemon=True)
               for n, m in members.items()]
    for t in threads:
        t.start()

    def split() -> bool:
        return len(owned) == 3 and all(len(v) == 2 for v in owned.values()) and \
            set().union(*owned.values()) == set(range(6))

    try:
        with changed:
            assert changed.wait_for(lambda: split() or errors, DEADLINE_S), owned
        assert not errors
        group = broker.admin().describe_consumer_groups(["three"])["three"]
        assert group.protocol == strategy and group.state == "Stable"
        assert sorted(len(m.assignment) for m in group.members) == [2, 2, 2]
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not errors  # closing (LeaveGroup) failed nowhere either


def _subscribed(consumer):
    consumer.subscribe(["t"])
    return consumer


# -- durability --------------------------------------------------------------------------

def test_restart_keeps_committed_offsets(data_dir):
    b = mqlog.open(data_dir)
    b.create_topic("t", 1)
    produce(b, "t", 1, 5)
    with b.serve(port=0) as handle:
        c = kp_consumer(handle, "dur")
        values: list = []
        wait_until(lambda: values.extend(r.value for rs in c.poll(100).values()
                                         for r in rs) or len(values) == 5, "5 records")
        c.commit()
        c.close()
    b.close()

    b = mqlog.open(data_dir)
    try:
        produce(b, "t", 1, 7)  # 7 more; the group resumes after the first 5
        with b.serve(port=0) as handle:
            c = kp_consumer(handle, "dur")
            try:
                assert c.committed(kafka.TopicPartition("t", 0)) == 5
                values = []
                wait_until(lambda: values.extend(r.offset for rs in c.poll(100).values()
                                                 for r in rs) or len(values) == 7,
                           "the 7 new records")
                assert values == list(range(5, 12))
            finally:
                c.close()
    finally:
        b.close()


# -- the protocol itself -----------------------------------------------------------------

def test_commit_fencing_error_codes(broker, server):
    broker.create_topic("t", 2)
    w = Wire(server.bootstrap_servers)
    stop = threading.Event()
    native_polls = None
    try:
        joined = join(w, "fence")
        assert joined.error_code == ErrorCode.none
        assert joined.leader != joined.member_id  # never a client: everyone follows
        assert joined.members == ()
        me, gen = joined.member_id, joined.generation_id
        synced = sync(w, "fence", me, gen)
        assert synced.error_code == ErrorCode.none
        assert decode_assignment(synced.assignment) == [("t", 0), ("t", 1)]

        assert commit(w, "fence", me, gen, {("t", 0): 3}) == {("t", 0): ErrorCode.none}
        assert broker.committed_offset("fence", TopicPartition("t", 0)).offset == 3
        assert commit(w, "fence", me, gen + 7, {("t", 0): 4}) == {
            ("t", 0): ErrorCode.illegal_generation}
        assert commit(w, "fence", "nobody", gen, {("t", 0): 4}) == {
            ("t", 0): ErrorCode.unknown_member_id}
        assert commit(w, "fence", "", -1, {("t", 0): 4}) == {
            ("t", 0): ErrorCode.unknown_member_id}  # group has members
        assert commit(w, "fence", me, gen, {("nope", 0): 1, ("t", 9): 1}) == {
            ("nope", 0): ErrorCode.unknown_topic_or_partition,
            ("t", 9): ErrorCode.unknown_topic_or_partition}
        assert broker.committed_offset("fence", TopicPartition("t", 0)).offset == 3

        # An in-process member joins: a round opens; the wire member must rejoin.
        native = broker.consumer("t", group_id="fence")
        hb = w.call(request(12, 4, group_id="fence", generation_id=gen, member_id=me,
                            group_instance_id=None))
        assert hb.error_code == ErrorCode.rebalance_in_progress
        # Still the owner until it rejoins: a commit with its generation is accepted
        # (eager clients commit before rejoining), as Kafka does in PreparingRebalance.
        assert commit(w, "fence", me, gen, {("t", 1): 1}) == {("t", 1): ErrorCode.none}
        owned: list = []

        def poll_native() -> None:  # the in-process member polls on its own thread
            while not stop.is_set():
                native.poll(timeout_ms=20)
                owned.append(sorted(native.assignment()))

        native_polls = threading.Thread(target=poll_native, daemon=True)
        native_polls.start()
        rejoined = join(w, "fence", me)
        assert rejoined.error_code == ErrorCode.none
        assert rejoined.generation_id == gen + 1
        assert commit(w, "fence", me, rejoined.generation_id, {("t", 0): 5}) == {
            ("t", 0): ErrorCode.rebalance_in_progress}  # between JoinGroup and SyncGroup
        assert commit(w, "fence", me, gen, {("t", 0): 5}) == {
            ("t", 0): ErrorCode.illegal_generation}
        synced = sync(w, "fence", me, rejoined.generation_id)
        assert len(decode_assignment(synced.assignment)) == 1
        wait_until(lambda: owned and len(owned[-1]) == 1, "the native member's partition",
                   timeout=10)
        stop.set()
        native_polls.join(10)
        mine = decode_assignment(synced.assignment)[0]
        theirs = next(iter(native.assignment()))
        assert commit(w, "fence", me, rejoined.generation_id, {mine: 6}) == {
            mine: ErrorCode.none}
        code = commit(w, "fence", me, rejoined.generation_id, {tuple(theirs): 6})
        assert code == {tuple(theirs): ErrorCode.illegal_generation}  # not its partition
        assert sync(w, "fence", me, gen).error_code == ErrorCode.illegal_generation
        native.close()

        left = w.call(request(13, 0, group_id="fence", member_id=me))
        assert left.error_code == ErrorCode.none
        hb = w.call(request(12, 4, group_id="fence", generation_id=gen, member_id=me,
                            group_instance_id=None))
        assert hb.error_code == ErrorCode.unknown_member_id
        assert commit(w, "fence", "", -1, {("t", 0): 9}) == {("t", 0): ErrorCode.none}
        assert broker.committed_offset("fence", TopicPartition("t", 0)).offset == 9
    finally:
        stop.set()
        if native_polls is not None:
            native_polls.join(10)
        w.close()


def test_join_refuses_unknown_members_and_foreign_protocols(broker, server):
    broker.create_topic("t", 1)
    w = Wire(server.bootstrap_servers)
    try:
        assert join(w, "g", member_id="ghost").error_code == ErrorCode.unknown_member_id
        cls = load_request_schema(11, 5)
        Protocol = element(cls, "protocols")
        base = dict(group_id="g", session_timeout=timedelta(seconds=10),
                    rebalance_timeout=timedelta(seconds=10), member_id="",
                    group_instance_id=None)
        odd = w.call(cls(**base, protocol_type="consumer",
                         protocols=(Protocol(name="my-custom", metadata=subscription("t")),)))
        assert odd.error_code == ErrorCode.inconsistent_group_protocol
        connect = w.call(cls(**base, protocol_type="connect",
                             protocols=(Protocol(name="range", metadata=b"x"),)))
        assert connect.error_code == ErrorCode.inconsistent_group_protocol
        garbage = w.call(cls(**base, protocol_type="consumer",
                             protocols=(Protocol(name="range", metadata=b"\x00"),)))
        assert garbage.error_code == ErrorCode.inconsistent_group_protocol
        # A v1 subscription claiming 500,000 topics in 6 bytes: refused by the length
        # check before kio allocates for it, and the connection goes on serving.
        absurd = w.call(cls(**base, protocol_type="consumer", protocols=(
            Protocol(name="range", metadata=b"\x00\x01" + (500_000).to_bytes(4, "big")),)))
        assert absurd.error_code == ErrorCode.inconsistent_group_protocol
        assert sync(w, "g", "ghost", 1).error_code == ErrorCode.unknown_member_id
        assert broker.admin().describe_consumer_groups(["g"])["g"].members == ()
    finally:
        w.close()


@pytest.mark.parametrize("version", range(0, 10))
def test_join_sync_heartbeat_every_version(broker, server, version):
    broker.create_topic("t", 2)
    w = Wire(server.bootstrap_servers)
    try:
        joined = join(w, f"v{version}", version=version)
        assert joined.error_code == ErrorCode.none
        assert joined.protocol_name == "range"
        sync_version = min(version, 5)
        synced = sync(w, f"v{version}", joined.member_id, joined.generation_id,
                      version=sync_version)
        assert synced.error_code == ErrorCode.none
        assert decode_assignment(synced.assignment) == [("t", 0), ("t", 1)]
        hb_cls = load_request_schema(12, min(version, 4))
        hb = w.call(hb_cls(**{k: v for k, v in dict(
            group_id=f"v{version}", generation_id=joined.generation_id,
            member_id=joined.member_id, group_instance_id=None).items()
            if k in hb_cls.__dataclass_fields__}))
        assert hb.error_code == ErrorCode.none
        leave_version = min(version, 5)
        if leave_version < 3:
            left = w.call(request(13, leave_version, group_id=f"v{version}",
                                  member_id=joined.member_id))
            assert left.error_code == ErrorCode.none
        else:
            cls = load_request_schema(13, leave_version)
            Identity = element(cls, "members")
            left = w.call(cls(group_id=f"v{version}", members=(Identity(**{
                k: v for k, v in dict(member_id=joined.member_id, group_instance_id=None,
                                      reason="done").items()
                if k in Identity.__dataclass_fields__}),)))
            assert [m.error_code for m in left.members] == [ErrorCode.none]
        assert broker.admin().describe_consumer_groups([f"v{version}"])[
            f"v{version}"].members == ()
    finally:
        w.close()


def test_offset_fetch_find_coordinator_describe_and_list_every_version(broker, server):
    broker.create_topic("t", 2)
    broker.commit_offsets("seen", {TopicPartition("t", 1): 7})
    w = Wire(server.bootstrap_servers)
    host, port = server.address
    try:
        for v in range(0, 7):
            cls = load_request_schema(10, v)
            if v < 4:
                r = w.call(cls(**{k: val for k, val in dict(key="seen", key_type=0).items()
                                  if k in cls.__dataclass_fields__}))
                assert (r.error_code, r.host, r.port) == (ErrorCode.none, host, port)
            else:
                r = w.call(cls(key_type=0, coordinator_keys=("seen", "other")))
                assert [(c.key, c.error_code, c.port) for c in r.coordinators] == [
                    ("seen", ErrorCode.none, port), ("other", ErrorCode.none, port)]
        for v in range(1, 10):
            cls = load_request_schema(9, v)
            if v < 8:
                Topic = element(cls, "topics")
                r = w.call(cls(**{k: val for k, val in dict(
                    group_id="seen", require_stable=False,
                    topics=(Topic(name="t", partition_indexes=(0, 1)),)).items()
                    if k in cls.__dataclass_fields__}))
                topics = r.topics
            else:
                Group = element(cls, "groups")
                Topics = element(Group, "topics")
                r = w.call(cls(require_stable=False, groups=(Group(**{
                    k: val for k, val in dict(
                        group_id="seen", member_id=None, member_epoch=-1,
                        topics=(Topics(name="t", partition_indexes=(0, 1)),)).items()
                    if k in Group.__dataclass_fields__}),)))
                (group,) = r.groups
                topics = group.topics
            got = {p.partition_index: p.committed_offset for t in topics for p in t.partitions}
            assert got == {0: -1, 1: 7}, f"OffsetFetch v{v}"
        for v in range(0, 7):
            cls = load_request_schema(15, v)
            r = w.call(cls(**{k: val for k, val in dict(
                groups=("seen", "missing"), include_authorized_operations=False).items()
                if k in cls.__dataclass_fields__}))
            seen, missing = r.groups
            assert (seen.group_id, seen.group_state, seen.error_code) == (
                "seen", "Empty", ErrorCode.none), f"DescribeGroups v{v}"
            assert missing.group_state == "Dead"
        for v in range(0, 6):
            cls = load_request_schema(16, v)
            r = w.call(cls(**{k: val for k, val in dict(states_filter=(),
                                                       types_filter=()).items()
                              if k in cls.__dataclass_fields__}))
            assert [g.group_id for g in r.groups] == ["seen"], f"ListGroups v{v}"
            # Only offsets, never members: no protocol type (a "simple" group), as in
            # DescribeGroups.
            assert [g.protocol_type for g in r.groups] == [""], f"ListGroups v{v}"
        r = w.call(request(16, 4, states_filter=("Stable",)))
        assert r.groups == ()
    finally:
        w.close()


def test_a_held_join_does_not_block_other_connections(broker, server):
    """A JoinGroup waiting for a member that has not rejoined blocks only its own
    connection; another connection is answered meanwhile."""
    broker.create_topic("t", 1)
    native = broker.consumer("t", group_id="held")
    native.poll(timeout_ms=10)  # joined and synced; it will not poll again for a while
    waiting = Wire(server.bootstrap_servers)
    other = Wire(server.bootstrap_servers)
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", join(waiting, "held")),
                         daemon=True)
    try:
        t.start()
        wait_until(lambda: len(broker.admin().describe_consumer_groups(["held"])[
            "held"].members) == 2, "the wire member to be joining", timeout=10)
        r = other.call(request(16, 4, states_filter=()))
        assert [(g.group_id, g.group_state) for g in r.groups] == [
            ("held", "PreparingRebalance")]
        assert t.is_alive() and "r" not in box  # held: the native member has not rejoined
        native.poll(timeout_ms=100)  # it rejoins; the round completes
        t.join(10)
        assert box["r"].error_code == ErrorCode.none
    finally:
        native.close()
        waiting.close()
        other.close()


@pytest.mark.parametrize("version", range(2, 10))
def test_offset_commit_every_version(broker, server, version):
    broker.create_topic("t", 1)
    w = Wire(server.bootstrap_servers)
    try:
        joined = join(w, "oc")
        sync(w, "oc", joined.member_id, joined.generation_id)
        codes = commit(w, "oc", joined.member_id, joined.generation_id, {("t", 0): 4},
                       version=version)
        assert codes == {("t", 0): ErrorCode.none}
        assert broker.committed_offset("oc", TopicPartition("t", 0)).offset == 4
        stale = commit(w, "oc", joined.member_id, joined.generation_id - 1, {("t", 0): 5},
                       version=version)
        assert stale == {("t", 0): ErrorCode.illegal_generation}
    finally:
        w.close()


def test_a_vanished_client_is_evicted_after_its_session_timeout(broker, server):
    broker.create_topic("t", 2)
    w = Wire(server.bootstrap_servers)
    native = broker.consumer("t", group_id="gone")
    owned: list = []
    stop = threading.Event()

    def native_polls() -> None:  # the in-process member polls on its own thread
        while not stop.is_set():
            native.poll(timeout_ms=20)
            owned.append(len(native.assignment()))

    t = threading.Thread(target=native_polls, daemon=True)
    t.start()
    try:
        cls = load_request_schema(11, 5)
        joined = w.call(cls(
            group_id="gone", session_timeout=timedelta(milliseconds=300),
            rebalance_timeout=timedelta(seconds=10), member_id="", group_instance_id=None,
            protocol_type="consumer",
            protocols=(element(cls, "protocols")(name="range", metadata=subscription("t")),)))
        assert joined.error_code == ErrorCode.none
        synced = sync(w, "gone", joined.member_id, joined.generation_id)
        assert len(decode_assignment(synced.assignment)) == 1
        # The wire member never heartbeats: 300 ms later it is evicted and the native
        # member gets both partitions.
        wait_until(lambda: owned and owned[-1] == 2,
                   "the native member to get every partition", timeout=10)
        hb = w.call(request(12, 4, group_id="gone", generation_id=joined.generation_id,
                            member_id=joined.member_id, group_instance_id=None))
        assert hb.error_code == ErrorCode.unknown_member_id
    finally:
        stop.set()
        t.join(10)
        native.close()
        w.close()


def test_a_member_that_does_not_rejoin_is_evicted_after_the_rebalance_timeout(
        broker, server):
    broker.create_topic("t", 2)
    slow, fast = Wire(server.bootstrap_servers), Wire(server.bootstrap_servers)
    try:
        first = join(slow, "rb")
        assert sync(slow, "rb", first.member_id, first.generation_id).error_code == \
            ErrorCode.none
        cls = load_request_schema(11, 5)
        started = time.monotonic()
        second = fast.call(cls(
            group_id="rb", session_timeout=timedelta(seconds=10),
            rebalance_timeout=timedelta(milliseconds=300), member_id="",
            group_instance_id=None, protocol_type="consumer",
            protocols=(element(cls, "protocols")(name="range", metadata=subscription("t")),)))
        # ``slow`` never rejoined: after the newcomer's rebalance timeout it is removed
        # and the round completes without it.
        assert second.error_code == ErrorCode.none
        assert time.monotonic() - started >= 0.3
        synced = sync(fast, "rb", second.member_id, second.generation_id)
        assert decode_assignment(synced.assignment) == [("t", 0), ("t", 1)]
        hb = slow.call(request(12, 4, group_id="rb", generation_id=first.generation_id,
                               member_id=first.member_id, group_instance_id=None))
        assert hb.error_code == ErrorCode.unknown_member_id
    finally:
        slow.close()
        fast.close()


def test_a_replaced_static_member_is_fenced(broker, server):
    broker.create_topic("t", 1)
    old, new = Wire(server.bootstrap_servers), Wire(server.bootstrap_servers)
    try:
        a = join(old, "sm", instance_id="i-1")
        assert sync(old, "sm", a.member_id, a.generation_id).error_code == ErrorCode.none
        b = join(new, "sm", instance_id="i-1")  # the restarted client: same instance id
        assert b.error_code == ErrorCode.none and b.member_id != a.member_id
        assert b.generation_id == a.generation_id  # a takeover, not a rebalance
        synced = sync(new, "sm", b.member_id, b.generation_id)
        assert decode_assignment(synced.assignment) == [("t", 0)]
        hb = old.call(request(12, 4, group_id="sm", generation_id=a.generation_id,
                              member_id=a.member_id, group_instance_id="i-1"))
        assert hb.error_code == ErrorCode.fenced_instance_id
        assert commit(old, "sm", a.member_id, a.generation_id, {("t", 0): 1},
                      instance_id="i-1") == {("t", 0): ErrorCode.fenced_instance_id}
        assert commit(new, "sm", b.member_id, b.generation_id, {("t", 0): 1},
                      instance_id="i-1") == {("t", 0): ErrorCode.none}
    finally:
        old.close()
        new.close()


def test_shutdown_releases_a_held_join(broker, server):
    broker.create_topic("t", 1)
    native = broker.consumer("t", group_id="bye")
    native.poll(timeout_ms=10)  # it will not poll again: the round cannot complete
    w = Wire(server.bootstrap_servers)
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", join(w, "bye")), daemon=True)
    try:
        t.start()
        wait_until(lambda: len(broker.admin().describe_consumer_groups(["bye"])[
            "bye"].members) == 2, "the wire member to be joining", timeout=10)
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 5  # not the 10 s rebalance timeout
        t.join(5)
        assert box["r"].error_code == ErrorCode.coordinator_not_available
    finally:
        native.close()
        w.close()


# -- bounded holds -------------------------------------------------------------------------

def join_with(wire: Wire, group: str, rebalance: timedelta, member_id: str = "",
              session: timedelta = timedelta(seconds=10)):
    cls = load_request_schema(11, 5)
    return wire.call(cls(
        group_id=group, session_timeout=session, rebalance_timeout=rebalance,
        member_id=member_id, group_instance_id=None, protocol_type="consumer",
        protocols=(element(cls, "protocols")(name="range", metadata=subscription("t")),)))


def test_a_held_join_is_answered_within_the_servers_bound(broker):
    """A client asking for a day-long rebalance timeout is held at most the server's
    ``max_rebalance_timeout_s``: answered REBALANCE_IN_PROGRESS, it rejoins, and the
    rejoin completes once the other member does."""
    broker.create_topic("t", 2)
    handle = broker.serve(port=0, max_rebalance_timeout_s=0.5)
    native = broker.consumer("t", group_id="cap")
    native.poll(timeout_ms=10)  # joined and synced; it does not poll again for now
    w = Wire(handle.bootstrap_servers)
    w.sock.settimeout(10)  # a watchdog far below the day asked for
    try:
        held = join_with(w, "cap", rebalance=timedelta(days=1))
        assert held.error_code == ErrorCode.rebalance_in_progress
        # The answer could not tell the newcomer its id: it is not left in the group
        # as a member nobody speaks for.
        members = broker.admin().describe_consumer_groups(["cap"])["cap"].members
        assert [m.client_id for m in members] != ["wire-test"] and len(members) == 1
        box: dict = {}
        t = threading.Thread(target=lambda: box.setdefault(
            "r", join_with(w, "cap", rebalance=timedelta(days=1))), daemon=True)
        t.start()  # it rejoins; this time the native member rejoins too
        wait_until(lambda: native.poll(timeout_ms=50) is not None and "r" in box,
                   "the rejoin to complete once the native member polls", timeout=10)
        t.join(10)
        assert box["r"].error_code == ErrorCode.none
        synced = sync(w, "cap", box["r"].member_id, box["r"].generation_id)
        assert len(decode_assignment(synced.assignment)) == 1
    finally:
        native.close()
        w.close()
        handle.close()


def test_a_client_that_vanishes_while_held_does_not_stall_the_group(broker, server):
    """A dynamic member whose client closes the connection during a held JoinGroup is
    removed at once (not kept alive by its own held request until its 60 s rebalance
    timeout), so the round completes without it and it is assigned nothing."""
    broker.create_topic("t", 2)
    native = broker.consumer("t", group_id="gone-held")
    native.poll(timeout_ms=10)
    w = Wire(server.bootstrap_servers)
    try:
        cls = load_request_schema(11, 5)
        frame = io.BytesIO()
        entity_writer(RequestHeaderV1)(frame, RequestHeaderV1(
            request_api_key=11, request_api_version=5, correlation_id=1,
            client_id="vanishing"))
        entity_writer(cls)(frame, cls(
            group_id="gone-held", session_timeout=timedelta(seconds=60),
            rebalance_timeout=timedelta(seconds=60), member_id="",
            group_instance_id=None, protocol_type="consumer",
            protocols=(element(cls, "protocols")(name="range",
                                                  metadata=subscription("t")),)))
        w.sock.sendall(struct.pack(">i", len(frame.getvalue())) + frame.getvalue())

        def members() -> int:
            return len(broker.admin().describe_consumer_groups(["gone-held"])[
                "gone-held"].members)

        wait_until(lambda: members() == 2, "the wire member to be held", timeout=10)
        w.close()  # the client goes away with its JoinGroup unanswered
        wait_until(lambda: members() == 1, "the vanished member to be removed",
                   timeout=10)
        wait_until(lambda: native.poll(timeout_ms=50) is not None
                   and len(native.assignment()) == 2,
                   "the native member to own both partitions", timeout=10)
    finally:
        native.close()
        w.close()


def test_a_held_join_is_not_woken_by_appends(broker, server, monkeypatch):
    """Held JoinGroups wait on the coordinator's round condition: appends to the store
    (which wake long polls) do not make them spin through their checks."""
    broker.create_topic("t", 1)
    native = broker.consumer("t", group_id="quiet")
    native.poll(timeout_ms=10)
    coord = broker._coordinator
    checks = []
    real_heartbeat = coord.heartbeat
    monkeypatch.setattr(coord, "heartbeat", lambda gid, member: (
        checks.append(gid), real_heartbeat(gid, member))[1])
    w = Wire(server.bootstrap_servers)
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", join(w, "quiet")),
                         daemon=True)
    try:
        t.start()
        wait_until(lambda: len(broker.admin().describe_consumer_groups(["quiet"])[
            "quiet"].members) == 2, "the wire member to be held", timeout=10)
        before = len(checks)
        with broker.producer() as producer:
            for i in range(100):
                producer.send("t", b"%d" % i)
                producer.flush()  # one commit (and one data notification) each
        woken = len(checks) - before
        assert woken < 20, f"the held JoinGroup woke {woken} times for 100 appends"
        native.poll(timeout_ms=100)  # the native member rejoins: the round completes
        t.join(10)
        assert box["r"].error_code == ErrorCode.none
    finally:
        native.close()
        w.close()


def test_round_changes_are_signalled_by_the_coordinators_condition(broker):
    coord = broker._coordinator
    broker.create_topic("t", 1)
    seq = coord.round_seq("sig")
    assert not coord.wait_round_change("sig", seq, 0.01)  # nothing happened
    consumer = broker.consumer("t", group_id="sig")
    consumer.poll(timeout_ms=10)  # join (a round) and complete (a generation)
    assert coord.wait_round_change("sig", seq, 0.01)
    seq = coord.round_seq("sig")
    with broker.producer() as producer:
        producer.send("t", b"x").get(10)
    assert not coord.wait_round_change("sig", seq, 0.01)  # an append is no round
    stop = threading.Event()
    stop.set()
    assert not coord.wait_round_change("sig", seq, 10, stop=stop.is_set)  # no hang
    consumer.close()  # the last member left: the group is forgotten, waiters woken
    assert coord.wait_round_change("sig", seq, 0.01)
    assert coord.round_seq("sig") == 0 and "sig" not in coord.active_groups()


# -- OffsetDelete, and offsets by topic id ---------------------------------------------

def test_offset_delete_with_kafka_python_admin(broker, server):
    import kafka.errors as kerrors
    from kafka.admin import KafkaAdminClient

    broker.create_topic("a", 2)
    broker.create_topic("b", 1)
    broker.commit_offsets("od", {TopicPartition("a", 0): 3, TopicPartition("a", 1): 4,
                                 TopicPartition("b", 0): 5})
    broker.commit_offsets("busy", {TopicPartition("a", 0): 1, TopicPartition("b", 0): 2})
    member = broker.consumer("a", group_id="busy")  # "busy" subscribes to topic a
    member.poll(timeout_ms=10)
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap_servers,
                             request_timeout_ms=10_000)
    try:
        result = admin.delete_group_offsets("od", [
            kafka.TopicPartition("a", 0), kafka.TopicPartition("b", 0),
            kafka.TopicPartition("nope", 0)])
        assert result == {kafka.TopicPartition("a", 0): kerrors.NoError,
                          kafka.TopicPartition("b", 0): kerrors.NoError,
                          kafka.TopicPartition("nope", 0):
                          kerrors.UnknownTopicOrPartitionError}
        assert broker.group_offsets("od") == {TopicPartition("a", 1): (4, "", -1)}
        # An active group keeps the offsets of the topics its members consume.
        result = admin.delete_group_offsets("busy", [kafka.TopicPartition("a", 0),
                                                     kafka.TopicPartition("b", 0)])
        assert result == {kafka.TopicPartition("a", 0): kerrors.GroupSubscribedToTopicError,
                          kafka.TopicPartition("b", 0): kerrors.NoError}
        assert set(broker.group_offsets("busy")) == {TopicPartition("a", 0)}
        with pytest.raises(kerrors.GroupIdNotFoundError):
            admin.delete_group_offsets("no-such-group", [kafka.TopicPartition("a", 0)])
        # What is left is what the client lists.
        assert admin.list_group_offsets("od") == {"od": {
            kafka.TopicPartition("a", 1): kafka.OffsetAndMetadata(4, "", -1)}}
    finally:
        admin.close()
        member.close()


def topic_ids(wire: Wire, *names: str) -> dict:
    """Topic name -> topic id, as a client learns them (Metadata v12)."""
    cls = load_request_schema(3, 12)
    Topic = element(cls, "topics")
    answer = wire.call(cls(topics=tuple(Topic(topic_id=None, name=n) for n in names),
                           allow_auto_topic_creation=False,
                           include_topic_authorized_operations=False))
    return {t.name: t.topic_id for t in answer.topics}


def test_offset_commit_and_fetch_v10_name_topics_by_id(broker, server):
    import uuid

    broker.create_topic("t", 2)
    w = Wire(server.bootstrap_servers)
    try:
        tid = topic_ids(w, "t")["t"]
        stranger = uuid.UUID(int=12345)
        joined = join(w, "ids")
        sync(w, "ids", joined.member_id, joined.generation_id)
        cls = load_request_schema(8, 10)
        Topic = element(cls, "topics")
        Partition = element(Topic, "partitions")
        answer = w.call(cls(
            group_id="ids", generation_id_or_member_epoch=joined.generation_id,
            member_id=joined.member_id, group_instance_id=None, topics=(
                Topic(topic_id=tid, partitions=(Partition(
                    partition_index=1, committed_offset=8, committed_leader_epoch=-1,
                    committed_metadata="m"),)),
                Topic(topic_id=stranger, partitions=(Partition(
                    partition_index=0, committed_offset=1, committed_leader_epoch=-1,
                    committed_metadata=None),)))))
        assert [(t.topic_id, [p.error_code for p in t.partitions])
                for t in answer.topics] == [(tid, [ErrorCode.none]),
                                            (stranger, [ErrorCode.unknown_topic_id])]
        assert broker.committed_offset("ids", TopicPartition("t", 1)).offset == 8
        cls = load_request_schema(9, 10)
        Group = element(cls, "groups")
        Topics = element(Group, "topics")
        answer = w.call(cls(require_stable=False, groups=(
            Group(group_id="ids", member_id=None, member_epoch=-1, topics=(
                Topics(topic_id=tid, partition_indexes=(0, 1)),
                Topics(topic_id=stranger, partition_indexes=(0,)))),
            Group(group_id="ids", member_id=None, member_epoch=-1, topics=None))))
        named, every = answer.groups
        assert [(t.topic_id, [(p.partition_index, p.committed_offset, p.error_code)
                              for p in t.partitions]) for t in named.topics] == [
            (tid, [(0, -1, ErrorCode.none), (1, 8, ErrorCode.none)]),
            (stranger, [(0, -1, ErrorCode.unknown_topic_id)])]
        assert [(t.topic_id, [p.committed_offset for p in t.partitions])
                for t in every.topics] == [(tid, [8])]
    finally:
        w.close()


def stage_txn_offset(w: Wire, txn_id: str, group: str, tp: tuple[str, int],
                     offset: int) -> dict:
    """InitProducerId for ``txn_id``, AddOffsetsToTxn for ``group`` and a
    TxnOffsetCommit staging ``offset`` for ``tp``; returns the producer's ids (the
    keyword arguments of the next transactional requests)."""
    init = w.call(request(22, 4, transactional_id=txn_id, producer_id=-1,
                          producer_epoch=-1, transaction_timeout=timedelta(seconds=60)))
    ids = dict(transactional_id=txn_id, producer_id=init.producer_id,
               producer_epoch=init.producer_epoch)
    assert w.call(request(25, 3, group_id=group, **ids)).error_code == ErrorCode.none
    cls = load_request_schema(28, 3)
    Topic = element(cls, "topics")
    Partition = element(Topic, "partitions")
    staged = w.call(cls(group_id=group, generation_id=-1, member_id="",
                        group_instance_id=None, topics=(Topic(name=tp[0], partitions=(
                            Partition(partition_index=tp[1], committed_offset=offset,
                                      committed_leader_epoch=-1,
                                      committed_metadata=None),)),), **ids))
    assert staged.topics[0].partitions[0].error_code == ErrorCode.none
    return ids


def offsets_of_t(w, group: str, stable: bool) -> list:
    """OffsetFetch v7 of ``group`` for t[0] and t[1]: (committed offset, error code)."""
    fetch_cls = load_request_schema(9, 7)
    FTopic = element(fetch_cls, "topics")
    answer = w.call(fetch_cls(group_id=group, require_stable=stable, topics=(
        FTopic(name="t", partition_indexes=(0, 1)),)))
    return [(p.committed_offset, p.error_code) for t in answer.topics for p in t.partitions]


def test_offset_fetch_require_stable_waits_for_open_transactions(broker, server):
    """KIP-447: offsets a transaction staged but has not ended are answered
    UNSTABLE_OFFSET_COMMIT to a fetch with require_stable (the client retries), and
    the plain answer to one without; after EndTxn both see the committed offset."""
    broker.create_topic("t", 2)
    w = Wire(server.bootstrap_servers)
    try:
        ids = stage_txn_offset(w, "eos", "eos-g", ("t", 0), 5)

        def fetched(stable: bool) -> list:
            return offsets_of_t(w, "eos-g", stable)

        assert fetched(True) == [(-1, ErrorCode.unstable_offset_commit),
                                 (-1, ErrorCode.none)]
        assert fetched(False) == [(-1, ErrorCode.none), (-1, ErrorCode.none)]
        assert w.call(request(26, 3, committed=True, **ids)).error_code == ErrorCode.none
        assert fetched(True) == [(5, ErrorCode.none), (-1, ErrorCode.none)]
    finally:
        w.close()


def test_require_stable_sees_offsets_staged_by_an_in_process_transaction(broker, server):
    """An in-process transactional producer (a Pipeline, say) staging offsets for a
    group makes a wire client's require_stable fetch wait for its commit too."""
    broker.create_topic("t", 2)
    producer = broker.producer(transactional_id="local-eos")
    producer.init_transactions()
    w = Wire(server.bootstrap_servers)
    try:
        producer.begin_transaction()
        producer.send("t", b"out", partition=1)
        producer.send_offsets_to_transaction({mqlog.TopicPartition("t", 1): 7}, "eos-g")

        def fetched(stable: bool) -> list:
            return offsets_of_t(w, "eos-g", stable)

        assert fetched(True) == [(-1, ErrorCode.none),
                                 (-1, ErrorCode.unstable_offset_commit)]
        assert fetched(False) == [(-1, ErrorCode.none), (-1, ErrorCode.none)]
        producer.commit_transaction()
        assert fetched(True) == [(-1, ErrorCode.none), (7, ErrorCode.none)]
    finally:
        w.close()
        producer.close()


def test_wire_members_of_groups_nobody_returns_to_are_forgotten(broker, server):
    """A client that joins a group and vanishes (no LeaveGroup) left its entry, with its
    subscription blobs, in the bridge's member table until someone touched that group
    again; with one-off group ids (a test suite's, say) nobody ever does. The table is
    swept as it grows, so it holds about the live members, not every one ever seen."""
    from mqlog.server._group_bridge import wire_groups

    broker.create_topic("t", 1)
    w = Wire(server.bootstrap_servers)
    cls = load_request_schema(11, 5)
    try:
        for i in range(150):
            joined = w.call(cls(
                group_id=f"once-{i}", session_timeout=timedelta(milliseconds=1),
                rebalance_timeout=timedelta(seconds=10), member_id="",
                group_instance_id=None, protocol_type="consumer",
                protocols=(element(cls, "protocols")(name="range",
                                                      metadata=subscription("t")),)))
            # The bridge records the member at its join; its 1 ms session ends at once,
            # on a loaded machine even before the answer (the coordinator then forgets
            # the member, and the group, and the answer is UNKNOWN_MEMBER_ID).
            assert joined.error_code in (ErrorCode.none, ErrorCode.unknown_member_id)
        wg = wire_groups(broker)
        left = sum(len(wg.wire_members(f"once-{i}")) for i in range(150))
        assert left <= 64
    finally:
        w.close()


def test_a_static_member_back_with_other_assignors_gets_one_it_offers(broker, server):
    """A static member restarted with another partition.assignment.strategy (a rolling
    upgrade) takes its slot over; the JoinGroup answer must name a protocol it offers
    (clients fail on one they do not know), so the group rebalances to one every
    member offers, as Kafka does when a static member's protocols change."""
    broker.create_topic("t", 2)
    w = Wire(server.bootstrap_servers)
    cls = load_request_schema(11, 5)

    def static_join(*names):
        return w.call(cls(
            group_id="upgrade", session_timeout=timedelta(seconds=10),
            rebalance_timeout=timedelta(seconds=10), member_id="",
            group_instance_id="static-1", protocol_type="consumer",
            protocols=tuple(element(cls, "protocols")(name=n, metadata=subscription("t"))
                            for n in names)))

    try:
        first = static_join("range")
        assert (first.error_code, first.protocol_name) == (ErrorCode.none, "range")
        assert sync(w, "upgrade", first.member_id, first.generation_id).error_code == \
            ErrorCode.none
        again = static_join("roundrobin")
        assert (again.error_code, again.protocol_name) == (ErrorCode.none, "roundrobin")
        synced = sync(w, "upgrade", again.member_id, again.generation_id)
        assert decode_assignment(synced.assignment) == [("t", 0), ("t", 1)]
        # With a member that offers none of the returning client's assignors, the
        # client is refused (INCONSISTENT_GROUP_PROTOCOL) and the group stays as it
        # was: the static member it would have replaced keeps its slot.
        native = broker.consumer("t", group_id="upgrade",
                                 partition_assignment_strategy="roundrobin")
        try:
            refused = static_join("sticky")
            assert refused.error_code == ErrorCode.inconsistent_group_protocol
            members = broker.admin().describe_consumer_groups(["upgrade"])[
                "upgrade"].members
            assert sorted(m.member_id for m in members if m.group_instance_id) == \
                [again.member_id]
            assert len(members) == 2
        finally:
            native.close()
    finally:
        w.close()


def test_an_end_txn_that_failed_keeps_its_staged_offsets_for_the_retry(broker, server):
    """EndTxn(commit) that could not be written (a full disk) leaves the transaction
    open: its staged offsets must still be there when the client retries, or the retry
    would commit the records without the consumer offsets (exactly-once broken)."""
    from mqlog.errors import DiskFullError

    broker.create_topic("t", 1)
    w = Wire(server.bootstrap_servers)
    try:
        ids = stage_txn_offset(w, "retry", "retry-g", ("t", 0), 7)
        broker._writer.fail_next_commit = DiskFullError("the disk is full (injected)")
        failed = w.call(request(26, 3, committed=True, **ids))
        assert failed.error_code == ErrorCode.kafka_storage_error
        assert broker.group_offsets("retry-g") == {}
        assert w.call(request(26, 3, committed=True, **ids)).error_code == ErrorCode.none
        assert {tp: om.offset for tp, om in broker.group_offsets("retry-g").items()} == \
            {TopicPartition("t", 0): 7}
    finally:
        w.close()


def test_delete_groups_looks_the_groups_up_once_per_request(broker, server,
                                                             monkeypatch):
    """DeleteGroups listed every group once per name it was asked for: a 1 MB request
    of 100,000 names against 2,000 groups cost a minute of CPU. One look per request,
    and a name asked for twice is deleted once (then GROUP_ID_NOT_FOUND)."""
    broker.create_topic("t", 1)
    broker.commit_offsets("doomed", {TopicPartition("t", 0): mqlog.OffsetAndMetadata(
        1, "")})
    looks = []
    coordinator = broker._coordinator
    real = coordinator.active_groups
    monkeypatch.setattr(coordinator, "active_groups",
                        lambda: looks.append(1) or real())
    w = Wire(server.bootstrap_servers)
    try:
        names = ("doomed",) + tuple(f"nope-{i}" for i in range(50)) + ("doomed",)
        answer = w.call(request(42, 2, groups_names=names))
        codes = [r.error_code for r in answer.results]
        assert codes == [ErrorCode.none] + [ErrorCode.group_id_not_found] * 51
        assert len(looks) == 1
        assert broker.group_offsets("doomed") == {}
    finally:
        w.close()
