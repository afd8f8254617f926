"""Produced records: Kafka's RecordBatch v2 (magic 2) from a Produce request, as columns.

Produce requests carry a ``records`` blob of one or more RecordBatch v2 (normally
one); :func:`decode_batches` checks each one (length, magic, CRC-32C), decompresses it
(gzip, snappy raw or xerial-framed, lz4 frame, zstd) and unpacks its records into the
columns mqlog stores (:class:`WireBatch`). The other direction, stored batches encoded
for Fetch responses, is ``_encoder.py``; the varints of both are ``_varint.py``.

Kafka layout (big-endian; varints are zigzag)::

    baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (2)
    | crc u32 (CRC-32C of everything after it) | attributes i16 | lastOffsetDelta i32
    | baseTimestamp i64 | maxTimestamp i64 | producerId i64 | producerEpoch i16
    | baseSequence i32 | recordCount i32 | records
    record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
    | keyLength varint | key | valueLength varint | value | headerCount varint
    | (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*

Speed (pure Python, so per-record bytecode is what costs; figures on a 2-core VM):
walking the varints of a record costs about a microsecond, so decoding avoids it where
it can. It looks for *runs*: consecutive records with the same layout (same length,
same key and value sizes, no headers, timestamp deltas of the same width, offset
deltas counting up from 0), as batches of same-sized records are. The first record of
a run is decoded field by field; the rest of the run is checked with a few C calls per
fixed byte over extended slices (``p[start::stride]``; a run ends where one differs,
``lstrip`` counts the equal prefix), and one ``struct`` format per layout cuts the
keys and values of many records at once (~0.1 µs per record in all). Anything else
(headers, sizes that vary, offset deltas that do not count up, short runs) goes
through the record-at-a-time loop from where the runs stopped (~1 µs per record).
Both give the same result for the same bytes; ``tests/test_server_records.py`` checks
that.

A produced batch whose records are dense and plain can be served back to consumers
exactly as sent (:attr:`WireBatch.servable`, :meth:`WireBatch.wire`): the appender
puts it in the encoder's cache under the stored batch's key.

Message sets v0/v1 (magic 0/1) are not accepted: every client in the supported list
(kafka-python 3, librdkafka 2, aiokafka, Java 3+) writes v2 to a broker that offers
Produce v3+ (which requires v2).

Thread-safety: pure functions; the offset-delta tables have their own lock; the
compiled struct formats are a plain dict (single operations, and an entry lost to a
concurrent clear is compiled again).
"""

from __future__ import annotations

import struct
import threading
import zlib
from itertools import repeat
from operator import add
from typing import Any

from ..batch import (
    ATTR_CODEC_MASK,
    ATTR_CONTROL,
    ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL,
    crc32c,
    pack_headers,
)
from ._varint import ZIGZAG, read_uvarint, read_varint

__all__ = ["BATCH_HEAD_SIZE", "MAX_EXPANDED_BYTES", "MIN_RUN", "RECORD_COST", "SHARED_ATTRS",
           "WIRE_HEAD", "RecordError", "WireBatch", "decode_batches"]

_BATCH_HEAD = struct.Struct(">qiibIhiqqqhii")
BATCH_HEAD_SIZE = _BATCH_HEAD.size  # 61
_CRC_FROM = 21  # attributes start here: the CRC covers [21:]
_RECORDS_IN_BODY = BATCH_HEAD_SIZE - _CRC_FROM  # where records start in the CRC'd part
#: Base offset .. crc: the part of a batch Fetch may rewrite (the CRC does not cover it).
WIRE_HEAD = struct.Struct(">qiibI")
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_I32 = struct.Struct(">i")

#: Kafka's attribute bits that mqlog's stored header shares (codec excluded).
SHARED_ATTRS = ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL
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
        expanded: the memory its decoded records take, as counted against the
            ``max_expanded`` budget of :func:`decode_batches`.
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
        return WIRE_HEAD.pack(base_offset, len(body) + 9, leader_epoch, 2,
                               self._crc) + body



# -- decompression ----------------------------------------------------------------------

