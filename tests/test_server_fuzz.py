"""mqlog serve under abuse: random and mutated frames, slow and vanishing clients.

Seeded and bounded: each test sends a fixed number of frames and every socket wait has
a timeout. The properties: the server never crashes or stalls (a healthy connection
keeps getting answers throughout), every well-framed request gets an answer or a clean
close, the broker's invariants hold afterwards, and shutdown ends every connection.
"""

from __future__ import annotations

import datetime
import os
import random
import socket
import struct
import time

import pytest
from kio.index import api_key_map, load_request_schema
from kio.schema.errors import ErrorCode

import mqlog
from tests.test_server import (
    Raw,
    api_versions_request,
    forget_kafka_python,
    load_kafka_python,
    metadata_request,
    produce_request,
    wire_batch,
)

SEED = int(os.environ.get("MQLOG_FUZZ_SEED", "20240607"))
FRAMES = 400
ANSWER_TIMEOUT = 3.0
# Requests that may legitimately wait (long polls, rebalances): a missing answer within
# ANSWER_TIMEOUT is not a stall for these.
MAY_WAIT = {1, 11, 14}

# Bound by _kafka_python while this module runs (see tests/test_server.py for why).
KafkaProducer = KafkaConsumer = KTopicPartition = None


@pytest.fixture(scope="module", autouse=True)
def _kafka_python():
    load_kafka_python(globals())
    yield
    forget_kafka_python()


@pytest.fixture
def served():
    broker = mqlog.open()
    handle = broker.serve(port=0, max_request_bytes=64 * 1024)
    yield broker, handle
    handle.close()
    broker.close()


def seed_frames(raw: Raw) -> list[bytes]:
    """Valid request frames of every kind the server serves (the mutation seeds)."""
    from kio.schema.create_topics.v7 import request as ct
    from kio.schema.describe_configs.v4 import request as dc
    from kio.schema.fetch.v12 import request as fr
    from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
    from kio.schema.list_offsets.v8 import request as lo

    fetch = fr.FetchRequest(
        cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0,
        max_bytes=1 << 16, isolation_level=0, session_id=0, session_epoch=-1,
        topics=(fr.FetchTopic(topic="fz", partitions=(fr.FetchPartition(
            partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=1 << 16),)),),
        forgotten_topics_data=(), rack_id="")
    requests = [
        api_versions_request(3),
        api_versions_request(0),
        metadata_request("fz", "fz2"),
        produce_request("fz", wire_batch([b"a", b"bb", None])),
        fetch,
        lo.ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
            lo.ListOffsetsTopic(name="fz", partitions=(lo.ListOffsetsPartition(
                partition_index=0, current_leader_epoch=-1, timestamp=-1),)),)),
        InitProducerIdRequest(transactional_id=None,
                              transaction_timeout=datetime.timedelta(seconds=1),
                              producer_id=-1, producer_epoch=-1),
        ct.CreateTopicsRequest(topics=(ct.CreatableTopic(
            name="fz-new", num_partitions=2, replication_factor=1, assignments=(),
            configs=(ct.CreatableTopicConfig(name="retention.ms", value="1000"),)),),
            timeout=datetime.timedelta(seconds=5), validate_only=False),
        dc.DescribeConfigsRequest(resources=(dc.DescribeConfigsResource(
            resource_type=2, resource_name="fz", configuration_keys=None),),
            include_synonyms=True, include_documentation=False),
    ]
    return [raw.frame(r, correlation=1) for r in requests]


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """A damaged copy of a frame: flipped bytes, a cut, a splice or a huge length."""
    body = bytearray(frame[4:])
    how = rng.randrange(6)
    if how == 0:
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    elif how == 1:
        del body[rng.randrange(len(body)):]
    elif how == 2:
        pos = rng.randrange(len(body) + 1)
        body[pos:pos] = rng.randbytes(rng.randint(1, 16))
    elif how == 3 and len(body) > 12:
        # A length or count somewhere past the header becomes enormous or negative.
        pos = rng.randrange(8, len(body) - 4)
        body[pos:pos + 4] = rng.choice([b"\x7f\xff\xff\xff", b"\xff\xff\xff\xfe",
                                        b"\xff\xff\xff\x0f", b"\x80\x00\x00\x00"])
    elif how == 4:
        body[8:] = rng.randbytes(rng.randint(0, 40))  # keep the header, random body
    else:
        # Another API's key or a random version with this body.
        struct.pack_into(">hh", body, 0, rng.choice(list(api_key_map) + [999, -1]),
                         rng.randint(-1, 20))
    return struct.pack(">i", len(body)) + bytes(body)


