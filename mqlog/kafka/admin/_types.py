"""kafka-python's admin value types: NewTopic, NewPartitions, ConfigResource and the
enums and tuples the admin client takes and returns.

Thread-safety: plain values; share freely once built.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

__all__ = [
    "AlterConfigOp",
    "ConfigFilterType",
    "ConfigResource",
    "ConfigResourceType",
    "ConfigSourceType",
    "GroupInformation",
    "MemberAssignment",
    "MemberInformation",
    "NewPartitions",
    "NewTopic",
]


class _ByName(enum.IntEnum):
    @classmethod
    def build_from(cls, value: Any) -> Any:
        """A member from itself, its int value or its (case-insensitive) name."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"{value!r} is not a {cls.__name__}: use one of "
                             f"{', '.join(m.name for m in cls)}") from None


class ConfigResourceType(_ByName):
    """Kinds of resource that have configuration (mqlog has TOPIC configs only)."""

    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


class AlterConfigOp(_ByName):
    """What ``alter_configs`` does with a key: ``{key: (AlterConfigOp.DELETE, None)}``."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class ConfigFilterType(_ByName):
    """Which keys ``describe_configs`` returns."""

    ALL = 0
    DYNAMIC = 1
    MODIFIED = 2
    DEFAULT = 3
    STATIC = 4


class ConfigSourceType(_ByName):
    """Where a config value comes from."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class ConfigResource:
    """A resource whose configuration to describe or alter.

    Args:
        resource_type: a :class:`ConfigResourceType` (or its name).
        name: the resource name (the topic).
        configs: keys to describe (list or dict), or ``{key: value}`` /
            ``{key: (AlterConfigOp, value)}`` to alter; None describes every key.
    """

    def __init__(self, resource_type: Any, name: str, configs: Any = None) -> None:
        self.resource_type = ConfigResourceType.build_from(resource_type)
        self.name = name
        self.configs = configs

    def __repr__(self) -> str:
        return f"ConfigResource({self.resource_type}, {self.name!r}, {self.configs!r})"


class NewTopic:
    """A topic for ``create_topics``.

    ``replication_factor`` is accepted for compatibility and has no effect: mqlog is one
    broker (it must be -1 or >= 1, as Kafka requires). ``replica_assignments`` only
    counts partitions when ``num_partitions`` is -1.
    """

    def __init__(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignments: dict[int, list[int]] | None = None,
                 topic_configs: dict[str, Any] | None = None) -> None:
        self.name = name
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignments = replica_assignments or {}
        self.topic_configs = topic_configs or {}

    def __repr__(self) -> str:
        return (f"NewTopic(name={self.name!r}, num_partitions={self.num_partitions}, "
                f"replication_factor={self.replication_factor})")


class NewPartitions:
    """The new total partition count of a topic, for ``create_partitions``."""

    def __init__(self, total_count: int, new_assignments: list[list[int]] | None = None
                 ) -> None:
        self.total_count = total_count
        self.new_assignments = new_assignments

    def __repr__(self) -> str:
        return f"NewPartitions(total_count={self.total_count})"


class MemberAssignment(NamedTuple):
    """A member's partitions, as kafka-python decodes them: ``[(topic, [p, ...])]``."""

    version: int
    assignment: list
    user_data: bytes


class MemberInformation(NamedTuple):
    """One member in ``describe_consumer_groups`` (kafka-python 2.x's shape)."""

    member_id: str
    client_id: str
    client_host: str
    member_metadata: Any
    member_assignment: MemberAssignment


class GroupInformation(NamedTuple):
    """One group in ``describe_consumer_groups`` (kafka-python 2.x's shape)."""

    error_code: int
    group: str
    state: str
    protocol_type: str
    protocol: str
    members: list
    authorized_operations: Any
