"""mqlog serve's RecordBatch v2 codec (``mqlog/server/_decoder.py``, ``_encoder.py``).

Checked against kafka-python's record codec (an independent implementation: the one its
producer writes with and its consumer reads with), the decoder's run-at-a-time path
against its record-at-a-time loop (same bytes, same result or the same error), and end
to end with confluent-kafka through a server.
"""

from __future__ import annotations

import random
import struct
import sys
import time

import confluent_kafka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import batch as mbatch
from mqlog.server import _decoder
from mqlog.server._decoder import RecordError, decode_batches
from mqlog.server._encoder import encode_stored

TIMEOUT = 15.0
BASE_TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def kafka_records():
    """kafka-python's record module; dropped from sys.modules afterwards (another test
    module plants its own ``kafka`` package)."""
    from kafka.record import default_records

    yield default_records
    for name in [n for n in sys.modules if n == "kafka" or n.startswith("kafka.")]:
        del sys.modules[name]


# -- building batches ---------------------------------------------------------------------

def kafka_python_batch(default_records, records, offsets=None, codec=0, producer=None):
    """RecordBatch v2 bytes written by kafka-python's builder.

    ``records`` are (key, value, timestamp, headers) tuples; ``offsets`` defaults to
    0, 1, 2...; ``producer`` is (id, epoch, base sequence).
    """
    pid, epoch, seq = producer or (-1, -1, -1)
    builder = default_records.DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False, producer_id=pid,
        producer_epoch=epoch, base_sequence=seq, batch_size=1 << 30)
    for i, (key, value, ts, headers) in enumerate(records):
        offset = i if offsets is None else offsets[i]
        assert builder.append(offset, timestamp=ts, key=key, value=value,
                              headers=headers) is not None
    return bytes(builder.build())


def same_shape_records(rng, n, key_size, value_size, ts_step=0, null_values=False):
    """n records of one layout (the decoder's runs), with random bytes."""
    out = []
    for i in range(n):
        key = None if key_size is None else rng.randbytes(key_size)
        value = None if null_values else rng.randbytes(value_size)
        out.append((key, value, BASE_TS + i * ts_step, []))
    return out


def columns(wb):
    return wb.keys, wb.values, wb.timestamps, wb.headers


def expected_columns(records):
    keys = [k for k, _, _, _ in records]
    headers = [mbatch.pack_headers(h) for _, _, _, h in records]
    return (None if all(k is None for k in keys) else keys,
            [v for _, v, _, _ in records], [t for _, _, t, _ in records],
            headers if any(headers) else None)


def general_loop(data):
    """decode_batches with the runs path switched off: the record-at-a-time loop only."""
    saved = _decoder.MIN_RUN
    _decoder.MIN_RUN = 1 << 62
    try:
        return outcome(data)
    finally:
        _decoder.MIN_RUN = saved


def outcome(data):
    """The decoded columns of every batch, or the RecordError code."""
    try:
        return [(columns(wb), wb.dense) for wb in decode_batches(data)]
    except RecordError as exc:
        return exc.code


def with_crc(data):
    """Rewrite the batch CRC so a mutated batch reaches the record decoder."""
    data = bytearray(data)
    data[17:21] = struct.pack(">I", mbatch.crc32c(bytes(data[21:])))
    return bytes(data)


# -- decoding what kafka-python writes ------------------------------------------------------

