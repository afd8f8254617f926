"""Stored batches as Kafka's RecordBatch v2 for Fetch responses, and the cache of them.

:func:`encode_stored` turns a batch read from the store into Kafka bytes: header
fields map one to one (mqlog's header carries Kafka's fields and uses Kafka's
attribute bits for the timestamp type, transactional and control flags), records are
written uncompressed (the loopback wire does not need it and clients decode every
codec anyway), offsets keep their deltas so compacted batches keep their gaps. The
layout is in ``_decoder.py``, the decoding direction.

Speed: encoding builds each column of a batch (record lengths, varints from tables of
precomputed encodings, keys, values) with C-level ``map``, merges the pieces that are
the same for every record, interleaves the columns by list slice assignment and joins
once (~0.3 µs per record).

The encoded-batch cache (:class:`BatchKey`, :func:`cache_wire`): a bounded LRU of
encodings, so consumers reading the same batch neither decode nor re-encode it, and so
the batches wire producers just sent are served back exactly as sent (what a Kafka
broker does). Its key names the store (:func:`store_token`), not only the topic id,
partition and base offset: two brokers in one process (two ``broker.serve()``
fixtures) number their topics and offsets alike and must never see each other's
batches.

Thread-safety: pure functions; the cache and the lookup tables have their own locks.
"""

from __future__ import annotations

import itertools
import struct
import threading
import weakref
from collections import OrderedDict
from itertools import repeat
from operator import add, sub
from typing import Any, NamedTuple, Sequence

from ..batch import DecodedBatch, crc32c, decode, unpack_headers
from ._decoder import SHARED_ATTRS, WIRE_HEAD
from ._varint import ENC, TABLE_SIZE, varint, varints

__all__ = ["BatchKey", "cache_wire", "encode_stored", "store_token"]


def _sizes(items: Sequence[bytes | None]) -> list[int]:
    """Lengths of a column, -1 for None."""
    try:
        return list(map(len, items))
    except TypeError:
        return [-1 if x is None else len(x) for x in items]


# -- the encoded-batch cache ---------------------------------------------------------------

class BatchKey(NamedTuple):
    """What identifies one stored batch in the cache.

    ``store`` is :func:`store_token` of the broker; ``crc`` and ``size`` are the stored
    batch's checksum and length, so a batch that compaction rewrote at the same base
    offset is a different entry.
    """

    store: int
    topic_id: int
    partition: int
    base_offset: int
    crc: int
    size: int


_tokens_lock = threading.Lock()  # guards _tokens
_tokens: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_next_token = itertools.count(1)


def store_token(broker: Any) -> int:
    """A number naming ``broker`` in cache keys, unique in this process: never reused,
    unlike ``id()``, so a broker opened after another was collected cannot inherit its
    entries."""
    with _tokens_lock:
        token = _tokens.get(broker)
        if token is None:
            token = _tokens[broker] = next(_next_token)
        return token


_cache_lock = threading.Lock()  # guards _cache and _cache_size
_cache: OrderedDict[tuple, bytes] = OrderedDict()
_CACHE_BYTES = 32 << 20
_cache_size = 0


def cache_wire(key: BatchKey, wire: bytes, leader_epoch: int = 0) -> None:
    """Remember ``wire`` as the encoding of the stored batch ``key`` names (see
    :func:`encode_stored`); used for batches produced over the wire."""
    _remember((key, leader_epoch), wire)


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


def encode_stored(raw: bytes, leader_epoch: int = 0, key: BatchKey | None = None) -> bytes:
    """A stored batch (as read from the store) as Kafka RecordBatch v2 bytes,
    uncompressed.

    Args:
        key: when given, the encoding is kept in a small LRU (and looked up there
            first) so consumers reading the same batch neither decode nor re-encode it.

    Raises:
        CorruptStoreError: the stored batch is damaged.

    Cost: a cache hit is a dict lookup; otherwise decoding the stored batch and about
    0.3 µs per record.
    """
    cache_key = None
    if key is not None:
        cache_key = (key, leader_epoch)
        with _cache_lock:
            hit = _cache.get(cache_key)
            if hit is not None:
                _cache.move_to_end(cache_key)
                return hit
    out = _encode(decode(raw), leader_epoch)
    if cache_key is not None:
        _remember(cache_key, out)
    return out


# -- encoding -------------------------------------------------------------------------

_tables_lock = threading.Lock()  # guards building _tables
_tables: dict[str, list] = {}


def _table(name: str) -> list:
    """A lookup table built on first use (each costs ~10 ms and ~1 MB).

    ``"mid"``: per offset delta d, timestamp delta 0 and d (a record's middle when its
    timestamp is the batch's first); ``"mid-len"``: their lengths; ``"enc-len"``: the
    lengths of ``ENC``; ``"null-key-value"``: per value length v, the null key's
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
        return [b"\0" + e for e in ENC]
    if name.endswith("-len"):
        return list(map(len, _table(name[:-4]) if name != "enc-len" else ENC))
    if name == "null-key-value":
        return [b"\x01" + e for e in ENC]
    if name == "start":
        return [e + b"\0" for e in ENC]
    if name == "next":
        return [b"\0" + e + b"\0" for e in ENC]
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
    return len(varint(n))


def _encoded_column(ints: list[int]) -> tuple[list[bytes], int | list[int]]:
    """The varints of ``ints`` and their lengths: one int when they all have the same
    (varint widths grow with the distance from 0, so the extremes decide)."""
    first = ints[0]
    if ints.count(first) == len(ints):
        enc = varint(first)
        return [enc] * len(ints), len(enc)
    enc_list = varints(ints)
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
    out = [varint(len(pairs))]
    for name, value in pairs:
        nb = name.encode()
        out.append(varint(len(nb)))
        out.append(nb)
        if value is None:
            out.append(b"\x01")
        else:
            out.append(varint(len(value)))
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
    if timestamps is None and dense and n <= TABLE_SIZE:
        columns.append(_table("mid")[:n])
        lengths.append(_table("mid-len")[:n])
    else:
        if timestamps is None:
            ts_enc: list[bytes] = [b"\0"] * n
            ts_len: int | list[int] = 1
        else:
            ts_enc, ts_len = _encoded_column(list(map(sub, timestamps, repeat(first_ts))))
        columns.append(ts_enc)
        if dense and n <= TABLE_SIZE:
            columns.append(ENC[:n])
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
        enc = _lookup(_table("null-key-value"), sizes, lambda v: b"\x01" + varint(v))
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
        starts = _lookup(_table("next"), total, lambda n: b"\0" + varint(n) + b"\0")
        starts[0] = starts[0][1:]
        pieces = _interleave([starts, *columns], n)
        pieces.append(b"\0")
    else:
        starts = _lookup(_table("start"), total, lambda n: varint(n) + b"\0")
        pieces = _interleave([starts, *columns], n)
    records = b"".join(pieces)
    attributes = batch.attributes & SHARED_ATTRS
    tail = struct.pack(">hiqqqhii", attributes, batch.last_offset - base, first_ts,
                       batch.max_timestamp, batch.producer_id, batch.producer_epoch,
                       batch.base_sequence, n) + records
    length = 4 + 1 + 4 + len(tail)  # leader epoch, magic, crc, rest
    return WIRE_HEAD.pack(base, length, leader_epoch, 2, crc32c(tail)) + tail


def _add_length(const: int, lengths: list[list[int]], more: int | list[int]
                ) -> tuple[int, list[list[int]]]:
    if type(more) is int:
        return const + more, lengths
    return const, lengths + [more]