def random_frame(rng: random.Random) -> bytes:
    body = rng.randbytes(rng.randint(0, 64))
    return struct.pack(">i", len(body)) + body


class Healthy:
    """A well-behaved connection checked between fuzz frames."""

    def __init__(self, broker, handle):
        if "healthy" not in broker.topics():
            broker.create_topic("healthy")
        self.produced = len(broker.messages("healthy"))
        self.raw = Raw(handle.address, timeout=10)

    def check(self):
        assert self.raw.call(api_versions_request(3)).error_code == ErrorCode.none
        response = self.raw.call(produce_request("healthy", wire_batch([b"ok"])))
        part = response.responses[0].partition_responses[0]
        assert part.error_code == ErrorCode.none and part.base_offset == self.produced
        self.produced += 1


def exchange(address, frame: bytes) -> str:
    """Send one frame on a fresh connection; 'answer', 'closed' or 'silent'."""
    sock = socket.create_connection(address, timeout=ANSWER_TIMEOUT)
    try:
        sock.sendall(frame)
        try:
            head = sock.recv(4)
        except ConnectionResetError:
            return "closed"
        except TimeoutError:
            return "silent"
        return "answer" if head else "closed"
    finally:
        sock.close()


def test_guard_walks_every_request_schema():
    """The bounds check knows every field type of every request kio can decode."""
    from mqlog.server._guard import check_all_schemas

    assert check_all_schemas() > 250


def test_huge_claimed_array_is_refused_not_allocated(served):
    _, handle = served
    raw = Raw(handle.address)
    # Metadata v12 claiming 4 billion topics in 20 bytes: kio alone would try to
    # allocate them and abort the process.
    body = struct.pack(">hhih", 3, 12, 9, -1) + b"\0" + b"\xff\xff\xff\xff\x0f" + b"\0" * 4
    raw.send(struct.pack(">i", len(body)) + body)
    cid, response = raw.parse(raw.recv(), 3, 12)
    assert cid == 9
    assert raw.call(api_versions_request(3)).error_code == ErrorCode.none
    raw.close()