header_st = st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=8))
record_st = st.tuples(
    st.none() | st.binary(max_size=12),
    st.none() | st.binary(max_size=150),
    st.integers(-(1 << 41), 1 << 41) | st.integers(-70, 70),
    st.lists(header_st, max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.lists(record_st, min_size=1, max_size=40),
       st.sampled_from(["dense", "spread", "swapped"]), st.booleans())
def test_decodes_what_kafka_python_writes(kafka_records, drafts, offsets, gzip):
    records = [(k, v, BASE_TS + t, h) for k, v, t, h in drafts]
    n = len(records)
    deltas = {"dense": list(range(n)), "spread": [3 * i for i in range(n)],
              # Ends at n - 1 like a dense batch, but not in order.
              "swapped": [0, 2, 1, *range(3, n)] if n >= 3 else list(range(n))}[offsets]
    data = kafka_python_batch(kafka_records, records, deltas, codec=1 if gzip else 0)
    [wb] = decode_batches(data)
    assert columns(wb) == expected_columns(records)
    assert wb.dense == (deltas == list(range(n)))
    assert general_loop(data) == outcome(data)


@settings(max_examples=120, deadline=None)
@given(n=st.integers(1, 300) | st.sampled_from([64 + 256 + 1, 64 + 512 + 255]),
       key_size=st.none() | st.sampled_from([0, 5, 63, 64, 200]),
       value_size=st.sampled_from([0, 1, 60, 100, 130, 8200]),
       ts_step=st.sampled_from([0, 1, 3, 40, 100_000]), null_values=st.booleans(),
       seed=st.integers(0, 1 << 30))
def test_runs_of_same_shape_records_decode_like_the_general_loop(
        kafka_records, n, key_size, value_size, ts_step, null_values, seed):
    rng = random.Random(seed)
    if value_size > 1000:
        n = min(n, 40)
    records = same_shape_records(rng, n, key_size, value_size, ts_step, null_values)
    data = kafka_python_batch(kafka_records, records)
    [wb] = decode_batches(data)
    assert columns(wb) == expected_columns(records)
    assert wb.dense
    assert general_loop(data) == outcome(data)


def test_runs_cover_offset_deltas_past_8192(kafka_records):
    """Offset deltas of 1, 2 and 3 bytes (boundaries 64 and 8192) and timestamp deltas
    of 1 and 2 bytes in one batch: every record comes out of the runs path."""
    rng = random.Random(7)
    records = [(b"k%04d" % (i % 10_000), rng.randbytes(20), BASE_TS + i // 100, [])
               for i in range(9000)]
    data = kafka_python_batch(kafka_records, records)
    body = data[_decoder._CRC_FROM:]
    keys, values, stamps = [], [], []
    pos, done = _decoder._unpack_runs(body, _decoder._RECORDS_IN_BODY, len(body), 9000,
                                      BASE_TS, keys, values, stamps)
    assert (pos, done) == (len(body), 9000)
    assert (keys, values, stamps) == expected_columns(records)[:3]
    [wb] = decode_batches(data)
    assert columns(wb) == expected_columns(records)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 1 << 30), n=st.sampled_from([16, 17, 70, 200]),
       flips=st.integers(1, 4), key_size=st.none() | st.just(6))
def test_mutated_records_get_the_same_answer_from_both_paths(
        kafka_records, seed, n, flips, key_size):
    rng = random.Random(seed)
    data = bytearray(kafka_python_batch(
        kafka_records, same_shape_records(rng, n, key_size, 30, ts_step=1)))
    for _ in range(flips):
        data[rng.randrange(_decoder.BATCH_HEAD_SIZE, len(data))] = rng.randrange(256)
    data = with_crc(data)
    assert general_loop(data) == outcome(data)


def test_malformed_batches_are_refused_with_kafka_codes(kafka_records):
    records = same_shape_records(random.Random(1), 20, 4, 10)
    good = kafka_python_batch(kafka_records, records)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    assert outcome(bytes(bad_crc)) == "corrupt_message"
    # A record longer than the batch, a trailing byte, a header with a null name.
    assert outcome(with_crc(good[:61] + b"\x7e" + good[62:])) == "corrupt_message"
    extra = good + b"\0"
    extra = extra[:8] + struct.pack(">i", len(extra) - 12) + extra[12:]
    assert outcome(with_crc(extra)) == "corrupt_message"
    null_name = kafka_python_batch(kafka_records, [(None, b"v", BASE_TS, [("h", b"x")])])
    at = null_name.rindex(b"\x02h")  # the header name's length (1) and name
    assert outcome(with_crc(null_name[:at] + b"\x01" + null_name[at + 2:])) == \
        "corrupt_message"
    magic = bytearray(good)
    magic[16] = 1
    assert outcome(bytes(magic)) == "unsupported_for_message_format"


