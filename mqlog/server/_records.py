"""Kafka's RecordBatch v2 (magic 2) on the wire, to and from mqlog's stored batches.

Produce requests carry a ``records`` blob of one or more RecordBatch v2 (normally
one); :func:`decode_batches` checks each one (length, magic, CRC-32C), decompresses it
(gzip, snappy raw or xerial-framed, lz4 frame, zstd) and unpacks its records into the
columns mqlog stores. Fetch responses carry stored batches re-encoded by
:func:`encode_stored`: header fields map one to one (mqlog's header carries Kafka's
fields and uses Kafka's attribute bits for the timestamp type, transactional and
control flags), records are written uncompressed (the loopback wire does not need it
and clients decode every codec anyway), offsets keep their deltas so compacted batches
keep their gaps.

Kafka layout (big-endian; varints are zigzag)::

    baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (2)
    | crc u32 (CRC-32C of everything after it) | attributes i16 | lastOffsetDelta i32
    | baseTimestamp i64 | maxTimestamp i64 | producerId i64 | producerEpoch i16
    | baseSequence i32 | recordCount i32 | records
    record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
    | keyLength varint | key | valueLength varint | value | headerCount varint
    | (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*

Speed (pure Python, so per-record bytecode is what costs; figures on a 2-core VM):
walking the varints of a record costs about a microsecond, so both directions avoid it
where they can.

* Decoding looks for *runs*: consecutive records with the same layout (same length,
  same key and value sizes, no headers, timestamp deltas of the same width, offset
  deltas counting up from 0), as batches of same-sized records are. The first record
  of a run is decoded field by field; the rest of the run is checked with a few C
  calls per fixed byte over extended slices (``p[start::stride]``; a run ends where
  one differs, ``lstrip`` counts the equal prefix), and one ``struct`` format per
  layout cuts the keys and values of many records at once (~0.1 µs per record in
  all). Anything else (headers, sizes that vary, offset deltas that do not count up,
  short runs) goes through the record-at-a-time loop from where the runs stopped
  (~1 µs per record). Both give the same result for the same bytes;
  ``tests/test_server_records.py`` checks that.
* Encoding builds each column of a batch (record lengths, varints from tables of
  precomputed encodings, keys, values) with C-level ``map``, merges the pieces that
  are the same for every record, interleaves the columns by list slice assignment and
  joins once (~0.3 µs per record).
* A produced batch whose records are dense and plain is kept, as sent, in the
  encoded-batch cache under the key Fetch uses, so consumers that follow the producer
  get the producer's own bytes back (what a Kafka broker does) without any encoding.

Message sets v0/v1 (magic 0/1) are not accepted: every client in the supported list
(kafka-python 3, librdkafka 2, aiokafka, Java 3+) writes v2 to a broker that offers
Produce v3+ (which requires v2).

Thread-safety: pure functions; the encode cache and the lookup tables have their own
locks; the compiled struct formats are a plain dict (single operations, and an entry
lost to a concurrent clear is compiled again).
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from itertools import repeat
from operator import add, sub
from typing import Any, Sequence

from ..batch import (
    ATTR_CODEC_MASK,
    ATTR_CONTROL,
    ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL,
    DecodedBatch,
    crc32c,
    decode,
    pack_headers,
    unpack_headers,
)

__all__ = ["MAX_EXPANDED_BYTES", "RecordError", "WireBatch", "cache_wire", "decode_batches",
           "encode_stored"]

_BATCH_HEAD = struct.Struct(">qiibIhiqqqhii")
BATCH_HEAD_SIZE = _BATCH_HEAD.size  # 61
_CRC_FROM = 21  # attributes start here: the CRC covers [21:]
_RECORDS_IN_BODY = BATCH_HEAD_SIZE - _CRC_FROM  # where records start in the CRC'd part
_WIRE_HEAD = struct.Struct(">qiibI")  # base offset .. crc: the part Fetch may rewrite
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_I32 = struct.Struct(">i")

# Kafka's attribute bits that mqlog's stored header shares (codec excluded).
_SHARED_ATTRS = ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL
# Attribute bits a produced batch may carry and still be served back as sent.
_PLAIN_ATTRS = ATTR_CODEC_MASK | ATTR_TRANSACTIONAL


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
    """One decoded RecordBatch v2 from a Produce request, as columns.

    Attributes:
        keys: per record its key (None for a null key), or None when every key is null.
        values: per record its value (None for a null value).
        timestamps: per record its timestamp (ms).
        headers: per record its headers packed as :func:`mqlog.batch.pack_headers`
            does (``b""`` for none), or None when no record has headers.
        dense: the records' offset deltas count 0, 1, 2... and ``last_offset_delta``
            agrees (every client writes them so).
        size: bytes of the batch on the wire.
        expanded: bytes its records decompressed to (0 when not compressed).
    """

    __slots__ = ("attributes", "last_offset_delta", "base_timestamp", "max_timestamp",
                 "producer_id", "producer_epoch", "base_sequence", "keys", "values",
                 "timestamps", "headers", "size", "dense", "expanded", "_body", "_crc")

    @property
    def codec(self) -> int:
        return self.attributes & ATTR_CODEC_MASK

    @property
    def transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def servable(self) -> bool:
        """Whether the batch as sent, with its base offset set, is exactly what Fetch
        must return for it once stored (on a CreateTime topic): plain attributes,
        dense offsets, a true max timestamp and consistent producer fields."""
        return (self.dense and not self.attributes & ~_PLAIN_ATTRS
                and self.max_timestamp == max(self.timestamps)
                and (self.producer_id >= 0 or self.base_sequence == -1))

    def wire(self, base_offset: int, leader_epoch: int = 0) -> bytes:
        """The batch as sent, with ``base_offset`` and ``leader_epoch`` written in (the
        CRC does not cover them)."""
        body = self._body
        return _WIRE_HEAD.pack(base_offset, len(body) + 9, leader_epoch, 2,
                               self._crc) + body


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


# Precomputed encodings: lengths, offset deltas and timestamp deltas of ordinary records
# are small, so a table lookup (done by map() in C) replaces the encoding loop.
_TABLE_SIZE = 1 << 14
_ENC: list[bytes] = [_varint(i) for i in range(_TABLE_SIZE)]
_ENC_OF: dict[int, bytes] = dict(enumerate(_ENC))
_ENC_OF[-1] = b"\x01"  # null keys and values
# Zigzag decoding of the raw values of 1- and 2-byte varints.
_ZIGZAG: tuple[int, ...] = tuple((z >> 1) ^ -(z & 1) for z in range(_TABLE_SIZE))


def _v(n: int) -> bytes:
    return _ENC[n] if 0 <= n < _TABLE_SIZE else _varint(n)


def _varints(ints: Sequence[int]) -> list[bytes]:
    """The zigzag varints of a sequence of ints (table lookups in C when they fit)."""
    try:
        return list(map(_ENC_OF.__getitem__, ints))
    except KeyError:
        return [_v(i) for i in ints]


def _sizes(items: Sequence[bytes | None]) -> list[int]:
    """Lengths of a column, -1 for None."""
    try:
        return list(map(len, items))
    except TypeError:
        return [-1 if x is None else len(x) for x in items]


# -- decompression ----------------------------------------------------------------------

#: Default bound on the bytes a Produce request's compressed batches may expand to (all
#: of them together). Compression ratios of 1000:1 (gzip) and far more (zstd) are easy
#: to build, so without a bound a request of a few kilobytes could make the server
#: allocate gigabytes (and, where memory is overcommitted, be killed with every
#: client). Clients' batches are a few megabytes at most (batch.size, max.request.size).
MAX_EXPANDED_BYTES = 256 << 20


def _too_big(limit: int) -> RecordError:
    return RecordError("message_too_large",
                       f"the request's compressed record batches expand to more than "
                       f"{limit} bytes; send smaller batches")


def _into(decompress_into: Any, data: bytes, limit: int) -> bytes:
    """Decompress with a fixed-size output buffer: cramjam's ``*_into`` decoders stream
    and stop as soon as the buffer is full, so a bomb costs at most ``limit`` bytes.
    The buffer starts small and grows (x4) to ``limit``."""
    size = min(limit, max(1 << 16, 8 * len(data)))
    while True:
        buf = bytearray(size + 1)  # one spare byte tells "exactly full" from "more"
        try:
            n = decompress_into(data, buf)
        except Exception as exc:
            if "failed to write whole buffer" not in str(exc):
                raise
            n = size + 1
        if n <= size:
            return bytes(memoryview(buf)[:n])
        if size >= limit:
            raise _too_big(limit)
        size = min(limit, size * 4)


def _decompress(codec: int, data: bytes, limit: int = MAX_EXPANDED_BYTES) -> bytes:
    """``data`` decompressed with Kafka codec ``codec``.

    Raises:
        RecordError: ``message_too_large`` when the output would exceed ``limit`` bytes
            (checked before or while decompressing, never after); an unknown codec.
        Exception: the codec's own error for corrupt data.
    """
    if codec == 1:
        d = zlib.decompressobj(47)  # gzip or zlib container
        out = d.decompress(data, limit + 1)
        if len(out) > limit:
            raise _too_big(limit)
        if not d.eof:
            raise ValueError("the gzip stream is incomplete or truncated")
        return out
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
                block = data[pos:pos + n]
                if len(out) + cramjam.snappy.decompress_raw_len(block) > limit:
                    raise _too_big(limit)
                out += cramjam.snappy.decompress_raw(block)
                pos += n
            return bytes(out)
        if cramjam.snappy.decompress_raw_len(data) > limit:  # the stream's own preamble
            raise _too_big(limit)
        return bytes(cramjam.snappy.decompress_raw(data))
    if codec == 3:
        return _into(cramjam.lz4.decompress_into, data, limit)  # Kafka's LZ4: frames
    if codec == 4:
        return _into(cramjam.zstd.decompress_into, data, limit)
    raise RecordError("unsupported_compression_type",
                      f"compression codec id {codec} is not one of Kafka's 0..4")


# -- decoding a Produce request's records -----------------------------------------------

def decode_batches(data: bytes, max_records: int = 1 << 20,
                   max_expanded: int = MAX_EXPANDED_BYTES) -> list[WireBatch]:
    """Check and unpack every RecordBatch v2 in ``data``.

    Args:
        max_records: refuse batches claiming more records than this (a corrupt count
            must not make us loop or allocate for billions).
        max_expanded: refuse (``message_too_large``) when the compressed batches
            expand to more than this many bytes together; each batch's ``expanded``
            says how many it took (0 when uncompressed).

    Raises:
        RecordError: the data is truncated, has a bad length, magic or CRC, an unknown
            codec, or records that do not add up to the batch header.

    Cost: one copy of each batch (the CRC input, also the records' source); about
    0.1 µs per record for runs of same-layout records, about 1 µs otherwise.
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
        codec = attributes & ATTR_CODEC_MASK
        payload, start = body, _RECORDS_IN_BODY
        expanded = 0
        if codec:
            try:
                payload, start = _decompress(codec, body[_RECORDS_IN_BODY:],
                                             max_expanded), 0
                expanded = len(payload)
                max_expanded -= expanded
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
        wb.expanded = expanded
        wb._body = body
        wb._crc = crc
        try:
            _unpack(payload, start, count, base_ts, wb)
        except RecordError:
            raise
        except (IndexError, UnicodeDecodeError, ValueError, struct.error) as exc:
            raise RecordError("corrupt_message",
                              f"a record of the batch is malformed: {exc}") from None
        wb.dense = wb.dense and last_delta == count - 1
        out.append(wb)
        pos = end
    if not out:
        raise RecordError("corrupt_message", "the request carries no record batch")
    return out


def _unpack(p: bytes, pos: int, count: int, base_ts: int, wb: WireBatch) -> None:
    """Fill ``wb``'s columns from the ``count`` records in ``p[pos:]``."""
    keys: list = []
    values: list = []
    timestamps: list[int] = []
    end = len(p)
    done = 0
    if count >= MIN_RUN:
        pos, done = _unpack_runs(p, pos, end, count, base_ts, keys, values, timestamps)
    headers = None
    dense = True
    if done < count:
        pos, headers, dense = _unpack_loop(p, pos, end, done, count, base_ts, keys,
                                           values, timestamps)
    if pos != end:
        raise RecordError("corrupt_message", f"{end - pos} bytes follow the last record "
                          "of the batch")
    wb.keys = None if keys.count(None) == count else keys
    wb.values = values
    wb.timestamps = timestamps
    wb.headers = headers
    wb.dense = dense


# The general loop: one record at a time, every field decoded. Varints of one byte (by
# far the most common) are decoded inline.

def _unpack_loop(p: bytes, pos: int, end: int, i: int, count: int, base_ts: int,
                 keys: list, values: list, timestamps: list
                 ) -> tuple[int, list[bytes] | None, bool]:
    """Records ``i..count-1`` from ``pos``; returns (end position, packed headers or
    None, whether the offset deltas counted up)."""
    rv = _read_varint
    zz = _ZIGZAG  # 1- and 2-byte varints are decoded inline through it
    kappend, vappend, tappend = keys.append, values.append, timestamps.append
    headers: list[bytes] | None = None
    dense = True
    while i < count:
        b = p[pos]
        if b < 0x80:
            length = zz[b]
            pos += 1
        elif p[pos + 1] < 0x80:
            length = zz[(b & 0x7F) | (p[pos + 1] << 7)]
            pos += 2
        else:
            length, pos = rv(p, pos)
        rec_end = pos + length
        if length < 0 or rec_end > end:
            raise RecordError("corrupt_message", f"record {i} of length {length} runs past "
                              "the batch")
        pos += 1  # the record attributes (unused)
        b = p[pos]
        if b < 0x80:
            ts_delta = zz[b]
            pos += 1
        else:
            ts_delta, pos = rv(p, pos)
        b = p[pos]
        if b < 0x80:
            offset_delta = zz[b]
            pos += 1
        elif p[pos + 1] < 0x80:
            offset_delta = zz[(b & 0x7F) | (p[pos + 1] << 7)]
            pos += 2
        else:
            offset_delta, pos = rv(p, pos)
        if offset_delta != i:
            dense = False  # the broker assigns offsets in order anyway
        b = p[pos]
        if b < 0x80:
            klen = zz[b]
            pos += 1
        else:
            klen, pos = rv(p, pos)
        if klen < 0:
            kappend(None)
        else:
            kappend(p[pos:pos + klen])
            pos += klen
        b = p[pos]
        if b < 0x80:
            vlen = zz[b]
            pos += 1
        elif p[pos + 1] < 0x80:
            vlen = zz[(b & 0x7F) | (p[pos + 1] << 7)]
            pos += 2
        else:
            vlen, pos = rv(p, pos)
        if vlen < 0:
            vappend(None)
        else:
            vappend(p[pos:pos + vlen])
            pos += vlen
        if p[pos] == 0:
            nh = 0
            pos += 1
        else:
            nh, pos = rv(p, pos)
        if nh:
            if nh < 0 or nh > length:
                raise RecordError("corrupt_message", f"record {i} claims {nh} headers")
            pairs = []
            for _ in range(nh):
                hk, pos = rv(p, pos)
                if hk < 0:
                    raise RecordError("corrupt_message", "a record header has a null name")
                name = p[pos:pos + hk].decode("utf-8")
                pos += hk
                hv, pos = rv(p, pos)
                if hv < 0:
                    pairs.append((name, None))
                else:
                    pairs.append((name, p[pos:pos + hv]))
                    pos += hv
            if headers is None:
                headers = [b""] * i
            headers.append(pack_headers(pairs))
        elif headers is not None:
            headers.append(b"")
        if pos != rec_end:
            raise RecordError("corrupt_message", f"record {i} is {length} bytes long but "
                              f"its fields take {length + pos - rec_end}")
        tappend(base_ts + ts_delta)
        i += 1
    return pos, headers, dense


# Runs of same-layout records. A run's layout comes from decoding its first record; the
# run extends while every byte that the layout fixes (record length, key and value
# lengths, the zero header count) is equal, the timestamp delta varints have the same
# width, and the offset deltas are exactly the next indexes (checked against a table
# of their encodings). Soundness: each record of a run then decodes, field by field,
# exactly as the general loop would decode it.

MIN_RUN = 16  # shorter runs cost more than the general loop
_CONT = bytes.maketrans(bytes(range(256)), bytes(128) + b"\x01" * 128)  # continuation bit
_LOW7 = bytes.maketrans(bytes(range(256)), bytes(range(128)) * 2)  # b & 0x7F
_BYTE = [bytes((b,)) for b in range(256)]
# Offset deltas whose varints take 1, 2, 3 bytes: [_WIDTH_START[w], _WIDTH_START[w+1]).
_WIDTH_START = (0, 0, 64, 8192, 1 << 20)
_offsets_lock = threading.Lock()  # guards growing _offset_columns
_offset_columns: dict[int, list[bytes]] = {}


def _offset_table(width: int, stop: int) -> list[bytes]:
    """For offset deltas of varint ``width`` from the first of that width to at least
    ``stop`` (exclusive): byte j of each delta's varint, as one bytes per j."""
    lo = _WIDTH_START[width]
    cols = _offset_columns.get(width)
    if cols is None or lo + len(cols[0]) < stop:
        with _offsets_lock:
            cols = _offset_columns.get(width)
            have = lo + (len(cols[0]) if cols else 0)
            if have < stop:
                hi = min(_WIDTH_START[width + 1], max(stop, 2 * have, lo + 8192))
                # Byte j of the varint of d: bits 7j.. of 2d, continuation bit but last.
                cols = [bytes([((d << 1) >> (7 * j)) & 0x7F | (0x80 if j < width - 1
                                                                 else 0)
                               for d in range(lo, hi)]) for j in range(width)]
                _offset_columns[width] = cols
    return cols


def _uvarint(p: bytes, pos: int) -> tuple[int, int]:
    """A raw (not zigzag-decoded) varint of up to 10 bytes; (value, next position)."""
    value = shift = 0
    while True:
        b = p[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint over 10 bytes")


def _layout(p: bytes, pos: int, end: int) -> tuple[int, ...] | None:
    """Field positions (relative to ``pos``) of a record with no headers, or None for
    a record the general loop must handle (headers, or malformed)."""
    try:
        z, q = _uvarint(p, pos)
        rec_end = q + (z >> 1)
        if z & 1 or rec_end > end:
            return None
        t = q + 1  # after the record attributes
        _, o = _uvarint(p, t)
        _, kl = _uvarint(p, o)
        kz, k = _uvarint(p, kl)
        klen = (kz >> 1) ^ -(kz & 1)
        vl = k + klen if klen >= 0 else k
        vz, v = _uvarint(p, vl)
        vlen = (vz >> 1) ^ -(vz & 1)
        h = v + vlen if vlen >= 0 else v
        if h + 1 != rec_end or p[h] != 0:
            return None
    except (IndexError, ValueError):
        return None
    return (rec_end - pos, q - pos, o - t, o - pos, kl - o, kl - pos, k - kl, klen,
            vl - pos, v - vl, vlen, h - pos)


def _equal_prefix(col: bytes, byte: bytes) -> int:
    """How many leading bytes of ``col`` are ``byte``."""
    return len(col) - len(col.lstrip(byte))


def _unpack_runs(p: bytes, pos: int, end: int, count: int, base_ts: int, keys: list,
                 values: list, timestamps: list) -> tuple[int, int]:
    """Unpack records while they come in runs; returns (position, records done)."""
    i = 0
    stamps = None
    while i < count:
        layout = _layout(p, pos, end)
        if layout is None:
            break
        (stride, lsize, tsize, opos, osize, kpos, ksize, klen, vpos, vsize, vlen,
         hpos) = layout
        if tsize > 2 or osize > 3 or not _WIDTH_START[osize] <= i < \
                _WIDTH_START[osize + 1]:
            break
        m = min(count - i, (end - pos) // stride, _WIDTH_START[osize + 1] - i)
        for c in (*range(lsize), *range(kpos, kpos + ksize),
                  *range(vpos, vpos + vsize), hpos):
            m = min(m, _equal_prefix(p[pos + c:pos + m * stride:stride],
                                     _BYTE[p[pos + c]]))
        t0 = pos + lsize + 1
        for j in range(tsize):
            cont = p[t0 + j:pos + m * stride:stride].translate(_CONT)
            m = min(m, _equal_prefix(cont, b"\x01" if j < tsize - 1 else b"\x00"))
        if m < MIN_RUN and i + m < count:
            break
        stop = pos + m * stride
        table = _offset_table(osize, i + m)
        first = i - _WIDTH_START[osize]
        if any(p[pos + opos + j:stop:stride] != table[j][first:first + m]
               for j in range(osize)):
            break  # offset deltas that do not count up: the general loop keeps them
        if tsize == 1:
            if stamps is None:  # the 64 smallest deltas either side, shared objects
                stamps = list(map(base_ts.__add__, _ZIGZAG[:128]))
            timestamps.extend(map(stamps.__getitem__, p[t0:stop:stride]))
        else:
            raw = map(add, p[t0:stop:stride].translate(_LOW7),
                      map((128).__mul__, p[t0 + 1:stop:stride]))
            timestamps.extend(map(base_ts.__add__, map(_ZIGZAG.__getitem__, raw)))
        # Keys and values: one struct format cuts every record of a chunk of the run.
        fmt = []
        done = 0  # bytes of the record the format covers so far
        for start, size in ((kpos + ksize, klen), (vpos + vsize, vlen)):
            if size >= 0:
                fmt.append(f"{start - done}x{size}s")
                done = start + size
        if fmt:
            cut = _cut_records("".join(fmt) + f"{stride - done}x", p, pos, m, stride)
        if klen < 0:
            keys.extend(repeat(None, m))
        else:
            keys.extend(cut if vlen < 0 else cut[0::2])
        if vlen < 0:
            values.extend(repeat(None, m))
        else:
            values.extend(cut if klen < 0 else cut[1::2])
        pos = stop
        i += m
    return pos, i


_CHUNK = 256  # records per compiled struct (compiling costs ~40 ns per record)
_structs: dict[str, tuple[struct.Struct, struct.Struct]] = {}  # by record format


def _cut_records(fmt: str, p: bytes, pos: int, m: int, stride: int) -> list[bytes]:
    """The ``s`` fields of ``fmt`` (one record's layout) for ``m`` records from ``pos``:
    struct makes the bytes objects in C, ~25 ns each against ~200 for slicing."""
    pair = _structs.get(fmt)
    if pair is None:
        if len(_structs) >= 64:  # layouts seen come and go; keep the cache bounded
            _structs.clear()
        pair = _structs[fmt] = (struct.Struct(fmt * _CHUNK), struct.Struct(fmt))
    chunk, one = pair
    out: list[bytes] = []
    step = _CHUNK * stride
    full = pos + (m // _CHUNK) * step
    for at in range(pos, full, step):
        out += chunk.unpack_from(p, at)
    if full < pos + m * stride:
        for fields in one.iter_unpack(memoryview(p)[full:pos + m * stride]):
            out += fields
    return out


# -- encoding stored batches for Fetch --------------------------------------------------

_cache_lock = threading.Lock()  # guards _cache and _cache_size
_cache: OrderedDict[tuple, bytes] = OrderedDict()
_CACHE_BYTES = 32 << 20
_cache_size = 0


def cache_wire(cache_key: tuple, wire: bytes, leader_epoch: int = 0) -> None:
    """Remember ``wire`` as the encoding of the stored batch ``cache_key`` names (see
    :func:`encode_stored`); used for batches produced over the wire."""
    _remember((cache_key, leader_epoch), wire)


def _remember(key: tuple, wire: bytes) -> None:
    global _cache_size
    with _cache_lock:
        if key in _cache:
            return
        _cache[key] = wire
        _cache_size += len(wire)
        while _cache_size > _CACHE_BYTES and _cache:
            _, old = _cache.popitem(last=False)
            _cache_size -= len(old)


def encode_stored(raw: bytes, leader_epoch: int = 0, cache_key: Any = None) -> bytes:
    """A stored batch (as read from the store) as Kafka RecordBatch v2 bytes,
    uncompressed.

    Args:
        cache_key: when given (``(topic id, partition, base offset, stored crc)``), the
            encoding is kept in a small LRU so consumers reading the same batch neither
            decode nor re-encode it.

    Raises:
        CorruptStoreError: the stored batch is damaged.

    Cost: a cache hit is a dict lookup; otherwise decoding the stored batch and about
    0.3 µs per record.
    """
    key = None
    if cache_key is not None:
        key = (cache_key, leader_epoch)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    out = _encode(decode(raw), leader_epoch)
    if key is not None:
        _remember(key, out)
    return out


_tables_lock = threading.Lock()  # guards building _tables
_tables: dict[str, list] = {}


def _table(name: str) -> list:
    """A lookup table built on first use (each costs ~10 ms and ~1 MB).

    ``"mid"``: per offset delta d, timestamp delta 0 and d (a record's middle when its
    timestamp is the batch's first); ``"mid-len"``: their lengths; ``"enc-len"``: the
    lengths of ``_ENC``; ``"null-key-value"``: per value length v, the null key's
    length (-1) and v; ``"start"``: per record length L, L and the record attributes
    (0); ``"next"``: the same after the previous record's header count (0).
    """
    table = _tables.get(name)
    if table is None:
        with _tables_lock:
            table = _tables.get(name)
            if table is None:
                table = _tables[name] = _build_table(name)
    return table


def _build_table(name: str) -> list:
    if name == "mid":
        return [b"\0" + e for e in _ENC]
    if name.endswith("-len"):
        return list(map(len, _table(name[:-4]) if name != "enc-len" else _ENC))
    if name == "null-key-value":
        return [b"\x01" + e for e in _ENC]
    if name == "start":
        return [e + b"\0" for e in _ENC]
    if name == "next":
        return [b"\0" + e + b"\0" for e in _ENC]
    raise AssertionError(name)


def _lookup(table: list, ints: list[int], default: Any) -> list:
    """``table[i]`` for every i, or ``default(i)`` for all when one is out of range."""
    first = ints[0]
    if ints.count(first) == len(ints):  # one C pass; common (same-sized records)
        return [table[first] if 0 <= first < len(table) else default(first)] * len(ints)
    if 0 <= min(ints) and max(ints) < len(table):
        return list(map(table.__getitem__, ints))
    return [default(i) for i in ints]


def _same(ints: list[int]) -> int | list[int]:
    """The one value of ``ints`` when they are all equal, else ``ints``."""
    first = ints[0]
    return first if ints.count(first) == len(ints) else ints


def _width(n: int) -> int:
    return len(_v(n))


def _encoded_column(ints: list[int]) -> tuple[list[bytes], int | list[int]]:
    """The varints of ``ints`` and their lengths: one int when they all have the same
    (varint widths grow with the distance from 0, so the extremes decide)."""
    first = ints[0]
    if ints.count(first) == len(ints):
        enc = _v(first)
        return [enc] * len(ints), len(enc)
    enc_list = _varints(ints)
    lo, hi = min(ints), max(ints)
    wlo, whi = _width(lo), _width(hi)
    if wlo == whi and (lo >= 0 or hi < 0 or wlo == 1):
        return enc_list, wlo
    return enc_list, list(map(len, enc_list))


def _interleave(columns: list[Sequence[Any]], n: int) -> list[Any]:
    """Record by record, one item of each column (list slice assignment: no tuples)."""
    k = len(columns)
    out: list[Any] = [None] * (k * n)
    for j, column in enumerate(columns):
        out[j::k] = column
    return out


def _header_section(packed: bytes) -> bytes:
    """One record's header count and headers, from mqlog's packed form."""
    if not packed:
        return b"\0"
    pairs = unpack_headers(packed)
    out = [_v(len(pairs))]
    for name, value in pairs:
        nb = name.encode()
        out.append(_v(len(nb)))
        out.append(nb)
        if value is None:
            out.append(b"\x01")
        else:
            out.append(_v(len(value)))
            out.append(value)
    return b"".join(out)


def _encode(batch: DecodedBatch, leader_epoch: int) -> bytes:
    """Kafka bytes for a decoded stored batch.

    Every record is ``length, attributes, timestamp delta, offset delta, key, value,
    headers``. The records are built as columns of pieces (one entry per record) that
    are joined once; pieces that are the same for every record are merged with their
    neighbours through lookup tables so the join handles as few pieces as possible
    (five per record for keyless records without headers).
    """
    n = batch.count
    base = batch.base_offset
    first_ts = batch.first_timestamp
    offsets = batch.offsets
    timestamps = batch.timestamps
    keys = batch.keys
    values = batch.values
    dense = type(offsets) is range
    columns: list[Any] = []  # per record, the pieces after its length and attributes
    lengths: list[list[int]] = []  # per-record lengths of the columns that vary
    const = 2  # attributes and the header count
    if timestamps is None and dense and n <= _TABLE_SIZE:
        columns.append(_table("mid")[:n])
        lengths.append(_table("mid-len")[:n])
    else:
        if timestamps is None:
            ts_enc: list[bytes] = [b"\0"] * n
            ts_len: int | list[int] = 1
        else:
            ts_enc, ts_len = _encoded_column(list(map(sub, timestamps, repeat(first_ts))))
        columns.append(ts_enc)
        if dense and n <= _TABLE_SIZE:
            columns.append(_ENC[:n])
            lengths.append(_table("enc-len")[:n])
        else:
            off_enc, off_len = _encoded_column(
                list(range(n)) if dense else list(map(sub, offsets, repeat(base))))
            columns.append(off_enc)
            const, lengths = _add_length(const, lengths, off_len)
        const, lengths = _add_length(const, lengths, ts_len)
    if keys is not None:
        key_sizes = _sizes(keys)
        enc, enc_len = _encoded_column(key_sizes)
        columns.append(enc)
        const, lengths = _add_length(const, lengths, enc_len)
        if min(key_sizes) < 0:
            keys = [b"" if k is None else k for k in keys]
            key_sizes = list(map(len, keys))
        columns.append(keys)
        const, lengths = _add_length(const, lengths, _same(key_sizes))
    sizes = _sizes(values)
    if keys is None:  # the null key's length goes with the value's
        enc = _lookup(_table("null-key-value"), sizes, lambda v: b"\x01" + _v(v))
        enc_len = len(enc[0]) if enc.count(enc[0]) == n else list(map(len, enc))
    else:
        enc, enc_len = _encoded_column(sizes)
    columns.append(enc)
    const, lengths = _add_length(const, lengths, enc_len)
    if min(sizes) < 0:
        values = [b"" if x is None else x for x in values]
        sizes = list(map(len, values))
    columns.append(values)
    const, lengths = _add_length(const, lengths, _same(sizes))
    if batch.headers is not None:
        sections = list(map(_header_section, batch.headers))
        columns.append(sections)
        const -= 1  # counted a header count of 0
        const, lengths = _add_length(const, lengths, list(map(len, sections)))
    if lengths:
        total = lengths[0]
        for more in lengths[1:]:
            total = list(map(add, total, more))
        total = list(map(const.__add__, total))
    else:
        total = [const] * n
    if batch.headers is None:
        # The header count (0) of record i-1 goes with the length of record i.
        starts = _lookup(_table("next"), total, lambda n: b"\0" + _v(n) + b"\0")
        starts[0] = starts[0][1:]
        pieces = _interleave([starts, *columns], n)
        pieces.append(b"\0")
    else:
        starts = _lookup(_table("start"), total, lambda n: _v(n) + b"\0")
        pieces = _interleave([starts, *columns], n)
    records = b"".join(pieces)
    attributes = batch.attributes & _SHARED_ATTRS
    tail = struct.pack(">hiqqqhii", attributes, batch.last_offset - base, first_ts,
                       batch.max_timestamp, batch.producer_id, batch.producer_epoch,
                       batch.base_sequence, n) + records
    length = 4 + 1 + 4 + len(tail)  # leader epoch, magic, crc, rest
    return _WIRE_HEAD.pack(base, length, leader_epoch, 2, crc32c(tail)) + tail


def _add_length(const: int, lengths: list[list[int]], more: int | list[int]
                ) -> tuple[int, list[list[int]]]:
    if type(more) is int:
        return const + more, lengths
    return const, lengths + [more]
