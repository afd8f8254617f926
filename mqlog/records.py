"""Value types: the Kafka record and offset types, and mqlog's descriptive values.

The Kafka types (:class:`TopicPartition`, :class:`ConsumerRecord`,
:class:`RecordMetadata`, :class:`OffsetAndMetadata`, :class:`OffsetAndTimestamp`) are
namedtuples with kafka-python 3.x's fields: users unpack and index them, the drop-in
layers pass them through untouched, and on the consume hot path a tuple is the cheapest
object Python can build. Everything else is an ``attrs`` frozen class.

All types here are immutable, hashable (where their fields are), picklable and free of
I/O; they are safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import attrs

__all__ = [
    "BatchMetadata",
    "ConsumerGroupMetadata",
    "ConsumerRecord",
    "FrozenConfig",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "PartitionBatch",
    "RecordMetadata",
    "TopicInfo",
    "TopicPartition",
]


class TopicPartition(NamedTuple):
    """A partition of a topic: ``TopicPartition("orders", 2)``."""

    topic: str
    partition: int


class ConsumerRecord(NamedTuple):
    """One record as a consumer sees it (kafka-python's fields).

    ``timestamp_type`` is 0 for CreateTime, 1 for LogAppendTime. ``headers`` is a list of
    ``(str, bytes)`` pairs, or the empty tuple ``()`` when the record has none (shared and
    immutable: it keeps the cost of a record to one object; ``mqlog.kafka`` gives ``[]``
    as kafka-python does). ``leader_epoch`` and ``checksum`` have no meaning in one
    process and are ``None``; ``serialized_header_size`` is -1 when there are no headers.
    """

    topic: str
    partition: int
    leader_epoch: int | None
    offset: int
    timestamp: int
    timestamp_type: int
    key: Any
    value: Any
    headers: list | tuple
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


class RecordMetadata(NamedTuple):
    """Where a produced record landed (kafka-python's fields).

    ``offset`` is -1 when the producer used ``acks=0`` (nothing waited for the write).
    """

    topic: str
    partition: int
    topic_partition: TopicPartition
    offset: int
    timestamp: int
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


class OffsetAndMetadata(NamedTuple):
    """A committed offset (the *next* offset to read) with free-form metadata."""

    offset: int
    metadata: str = ""
    leader_epoch: int = -1


class OffsetAndTimestamp(NamedTuple):
    """Result of ``offsets_for_times``: first offset whose timestamp is >= the asked one."""

    offset: int
    timestamp: int
    leader_epoch: int = -1


class ConsumerGroupMetadata(NamedTuple):
    """A group member's identity at one moment (``Consumer.group_metadata()``).

    Passed to ``Producer.send_offsets_to_transaction`` so the commit is refused if the
    member was fenced by a rebalance meanwhile (Kafka's KIP-447). ``generation_id`` -1
    and ``member_id`` "" describe a consumer outside group management.
    """

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None


class FrozenConfig(Mapping):
    """A read-only, hashable mapping of configuration keys to values."""

    __slots__ = ("_items", "_hash")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = dict(items or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __reduce__(self) -> tuple:
        return (FrozenConfig, (self._items,))

    def __repr__(self) -> str:
        return f"FrozenConfig({self._items!r})"


def _to_frozen_config(value: Mapping[str, Any] | None) -> FrozenConfig:
    return value if isinstance(value, FrozenConfig) else FrozenConfig(value)


@attrs.frozen
class TopicInfo:
    """A topic's name, partition count and configuration overrides.

    ``config`` holds only the keys set for this topic (Kafka's "dynamic" configs); keys
    not listed take the broker defaults documented in ``docs/concepts.md``.
    """

    name: str
    partitions: int
    config: FrozenConfig = attrs.field(factory=FrozenConfig, converter=_to_frozen_config)


@attrs.frozen
class PartitionBatch:
    """The records one ``send_batch`` call wrote to one partition: offsets
    ``base_offset .. base_offset + count - 1``, contiguous."""

    partition: int
    base_offset: int
    count: int


@attrs.frozen
class BatchMetadata:
    """Result of ``Producer.send_batch``: per partition, where its records landed.

    Compact on purpose: one object per partition, not per record. ``base_offset`` is -1
    for every partition when the producer uses ``acks=0``.
    """

    topic: str
    partitions: tuple[PartitionBatch, ...]

    @property
    def count(self) -> int:
        """Total number of records written."""
        return sum(p.count for p in self.partitions)

    def offsets(self) -> list[tuple[int, int]]:
        """Every record's ``(partition, offset)``, in partition then offset order.

        Cost: builds one tuple per record; use ``partitions`` when that matters.
        """
        return [
            (p.partition, p.base_offset + i) for p in self.partitions for i in range(p.count)
        ]