# -- encoding for Fetch, read by kafka-python --------------------------------------------

stored_st = st.fixed_dictionaries({
    "values": st.lists(st.none() | st.binary(max_size=80), min_size=1, max_size=30),
    "keyed": st.booleans(),
    "stamps": st.sampled_from(["same", "rising", "any"]),
    "headers": st.booleans(),
    "sparse": st.booleans(),
    "codec": st.sampled_from([0, 0, 1, 3]),
    "base": st.sampled_from([0, 77, 1 << 40]),
    "seed": st.integers(0, 1 << 30),
})


def stored_batch(spec):
    """A stored mqlog batch and the records it holds (offset, ts, key, value, headers)."""
    rng = random.Random(spec["seed"])
    values = spec["values"]
    n = len(values)
    keys = [rng.choice([None, rng.randbytes(rng.randrange(9))]) for _ in range(n)] \
        if spec["keyed"] else None
    stamps = {"same": [BASE_TS] * n,
              "rising": [BASE_TS + 7 * i for i in range(n)],
              "any": [BASE_TS + rng.randrange(-(1 << 35), 1 << 35) for _ in range(n)],
              }[spec["stamps"]]
    headers = [[(rng.choice(["a", "é", "long-name"]), rng.choice([None, b"", b"hv"]))
                for _ in range(rng.randrange(3))] for _ in range(n)] \
        if spec["headers"] else None
    deltas = sorted(rng.sample(range(3 * n), n)) if spec["sparse"] else list(range(n))
    body = mbatch.encode(
        values, keys, stamps, None if headers is None else
        [mbatch.pack_headers(h) for h in headers], codec=spec["codec"],
        offset_deltas=deltas if spec["sparse"] else None, producer_id=5,
        producer_epoch=1, base_sequence=9)
    base = spec["base"]
    expected = [(base + deltas[i], stamps[i], None if keys is None else keys[i],
                 values[i], [] if headers is None else headers[i]) for i in range(n)]
    return mbatch.with_base_offset(base, body), expected


def read_with_kafka_python(default_records, wire):
    batch = default_records.DefaultRecordBatch(wire)
    assert batch.validate_crc()
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (5, 1, 9)
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]


@settings(max_examples=150, deadline=None)
@given(stored_st)
def test_fetch_encoding_reads_back_in_kafka_python(kafka_records, spec):
    raw, expected = stored_batch(spec)
    wire = encode_stored(raw)
    assert read_with_kafka_python(kafka_records, wire) == expected
    # And the decoder takes its own encoding back to the same columns.
    [wb] = decode_batches(wire)
    assert wb.values == [v for _, _, _, v, _ in expected]
    assert wb.timestamps == [t for _, t, _, _, _ in expected]


def test_large_batches_encode_through_the_tables(kafka_records):
    """Past the precomputed tables (16384 records) and with large timestamp deltas."""
    n = 20_000
    values = [b"v%d" % i for i in range(n)]
    for stamps in (BASE_TS, [BASE_TS + 1000 * i for i in range(n)]):
        raw = mbatch.with_base_offset(10, mbatch.encode(
            values, None, stamps, producer_id=5, producer_epoch=1, base_sequence=9))
        got = read_with_kafka_python(kafka_records, encode_stored(raw))
        assert [o for o, *_ in got] == list(range(10, 10 + n))
        assert [v for _, _, _, v, _ in got] == values
        assert got[-1][1] == (BASE_TS if stamps == BASE_TS else stamps[-1])