#: Default bound on the memory a Produce request's records take once decoded (all its
#: batches together): their bytes after decompression plus :data:`RECORD_COST` per
#: record. Compression ratios of 1000:1 (gzip) and far more (zstd) are easy to build,
#: and a decoded record costs Python objects (its value, key and timestamp) worth
#: several times a tiny record's bytes, so without a bound a request of a few kilobytes
#: could make the server allocate gigabytes (and, where memory is overcommitted, be
#: killed with every client). Clients' requests are a few megabytes at most
#: (batch.size, max.request.size), far below it.
MAX_EXPANDED_BYTES = 256 << 20
#: What one decoded record costs beyond its key and value bytes (a bytes object, list
#: slots, a timestamp int): measured ~50 bytes on CPython 3.11, rounded up.
RECORD_COST = 64


def _too_big(limit: int) -> RecordError:
    return RecordError("message_too_large",
                       f"the request's record batches expand to more than {limit} bytes "
                       "once decoded (decompressed, plus the cost of each record); send "
                       "smaller batches")


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
                   max_expanded: int = MAX_EXPANDED_BYTES,
                   max_batch_bytes: int | None = None) -> list[WireBatch]:
    """Check and unpack every RecordBatch v2 in ``data``.

    Args:
        max_records: refuse batches claiming more records than this (a corrupt count
            must not make us loop or allocate for billions).
        max_expanded: refuse (``message_too_large``) when the decoded records would
            take more than this many bytes, all batches together: their bytes after
            decompression plus :data:`RECORD_COST` per record. Checked before a batch
            is unpacked (and bounding its decompression), never after; each batch's
            ``expanded`` says how much it took.
        max_batch_bytes: refuse (``message_too_large``) a batch larger than this on
            the wire (the topic's ``max.message.bytes``), before its CRC is checked
            or anything of it decoded, in Kafka's order.

    Raises:
        RecordError: the data is truncated, has a bad length, magic or CRC, an unknown
            codec, or records that do not add up to the batch header; or a limit above.

    Cost: one copy of each batch (the CRC input, also the records' source); about
    0.1 µs per record for runs of same-layout records, about 1 µs otherwise.
    """
    out = []
    pos = 0
    n = len(data)
    budget = max_expanded  # the whole, for messages; max_expanded is what is left
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
        if max_batch_bytes is not None and end - pos > max_batch_bytes:
            raise RecordError("message_too_large",
                              f"a record batch of {end - pos} bytes exceeds the "
                              f"topic's max.message.bytes={max_batch_bytes}")
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
        # What the decoded records will take: RECORD_COST each (the count is checked
        # against the records' bytes while unpacking) plus the bytes they are cut from.
        expanded = count * RECORD_COST
        if codec:
            if expanded >= max_expanded:
                raise _too_big(budget)
            try:
                payload, start = _decompress(codec, body[_RECORDS_IN_BODY:],
                                             max_expanded - expanded), 0
            except RecordError as exc:
                if exc.code == "message_too_large":
                    raise _too_big(budget) from None
                raise
            except Exception as exc:
                raise RecordError("corrupt_message",
                                  f"the batch fails to decompress with codec {codec}: "
                                  f"{exc}") from None
        expanded += len(payload) - start
        if expanded > max_expanded:
            raise _too_big(budget)
        max_expanded -= expanded
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
    rv = read_varint
    zz = ZIGZAG  # 1- and 2-byte varints are decoded inline through it
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



def _layout(p: bytes, pos: int, end: int) -> tuple[int, ...] | None:
    """Field positions (relative to ``pos``) of a record with no headers, or None for
    a record the general loop must handle (headers, or malformed)."""
    try:
        z, q = read_uvarint(p, pos, end, 10)
        rec_end = q + (z >> 1)
        if z & 1 or rec_end > end:
            return None
        t = q + 1  # after the record attributes
        _, o = read_uvarint(p, t, end, 10)
        _, kl = read_uvarint(p, o, end, 10)
        kz, k = read_uvarint(p, kl, end, 10)
        klen = (kz >> 1) ^ -(kz & 1)
        vl = k + klen if klen >= 0 else k
        vz, v = read_uvarint(p, vl, end, 10)
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
                stamps = list(map(base_ts.__add__, ZIGZAG[:128]))
            timestamps.extend(map(stamps.__getitem__, p[t0:stop:stride]))
        else:
            raw = map(add, p[t0:stop:stride].translate(_LOW7),
                      map((128).__mul__, p[t0 + 1:stop:stride]))
            timestamps.extend(map(base_ts.__add__, map(ZIGZAG.__getitem__, raw)))
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
