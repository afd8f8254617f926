"""Bounds check of a request body before kio decodes it.

kio's native reader trusts the lengths in a message: it allocates an array for the
element count a request claims before reading a single element, so a 20-byte request
claiming four billion topics aborts the whole process (Rust's allocation failure is
not an exception). :func:`check_request` walks the body once, with the same schema
rules kio uses, and refuses it unless every string, byte string and array fits in the
bytes that are actually there (at least one byte per array element, more when the
element type has a larger minimum size) and no array claims more than
:data:`MAX_ARRAY` elements. It decodes nothing; it only moves a cursor.

Schema rules mirrored (``kio.serial._serialize``): fixed-width primitives; strings as
int16 length (legacy) or uvarint length+1 (flexible, 0 = null); bytes and records as
int32 length or uvarint length+1; arrays as int32 count or uvarint count+1; nullable
structs behind an int8 marker (KIP-893); flexible structs end with tagged fields
(uvarint count, then per field uvarint tag, uvarint size, data).

Thread-safety: pure; the compiled plans are cached behind functools' lock.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    is_optional,
)

from ._varint import VarintError, read_uvarint

__all__ = ["MAX_ARRAY", "GuardError", "check_entity", "check_request"]

#: Largest element count accepted in any request array (topics, partitions...).
MAX_ARRAY = 1_000_000

_FIXED = {"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "uint16": 2, "error_code": 2,
          "int32": 4, "uint32": 4, "timedelta_i32": 4, "int64": 8, "uint64": 8,
          "float64": 8, "timedelta_i64": 8, "datetime_i64": 8, "uuid": 16}


class GuardError(ValueError):
    """The body claims more than it holds (or is otherwise unwalkable)."""


# A step is a tuple: ("fixed", n) | ("str", flexible) | ("bytes", flexible)
# | ("array", flexible, element_step) | ("entity", plan, nullable).
# A plan is (steps, flexible, ((tag, step), ...)).

def _step_for(field: dataclasses.Field, flexible: bool, is_tag: bool) -> tuple:
    kind = classify_field(field)
    nullable = False if is_tag else is_optional(field)
    if isinstance(kind, EntityTupleField):
        return ("array", flexible, ("entity", _plan(kind.type_), False))
    if isinstance(kind, EntityField):
        return ("entity", _plan(kind.type_), nullable)
    kafka_type = field.metadata.get("kafka_type")
    if kafka_type in _FIXED:
        element: tuple = ("fixed", _FIXED[kafka_type])
    elif kafka_type == "string":
        element = ("str", flexible)
    elif kafka_type in ("bytes", "records"):
        element = ("bytes", flexible)
    else:
        raise GuardError(f"no rule for kafka type {kafka_type!r} of {field.name}")
    if isinstance(kind, PrimitiveTupleField):
        return ("array", flexible, element)
    return element


@lru_cache(maxsize=None)
def _plan(cls: type) -> tuple:
    flexible = bool(cls.__flexible__)
    steps = []
    tags = {}
    for f in dataclasses.fields(cls):
        tag = get_field_tag(f)
        if tag is None:
            steps.append(_step_for(f, flexible, False))
        else:
            tags[int(tag)] = _step_for(f, flexible, True)
    return tuple(steps), flexible, tuple(sorted(tags.items()))  # hashable: cached


@lru_cache(maxsize=None)
def _min_size(step: tuple) -> int:
    kind = step[0]
    if kind == "fixed":
        return step[1]
    if kind in ("str",):
        return 1 if step[1] else 2
    if kind in ("bytes", "array"):
        return 1 if step[1] else 4
    steps, flexible, _ = step[1]
    if step[2]:
        return 1
    return sum(_min_size(s) for s in steps) + (1 if flexible else 0)


def _int(buf: bytes, pos: int, end: int, size: int) -> tuple[int, int]:
    if pos + size > end:
        raise GuardError("a length runs past the end")
    return int.from_bytes(buf[pos:pos + size], "big", signed=True), pos + size


def _walk(step: tuple, buf: bytes, pos: int, end: int) -> int:
    kind = step[0]
    if kind == "fixed":
        pos += step[1]
        if pos > end:
            raise GuardError("a field runs past the end")
        return pos
    if kind == "str" or kind == "bytes":
        if step[1]:
            n, pos = read_uvarint(buf, pos, end)
            n -= 1  # -1: null
        else:
            n, pos = _int(buf, pos, end, 2 if kind == "str" else 4)
        if n > 0:
            pos += n
            if pos > end:
                raise GuardError(f"a {n}-byte {'string' if kind == 'str' else 'blob'} "
                                 "runs past the end")
        return pos
    if kind == "array":
        if step[1]:
            count, pos = read_uvarint(buf, pos, end)
            count -= 1
        else:
            count, pos = _int(buf, pos, end, 4)
        if count <= 0:
            return pos
        element = step[2]
        if count > MAX_ARRAY:
            raise GuardError(f"an array claims {count} elements (at most {MAX_ARRAY})")
        if count * max(_min_size(element), 1) > end - pos:
            raise GuardError(f"an array claims {count} elements but only {end - pos} "
                             "bytes follow")
        for _ in range(count):
            pos = _walk(element, buf, pos, end)
        return pos
    # entity
    steps, flexible, tags = step[1]
    if step[2]:
        marker, pos = _int(buf, pos, end, 1)
        if marker < 0:
            return pos
    for s in steps:
        pos = _walk(s, buf, pos, end)
    if flexible:
        count, pos = read_uvarint(buf, pos, end)
        if count > end - pos:
            raise GuardError(f"{count} tagged fields claimed, {end - pos} bytes left")
        for _ in range(count):
            tag, pos = read_uvarint(buf, pos, end)
            size, pos = read_uvarint(buf, pos, end)
            if pos + size > end:
                raise GuardError("a tagged field runs past the end")
            known = dict(tags).get(tag) if tags else None
            if known is not None:
                _walk(known, buf, pos, pos + size)
            pos += size
    return pos


def check_entity(cls: type, buf: bytes, offset: int = 0) -> None:
    """Refuse an encoded ``cls`` (any kio entity: a request, or a blob nested in one
    such as a consumer subscription) at ``buf[offset:]`` whose lengths exceed its
    bytes. Call it before ``kio.serial.entity_reader(cls)`` on untrusted bytes.

    Raises:
        GuardError: a length, count or varint does not fit; the message says which.
    """
    try:
        _walk(("entity", _plan(cls), False), buf, offset, len(buf))
    except VarintError as exc:  # one handler here, not one per varint on the hot path
        raise GuardError(str(exc)) from None


check_request = check_entity


def check_all_schemas() -> int:
    """Compile the plan of every request schema kio has (a self-test); returns how
    many. Raises GuardError if a schema uses a type the guard has no rule for."""
    from kio.index import api_key_map, load_request_schema

    n = 0
    for key in api_key_map:
        for version in range(0, 30):
            try:
                cls: Any = load_request_schema(key, version)
            except Exception:
                continue
            _plan(cls)
            n += 1
    return n