def test_a_produced_batch_is_served_back_as_sent(kafka_records):
    records = same_shape_records(random.Random(3), 50, 3, 40, ts_step=2)
    data = kafka_python_batch(kafka_records, records, producer=(5, 1, 9))
    [wb] = decode_batches(data)
    assert wb.servable
    wire = wb.wire(1234)
    # The base offset written in; length, leader epoch (0), magic, CRC and body as sent.
    assert struct.unpack_from(">q", wire) == (1234,) and wire[8:] == data[8:]
    got = read_with_kafka_python(kafka_records, wire)
    assert got == [(1234 + i, t, k, v, h) for i, (k, v, t, h) in enumerate(records)]
    gaps = kafka_python_batch(kafka_records, records[:3], offsets=[0, 2, 5])
    assert not decode_batches(gaps)[0].servable


# -- end to end ---------------------------------------------------------------------------


def produce_and_consume(handle, topic, records, partitions=1):
    """Produce (key, value, headers) records with confluent-kafka; consume them back
    with a second client; returns the consumed (key, value, headers, timestamp)."""
    producer = confluent_kafka.Producer({
        "bootstrap.servers": handle.bootstrap_servers, "linger.ms": 50,
        "log_level": 3})
    for key, value, headers in records:
        producer.produce(topic, value, key, headers=headers or None)
    assert producer.flush(TIMEOUT) == 0
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": handle.bootstrap_servers, "group.id": "g",
        "enable.auto.commit": False, "log_level": 3})
    consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in range(partitions)])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < len(records) and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1.0):
            assert msg.error() is None
            got.append((msg.key(), msg.value(), msg.headers() or [], msg.timestamp()))
    consumer.close()
    return got


def test_confluent_round_trip_of_runs_and_headers(served):
    """Same-shape records (runs on produce, the produced bytes served back on fetch)
    mixed with records carrying headers, read back by a second client and in-process."""
    broker, handle = served
    broker.create_topic("mix")
    rng = random.Random(11)
    records = [(b"key-%03d" % (i % 1000), rng.randbytes(64),
                [("h", b"%d" % i)] if i % 97 == 0 else None) for i in range(2000)]
    got = produce_and_consume(handle, "mix", records)
    assert [(k, v, h or []) for k, v, h, _ in got] == \
        [(k, v, h or []) for k, v, h in records]
    stored = broker.messages("mix")
    assert [(r.key, r.value) for r in stored] == [(k, v) for k, v, _ in records]
    assert [ts for *_, (_, ts) in got] == [r.timestamp for r in stored]


def forge_value(prefix: bytes, target_crc: int, timestamp: int) -> bytes:
    """``prefix`` + 4 bytes chosen so that the batch mqlog stores for a produced record
    with this value has the stored CRC ``target_crc``.

    CRC-32C is affine over GF(2): for messages of one length, crc(a ^ b ^ c) equals
    crc(a) ^ crc(b) ^ crc(c). So the CRC's change for each of the 32 free bits is
    independent of the others, and a 32x32 linear system picks the bits.
    """
    def stored_crc(tail: int) -> int:
        body = mbatch.encode([prefix + tail.to_bytes(4, "big")], None, [timestamp],
                             None, codec=0, producer_id=-1, producer_epoch=-1,
                             base_sequence=-1)
        return struct.unpack_from(">I", body)[0]

    zero = stored_crc(0)
    # Gaussian elimination: rows (crc change, tail bits that make it).
    rows = [(stored_crc(1 << i) ^ zero, 1 << i) for i in range(32)]
    want, tail = target_crc ^ zero, 0
    for bit in reversed(range(32)):
        pivot = next((r for r in rows if r[0] >> bit & 1), None)
        if pivot is None:
            continue
        rows.remove(pivot)
        rows = [(c ^ pivot[0], t ^ pivot[1]) if c >> bit & 1 else (c, t) for c, t in rows]
        if want >> bit & 1:
            want ^= pivot[0]
            tail ^= pivot[1]
    assert want == 0 and stored_crc(tail) == target_crc
    return prefix + tail.to_bytes(4, "big")