def test_random_and_mutated_frames(served):
    broker, handle = served
    rng = random.Random(SEED)
    healthy = Healthy(broker, handle)
    seeds = seed_frames(healthy.raw)
    stalls = []
    outcomes = {"answer": 0, "closed": 0, "silent": 0}
    started = time.monotonic()
    for i in range(FRAMES):
        frame = random_frame(rng) if rng.random() < 0.25 else mutate(rng, rng.choice(seeds))
        outcome = exchange(handle.address, frame)
        outcomes[outcome] += 1
        size = struct.unpack_from(">i", frame)[0]
        well_framed = size == len(frame) - 4 and size >= 8
        key = struct.unpack_from(">h", frame, 4)[0] if len(frame) >= 6 else None
        if outcome == "silent" and well_framed and key not in MAY_WAIT:
            stalls.append((i, frame[:40].hex()))
        if i % 25 == 0:
            healthy.check()
    healthy.check()
    healthy.raw.close()
    elapsed = time.monotonic() - started
    assert not stalls, f"seed {SEED}: well-framed requests got no answer: {stalls[:5]}"
    assert outcomes["answer"] > FRAMES // 4, outcomes  # the fuzzer reached the handlers
    broker._check()
    assert elapsed < 45, f"seed {SEED}: fuzzing took {elapsed:.1f} s"
    # A real client still works end to end.
    with KafkaProducer(bootstrap_servers=handle.bootstrap_servers,
                       request_timeout_ms=10_000) as producer:
        producer.send("after-fuzz", b"fine").get(10)
    consumer = KafkaConsumer(bootstrap_servers=handle.bootstrap_servers,
                             fetch_max_wait_ms=100, request_timeout_ms=10_000)
    tp = KTopicPartition("after-fuzz", 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    got = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(r.value for r in records)
    consumer.close()
    assert got == [b"fine"]


def test_pipelined_mutations_on_one_connection(served):
    """Many frames back to back on one connection: answers come in order, one per
    well-framed request, until the server closes the connection for bad framing."""
    _, handle = served
    rng = random.Random(SEED + 1)
    raw = Raw(handle.address)
    seeds = seed_frames(raw)
    frames = []
    for n in range(60):
        frame = mutate(rng, rng.choice(seeds)) if rng.random() < 0.5 else rng.choice(seeds)
        # Keep the framing intact so the stream stays parseable; mark the correlation.
        body = bytearray(frame[4:])
        if len(body) >= 8:
            struct.pack_into(">i", body, 4, 1000 + n)
        if len(body) < 8 or struct.unpack_from(">h", body)[0] in MAY_WAIT:
            continue
        frames.append((1000 + n, struct.pack(">i", len(body)) + bytes(body)))
    raw.send(b"".join(f for _, f in frames))
    seen = []
    for _ in frames:
        frame = raw.recv()
        if not frame:
            break  # closed: a header the server could not read
        seen.append(struct.unpack_from(">i", frame)[0])
    # The server answers in request order, every frame up to the first one whose
    # header it cannot read (then it closes); only a Produce with acks=0 goes unanswered.
    from mqlog.server._codec import FrameError, parse_header

    readable = []
    for cid, frame in frames:
        try:
            parse_header(frame[4:])
        except FrameError:
            break
        readable.append((cid, struct.unpack_from(">h", frame, 4)[0]))
    assert seen == sorted(seen)
    assert set(seen) <= {cid for cid, _ in readable}
    unanswered = {cid for cid, _ in readable} - set(seen)
    assert all(key == 0 for cid, key in readable if cid in unanswered), unanswered
    assert len(seen) >= 5
    raw.close()


def test_slow_half_open_and_non_reading_clients_do_not_block_others(served):
    broker, handle = served
    address = handle.address
    # 1. A client that sends half a frame and goes quiet.
    half = socket.create_connection(address, timeout=5)
    half.sendall(struct.pack(">i", 100) + b"\0" * 10)
    # 2. A client that vanishes mid-frame.
    gone = socket.create_connection(address, timeout=5)
    gone.sendall(struct.pack(">i", 100) + b"\0" * 10)
    gone.close()
    # 3. A client that pipelines requests and never reads the answers, until the
    # server's answers fill both socket buffers and the server stops reading from it.
    deaf = socket.create_connection(address, timeout=5)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf.settimeout(0.5)
    frame = Raw.frame(Raw.__new__(Raw), api_versions_request(3), correlation=1)
    blocked = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            deaf.sendall(frame * 100)
        except TimeoutError:
            blocked = True
            break
    assert blocked  # the server is stuck writing to it: only its thread is
    # Everyone else is served meanwhile.
    healthy = Healthy(broker, handle)
    for _ in range(5):
        healthy.check()
    healthy.raw.close()
    started = time.monotonic()
    handle.close(timeout=1)  # ends the stuck connections too
    assert time.monotonic() - started < 5
    assert handle._server.connection_count() == 0  # every connection thread ended
    for s in (half, deaf):
        s.close()


def test_a_slow_reader_of_a_large_answer_is_not_cut_off(served, monkeypatch):
    """The send timeout is per stall, not per answer: a client that keeps reading a
    large Fetch answer slowly (a consumer on a slow link) gets all of it, however long
    the whole takes. Only a client that stops reading is cut off."""
    from mqlog.server import _server
    from tests.test_server import fetch_v11

    monkeypatch.setattr(_server, "SEND_TIMEOUT_S", 1.5)
    broker, handle = served
    broker.create_topic("slow")
    with broker.producer() as producer:
        for _ in range(8):
            producer.send("slow", os.urandom(512 * 1000)).get(10)  # incompressible
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect(handle.address)
    assert handle._server.wait_connections(1, 10)
    [conn] = handle._server._conns
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # no autotune
    raw = Raw.__new__(Raw)
    raw.sock, raw.correlation = sock, 0
    slow_recv = sock.recv
    started = time.monotonic()

    def recv(n):  # ~1.5 MB/s: the whole answer takes ~2.7 s, each stall 0.25 s
        time.sleep(0.25)  # a slow link, not synchronisation
        got = b""
        while len(got) < min(n, 384 * 1024):
            chunk = slow_recv(min(n, 384 * 1024) - len(got))
            if not chunk:
                break
            got += chunk
        return got

    raw.sock = type("Slow", (), {"recv": staticmethod(recv), "sendall": sock.sendall,
                                 "close": sock.close})()
    [part] = fetch_v11(raw, "slow", [0], max_bytes=8 << 20, partition_max_bytes=8 << 20)
    assert time.monotonic() - started > 1.5  # slower than the send timeout in all
    assert part.error_code == ErrorCode.none and len(part.records) > 4_000_000
    sock.close()


def test_every_request_schema_answers_or_closes(served):
    """One zero-valued request of every API version kio knows: the server answers each
    (an error response for what it does not serve) and stays up."""
    from mqlog.server._codec import _build

    _, handle = served
    raw = Raw(handle.address)
    answered = 0
    for key in sorted(api_key_map):
        if key in MAY_WAIT:
            continue
        for version in range(0, 20):
            try:
                cls = load_request_schema(key, version)
            except Exception:
                continue
            request = _build(cls, ErrorCode.none)
            if key == 0:
                continue  # a Produce of acks=0 has no answer; produce is covered above
            raw.correlation += 1
            raw.send(raw.frame(request))
            frame = raw.recv()
            assert frame, f"API {key} v{version} closed the connection"
            assert struct.unpack_from(">i", frame)[0] == raw.correlation
            answered += 1
    assert answered > 200
    assert raw.call(api_versions_request(3)).error_code == ErrorCode.none
    raw.close()


# -- limits: request memory, idle connections, connection count -----------------------------

def padded(frame: bytes, size: int) -> bytes:
    """``frame`` grown to a ``size``-byte request: zeros after the body, which the server
    ignores (as Kafka does: trailing bytes come from newer clients' fields)."""
    body = frame[4:] + bytes(size - (len(frame) - 4))
    return struct.pack(">i", len(body)) + body


def long_poll(topic: str, max_wait_s: float = 30.0):
    from kio.schema.fetch.v11 import request as fr

    return fr.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(seconds=max_wait_s), min_bytes=1,
        max_bytes=1 << 16, isolation_level=0, session_id=0, session_epoch=-1,
        topics=(fr.FetchTopic(topic=topic, partitions=(fr.FetchPartition(
            partition=0, current_leader_epoch=-1, fetch_offset=0, log_start_offset=-1,
            partition_max_bytes=1 << 16),)),),
        forgotten_topics_data=(), rack_id="")


