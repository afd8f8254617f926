"""kafka-python's small value types: the same objects as mqlog's.

``TopicPartition``, ``OffsetAndMetadata``, ``OffsetAndTimestamp`` and
``ConsumerGroupMetadata`` are :mod:`mqlog.records`' namedtuples (kafka-python's fields),
so values pass between mqlog and its drop-ins without conversion and
``isinstance(tp, TopicPartition)`` holds for both.
"""

from __future__ import annotations

from typing import NamedTuple

from ..records import (
    ConsumerGroupMetadata,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    TopicPartition,
)

__all__ = [
    "ConsumerGroupMetadata",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "TopicPartition",
    "TopicPartitionReplica",
]


class TopicPartitionReplica(NamedTuple):
    """A partition's replica on one broker (mqlog has one broker: id 0)."""

    topic: str
    partition: int
    broker_id: int