def fetch_values(raw, topic: str) -> list:
    """The values a Fetch v11 from offset 0 of ``topic``[0] returns."""
    import datetime

    from kio.schema.fetch.v11 import request as fr

    answer = raw.call(fr.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=1 << 20,
        isolation_level=0, session_id=0, session_epoch=-1, topics=(fr.FetchTopic(
            topic=topic, partitions=(fr.FetchPartition(
                partition=0, current_leader_epoch=-1, fetch_offset=0, log_start_offset=-1,
                partition_max_bytes=1 << 20),)),),
        forgotten_topics_data=(), rack_id=""))
    records = answer.responses[0].partitions[0].records
    return [v for wb in decode_batches(records) for v in wb.values]


def stored_crc_of(broker, topic: str) -> tuple:
    """(topic id, base offset, stored CRC, size) of the first batch of ``topic``[0]."""
    plog = broker._topics[topic].partitions[0]
    with broker._store.read() as txn:
        base, raw = next(iter(txn.batches(plog.topic_id, 0, 0)))
    return plog.topic_id, base, mbatch.header_fields(raw)[1], len(raw)


def test_two_brokers_in_one_process_never_share_cached_batches():
    """The encoded-batch cache is keyed by store: two brokers served in one process
    number topics and offsets alike, and here even the stored batches' checksums
    collide (a forged value), yet each serves its own records."""
    from tests.test_server import Raw, produce_request, wire_batch

    ts = 1_700_000_000_000
    first, second = mqlog.open(), mqlog.open()
    handles, raws = [], []
    try:
        for broker in (first, second):
            broker.create_topic("t", partitions=1)
            handles.append(broker.serve(port=0))
            raws.append(Raw(handles[-1].address))
        mine = b"A" * 24
        theirs = forge_value(b"B" * 20, struct.unpack_from(">I", mbatch.encode(
            [mine], None, [ts], None, codec=0, producer_id=-1, producer_epoch=-1,
            base_sequence=-1))[0], ts)
        for raw, value in zip(raws, (mine, theirs)):
            answer = raw.call(produce_request("t", wire_batch([value], timestamp=ts)))
            assert answer.responses[0].partition_responses[0].error_code == 0
        # The premise: everything a store-blind key could hold is equal.
        assert stored_crc_of(first, "t") == stored_crc_of(second, "t")
        assert fetch_values(raws[0], "t") == [mine]
        assert fetch_values(raws[1], "t") == [theirs]
        assert [r.value for r in second.messages("t")] == [theirs]
    finally:
        for raw in raws:
            raw.close()
        for handle in handles:
            handle.close()
        first.close()
        second.close()


