"""Request headers, response framing and generic error responses.

The bodies are kio's business (one generated class per API version); this module does
the few things around them that kio leaves to the server:

* :func:`parse_header` reads a request header by hand. Its first fields are the same in
  every header version (api key, api version, correlation id, client id), which is all
  an error answer needs, and it must work for versions and keys kio has never heard of.
  Flexible requests (header v2) add a tagged-field section, skipped here.
* :func:`encode_response` frames a kio response: size prefix, response header v0 or v1
  (v1 adds an empty tagged-field section; ApiVersions always answers with v0 so a client
  can parse it whatever version it asked for), body.
* :func:`error_response` builds, for any (api key, version) kio knows, a response whose
  every ``error_code`` field carries the given code, numbers are zero and arrays empty:
  the answer to a request the server cannot serve (unsupported version, undecodable
  body, a handler failure) that still parses on the client.

Thread-safety: pure functions (kio caches its writers internally).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import uuid
from functools import lru_cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.serial._introspect import EntityField, classify_field

from ._guard import check_request
from ._varint import VarintError, read_uvarint

__all__ = [
    "FrameError",
    "RequestHeader",
    "decode_request",
    "encode_response",
    "error_response",
    "parse_header",
    "request_is_flexible",
]

_HEAD = struct.Struct(">hhi")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_ZERO_DELTA = datetime.timedelta(0)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class FrameError(Exception):
    """A frame whose header cannot be read: the connection cannot continue."""


@dataclasses.dataclass(frozen=True, slots=True)
class RequestHeader:
    """The parts of a request header the server uses; ``body_offset`` is where the
    request body starts in the frame (None when the header version is unknown)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int | None


@lru_cache(maxsize=4096)
def request_is_flexible(api_key: int, api_version: int) -> bool | None:
    """Whether the request uses header v2 (flexible); None if kio lacks the schema."""
    try:
        cls = load_request_schema(api_key, api_version)
    except Exception:  # kio's UnknownAPIKey / UnknownEntity
        return None
    return bool(cls.__flexible__)


def parse_header(frame: bytes) -> RequestHeader:
    """Read a request header (v1 or v2) from a frame without its size prefix.

    Raises:
        FrameError: the frame is too short for even the fixed fields, or the client id
            or tagged fields run past its end.
    """
    if len(frame) < 8:
        raise FrameError(f"a request of {len(frame)} bytes is shorter than the 8-byte "
                         "start of a request header")
    api_key, api_version, correlation_id = _HEAD.unpack_from(frame)
    flexible = request_is_flexible(api_key, api_version)
    if flexible is None:
        return RequestHeader(api_key, api_version, correlation_id, None, None)
    pos = 8
    if len(frame) < pos + 2:
        raise FrameError("the request header ends before its client id")
    n = _I16.unpack_from(frame, pos)[0]
    pos += 2
    client_id = None
    if n >= 0:
        if len(frame) < pos + n:
            raise FrameError(f"the client id ({n} bytes) runs past the end of the frame")
        client_id = frame[pos:pos + n].decode("utf-8", "replace")
        pos += n
    elif n != -1:
        raise FrameError(f"the client id has a negative length {n}")
    if flexible:
        try:
            count, pos = read_uvarint(frame, pos)
            for _ in range(count):
                _tag, pos = read_uvarint(frame, pos)
                size, pos = read_uvarint(frame, pos)
                pos += size
                if pos > len(frame):
                    raise FrameError("a tagged header field runs past the end of the "
                                     "frame")
        except VarintError as exc:
            raise FrameError(f"the request header's tagged fields are malformed: {exc}"
                             ) from None
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def decode_request(header: RequestHeader, frame: bytes) -> Any:
    """Decode the body of a request with kio's schema for its key and version.

    Raises:
        GuardError: a length or count exceeds the bytes present.
        Exception: anything kio raises for a malformed body (callers answer with
            ``INVALID_REQUEST``); trailing bytes are ignored, as Kafka does for
            requests from newer clients.
    """
    cls = load_request_schema(header.api_key, header.api_version)
    check_request(cls, frame, header.body_offset)  # kio trusts lengths: see _guard
    request, _size = entity_reader(cls)(frame, header.body_offset)
    return request


def encode_response(correlation_id: int, response: Any) -> bytes:
    """The complete frame (size prefix included) for a kio response object."""
    cls = type(response)
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    buf.write(_I32.pack(correlation_id))
    if cls.__header_schema__.__flexible__:
        buf.write(b"\0")  # no tagged header fields
    entity_writer(cls)(buf, response)
    data = buf.getbuffer()
    _I32.pack_into(data, 0, len(data) - 4)
    out = bytes(data)
    del data
    return out


def _zero(field: dataclasses.Field, code: ErrorCode) -> Any:
    """A placeholder value for one field of an error response."""
    kind = classify_field(field)
    if kind.is_array:
        return ()
    if isinstance(kind, EntityField):
        return _build(kind.type_, code)
    kafka_type = field.metadata.get("kafka_type")
    optional = type(None) in getattr(field.type, "__args__", ())
    if kafka_type == "error_code":
        return code
    if kafka_type in ("int8", "int16", "int32", "int64", "uint16"):
        return -1 if field.name.endswith(("_id", "leader", "epoch")) else 0
    if kafka_type == "float64":
        return 0.0
    if kafka_type == "bool":
        return False
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return _ZERO_DELTA
    if kafka_type == "datetime_i64":
        return _EPOCH
    if kafka_type == "uuid":
        return None if optional else uuid.UUID(int=0)
    if kafka_type == "string":
        return None if optional else ""
    if kafka_type in ("bytes", "records"):
        return None if optional else b""
    raise AssertionError(f"no placeholder for {field.name} of type {kafka_type}")


def _build(cls: type, code: ErrorCode) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or \
                f.default_factory is not dataclasses.MISSING:
            continue
        kwargs[f.name] = _zero(f, code)
    return cls(**kwargs)


def error_response(api_key: int, api_version: int, code: ErrorCode) -> Any | None:
    """A response of ``api_key``/``api_version`` carrying ``code`` in every error
    field; None if kio has no response schema for it."""
    try:
        cls = load_response_schema(api_key, api_version)
    except Exception:  # kio's UnknownAPIKey / UnknownEntity
        return None
    return _build(cls, code)


def bare_error_frame(correlation_id: int, code: ErrorCode) -> bytes:
    """The answer for an API key no schema describes: a v0 response header and an
    int16 error code (the layout of ApiVersions v0's first field, which is what a
    client that sent something unknown is most likely to check)."""
    body = _I32.pack(correlation_id) + _I16.pack(int(code))
    return _I32.pack(len(body)) + body
