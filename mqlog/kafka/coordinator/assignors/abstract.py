"""Base of kafka-python's built-in assignor classes (see :mod:`..assignors`)."""

from __future__ import annotations

import enum

__all__ = ["AbstractPartitionAssignor", "RebalanceProtocol"]


class RebalanceProtocol(enum.IntEnum):
    """How a group moves partitions between members."""

    EAGER = 0
    """Every member gives up every partition, then the new assignment is handed out."""
    COOPERATIVE = 1
    """Only the partitions that move are given up (KIP-429)."""


class AbstractPartitionAssignor:
    """Names one of mqlog's partition assignors; mqlog's coordinator runs it.

    Custom kafka-python assignors (subclasses implementing ``assign(cluster, members)``)
    are not supported: ``KafkaConsumer`` refuses them with a message. mqlog's own
    interface for custom assignors is described in :mod:`mqlog.assignors`.
    """

    name = ""
    supported_protocols: tuple[RebalanceProtocol, ...] = (RebalanceProtocol.EAGER,)
