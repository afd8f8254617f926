"""aiokafka's value types (``aiokafka.structs``).

``TopicPartition``, ``OffsetAndMetadata`` and ``OffsetAndTimestamp`` are mqlog's own
namedtuples (aiokafka's fields, plus a trailing ``leader_epoch`` with a default).
Consumed records are mqlog's :class:`mqlog.ConsumerRecord`, handed to user code without
re-wrapping; :class:`ConsumerRecord` here is its aiokafka face: ``isinstance`` accepts
mqlog's records, ``ConsumerRecord[K, V]`` works in annotations (aiokafka's is generic),
and constructing one takes aiokafka's field order (tests build records to feed their
handlers). ``RecordMetadata`` is aiokafka's shape (``timestamp_type``,
``log_start_offset``), built once per send.

All types are immutable and safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .. import records as _records
from ..records import OffsetAndMetadata, OffsetAndTimestamp, TopicPartition

__all__ = [
    "BrokerMetadata",
    "ConsumerRecord",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "PartitionMetadata",
    "RecordMetadata",
    "TopicPartition",
]


class RecordMetadata(NamedTuple):
    """Where a produced record landed (aiokafka's fields).

    ``timestamp_type`` is 0 (CreateTime): mqlog reports the producer's timestamp.
    ``log_start_offset`` is None (mqlog's produce path does not look it up).
    """

    topic: str
    partition: int
    topic_partition: TopicPartition
    offset: int
    timestamp: int | None
    timestamp_type: int
    log_start_offset: int | None


class BrokerMetadata(NamedTuple):
    """A broker of the cluster (mqlog has one, node 0, in this process)."""

    nodeId: int | str  # noqa: N815 - aiokafka's field name
    host: str
    port: int
    rack: str | None


class PartitionMetadata(NamedTuple):
    """A partition's leader and replicas as a Kafka metadata response describes them."""

    topic: str
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    error: Any


class _RecordType(type):
    """Makes mqlog's records instances of the aiokafka-facing class."""

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _records.ConsumerRecord)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _records.ConsumerRecord)


def _rebuild(values: tuple) -> ConsumerRecord:
    return tuple.__new__(ConsumerRecord, values)


class ConsumerRecord(_records.ConsumerRecord, metaclass=_RecordType):
    """A consumed record as aiokafka describes it (see the module docstring).

    Built with aiokafka's order: ``ConsumerRecord(topic, partition, offset, timestamp,
    timestamp_type, key, value, checksum, serialized_key_size, serialized_value_size,
    headers)``; mqlog's ``leader_epoch`` and ``serialized_header_size`` are optional
    keywords. Fields are read by name; the tuple itself keeps mqlog's order.
    """

    __slots__ = ()

    def __new__(cls, topic: str, partition: int, offset: int, timestamp: int,
                timestamp_type: int, key: Any, value: Any, checksum: int | None,
                serialized_key_size: int, serialized_value_size: int,
                headers: Sequence[tuple[str, bytes]], leader_epoch: int | None = None,
                serialized_header_size: int = -1) -> ConsumerRecord:
        return tuple.__new__(cls, (
            topic, partition, leader_epoch, offset, timestamp, timestamp_type, key, value,
            list(headers), checksum, serialized_key_size, serialized_value_size,
            serialized_header_size))

    def __class_getitem__(cls, item: Any) -> type:
        return cls

    def __reduce__(self) -> tuple:
        return (_rebuild, (tuple(self),))
