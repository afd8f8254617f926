"""kafka-python's ``RangePartitionAssignor``: mqlog's ``"range"`` assignor."""

from .abstract import AbstractPartitionAssignor

__all__ = ["RangePartitionAssignor"]


class RangePartitionAssignor(AbstractPartitionAssignor):
    """Per topic, consecutive ranges of partitions in member order (Kafka's ``range``)."""

    name = "range"
