"""``aiokafka.coordinator.assignors.roundrobin``: mqlog's ``"roundrobin"`` assignor."""

from ....kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

__all__ = ["RoundRobinPartitionAssignor"]
