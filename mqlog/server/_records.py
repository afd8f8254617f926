"""Kafka's RecordBatch v2 (magic 2) on the wire, to and from mqlog's stored batches.

Produce requests carry a ``records`` blob of one or more RecordBatch v2 (normally
one); :func:`decode_batches` checks each one (length, magic, CRC-32C), decompresses it
(gzip, snappy raw or xerial-framed, lz4 frame, zstd) and unpacks its records. Fetch
responses carry stored batches re-encoded by :func:`encode_stored`: header fields map
one to one (mqlog's header carries Kafka's fields and uses Kafka's attribute bits for
the timestamp type, transactional and control flags), records are written uncompressed
(the loopback wire does not need it and clients decode every codec anyway), offsets
keep their deltas so compacted batches keep their gaps.

Kafka layout (big-endian; varints are zigzag)::

    baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (2)
    | crc u32 (CRC-32C of everything after it) | attributes i16 | lastOffsetDelta i32
    | baseTimestamp i64 | maxTimestamp i64 | producerId i64 | producerEpoch i16
    | baseSequence i32 | recordCount i32 | records
    record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
    | keyLength varint | key | valueLength varint | value | headerCount varint
    | (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*

Message sets v0/v1 (magic 0/1) are not accepted: every client in the supported list
(kafka-python 3, librdkafka 2, aiokafka, Java 3+) writes v2 to a broker that offers
Produce v3+ (which requires v2).

Thread-safety: pure functions; the encode cache has its own lock.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from typing import Any

from ..batch import (
    ATTR_CODEC_MASK,
    ATTR_CONTROL,
    ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL,
    DecodedBatch,
    crc32c,
    decode,
    unpack_headers,
)

__all__ = ["RecordError", "WireBatch", "decode_batches", "encode_stored"]

_BATCH_HEAD = struct.Struct(">qiibIhiqqqhii")
BATCH_HEAD_SIZE = _BATCH_HEAD.size  # 61
_CRC_FROM = 21  # attributes start here: the CRC covers [21:]
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_I32 = struct.Struct(">i")

# Kafka's attribute bits that mqlog's stored header shares (codec excluded).
_SHARED_ATTRS = ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL


class RecordError(ValueError):
    """A produced batch is malformed; ``code`` names the Kafka error to answer with
    (``"corrupt_message"``, ``"invalid_record"``, ``"unsupported_for_message_format"``
    or ``"unsupported_compression_type"``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class WireBatch:
    """One decoded RecordBatch v2 from a Produce request."""

    __slots__ = ("attributes", "last_offset_delta", "base_timestamp", "max_timestamp",
                 "producer_id", "producer_epoch", "base_sequence", "keys", "values",
                 "timestamps", "headers", "size")

    def __init__(self) -> None:
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.timestamps: list[int] = []
        self.headers: list[list[tuple[str, bytes | None]]] = []

    @property
    def codec(self) -> int:
        return self.attributes & ATTR_CODEC_MASK

    @property
    def transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)


# -- varints --------------------------------------------------------------------------

def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (up to 64 bits) at ``pos``; returns (value, next position)."""
    value = shift = 0
    while True:
        b = buf[pos]  # IndexError past the end: the caller turns it into RecordError
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7
        if shift > 63:
            raise RecordError("corrupt_message", "a varint in a record is over 10 bytes")


def _varint(n: int) -> bytes:
    """Zigzag-encode a signed 64-bit int."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return bytes((z,))
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = [_varint(i) for i in range(-1, 64)]  # the lengths and deltas of small records


def _v(n: int) -> bytes:
    return _SMALL[n + 1] if -1 <= n < 63 else _varint(n)


# -- decompression ----------------------------------------------------------------------

def _decompress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        return zlib.decompress(data, 47)  # gzip or zlib container
    import cramjam  # a dependency of mqlog; imported lazily like mqlog.batch does

    if codec == 2:
        if data.startswith(_XERIAL_MAGIC):
            # snappy-java's framing (Java and kafka-python producers): 16-byte header,
            # then blocks of (i32 length, raw snappy).
            out = bytearray()
            pos = 16
            while pos < len(data):
                n = _I32.unpack_from(data, pos)[0]
                pos += 4
                if n < 0 or pos + n > len(data):
                    raise ValueError("a xerial snappy block runs past the end")
                out += cramjam.snappy.decompress_raw(data[pos:pos + n])
                pos += n
            return bytes(out)
        return bytes(cramjam.snappy.decompress_raw(data))
    if codec == 3:
        return bytes(cramjam.lz4.decompress(data))  # Kafka uses the LZ4 frame format
    if codec == 4:
        return bytes(cramjam.zstd.decompress(data))
    raise RecordError("unsupported_compression_type",
                      f"compression codec id {codec} is not one of Kafka's 0..4")


