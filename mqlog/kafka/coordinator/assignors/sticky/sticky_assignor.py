"""kafka-python's ``StickyPartitionAssignor``: mqlog's ``"sticky"`` assignor."""

from ..abstract import AbstractPartitionAssignor

__all__ = ["StickyPartitionAssignor"]


class StickyPartitionAssignor(AbstractPartitionAssignor):
    """Balanced, moving as few partitions as possible (Kafka's ``sticky``)."""

    name = "sticky"
