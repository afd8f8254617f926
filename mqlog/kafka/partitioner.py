"""kafka-python's partitioner interface and Kafka's default partitioner.

``KafkaProducer(partitioner=...)`` takes a :class:`Partitioner` object (kafka-python
3.x: ``partition(topic, key, serialized_key, value, serialized_value, cluster)``) or a
kafka-python 2.x function ``fn(serialized_key, all_partitions, available_partitions)``.
The default places keyed records at ``murmur2(key) % partitions`` as Kafka's Java
client does, and keyless records sticky per batch.

Thread-safety: stateless; thread-safe.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any

from ..partitioner import murmur2

__all__ = ["DefaultPartitioner", "Partitioner", "StickyPartitioner", "murmur2"]


class Partitioner(ABC):
    """Chooses a partition for a record sent without an explicit one."""

    @abstractmethod
    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any,
                  serialized_value: bytes | None, cluster: Any) -> int:
        """Return a partition of ``topic`` (``cluster.partitions_for_topic(topic)``)."""


class DefaultPartitioner(Partitioner):
    """Kafka's default: murmur2 of the key; a random partition for keyless records.

    The producer recognises this class and places records itself (keyless records
    sticky per batch, as Kafka's KIP-480), without calling :meth:`partition`.
    """

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any,
                  serialized_value: bytes | None, cluster: Any) -> int:
        partitions = sorted(cluster.partitions_for_topic(topic) or ())
        if not partitions:
            raise ValueError(f"topic {topic!r} has no partitions in the cluster metadata")
        if serialized_key is not None:
            return partitions[(murmur2(serialized_key) & 0x7FFFFFFF) % len(partitions)]
        return random.choice(partitions)


class StickyPartitioner(DefaultPartitioner):
    """Kafka's KIP-480 partitioner: what the producer does by default."""
