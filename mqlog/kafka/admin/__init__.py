"""kafka-python's ``kafka.admin`` package: the admin client and its value types."""

from ._types import (
    AlterConfigOp,
    ConfigFilterType,
    ConfigResource,
    ConfigResourceType,
    ConfigSourceType,
    GroupInformation,
    MemberAssignment,
    MemberInformation,
    NewPartitions,
    NewTopic,
)
from .client import KafkaAdminClient

__all__ = [
    "AlterConfigOp",
    "ConfigFilterType",
    "ConfigResource",
    "ConfigResourceType",
    "ConfigSourceType",
    "GroupInformation",
    "KafkaAdminClient",
    "MemberAssignment",
    "MemberInformation",
    "NewPartitions",
    "NewTopic",
]
