"""``aiokafka.coordinator.assignors.sticky.sticky_assignor``: mqlog's ``"sticky"``
assignor."""

from .....kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

__all__ = ["StickyPartitionAssignor"]
