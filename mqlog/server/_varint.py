"""Kafka's varints, read and written: the one implementation the server uses.

Two encodings share the wire:

* **unsigned varints** (LEB128: 7 bits per byte, low bits first, the high bit says
  "more follows"): the lengths and counts of flexible request versions and of the
  tagged-field sections (at most 5 bytes, 32-bit values), and, raw, the fields of a
  record before zigzag decoding (at most 10 bytes);
* **zigzag varints** (signed, ``(n << 1) ^ (n >> 63)`` then LEB128): every field of a
  RecordBatch v2 record.

:func:`read_uvarint` is the reader of both (:func:`read_varint` adds the zigzag step),
so the header parser (``_codec``), the length check (``_guard``) and the record decoder
(``_decoder``) agree on where a varint ends and on what is too long. The writers
(:func:`varint`, :func:`varints`) and the lookup tables serve the Fetch encoder
(``_encoder``) and the decoder's inline fast paths.

Thread-safety: pure functions and read-only tables built at import.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["ENC", "ENC_OF", "TABLE_SIZE", "ZIGZAG", "VarintError", "read_uvarint",
           "read_varint", "varint", "varints"]


class VarintError(ValueError):
    """A varint runs past the end of its buffer or is longer than allowed."""


def read_uvarint(buf: bytes, pos: int, end: int | None = None,
                 max_bytes: int = 5) -> tuple[int, int]:
    """The unsigned varint at ``buf[pos:]``; returns (value, next position).

    Args:
        end: where the buffer's readable part ends (default: its length).
        max_bytes: the longest encoding accepted (5 for Kafka's 32-bit protocol
            varints, 10 for a record's 64-bit fields).

    Raises:
        VarintError: the varint runs past ``end`` or is longer than ``max_bytes``.
    """
    if end is None:
        end = len(buf)
    limit = 7 * max_bytes
    value = shift = 0
    while True:
        if pos >= end:
            raise VarintError("a varint runs past the end")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift >= limit:
            raise VarintError(f"a varint is longer than {max_bytes} bytes")


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The zigzag varint (a record field, up to 64 bits) at ``buf[pos:]``.

    Raises:
        VarintError: it runs past the end of ``buf`` or is longer than 10 bytes.
    """
    z, pos = read_uvarint(buf, pos, len(buf), 10)
    return (z >> 1) ^ -(z & 1), pos


def _encode(n: int) -> bytes:
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


#: Values below this have precomputed encodings: lengths, offset deltas and timestamp
#: deltas of ordinary records are small, so a table lookup (done by ``map()`` in C)
#: replaces the encoding loop.
TABLE_SIZE = 1 << 14
#: ``ENC[n]``: the zigzag varint of n, for 0 <= n < TABLE_SIZE.
ENC: list[bytes] = [_encode(i) for i in range(TABLE_SIZE)]
#: The same as a dict, plus -1 (null keys and values), for ``map(ENC_OF.__getitem__)``.
ENC_OF: dict[int, bytes] = dict(enumerate(ENC))
ENC_OF[-1] = b"\x01"
#: Zigzag decoding of the raw value of a 1- or 2-byte varint.
ZIGZAG: tuple[int, ...] = tuple((z >> 1) ^ -(z & 1) for z in range(TABLE_SIZE))


def varint(n: int) -> bytes:
    """The zigzag varint of ``n`` (a table lookup when it is small)."""
    return ENC[n] if 0 <= n < TABLE_SIZE else _encode(n)


def varints(ints: Sequence[int]) -> list[bytes]:
    """The zigzag varints of a sequence of ints (table lookups in C when they fit)."""
    try:
        return list(map(ENC_OF.__getitem__, ints))
    except KeyError:
        return [varint(i) for i in ints]
