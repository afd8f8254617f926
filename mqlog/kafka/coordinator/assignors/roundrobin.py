"""kafka-python's ``RoundRobinPartitionAssignor``: mqlog's ``"roundrobin"`` assignor."""

from .abstract import AbstractPartitionAssignor

__all__ = ["RoundRobinPartitionAssignor"]


class RoundRobinPartitionAssignor(AbstractPartitionAssignor):
    """All partitions dealt to members in turn (Kafka's ``roundrobin``)."""

    name = "roundrobin"