# -- decoding a Produce request's records -----------------------------------------------

def decode_batches(data: bytes, max_records: int = 1 << 20) -> list[WireBatch]:
    """Check and unpack every RecordBatch v2 in ``data``.

    Args:
        max_records: refuse batches claiming more records than this (a corrupt count
            must not make us loop or allocate for billions).

    Raises:
        RecordError: the data is truncated, has a bad length, magic or CRC, an unknown
            codec, or records that do not add up to the batch header.
    """
    out = []
    pos = 0
    n = len(data)
    while pos < n:
        if n - pos < BATCH_HEAD_SIZE:
            if out:
                break  # a partial trailing batch: Kafka ignores it too
            raise RecordError("corrupt_message", f"the records ({n - pos} bytes) are "
                              f"shorter than a {BATCH_HEAD_SIZE}-byte batch header")
        (_base, length, _epoch, magic, crc, attributes, last_delta, base_ts, max_ts,
         pid, pepoch, base_seq, count) = _BATCH_HEAD.unpack_from(data, pos)
        if magic != 2:
            raise RecordError("unsupported_for_message_format",
                              f"record batch magic {magic} is not supported: only "
                              "RecordBatch v2 (magic 2) is accepted")
        end = pos + 12 + length
        if length < BATCH_HEAD_SIZE - 12 or end > n:
            raise RecordError("corrupt_message", f"record batch length {length} does not "
                              f"fit the {n - pos - 12} bytes left")
        body = data[pos + _CRC_FROM:end]
        if crc32c(body) != crc:
            raise RecordError("corrupt_message", "record batch fails its CRC-32C check")
        if not 0 < count <= max_records:
            raise RecordError("invalid_record", f"record batch count {count} is out of "
                              f"range 1..{max_records}")
        if attributes & ATTR_CONTROL:
            raise RecordError("invalid_record",
                              "clients may not produce control batches")
        payload = data[pos + BATCH_HEAD_SIZE:end]
        codec = attributes & ATTR_CODEC_MASK
        if codec:
            try:
                payload = _decompress(codec, payload)
            except RecordError:
                raise
            except Exception as exc:
                raise RecordError("corrupt_message",
                                  f"the batch fails to decompress with codec {codec}: "
                                  f"{exc}") from None
        wb = WireBatch()
        wb.attributes = attributes
        wb.last_offset_delta = last_delta
        wb.base_timestamp = base_ts
        wb.max_timestamp = max_ts
        wb.producer_id = pid
        wb.producer_epoch = pepoch
        wb.base_sequence = base_seq
        wb.size = end - pos
        try:
            _unpack_records(payload, count, base_ts, wb)
        except RecordError:
            raise
        except (IndexError, UnicodeDecodeError, ValueError) as exc:
            raise RecordError("corrupt_message",
                              f"a record of the batch is malformed: {exc}") from None
        out.append(wb)
        pos = end
    if not out:
        raise RecordError("corrupt_message", "the request carries no record batch")
    return out


