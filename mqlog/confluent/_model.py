"""confluent-kafka's shared model types (``confluent_kafka`` top level and admin).

``Node``, ``ConsumerGroupTopicPartitions``, ``TopicCollection``,
``TopicPartitionInfo`` and the ``ConsumerGroupState``/``ConsumerGroupType``/
``IsolationLevel``/``ElectionType`` enums, with confluent-kafka's constructor
arguments, attributes and enum values.

Thread-safety: plain value objects.
"""

from __future__ import annotations

import enum
from typing import Any

from ._types import TopicPartition

__all__ = [
    "ConsumerGroupState",
    "ConsumerGroupTopicPartitions",
    "ConsumerGroupType",
    "ElectionType",
    "IsolationLevel",
    "Node",
    "TopicCollection",
    "TopicPartitionInfo",
]


def _coerce(enum_cls: type[enum.Enum], value: Any) -> Any:
    """An enum member from a member, its name (any case) or its value."""
    if value is None or isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        return enum_cls[value.upper()]
    return enum_cls(value)


class ConsumerGroupState(enum.Enum):
    """A consumer group's state, as the admin client reports it."""

    UNKNOWN = 0
    PREPARING_REBALANCING = 1
    COMPLETING_REBALANCING = 2
    STABLE = 3
    DEAD = 4
    EMPTY = 5

    def __lt__(self, other: ConsumerGroupState) -> bool:
        return self.value < other.value


class ConsumerGroupType(enum.Enum):
    """The group protocol a group uses (mqlog's groups are all CLASSIC)."""

    UNKNOWN = 0
    CONSUMER = 1
    CLASSIC = 2

    def __lt__(self, other: ConsumerGroupType) -> bool:
        return self.value < other.value


class IsolationLevel(enum.Enum):
    """Which records reads see: all, or only those of committed transactions."""

    READ_UNCOMMITTED = 0
    READ_COMMITTED = 1

    def __lt__(self, other: IsolationLevel) -> bool:
        return self.value < other.value


class ElectionType(enum.Enum):
    """Leader election types (accepted; mqlog has no leaders to elect)."""

    PREFERRED = 0
    UNCLEAN = 1


class Node:
    """A broker node: ``id``, ``host``, ``port``, ``rack``."""

    def __init__(self, id: int, host: str, port: int, rack: str | None = None) -> None:  # noqa: A002
        self.id = id
        self.id_string = str(id)
        self.host = host
        self.port = port
        self.rack = rack

    def __repr__(self) -> str:
        return f"Node(id={self.id}, host={self.host}, port={self.port}, rack={self.rack})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return (self.id, self.host, self.port, self.rack) == \
            (other.id, other.host, other.port, other.rack)

    def __hash__(self) -> int:
        return hash((self.id, self.host, self.port))


class ConsumerGroupTopicPartitions:
    """A group id with a list of partitions (admin offsets requests and results)."""

    def __init__(self, group_id: str, topic_partitions: list[TopicPartition] | None = None
                 ) -> None:
        self.group_id = group_id
        self.topic_partitions = topic_partitions

    def __repr__(self) -> str:
        return (f"ConsumerGroupTopicPartitions({self.group_id}, "
                f"{self.topic_partitions!r})")


class TopicCollection:
    """A collection of topic names (``AdminClient.describe_topics``)."""

    def __init__(self, topic_names: list[str]) -> None:
        self.topic_names = topic_names


class TopicPartitionInfo:
    """A partition in a topic description: ``id``, ``leader``, ``replicas``, ``isr``."""

    def __init__(self, id: int, leader: Node, replicas: list[Node], isr: list[Node]  # noqa: A002
                 ) -> None:
        self.id = id
        self.leader = leader
        self.replicas = replicas
        self.isr = isr
