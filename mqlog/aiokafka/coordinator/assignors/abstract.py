"""``aiokafka.coordinator.assignors.abstract``."""

from ....kafka.coordinator.assignors.abstract import AbstractPartitionAssignor

__all__ = ["AbstractPartitionAssignor"]
