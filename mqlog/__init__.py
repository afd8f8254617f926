"""mqlog: Kafka as a Python package.

An append-only, partitioned, durable event log with producers, consumers and committed
offsets, stored in LMDB inside your own process::

    import mqlog

    with mqlog.open("./data") as broker:
        producer = broker.producer()
        producer.send("orders", b"hello", key=b"user-1").get()
        consumer = broker.consumer(group_id="billing", auto_offset_reset="earliest")
        consumer.assign([mqlog.TopicPartition("orders", 0)])
        print(consumer.poll(timeout_ms=1000))

Only public names live here; see ``__all__``.
"""

import logging

from . import errors
from .admin import Admin, GroupLag
from .broker import Broker, open
from .cleaner import CleanerStats
from .consumer import Consumer, ConsumerRebalanceListener, OffsetResetStrategy
from .group import (
    GroupDescription,
    GroupListing,
    GroupState,
    MemberDescription,
)
from .partitioner import murmur2
from .pipeline import Pipeline, PipelineStats, pipeline
from .producer import FutureBatchMetadata, FutureRecordMetadata, Producer
from .records import (
    BatchMetadata,
    ConsumerGroupMetadata,
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    PartitionBatch,
    RecordMetadata,
    TopicInfo,
    TopicPartition,
)

__version__ = "0.1.0"

__all__ = [
    "Admin",
    "BatchMetadata",
    "Broker",
    "CleanerStats",
    "Consumer",
    "ConsumerGroupMetadata",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "FutureBatchMetadata",
    "FutureRecordMetadata",
    "GroupDescription",
    "GroupLag",
    "GroupListing",
    "GroupState",
    "MemberDescription",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "OffsetResetStrategy",
    "PartitionBatch",
    "Pipeline",
    "PipelineStats",
    "Producer",
    "RecordMetadata",
    "TopicInfo",
    "TopicPartition",
    "__version__",
    "errors",
    "murmur2",
    "open",
    "pipeline",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
