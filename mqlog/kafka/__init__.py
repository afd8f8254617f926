"""``mqlog.kafka``: kafka-python 3.x's API on an embedded mqlog broker.

Code written for kafka-python runs unchanged against mqlog: the same classes, keyword
arguments, return types and exception classes, in kafka-python's module layout
(``mqlog.kafka.errors``, ``.admin``, ``.structs``, ``.consumer``, ``.producer``,
``.coordinator.assignors.*``, ``.serializer``, ``.partitioner``, ``.version``)::

    from mqlog.kafka import KafkaProducer, KafkaConsumer

    producer = KafkaProducer(bootstrap_servers="mqlog:///var/lib/app/log")
    producer.send("orders", b"hello", key=b"user-1").get(timeout=10)
    consumer = KafkaConsumer("orders", bootstrap_servers="mqlog:///var/lib/app/log",
                             group_id="billing", auto_offset_reset="earliest",
                             consumer_timeout_ms=1000)
    for record in consumer:
        print(record.offset, record.value)

``bootstrap_servers="mqlog:///path"`` opens that store; any other address means this
process's default temporary broker (or the one a test fixture installed), and the
``MQLOG_BOOTSTRAP`` environment variable maps every address to one store. See
docs/dropin-kafka-python.md for the supported surface and the known differences.
"""

from ..consumer import ConsumerRebalanceListener
from . import errors
from .admin import KafkaAdminClient
from .consumer import KafkaConsumer
from .producer import KafkaProducer
from .serializer import DefaultSerializer, Deserializer, JsonSerializer, Serializer
from .structs import (
    ConsumerGroupMetadata,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    TopicPartition,
    TopicPartitionReplica,
)
from .version import __version__

__all__ = [
    "ConsumerGroupMetadata",
    "ConsumerRebalanceListener",
    "DefaultSerializer",
    "Deserializer",
    "JsonSerializer",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "Serializer",
    "TopicPartition",
    "TopicPartitionReplica",
    "__version__",
    "errors",
]
