"""confluent-kafka's value types: :class:`TopicPartition`, :class:`Message`, constants.

These mirror ``confluent_kafka.TopicPartition`` and ``confluent_kafka.Message``: the
same constructor arguments, attributes and accessor methods, the same ``repr``, and
the same equality (a ``TopicPartition`` equals another with the same topic and
partition, whatever the offset).

Thread-safety: a ``TopicPartition`` or ``Message`` is a plain object; share it between
threads only if nobody mutates it (both have setters, as confluent-kafka's do).
"""

from __future__ import annotations

from typing import Any

from .error import KafkaError

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "Message",
    "TopicPartition",
]

OFFSET_BEGINNING = -2
"""Logical offset: the first offset still stored in the partition."""
OFFSET_END = -1
"""Logical offset: the end of the partition (only records produced from now on)."""
OFFSET_STORED = -1000
"""Logical offset: the group's committed offset (or ``auto.offset.reset`` without one)."""
OFFSET_INVALID = -1001
"""No offset (not known, or not set)."""
OFFSET_TAIL_BASE = -2000
"""``OFFSET_TAIL_BASE - n`` means "n records before the end" (librdkafka's tail)."""

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2


class TopicPartition:
    """A topic, partition and (optional) offset, with metadata and an error slot.

    Equality and hashing use only ``(topic, partition)``; sorting orders by them.

    Args:
        topic: topic name.
        partition: partition number (-1: none).
        offset: absolute offset, or one of ``OFFSET_BEGINNING``, ``OFFSET_END``,
            ``OFFSET_STORED``, ``OFFSET_INVALID`` (the default).
        metadata: application metadata committed with the offset.
        leader_epoch: the offset's leader epoch, or None.

    Raises:
        TypeError: ``topic`` is not a str or ``partition``/``offset`` not an int.
    """

    __slots__ = ("topic", "partition", "offset", "metadata", "leader_epoch", "error")

    def __init__(self, topic: str, partition: int = -1, offset: int = OFFSET_INVALID,
                 metadata: str | None = None, leader_epoch: int | None = None) -> None:
        if not isinstance(topic, str):
            raise TypeError(f"argument 1 must be str, not {type(topic).__name__}")
        for what, value in (("partition", partition), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"TopicPartition {what} must be an int, got "
                                f"{type(value).__name__} ({value!r})")
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
        self.leader_epoch = leader_epoch
        self.error: KafkaError | None = None

    def _key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TopicPartition):
            return self._key() == other._key()
        return NotImplemented

    def __lt__(self, other: TopicPartition) -> bool:
        return self._key() < other._key()

    def __le__(self, other: TopicPartition) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: TopicPartition) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: TopicPartition) -> bool:
        return self._key() >= other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"TopicPartition{{topic={self.topic},partition={self.partition},"
                f"offset={self.offset},leader_epoch={self.leader_epoch},"
                f"error={self.error!r}}}")

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        return (_rebuild_tp, (self.topic, self.partition, self.offset, self.metadata,
                              self.leader_epoch, self.error))


def _rebuild_tp(topic: str, partition: int, offset: int, metadata: Any,
                leader_epoch: Any, error: Any) -> TopicPartition:
    tp = TopicPartition(topic, partition, offset, metadata, leader_epoch)
    tp.error = error
    return tp


def tp_with(topic: str, partition: int, offset: int = OFFSET_INVALID,
            metadata: str | None = None, leader_epoch: int | None = None,
            error: KafkaError | None = None) -> TopicPartition:
    """A ``TopicPartition`` with its error slot set (results of commit, committed...)."""
    tp = TopicPartition(topic, partition, offset, metadata, leader_epoch)
    tp.error = error
    return tp


