"""Record batch encoding: the unit of storage (one LMDB value per batch).

The batch header carries Kafka's RecordBatch v2 fields, so converting to Kafka's wire
format is field by field; the layout itself is mqlog's own, chosen for pure Python:
fixed-width big-endian fields packed with :mod:`struct` and the records stored as
*columns* (all value lengths, then all value bytes...), so a whole batch is packed or
unpacked with a handful of C calls instead of a varint loop per record.

Layout, format version 1 (``MAGIC``)::

    header (53 bytes, HEADER struct)
      base_offset       u64   not covered by the CRC: assigned by the writer at commit
      crc               u32   CRC-32C of every byte after this field
      magic             u8    batch format version (1)
      attributes        u16   ATTR_* bits below; low 3 bits are the codec (Kafka's ids)
      last_offset_delta u32   last offset the batch covers minus base_offset: its last
                              record's, or, after compaction, the original batch's
      first_timestamp   i64   ms
      max_timestamp     i64   ms
      producer_id       i64   -1 when not idempotent
      producer_epoch    i16   -1 when not idempotent
      base_sequence     i32   -1 when not idempotent
      record_count      u32
    payload (compressed as a whole when a codec is set):
      offset deltas     count x u32    only with ATTR_SPARSE (after compaction)
      timestamps        count x i64    omitted with ATTR_UNIFORM_TS (all == first)
      key lengths       count x i32    omitted without ATTR_HAS_KEYS (all keys null)
      value lengths     count x i32    -1 = null (a tombstone)
      header lengths    count x i32    only with ATTR_HAS_HEADERS
      keys, values, headers           concatenated bytes of each column

A record's headers are packed as repeated ``u16 name length, name (UTF-8), i32 value
length (-1 = null), value``.

Thread-safety: the functions are pure; :class:`DecodedBatch` is immutable after
construction and may be shared.
"""

from __future__ import annotations

import struct
import threading
import zlib
from functools import partial
from itertools import accumulate, repeat
from typing import Any, Callable, Sequence

from .errors import CorruptStoreError, InvalidConfigError
from .records import ConsumerRecord

try:  # C-backed CRC-32C (SSE4.2); imported once, used on every batch.
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - the dependency is declared; keep a slow path
    _crc32c = None

__all__ = [
    "CODECS",
    "DecodedBatch",
    "HEADER",
    "MAGIC",
    "crc32c",
    "decode",
    "encode",
    "pack_headers",
]

MAGIC = 1
HEADER = struct.Struct(">QIBHIqqqhiI")
HEADER_SIZE = HEADER.size  # 53
_BASE = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_CRC_START = 12  # bytes [12:] are covered by the CRC

ATTR_CODEC_MASK = 0x07
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_SPARSE = 0x100
ATTR_HAS_HEADERS = 0x200
ATTR_HAS_KEYS = 0x400
ATTR_UNIFORM_TS = 0x800