def test_request_memory_is_bounded_across_connections_and_nothing_is_dropped():
    """With ``queued_max_request_bytes`` used up by requests in progress, the next
    connection's request waits unread (back-pressure) until they are answered, then is
    served intact; one request larger than the whole budget is refused."""
    from kio.schema.fetch.v11.response import FetchResponse

    broker = mqlog.open()
    handle = broker.serve(port=0, queued_max_request_bytes=64 * 1024,
                          max_request_bytes=1 << 20)
    server = handle._server
    raws = []
    try:
        broker.create_topic("mem")
        for _ in range(2):  # two 30 KiB long polls hold 60 KiB of the 64 KiB
            raws.append(Raw(handle.address))
            raws[-1].send(padded(raws[-1].frame(long_poll("mem"), correlation=5),
                                 30 * 1024))
        assert server.wait_in_flight(2, 10)
        assert server.memory.used == 60 * 1024
        late = Raw(handle.address)
        raws.append(late)
        late.send(padded(late.frame(produce_request("mem", wire_batch([b"late"])),
                                    correlation=6), 30 * 1024))
        assert server.memory.wait_for_waiters(1, 10)  # read up to its size, no further
        assert broker.messages("mem") == [] and server.memory.used == 60 * 1024
        with broker.producer() as producer:  # answers the long polls: memory comes back
            producer.send("mem", b"wake").get(10)
        for raw in raws[:2]:
            cid, answer = raw.parse(raw.recv(), 1, 11)
            assert cid == 5 and answer.error_code == ErrorCode.none
            assert isinstance(answer, FetchResponse)
            assert answer.responses[0].partitions[0].records  # the woken poll's record
        cid, answer = late.parse(late.recv(), 0, 9)
        part = answer.responses[0].partition_responses[0]
        assert (cid, part.error_code, part.base_offset) == (6, ErrorCode.none, 1)
        assert [r.value for r in broker.messages("mem")] == [b"wake", b"late"]
        assert server.wait_in_flight(0, 10) and server.memory.used == 0
        # Alone larger than the budget (though within max_request_bytes): refused.
        big = Raw(handle.address)
        raws.append(big)
        big.send(padded(big.frame(api_versions_request(3)), 100 * 1024))
        assert big.recv() == b""
        assert late.call(api_versions_request(3)).error_code == ErrorCode.none
        assert server.memory.used == 0
    finally:
        for raw in raws:
            raw.close()
        handle.close()
        broker.close()


