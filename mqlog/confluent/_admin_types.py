"""Value types of confluent-kafka's admin API (``confluent_kafka.admin``).

Same constructor arguments and attributes as confluent-kafka's: requests
(``NewTopic``, ``NewPartitions``, ``ConfigResource``, ``ConfigEntry``, ``OffsetSpec``)
and results (``ConsumerGroupDescription``, ``TopicDescription``, ...).

Thread-safety: plain value objects.
"""

from __future__ import annotations

import enum
from typing import Any

from ._model import ConsumerGroupState, ConsumerGroupType, Node, TopicPartitionInfo, _coerce
from ._types import TopicPartition

__all__ = [
    "AlterConfigOpType", "ConfigEntry", "ConfigResource", "ConfigSource",
    "ConsumerGroupDescription", "ConsumerGroupListing", "DeletedRecords",
    "DescribeClusterResult", "ListConsumerGroupsResult", "ListOffsetsResultInfo",
    "MemberAssignment", "MemberDescription", "NewPartitions", "NewTopic", "OffsetSpec",
    "ResourceType", "TopicDescription",
]


class ResourceType(enum.Enum):
    """The kind of resource a ``ConfigResource`` names."""

    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    BROKER = 4
    TRANSACTIONAL_ID = 5

    def __lt__(self, other: ResourceType) -> bool:
        return self.value < other.value


class ConfigSource(enum.Enum):
    """Where a config value comes from."""

    UNKNOWN_CONFIG = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    GROUP_CONFIG = 8


class AlterConfigOpType(enum.Enum):
    """What ``incremental_alter_configs`` does with one entry."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class NewTopic:
    """A topic to create: ``num_partitions`` -1 takes the broker's default;
    ``replication_factor`` and ``replica_assignment`` are accepted (one node here)."""

    def __init__(self, topic: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignment: list | None = None, config: dict | None = None) -> None:
        if not isinstance(topic, str):
            raise TypeError(f"NewTopic topic must be a str, got {type(topic).__name__}")
        self.topic = topic
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignment = replica_assignment
        self.config = dict(config) if config else {}

    def __repr__(self) -> str:
        return f"NewTopic(topic={self.topic},num_partitions={self.num_partitions})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NewTopic) and self.topic == other.topic

    def __hash__(self) -> int:
        return hash(self.topic)


class NewPartitions:
    """Grow ``topic`` to ``new_total_count`` partitions."""

    def __init__(self, topic: str, new_total_count: int,
                 replica_assignment: list | None = None) -> None:
        self.topic = topic
        self.new_total_count = new_total_count
        self.replica_assignment = replica_assignment

    def __repr__(self) -> str:
        return f"NewPartitions(topic={self.topic},new_total_count={self.new_total_count})"


class ConfigEntry:
    """One config value (describe results; incremental alter requests)."""

    def __init__(self, name: str, value: str | None,
                 source: ConfigSource = ConfigSource.UNKNOWN_CONFIG, is_read_only: bool = False,
                 is_default: bool = False, is_sensitive: bool = False,
                 is_synonym: bool = False, synonyms: dict | None = None,
                 incremental_operation: AlterConfigOpType | None = None) -> None:
        self.name = name
        self.value = value
        self.source = source
        self.is_read_only = is_read_only
        self.is_default = is_default
        self.is_sensitive = is_sensitive
        self.is_synonym = is_synonym
        self.synonyms = synonyms or {}
        self.incremental_operation = incremental_operation

    def __repr__(self) -> str:
        return f"ConfigEntry({self.name}={self.value!r})"

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class ConfigResource:
    """A resource (a topic, here) whose config is described or altered.

    Args:
        restype: ``ResourceType`` member, its name ("topic"), or its value.
        name: the resource name (the topic).
        set_config: ``alter_configs`` values ``{name: value}``.
        incremental_configs: ``incremental_alter_configs`` entries.
    """

    Type = ResourceType

    def __init__(self, restype: Any, name: str, set_config: dict | None = None,
                 described_configs: dict | None = None, error: Any = None,
                 incremental_configs: list[ConfigEntry] | None = None) -> None:
        self.restype = _coerce(ResourceType, restype)
        self.restype_int = self.restype.value
        self.name = name
        self.set_config_dict = dict(set_config) if set_config else {}
        self.configs = described_configs
        self.error = error
        self.incremental_configs = list(incremental_configs or [])

    def set_config(self, name: str, value: str, overwrite: bool = True) -> None:
        """Set a value for ``alter_configs``."""
        if overwrite or name not in self.set_config_dict:
            self.set_config_dict[name] = value

    def add_incremental_config(self, config_entry: ConfigEntry) -> None:
        """Add an entry (with ``incremental_operation``) for ``incremental_alter_configs``."""
        self.incremental_configs.append(config_entry)

    def _key(self) -> tuple[int, str]:
        return (self.restype.value, self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigResource) and self._key() == other._key()

    def __lt__(self, other: ConfigResource) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"ConfigResource({self.restype},{self.name})"


class OffsetSpec:
    """Which offset ``list_offsets`` looks up: ``earliest()``, ``latest()``,
    ``max_timestamp()`` or ``for_timestamp(ms)``."""

    EARLIEST, LATEST, MAX_TIMESTAMP = -2, -1, -3

    def __init__(self, index: int) -> None:
        self._value = index

    @classmethod
    def earliest(cls) -> OffsetSpec:
        return cls(cls.EARLIEST)

    @classmethod
    def latest(cls) -> OffsetSpec:
        return cls(cls.LATEST)

    @classmethod
    def max_timestamp(cls) -> OffsetSpec:
        return cls(cls.MAX_TIMESTAMP)

    @classmethod
    def for_timestamp(cls, timestamp: int) -> OffsetSpec:
        if not isinstance(timestamp, int) or timestamp < 0:
            raise ValueError(f"timestamp {timestamp!r} must be an int >= 0 (ms)")
        return cls(timestamp)

    def __repr__(self) -> str:
        names = {self.EARLIEST: "earliest", self.LATEST: "latest",
                 self.MAX_TIMESTAMP: "max_timestamp"}
        return f"OffsetSpec.{names.get(self._value, f'for_timestamp({self._value})')}"


class ListOffsetsResultInfo:
    """``list_offsets`` result: ``offset``, ``timestamp`` (-1 if none), ``leader_epoch``."""

    def __init__(self, offset: int, timestamp: int, leader_epoch: int | None) -> None:
        self.offset = offset
        self.timestamp = timestamp
        self.leader_epoch = leader_epoch

    def __repr__(self) -> str:
        return f"ListOffsetsResultInfo(offset={self.offset}, timestamp={self.timestamp})"


class DeletedRecords:
    """``delete_records`` result: the partition's new ``low_watermark``."""

    def __init__(self, low_watermark: int) -> None:
        self.low_watermark = low_watermark

    def __repr__(self) -> str:
        return f"DeletedRecords(low_watermark={self.low_watermark})"


