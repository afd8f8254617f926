"""confluent-kafka 2.x's API over an mqlog broker: a drop-in for ``confluent_kafka``.

Code written for confluent-kafka runs unchanged against an embedded mqlog store::

    from mqlog.confluent import Consumer, Producer

    p = Producer({"bootstrap.servers": "mqlog:///var/lib/app/events"})
    p.produce("orders", b"hello", key=b"user-1", on_delivery=print)
    p.flush()

    c = Consumer({"bootstrap.servers": "mqlog:///var/lib/app/events",
                  "group.id": "billing", "auto.offset.reset": "earliest"})
    c.subscribe(["orders"])
    msg = c.poll(1.0)

``bootstrap.servers`` selects the broker (``mqlog:///path``; any other address means
the test fixture's broker or the process's temporary one, see ``mqlog._bootstrap``).
Delivery callbacks, rebalance callbacks, ``_PARTITION_EOF`` events, error codes,
dotted config keys and keyed placement (``consistent_random`` CRC32 by default,
``partitioner`` to switch) are librdkafka's; the differences that remain are listed in
docs/dropin-confluent-kafka.md. ``mqlog.confluent.admin`` mirrors
``confluent_kafka.admin``.
"""

from __future__ import annotations

from . import admin, error
from ._model import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    ElectionType,
    IsolationLevel,
    Node,
    TopicCollection,
    TopicPartitionInfo,
)
from ._partitioners import consistent, fnv1a, murmur2
from ._types import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Message,
    TopicPartition,
)
from .consumer import Consumer
from .error import KafkaError, KafkaException
from .producer import Producer

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "Consumer",
    "ConsumerGroupState",
    "ConsumerGroupTopicPartitions",
    "ConsumerGroupType",
    "ElectionType",
    "IsolationLevel",
    "KafkaError",
    "KafkaException",
    "Message",
    "Node",
    "Producer",
    "TopicCollection",
    "TopicPartition",
    "TopicPartitionInfo",
    "__version__",
    "admin",
    "consistent",
    "error",
    "fnv1a",
    "libversion",
    "murmur2",
    "version",
]

# The confluent-kafka / librdkafka release whose API this layer mirrors.
_API_VERSION = ("2.16.0", 0x021000FF)

#: confluent-kafka's version string (code logs or compares ``confluent_kafka.__version__``).
__version__ = _API_VERSION[0]


def version() -> tuple[str, int]:
    """The confluent-kafka API version mirrored, as ``(str, int)`` like confluent's."""
    return _API_VERSION


def libversion() -> tuple[str, int]:
    """The librdkafka version whose behaviour is mirrored, as ``(str, int)``."""
    return _API_VERSION