def test_idle_and_trickling_connections_are_closed():
    """``idle_timeout_s`` counts from the last complete request: a silent connection
    and one that trickles a frame a byte at a time (never silent for long) are both
    closed; one that keeps completing requests is not."""
    import select

    broker = mqlog.open()
    handle = broker.serve(port=0, idle_timeout_s=0.5)
    silent = socket.create_connection(handle.address, timeout=10)
    trickler = socket.create_connection(handle.address, timeout=10)
    healthy = Raw(handle.address, timeout=10)
    try:
        trickler.sendall(struct.pack(">i", 200))
        sent, closed = 0, False
        deadline = time.monotonic() + 10  # a watchdog; the server closes it after 0.5 s
        while sent < 200 and time.monotonic() < deadline:
            # Wait for the close (readable at end of stream); the timeout paces bytes.
            readable, _, _ = select.select([trickler], [], [], 0.02)
            if readable:
                try:
                    closed = trickler.recv(1) == b""
                except ConnectionResetError:
                    closed = True
                break
            try:
                trickler.send(b"\0")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += 1
            if sent % 10 == 0:  # the healthy client completes a request now and then
                assert healthy.call(api_versions_request(3)).error_code == ErrorCode.none
        assert closed and sent < 200, f"trickled {sent} bytes without being closed"
        assert silent.recv(1) == b""  # closed by the server, not the 10 s timeout
        assert healthy.call(api_versions_request(3)).error_code == ErrorCode.none
    finally:
        for s in (silent, trickler):
            s.close()
        healthy.close()
        handle.close()
        broker.close()


def test_connections_beyond_max_connections_are_refused(caplog):
    broker = mqlog.open()
    handle = broker.serve(port=0, max_connections=2)
    server = handle._server
    raws = []
    try:
        for _ in range(2):
            raws.append(Raw(handle.address))
            assert raws[-1].call(api_versions_request(3)).error_code == ErrorCode.none
        with caplog.at_level("WARNING", logger="mqlog.server"):
            extra = socket.create_connection(handle.address, timeout=10)
            try:
                assert extra.recv(1) == b""  # closed at once, unanswered
            except ConnectionResetError:
                pass
            finally:
                extra.close()
        assert "refusing connection" in caplog.text and "max_connections" in caplog.text
        assert server.connection_count() == 2
        raws.pop().close()  # a slot frees up
        assert server.wait_connections(1, 10)
        raws.append(Raw(handle.address))
        assert raws[-1].call(api_versions_request(3)).error_code == ErrorCode.none
    finally:
        for raw in raws:
            raw.close()
        handle.close()
        broker.close()
