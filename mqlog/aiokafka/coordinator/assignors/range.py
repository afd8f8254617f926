"""``aiokafka.coordinator.assignors.range``: mqlog's ``"range"`` assignor."""

from ....kafka.coordinator.assignors.range import RangePartitionAssignor

__all__ = ["RangePartitionAssignor"]
