"""Record batch encoding: round trips, codecs, checksums, damage detection."""

import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlog import batch
from mqlog.errors import CorruptStoreError, InvalidConfigError

values_st = st.lists(st.one_of(st.none(), st.binary(max_size=40)), min_size=1, max_size=30)


def _stored(body: bytes, base: int = 100) -> bytes:
    return batch.with_base_offset(base, body)


@settings(max_examples=150, deadline=None)
@given(values=values_st, data=st.data(),
       codec=st.sampled_from([None, "gzip", "snappy", "lz4", "zstd"]))
def test_round_trip(values, data, codec):
    n = len(values)
    keys = data.draw(st.one_of(st.none(), st.lists(
        st.one_of(st.none(), st.binary(max_size=10)), min_size=n, max_size=n)))
    timestamps = data.draw(st.lists(st.integers(0, 2**50), min_size=n, max_size=n))
    headers = data.draw(st.one_of(st.none(), st.lists(st.lists(st.tuples(
        st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))), max_size=3),
        min_size=n, max_size=n)))
    packed = None if headers is None else [batch.pack_headers(h) for h in headers]
    body = batch.encode(values, keys, timestamps, packed, codec=batch.codec_id(codec))
    decoded = batch.decode(_stored(body))
    assert decoded.base_offset == 100
    assert decoded.count == n
    assert decoded.last_offset == 100 + n - 1
    assert decoded.codec == codec
    assert decoded.max_timestamp == max(timestamps)
    recs = decoded.records("t", 3)
    assert [r.offset for r in recs] == list(range(100, 100 + n))
    assert [r.value for r in recs] == values
    assert [r.key for r in recs] == (keys if keys is not None else [None] * n)
    assert [r.timestamp for r in recs] == timestamps
    assert [r.serialized_value_size for r in recs] == [-1 if v is None else len(v)
                                                     for v in values]
    expected_headers = headers if headers is not None else [()] * n
    assert [r.headers for r in recs] == [list(h) if h else () for h in expected_headers]
    assert all(r.topic == "t" and r.partition == 3 for r in recs)


def test_slice_of_records_and_deserializers():
    body = batch.encode([b"1", b"2", b"3", None], [b"a", None, b"c", b"d"], 7)
    decoded = batch.decode(_stored(body, 10))
    recs = decoded.records("t", 0, 1, 3, key_deserializer=bytes.decode,
                           value_deserializer=int)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in recs] == [
        (11, None, 2, 7), (12, "c", 3, 7)]
    assert decoded.index_of(12) == 2
    assert decoded.index_of(0) == 0
    assert decoded.index_of(99) == 4


def test_sparse_offsets_after_compaction():
    body = batch.encode([b"a", b"b"], None, [1, 2], offset_deltas=[0, 5])
    decoded = batch.decode(_stored(body, 20))
    assert list(decoded.offsets) == [20, 25]
    assert decoded.last_offset == 25
    assert decoded.index_of(21) == 1
    assert [r.offset for r in decoded.records("t", 0, decoded.index_of(21))] == [25]


def test_headers_sizes_match_kafka_python():
    packed = [batch.pack_headers([("h1", b"abc"), ("é", None)])]
    rec = batch.decode(_stored(batch.encode([b"v"], None, 1, packed))).records("t", 0)[0]
    assert rec.headers == [("h1", b"abc"), ("é", None)]
    assert rec.serialized_header_size == len("h1") + 3 + len("é".encode())


def test_records_without_headers_share_the_empty_tuple():
    # No list per headerless record: one object per record is all poll() allocates
    # (a list each made the cyclic GC's bookkeeping a third of poll's time). A mixed
    # batch gives () to the records that have no headers, too.
    plain = batch.decode(_stored(batch.encode([b"a", b"b"], [b"k", None], 1)))
    packed = [batch.pack_headers([("h", b"1")]), b""]
    mixed = batch.decode(_stored(batch.encode([b"a", b"b"], None, 1, packed)))
    recs = plain.records("t", 0) + mixed.records("t", 0)
    assert [r.headers for r in recs] == [(), (), [("h", b"1")], ()]
    assert all(type(r.headers) is tuple for r in recs if not r.headers)
    assert [r.serialized_header_size for r in recs] == [-1, -1, 2, -1]


def test_bad_headers_are_type_errors():
    with pytest.raises(TypeError, match="header 'x' value must be bytes"):
        batch.pack_headers([("x", "text")])
    with pytest.raises(TypeError, match="header name 1 must be str"):
        batch.pack_headers([(1, b"v")])
    with pytest.raises(TypeError, match="not a \\(name, value\\) pair"):
        batch.pack_headers([b"oops"])


def test_every_flipped_byte_after_base_offset_is_detected():
    stored = _stored(batch.encode([b"value-1", b"value-2"], [b"k", b"k"], [5, 6]))
    for i in range(8, len(stored)):
        damaged = bytearray(stored)
        damaged[i] ^= 0x40
        with pytest.raises(CorruptStoreError):
            batch.decode(bytes(damaged))


def test_truncated_and_wrong_version():
    stored = _stored(batch.encode([b"x"], None, 1))
    with pytest.raises(CorruptStoreError, match="shorter than its 53-byte header"):
        batch.decode(stored[:20])
    with pytest.raises(CorruptStoreError):
        batch.decode(stored[:-1])
    wrong = bytearray(stored)
    wrong[12] = 9  # magic
    with pytest.raises(CorruptStoreError, match="format version 9"):
        batch.decode(bytes(wrong), verify=False)


def test_crc_is_crc32c():
    # Known CRC-32C check value (RFC 3720 / iSCSI): "123456789" -> 0xE3069283.
    assert batch.crc32c(b"123456789") == 0xE3069283
    stored = _stored(batch.encode([b"x"], None, 1))
    (crc,) = struct.unpack_from(">I", stored, 8)
    assert crc == batch.crc32c(stored[12:])


def test_unknown_codec_name():
    with pytest.raises(InvalidConfigError, match="compression_type 'brotli'"):
        batch.codec_id("brotli")


def test_compression_shrinks_repetitive_payloads():
    values = [b"x" * 200] * 50
    plain = batch.encode(values, None, 1)
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        packed = batch.encode(values, None, 1, codec=batch.codec_id(codec))
        assert len(packed) < len(plain) / 4, codec


def test_equal_length_splitter_cache_is_bounded_by_records():
    """Columns of equal-length values are cut by a cached struct per (length, count),
    about 32 bytes per record: batches whose counts vary (linger) must not fill the
    cache with hundreds of large splitters."""
    for n in range(1, 1500):
        decoded = batch.decode(_stored(batch.encode([b"v"] * n)))
        assert decoded.values == (b"v",) * n
    held = sum(sys.getsizeof(s) for s in batch._EQUAL_SPLITTERS.values())
    assert held < 4 << 20, f"{len(batch._EQUAL_SPLITTERS)} splitters hold {held} bytes"
    # A column too big to cache is still cut in one unpack, and right.
    big = batch.decode(_stored(batch.encode([b"ab"] * 40_000, [b""] * 40_000)))
    assert big.values == (b"ab",) * 40_000 and big.keys == (b"",) * 40_000


def test_compaction_span_is_kept_past_the_last_record():
    body = batch.encode([b"a"], None, 1, offset_deltas=[0], last_offset_delta=3)
    decoded = batch.decode(_stored(body, 20))
    assert list(decoded.offsets) == [20]
    assert decoded.last_offset == 23
    assert [r.offset for r in decoded.records("t", 0)] == [20]