def _unpack_records(p: bytes, count: int, base_ts: int, wb: WireBatch) -> None:
    rv = _read_varint
    keys, values, tss, hdrs = wb.keys, wb.values, wb.timestamps, wb.headers
    pos = 0
    plen = len(p)
    for i in range(count):
        length, pos = rv(p, pos)
        end = pos + length
        if length < 0 or end > plen:
            raise RecordError("corrupt_message", f"record {i} of length {length} runs past "
                              "the batch")
        pos += 1  # record attributes: unused
        ts_delta, pos = rv(p, pos)
        _offset_delta, pos = rv(p, pos)  # the broker assigns offsets in order anyway
        klen, pos = rv(p, pos)
        if klen < 0:
            keys.append(None)
        else:
            keys.append(p[pos:pos + klen])
            pos += klen
        vlen, pos = rv(p, pos)
        if vlen < 0:
            values.append(None)
        else:
            values.append(p[pos:pos + vlen])
            pos += vlen
        nh, pos = rv(p, pos)
        if nh < 0 or nh > length:
            raise RecordError("corrupt_message", f"record {i} claims {nh} headers")
        headers = []
        for _ in range(nh):
            hk, pos = rv(p, pos)
            if hk < 0:
                raise RecordError("corrupt_message", "a record header has a null name")
            name = p[pos:pos + hk].decode("utf-8")
            pos += hk
            hv, pos = rv(p, pos)
            if hv < 0:
                headers.append((name, None))
            else:
                headers.append((name, p[pos:pos + hv]))
                pos += hv
        if pos != end:
            raise RecordError("corrupt_message", f"record {i} is {length} bytes long but "
                              f"its fields take {length + pos - end}")
        tss.append(base_ts + ts_delta)
        hdrs.append(headers)
    if pos != plen:
        raise RecordError("corrupt_message", f"{plen - pos} bytes follow the last record "
                          "of the batch")
    if count != len(values):  # pragma: no cover - the loop guarantees it
        raise RecordError("corrupt_message", "record count mismatch")


# -- encoding stored batches for Fetch --------------------------------------------------

_cache_lock = threading.Lock()  # guards _cache
_cache: OrderedDict[tuple, bytes] = OrderedDict()
_CACHE_BYTES = 32 << 20
_cache_size = 0


def encode_stored(raw: bytes, leader_epoch: int = 0, cache_key: Any = None) -> bytes:
    """A stored batch (as read from the store) as Kafka RecordBatch v2 bytes,
    uncompressed.

    Args:
        cache_key: when given (e.g. ``(topic id, partition, base offset, crc)``), the
            encoding is kept in a small LRU so consumers reading the same batch neither
            decode nor re-encode it.

    Raises:
        CorruptStoreError: the stored batch is damaged.
    """
    global _cache_size
    if cache_key is not None:
        with _cache_lock:
            hit = _cache.get(cache_key)
            if hit is not None:
                _cache.move_to_end(cache_key)
                return hit
    out = _encode(decode(raw), leader_epoch)
    if cache_key is not None:
        with _cache_lock:
            if cache_key not in _cache:
                _cache[cache_key] = out
                _cache_size += len(out)
                while _cache_size > _CACHE_BYTES and _cache:
                    _, old = _cache.popitem(last=False)
                    _cache_size -= len(old)
    return out


def _encode(batch: DecodedBatch, leader_epoch: int) -> bytes:
    base = batch.base_offset
    first_ts = batch.first_timestamp
    timestamps = batch.timestamps
    keys = batch.keys
    values = batch.values
    headers = batch.headers
    v = _v
    parts = []
    for i, off in enumerate(batch.offsets):
        key = None if keys is None else keys[i]
        value = values[i]
        rec = [b"\0", v(0 if timestamps is None else timestamps[i] - first_ts),
               v(off - base)]
        if key is None:
            rec.append(b"\x01")  # zigzag(-1)
        else:
            rec.append(v(len(key)))
            rec.append(key)
        if value is None:
            rec.append(b"\x01")
        else:
            rec.append(v(len(value)))
            rec.append(value)
        raw_headers = None if headers is None else headers[i]
        if raw_headers:
            pairs = unpack_headers(raw_headers)
            rec.append(v(len(pairs)))
            for name, hv in pairs:
                nb = name.encode()
                rec.append(v(len(nb)))
                rec.append(nb)
                if hv is None:
                    rec.append(b"\x01")
                else:
                    rec.append(v(len(hv)))
                    rec.append(hv)
        else:
            rec.append(b"\0")
        body = b"".join(rec)
        parts.append(v(len(body)))
        parts.append(body)
    records = b"".join(parts)
    attributes = batch.attributes & _SHARED_ATTRS
    tail = struct.pack(">hiqqqhii", attributes, batch.last_offset - base, first_ts,
                       batch.max_timestamp, batch.producer_id, batch.producer_epoch,
                       batch.base_sequence, batch.count) + records
    length = 4 + 1 + 4 + len(tail)  # leader epoch, magic, crc, rest
    return struct.pack(">qiibI", base, length, leader_epoch, 2, crc32c(tail)) + tail