# Kafka's codec ids, so the attribute maps to the wire format unchanged.
CODECS = {None: 0, "none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
_CODEC_NAMES = {0: None, 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _crc32c_slow(data: bytes) -> int:  # pragma: no cover - fallback only
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


crc32c: Callable[[bytes], int] = _crc32c or _crc32c_slow

try:
    from google_crc32c import extend as _crc32c_extend
except ImportError:  # pragma: no cover - the dependency is declared; keep a slow path
    _crc32c_extend = None


def _crc32c_of_parts(parts: list[bytes]) -> int:
    """CRC-32C of the concatenation of ``parts``, without concatenating them."""
    if _crc32c_extend is None:  # pragma: no cover - fallback only
        return crc32c(b"".join(parts))
    crc = 0
    for part in parts:
        crc = _crc32c_extend(crc, part)
    return crc


def _compressor(codec: int) -> Callable[[bytes], bytes]:
    if codec == 1:
        # wbits 31: the gzip container, as Kafka's gzip codec uses.
        return lambda data: zlib.compress(data, 6, 31)
    import cramjam  # imported lazily: only users of these codecs pay for it

    if codec == 2:
        return lambda data: bytes(cramjam.snappy.compress_raw(data))
    if codec == 3:
        return lambda data: bytes(cramjam.lz4.compress_block(data))
    if codec == 4:
        return lambda data: bytes(cramjam.zstd.compress(data))
    raise AssertionError(codec)


def _decompressor(codec: int) -> Callable[[bytes], bytes]:
    if codec == 1:
        return lambda data: zlib.decompress(data, 47)  # 47: auto-detect gzip/zlib
    import cramjam

    if codec == 2:
        return lambda data: bytes(cramjam.snappy.decompress_raw(data))
    if codec == 3:
        return lambda data: bytes(cramjam.lz4.decompress_block(data))
    if codec == 4:
        return lambda data: bytes(cramjam.zstd.decompress(data))
    raise CorruptStoreError(f"batch uses unknown compression codec id {codec}")


_compressors: dict[int, Callable[[bytes], bytes]] = {}
_decompressors: dict[int, Callable[[bytes], bytes]] = {}


def codec_id(name: str | None) -> int:
    """Kafka's codec id for a ``compression_type`` name.

    Raises:
        InvalidConfigError: the name is not one of None, gzip, snappy, lz4, zstd.
    """
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        raise InvalidConfigError(
            f"compression_type {name!r} is not supported: use None, 'gzip', 'snappy', "
            "'lz4' or 'zstd'"
        ) from None


def compress(codec: int, data: bytes) -> bytes:
    fn = _compressors.get(codec)
    if fn is None:
        fn = _compressors[codec] = _compressor(codec)
    return fn(data)


def decompress(codec: int, data: bytes) -> bytes:
    fn = _decompressors.get(codec)
    if fn is None:
        fn = _decompressors[codec] = _decompressor(codec)
    try:
        return fn(data)
    except CorruptStoreError:
        raise
    except Exception as exc:
        raise CorruptStoreError(
            f"a {_CODEC_NAMES.get(codec)} batch failed to decompress ({exc}); run "
            "`mqlog check` on the store"
        ) from exc


_HDR_NAME = struct.Struct(">H")
_HDR_VALUE = struct.Struct(">i")


def pack_headers(headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    """Pack one record's headers: ``[(name, value), ...]`` -> bytes.

    Raises:
        TypeError: a header is not a ``(str, bytes | None)`` pair.
    """
    parts = []
    for item in headers:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(
                f"header {item!r} is not a (name, value) pair: pass headers as a list "
                "of (str, bytes) tuples"
            ) from None
        if not isinstance(name, str):
            raise TypeError(f"header name {name!r} must be str, got {type(name).__name__}")
        raw = name.encode()
        parts.append(_HDR_NAME.pack(len(raw)))
        parts.append(raw)
        if value is None:
            parts.append(_HDR_VALUE.pack(-1))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            parts.append(_HDR_VALUE.pack(len(value)))
            parts.append(bytes(value))
        else:
            raise TypeError(
                f"header {name!r} value must be bytes or None, got "
                f"{type(value).__name__}: encode it first (e.g. value.encode())"
            )
    return b"".join(parts)


def unpack_headers(raw: bytes) -> list[tuple[str, bytes | None]]:
    """Inverse of :func:`pack_headers`."""
    out = []
    pos, end = 0, len(raw)
    while pos < end:
        (nlen,) = _HDR_NAME.unpack_from(raw, pos)
        pos += 2
        name = raw[pos : pos + nlen].decode()
        pos += nlen
        (vlen,) = _HDR_VALUE.unpack_from(raw, pos)
        pos += 4
        if vlen < 0:
            out.append((name, None))
        else:
            out.append((name, raw[pos : pos + vlen]))
            pos += vlen
    return out


def _column(items: Sequence[bytes | None]) -> tuple[list[int], bytes]:
    """Lengths (-1 for None) and the concatenated bytes of one column."""
    try:
        return list(map(len, items)), b"".join(items)  # fast path: no nulls
    except TypeError:
        return ([-1 if x is None else len(x) for x in items],
                b"".join([x for x in items if x is not None]))


def encode(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None = None,
    timestamps: Sequence[int] | int = 0,
    headers: Sequence[bytes] | None = None,
    *,
    codec: int = 0,
    offset_deltas: Sequence[int] | None = None,
    last_offset_delta: int | None = None,
    max_timestamp: int | None = None,
    log_append_time: bool = False,
    transactional: bool = False,
    control: bool = False,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> bytes:
    """Pack records into a batch body: everything but the 8-byte base offset.

    Args:
        values: record values (bytes, or None for a tombstone).
        keys: record keys, or None when every key is null.
        timestamps: one timestamp (ms) per record, or one int for all of them.
        headers: per record its packed headers (:func:`pack_headers`), or None when no
            record has headers.
        codec: Kafka codec id (:func:`codec_id`).
        offset_deltas: per record its offset minus the base offset, ascending; None
            means dense (0, 1, 2, ...).
        last_offset_delta: the offset span the batch covers, when it is longer than
            its records' (compaction keeps a cleaned batch's span, as Kafka does: the
            sequence numbers of an idempotent producer's batch run along it, and its
            window is rebuilt from it); None: the last record's delta.
        max_timestamp: ``max(timestamps)`` when the caller has it already (saves a
            pass over the column); None: computed here.

    Returns:
        The body; the writer prefixes ``base_offset`` with :func:`with_base_offset`.
    """
    n = len(values)
    assert n > 0, "a batch holds at least one record"
    attributes = codec
    cols: list[bytes] = []
    if offset_deltas is not None:
        attributes |= ATTR_SPARSE
        cols.append(struct.pack(f">{n}I", *offset_deltas))
        last_delta = offset_deltas[-1]
    else:
        last_delta = n - 1
    if last_offset_delta is not None:
        assert last_offset_delta >= last_delta, "the span covers every record"
        last_delta = last_offset_delta
    if isinstance(timestamps, int):
        first_ts = max_ts = timestamps
        attributes |= ATTR_UNIFORM_TS
    else:
        first_ts = timestamps[0]
        max_ts = max(timestamps) if max_timestamp is None else max_timestamp
        if first_ts == max_ts and min(timestamps) == first_ts:
            attributes |= ATTR_UNIFORM_TS
        else:
            cols.append(struct.pack(f">{n}q", *timestamps))
    blobs: list[bytes] = []
    if keys is not None:
        attributes |= ATTR_HAS_KEYS
        lens, blob = _column(keys)
        cols.append(struct.pack(f">{n}i", *lens))
        blobs.append(blob)
    lens, blob = _column(values)
    cols.append(struct.pack(f">{n}i", *lens))
    blobs.append(blob)
    if headers is not None:
        attributes |= ATTR_HAS_HEADERS
        cols.append(struct.pack(f">{n}i", *map(len, headers)))
        blobs.append(b"".join(headers))
    if log_append_time:
        attributes |= ATTR_LOG_APPEND_TIME
    if transactional:
        attributes |= ATTR_TRANSACTIONAL
    if control:
        attributes |= ATTR_CONTROL
    covered = [HEADER.pack(
        0, 0, MAGIC, attributes, last_delta, first_ts, max_ts,
        producer_id, producer_epoch, base_sequence, n,
    )[_CRC_START:]]
    if codec:
        covered.append(compress(codec, b"".join(cols + blobs)))
    else:
        covered += cols
        covered += blobs
    # One copy of the payload: the CRC is taken over the parts, then all are joined.
    return b"".join([_U32.pack(_crc32c_of_parts(covered)), *covered])


def with_base_offset(base_offset: int, body: bytes) -> bytes:
    """The stored batch: ``base_offset`` followed by an :func:`encode` body."""
    return _BASE.pack(base_offset) + body


def header_fields(data: bytes) -> tuple:
    """Unpack only the header of a stored batch (cheap: no payload work)."""
    if len(data) < HEADER_SIZE:
        raise CorruptStoreError(
            f"batch of {len(data)} bytes is shorter than its {HEADER_SIZE}-byte header"
        )
    return HEADER.unpack_from(data)


_new = tuple.__new__
# tuple.__new__ bound to ConsumerRecord in C (namedtuple's _make is a Python function).
_make_record = partial(tuple.__new__, ConsumerRecord)


class DecodedBatch:
    """A stored batch, checked and unpacked into columns.

    Immutable after construction; thread-safe.

    Attributes:
        base_offset, last_offset, count, first_timestamp, max_timestamp, attributes,
        producer_id, producer_epoch, base_sequence: header fields.
        offsets: tuple/range of every record's offset.
        timestamps, keys, values, headers: per-record columns (headers as packed bytes
            or None).
    """

    __slots__ = (
        "base_offset", "last_offset", "count", "first_timestamp", "max_timestamp",
        "attributes", "producer_id", "producer_epoch", "base_sequence",
        "offsets", "timestamps", "keys", "values", "headers", "_key_sizes", "_value_sizes",
    )

    def __init__(self, data: bytes, verify: bool = True) -> None:
        (base, crc, magic, attributes, last_delta, first_ts, max_ts,
         pid, epoch, seq, n) = header_fields(data)
        if magic != MAGIC:
            raise CorruptStoreError(
                f"batch at offset {base} has format version {magic}, expected {MAGIC}"
            )
        if verify and crc32c(data[_CRC_START:]) != crc:
            raise CorruptStoreError(
                f"batch at offset {base} (offsets {base}..{base + last_delta}) fails its "
                "CRC-32C check: the store is damaged; run `mqlog check` and restore from "
                "a copy"
            )
        self.base_offset = base
        self.last_offset = base + last_delta
        self.count = n
        self.first_timestamp = first_ts
        self.max_timestamp = max_ts
        self.attributes = attributes
        self.producer_id = pid
        self.producer_epoch = epoch
        self.base_sequence = seq
        payload = data[HEADER_SIZE:]
        codec = attributes & ATTR_CODEC_MASK
        if codec:
            payload = decompress(codec, payload)
        try:
            self._unpack(payload, n, attributes, base, first_ts)
        except struct.error as exc:
            raise CorruptStoreError(
                f"batch at offset {base} has a malformed payload ({exc})"
            ) from exc

    def _unpack(self, p: bytes, n: int, attributes: int, base: int, first_ts: int) -> None:
        pos = 0
        if attributes & ATTR_SPARSE:
            deltas = struct.unpack_from(f">{n}I", p, pos)
            pos += 4 * n
            self.offsets = tuple([base + d for d in deltas])
        else:
            self.offsets = range(base, base + n)
        if attributes & ATTR_UNIFORM_TS:
            self.timestamps = None
        else:
            self.timestamps = struct.unpack_from(f">{n}q", p, pos)
            pos += 8 * n
        key_lens = None
        if attributes & ATTR_HAS_KEYS:
            key_lens = struct.unpack_from(f">{n}i", p, pos)
            pos += 4 * n
        value_lens = struct.unpack_from(f">{n}i", p, pos)
        pos += 4 * n
        header_lens = None
        if attributes & ATTR_HAS_HEADERS:
            header_lens = struct.unpack_from(f">{n}i", p, pos)
            pos += 4 * n
        if key_lens is None:
            self.keys = None
            self._key_sizes = None
        else:
            self.keys, pos = _slice_column(p, pos, key_lens)
            self._key_sizes = key_lens
        self.values, pos = _slice_column(p, pos, value_lens)
        self._value_sizes = value_lens
        if header_lens is None:
            self.headers = None
        else:
            self.headers, pos = _slice_column(p, pos, header_lens)
        if pos != len(p):
            raise CorruptStoreError(
                f"batch at offset {base} has {len(p) - pos} unexpected trailing bytes"
            )

    @property
    def codec(self) -> str | None:
        return _CODEC_NAMES.get(self.attributes & ATTR_CODEC_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    def index_of(self, offset: int) -> int:
        """Index of the first record whose offset is >= ``offset`` (count if none)."""
        offsets = self.offsets
        if isinstance(offsets, range):
            return min(max(offset - self.base_offset, 0), self.count)
        from bisect import bisect_left

        return bisect_left(offsets, offset)

    def timestamp_at(self, i: int) -> int:
        ts = self.timestamps
        return self.first_timestamp if ts is None else ts[i]

    def records(
        self,
        topic: str,
        partition: int,
        start: int = 0,
        stop: int | None = None,
        key_deserializer: Callable[[bytes], Any] | None = None,
        value_deserializer: Callable[[bytes], Any] | None = None,
    ) -> list[ConsumerRecord]:
        """Build ``ConsumerRecord``s for records ``start:stop`` (indexes, not offsets).

        Cost: about one tuple per record; the hot path of every consumer.
        """
        n = self.count
        if stop is None or stop > n:
            stop = n
        if start >= stop:
            return []
        offsets = self.offsets[start:stop]
        ts_type = 1 if self.attributes & ATTR_LOG_APPEND_TIME else 0
        timestamps = (
            repeat(self.first_timestamp) if self.timestamps is None
            else self.timestamps[start:stop]
        )
        values = self.values[start:stop]
        value_sizes = self._value_sizes[start:stop]
        if self.keys is None:
            keys = repeat(None)
            key_sizes = repeat(-1)
        else:
            keys = self.keys[start:stop]
            key_sizes = self._key_sizes[start:stop]
        if key_deserializer is not None and self.keys is not None:
            keys = [None if k is None else key_deserializer(k) for k in keys]
        if value_deserializer is not None:
            values = [None if v is None else value_deserializer(v) for v in values]
        if self.headers is None:
            # Built entirely in C (zip + tuple.__new__): no bytecode runs per record.
            # Records without headers share the empty tuple, not a list each: every
            # field is then untracked by the cyclic GC, which untracks the record at
            # its first collection instead of promoting it (a list per record made GC
            # bookkeeping a third of poll's time and fed full collections).
            return list(map(_make_record, zip(
                repeat(topic), repeat(partition), repeat(None), offsets, timestamps,
                repeat(ts_type), keys, values, repeat(()), repeat(None), key_sizes,
                value_sizes, repeat(-1))))
        out = []
        new, cr = _new, ConsumerRecord
        for o, t, k, v, ks, vs, h in zip(offsets, timestamps, keys, values, key_sizes,
                                        value_sizes, self.headers[start:stop]):
            hdrs = unpack_headers(h) if h else ()
            hsize = (
                sum(len(name.encode()) + (len(val) if val else 0) for name, val in hdrs)
                if hdrs else -1
            )
            out.append(new(cr, (topic, partition, None, o, t, ts_type, k, v, hdrs, None,
                                ks, vs, hsize)))
        return out


# Splitters for columns of equal-length values (fixed-size records are common): one
# struct unpack cuts the whole column in C, about 5x faster than slicing per record.
# Keyed by (length, count). A splitter costs about 32 bytes per record, and batch sizes
# vary (linger), so the cache is bounded by the records of all its splitters, not by
# their number (512 splitters of 50,000 records would be 800 MB); cleared when full.
_EQUAL_SPLITTERS: dict[tuple[int, int], struct.Struct] = {}
_SPLITTER_RECORDS = 1 << 16  # about 2 MB of splitters
_splitters_lock = threading.Lock()  # guards the cache's record count (misses only)
_splitter_records = 0


def _equal_splitter(length: int, n: int) -> struct.Struct:
    """The splitter of ``n`` values of ``length`` bytes, cached when it fits."""
    global _splitter_records
    key = (length, n)
    splitter = _EQUAL_SPLITTERS.get(key)
    if splitter is None:
        splitter = struct.Struct(f"{length}s" * n)
        if n <= _SPLITTER_RECORDS // 4:  # a bigger one is built for the batch alone
            with _splitters_lock:
                if key not in _EQUAL_SPLITTERS:
                    if _splitter_records + n > _SPLITTER_RECORDS:
                        _EQUAL_SPLITTERS.clear()
                        _splitter_records = 0
                    _EQUAL_SPLITTERS[key] = splitter
                    _splitter_records += n
    return splitter


def _slice_column(p: bytes, pos: int, lens: Sequence[int]) -> tuple[Sequence, int]:
    """Cut a concatenated column into per-record bytes (None where length is -1).

    Returns the column (a tuple or a list; read-only either way) and the position
    after it. Thread-safe (the splitter cache is changed under a lock).
    """
    n = len(lens)
    if n:
        first = lens[0]
        if first >= 0 and lens.count(first) == n:
            return _equal_splitter(first, n).unpack_from(p, pos), pos + first * n
    if min(lens, default=0) >= 0:
        ends = list(accumulate(lens, initial=pos))
        return [p[a:b] for a, b in zip(ends, ends[1:])], ends[-1]
    out = []
    for ln in lens:
        if ln < 0:
            out.append(None)
        else:
            out.append(p[pos : pos + ln])
            pos += ln
    return out, pos


def decode(data: bytes, verify: bool = True) -> DecodedBatch:
    """Check and unpack a stored batch.

    Raises:
        CorruptStoreError: bad version, checksum, codec or layout.
    """
    return DecodedBatch(data, verify)
