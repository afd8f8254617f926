"""kafka-python 3.x's serializer interfaces and the two built-in serializers.

A producer's ``key_serializer``/``value_serializer`` (and a consumer's deserializers)
may be a plain callable ``fn(data)`` or one of these objects, called as
``serialize(topic, headers, data)`` / ``deserialize(topic, headers, data)``. As in
kafka-python, they are called for ``None`` too: a plain callable must handle it.

Thread-safety: the classes here hold no mutable state; thread-safe.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

__all__ = ["DefaultSerializer", "Deserializer", "JsonSerializer", "Serializer"]


class Serializer(ABC):
    """Turns a key or value into bytes (or None)."""

    @abstractmethod
    def serialize(self, topic: str, headers: list, data: Any) -> bytes | None:
        """Return ``data`` as bytes for ``topic``."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Called when the producer closes."""


class Deserializer(ABC):
    """Turns a record's key or value bytes (or None) into an object."""

    @abstractmethod
    def deserialize(self, topic: str, headers: list, data: bytes | None) -> Any:
        """Return the object ``data`` encodes."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Called when the consumer closes."""


class DefaultSerializer(Serializer, Deserializer):
    """str <-> bytes in ``encoding``; bytes-like and None pass through."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding

    def serialize(self, topic: str, headers: list, data: Any) -> Any:
        if data is None or isinstance(data, (bytes, bytearray, memoryview)):
            return data
        return data.encode(self.encoding)

    def deserialize(self, topic: str, headers: list, data: bytes | None) -> Any:
        return None if data is None else bytes(data).decode(self.encoding)


class JsonSerializer(DefaultSerializer):
    """Objects <-> JSON text in ``encoding``; None stays None (a tombstone)."""

    def serialize(self, topic: str, headers: list, data: Any) -> Any:
        return None if data is None else super().serialize(topic, headers, json.dumps(data))

    def deserialize(self, topic: str, headers: list, data: bytes | None) -> Any:
        return None if data is None else json.loads(super().deserialize(topic, headers, data))


def serializer_call(fn: Any, what: str) -> Any:
    """A ``(topic, headers, data) -> result`` function for a configured (de)serializer:
    a :class:`Serializer`/:class:`Deserializer` object or a plain ``fn(data)``."""
    if fn is None:
        return None
    method = getattr(fn, what, None)
    if callable(method):
        return method
    if not callable(fn):
        raise TypeError(f"{fn!r} is neither callable nor has a {what}() method")
    return lambda topic, headers, data: fn(data)