def test_log_append_time_topics_serve_the_brokers_timestamps(served):
    broker, handle = served
    broker.create_topic("lat", config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    records = [(None, b"x" * 30, None) for _ in range(100)]
    got = produce_and_consume(handle, "lat", records)
    stored = broker.messages("lat")
    assert len(got) == len(stored) == 100
    assert {ts_type for *_, (ts_type, _) in got} == {confluent_kafka.TIMESTAMP_LOG_APPEND_TIME}
    assert [ts for *_, (_, ts) in got] == [r.timestamp for r in stored]
    assert all(ts >= before for *_, (_, ts) in got)


# -- decompression is bounded ----------------------------------------------------------------

def compressed(batch, codec):
    """``batch`` (an uncompressed RecordBatch v2) with its records compressed by ``codec``
    (1 gzip, 2 snappy in xerial framing, 3 lz4 frame, 4 zstd), length and CRC redone."""
    import zlib

    import cramjam

    records = batch[61:]
    if codec == 1:
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        packed = z.compress(records) + z.flush()
    elif codec == 2:
        block = bytes(cramjam.snappy.compress_raw(records))
        packed = b"\x82SNAPPY\x00" + bytes(8) + struct.pack(">i", len(block)) + block
    else:
        packed = bytes((cramjam.lz4 if codec == 3 else cramjam.zstd).compress(records))
    head = bytearray(batch[:61])
    head[21:23] = struct.pack(">h", codec)
    head[8:12] = struct.pack(">i", 61 - 12 + len(packed))
    return with_crc(bytes(head) + packed)


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_decompression_stops_at_the_limit(kafka_records, codec):
    # 4 MB of zeros compress to a few kilobytes (a "zip bomb" in miniature): refused
    # before the output passes the limit, not after it was allocated.
    bomb = compressed(kafka_python_batch(kafka_records, [(None, bytes(4 << 20), BASE_TS,
                                                          [])]), codec)
    assert len(bomb) < 300_000
    with pytest.raises(RecordError) as info:
        decode_batches(bomb, max_expanded=1 << 20)
    assert info.value.code == "message_too_large"
    # The limit counts all batches of the call together.
    with pytest.raises(RecordError) as info:
        decode_batches(bomb + bomb, max_expanded=(4 << 20) + 1000)
    assert info.value.code == "message_too_large"
    # Within the limit the same batch decodes, though it expands far more than the
    # decoder's first guess of the output size.
    [wb] = decode_batches(bomb, max_expanded=5 << 20)
    assert wb.values == [bytes(4 << 20)] and wb.expanded > 4 << 20


def test_a_compressed_bomb_is_refused_over_the_wire(kafka_records, monkeypatch):
    from tests.test_server import Raw, produce_request

    monkeypatch.setattr(_decoder, "MAX_EXPANDED_BYTES", 1 << 20)
    bomb = compressed(kafka_python_batch(kafka_records, [(None, bytes(4 << 20), BASE_TS,
                                                          [])]), 4)
    with mqlog.open() as broker:
        broker.create_topic("t", partitions=1)
        handle = broker.serve(port=0)
        raw = Raw(handle.address)
        try:
            answer = raw.call(produce_request("t", bomb))
            part = answer.responses[0].partition_responses[0]
            assert part.error_code == 10  # MESSAGE_TOO_LARGE
            assert "expand" in part.error_message
            assert broker.messages("t") == []
        finally:
            raw.close()
            handle.close()


def test_the_expansion_budget_counts_the_decoded_records_not_only_their_bytes(
        kafka_records):
    # Tiny records compress well and cost far more once decoded (a Python object per
    # key, value and timestamp) than their bytes: a budget of bytes alone let a request
    # of a few kilobytes take gigabytes. 20,000 one-byte records expand to ~200 KB but
    # take over a megabyte decoded.
    records = [(None, b"v", BASE_TS, [])] * 20_000
    for codec in (0, 1):
        data = kafka_python_batch(kafka_records, records)
        if codec:
            data = compressed(data, codec)
        with pytest.raises(RecordError) as info:
            decode_batches(data, max_expanded=1 << 20)
        assert info.value.code == "message_too_large"
        [wb] = decode_batches(data, max_expanded=4 << 20)
        assert len(wb.values) == 20_000 and wb.expanded > 1 << 20


def test_an_oversized_batch_is_refused_before_its_crc_or_records_are_read(kafka_records):
    # Kafka compares a batch's size with max.message.bytes first: an oversized batch
    # is never decompressed, and the answer is MESSAGE_TOO_LARGE even if it is also
    # damaged.
    bomb = compressed(kafka_python_batch(kafka_records, [(None, bytes(4 << 20), BASE_TS,
                                                          [])]), 1)
    damaged = bomb[:-1] + bytes([bomb[-1] ^ 0xFF])
    for data in (bomb, damaged):
        with pytest.raises(RecordError) as info:
            decode_batches(data, max_batch_bytes=len(bomb) - 1)
        assert info.value.code == "message_too_large"
        assert f"{len(bomb)} bytes" in str(info.value)
    [wb] = decode_batches(bomb, max_batch_bytes=len(bomb))
    assert wb.size == len(bomb)