class Message:
    """A consumed record, a delivery report, or an error/event (``error()`` is set).

    Accessors are methods, as in confluent-kafka: ``msg.value()``, ``msg.offset()``.
    ``timestamp()`` returns ``(type, ms)`` with confluent's numbering:
    ``TIMESTAMP_CREATE_TIME`` (1), ``TIMESTAMP_LOG_APPEND_TIME`` (2), or
    ``TIMESTAMP_NOT_AVAILABLE`` (0). ``len(msg)`` is the value's length.

    Messages are built by the clients; the constructor (all keywords optional) exists
    for tests and tools, as in confluent-kafka 2.x.
    """

    __slots__ = ("_topic", "_partition", "_offset", "_key", "_value", "_headers",
                 "_ts_type", "_ts", "_error", "_latency", "_leader_epoch")

    def __init__(self, topic: str | None = None, partition: int | None = None,
                 offset: int | None = None, key: Any = None, value: Any = None,
                 headers: Any = None, error: KafkaError | None = None,
                 timestamp: tuple[int, int] | None = None, latency: float | None = None,
                 leader_epoch: int | None = None) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._error = error
        self._ts_type, self._ts = timestamp if timestamp is not None else (
            TIMESTAMP_NOT_AVAILABLE, 0)
        self._latency = latency
        self._leader_epoch = leader_epoch

    def topic(self) -> str | None:
        """The topic name."""
        return self._topic

    def partition(self) -> int | None:
        """The partition number, or None if not known."""
        return self._partition

    def offset(self) -> int | None:
        """The record's offset (for an EOF event: the end offset), or None."""
        off = self._offset
        return None if off is None or off == OFFSET_INVALID else off

    def key(self) -> Any:
        """The record's key, or None."""
        return self._key

    def value(self) -> Any:
        """The record's value (payload), or None."""
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        """The headers as a list of ``(str, bytes)`` pairs (keys may repeat), or None."""
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        """``(timestamp_type, ms since the epoch)``; see the class docstring."""
        return (self._ts_type, self._ts)

    def error(self) -> KafkaError | None:
        """None for a proper record; the ``KafkaError`` for an error or event."""
        return self._error

    def latency(self) -> float | None:
        """Delivery reports: seconds from ``produce()`` until the report was served (a
        bound on the write's latency); else None."""
        return self._latency

    def leader_epoch(self) -> int | None:
        """The record's leader epoch, or None (mqlog has no leaders)."""
        return self._leader_epoch

    def delivery_count(self) -> int | None:
        """Share-group delivery count: always None here (no share groups)."""
        return None

    def deserialized_key(self) -> Any:
        return self._key

    def deserialized_value(self) -> Any:
        return self._value

    def set_topic(self, value: str) -> None:
        self._topic = value

    def set_key(self, value: Any) -> None:
        self._key = value

    def set_value(self, value: Any) -> None:
        self._value = value

    def set_headers(self, value: Any) -> None:
        self._headers = value

    def set_error(self, value: KafkaError | None) -> None:
        self._error = value

    def __len__(self) -> int:
        value = self._value
        return 0 if value is None else len(value)

    def __repr__(self) -> str:
        if self._error is not None:
            return f"<Message error={self._error!r} {self._topic}[{self._partition}]>"
        return f"<Message {self._topic}[{self._partition}]@{self.offset()}>"


_new = object.__new__


def record_message(r: Any) -> Message:
    """A ``Message`` for an mqlog ``ConsumerRecord`` (the consumer's hot path: ~1 µs)."""
    m = _new(Message)
    m._topic = r[0]
    m._partition = r[1]
    m._leader_epoch = r[2]
    m._offset = r[3]
    m._ts = r[4]
    m._ts_type = r[5] + 1  # mqlog/kafka-python: 0 CreateTime, 1 LogAppendTime
    m._key = r[6]
    m._value = r[7]
    m._headers = r[8] or None
    m._error = None
    m._latency = None
    return m


def event_message(error: KafkaError, topic: str | None = None, partition: int | None = None,
                  offset: int | None = None, value: Any = None) -> Message:
    """An error/event ``Message`` (EOF, consumer errors), as librdkafka delivers them:
    no key, no timestamp, the event's text as the value."""
    return Message(topic=topic, partition=partition, offset=offset,
                   value=error.str().encode() if value is None else value, error=error,
                   timestamp=(TIMESTAMP_NOT_AVAILABLE, -1))