class ConsumerGroupListing:
    """One group of ``list_consumer_groups``."""

    def __init__(self, group_id: str, is_simple_consumer_group: bool, state: Any = None,
                 type: Any = None) -> None:  # noqa: A002
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.state = _coerce(ConsumerGroupState, state)
        self.type = _coerce(ConsumerGroupType, type)

    def __repr__(self) -> str:
        return f"ConsumerGroupListing({self.group_id}, {self.state})"


class ListConsumerGroupsResult:
    """``list_consumer_groups`` result: ``valid`` listings and ``errors``."""

    def __init__(self, valid: list[ConsumerGroupListing] | None = None,
                 errors: list[Exception] | None = None) -> None:
        self.valid = valid
        self.errors = errors


class MemberAssignment:
    """A member's partitions."""

    def __init__(self, topic_partitions: list[TopicPartition] | None) -> None:
        self.topic_partitions = topic_partitions or []


class MemberDescription:
    """A group member: ``member_id``, ``client_id``, ``host``, ``assignment``..."""

    def __init__(self, member_id: str, client_id: str, host: str,
                 assignment: MemberAssignment, group_instance_id: str | None = None,
                 target_assignment: MemberAssignment | None = None) -> None:
        self.member_id = member_id
        self.client_id = client_id
        self.host = host
        self.assignment = assignment
        self.group_instance_id = group_instance_id
        self.target_assignment = target_assignment


class ConsumerGroupDescription:
    """``describe_consumer_groups`` result for one group."""

    def __init__(self, group_id: str, is_simple_consumer_group: bool,
                 members: list[MemberDescription], partition_assignor: str, state: Any,
                 coordinator: Node, authorized_operations: list | None = None,
                 type: Any = ConsumerGroupType.UNKNOWN) -> None:  # noqa: A002
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.members = members
        self.partition_assignor = partition_assignor
        self.state = _coerce(ConsumerGroupState, state)
        self.coordinator = coordinator
        self.authorized_operations = authorized_operations
        self.type = _coerce(ConsumerGroupType, type)

    def __repr__(self) -> str:
        return (f"ConsumerGroupDescription({self.group_id}, {self.state}, "
                f"{len(self.members)} members)")


class TopicDescription:
    """``describe_topics`` result: ``name``, ``topic_id`` (None here), ``is_internal``,
    ``partitions`` (``TopicPartitionInfo`` list)."""

    def __init__(self, name: str, topic_id: Any, is_internal: bool,
                 partitions: list[TopicPartitionInfo],
                 authorized_operations: list | None = None) -> None:
        self.name = name
        self.topic_id = topic_id
        self.is_internal = is_internal
        self.partitions = partitions
        self.authorized_operations = authorized_operations


class DescribeClusterResult:
    """``describe_cluster`` result."""

    def __init__(self, controller: Node, nodes: list[Node], cluster_id: str | None = None,
                 authorized_operations: list | None = None) -> None:
        self.controller = controller
        self.nodes = nodes
        self.cluster_id = cluster_id
        self.authorized_operations = authorized_operations
