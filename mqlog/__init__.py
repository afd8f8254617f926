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
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs; imports are lazy
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

# Eager: the submodule and the function share the name `pipeline`, and importing
# the submodule later would rebind `mqlog.pipeline` to the module. It is light (attrs).
from .pipeline import Pipeline, PipelineStats, pipeline  # noqa: E402

# Public name -> the module defining it. Imported on first use (PEP 562), so that
# `import mqlog` — which pytest does in every session through the plugin entry point —
# costs almost nothing until a name is used.
_EXPORTS = {
    "Admin": "admin",
    "BatchMetadata": "records",
    "Broker": "broker",
    "CleanerStats": "cleaner",
    "Consumer": "consumer",
    "ConsumerGroupMetadata": "records",
    "ConsumerRebalanceListener": "consumer",
    "ConsumerRecord": "records",
    "FutureBatchMetadata": "producer",
    "FutureRecordMetadata": "producer",
    "GroupDescription": "group",
    "GroupLag": "admin",
    "GroupListing": "group",
    "GroupState": "group",
    "MemberDescription": "group",
    "OffsetAndMetadata": "records",
    "OffsetAndTimestamp": "records",
    "OffsetResetStrategy": "consumer",
    "PartitionBatch": "records",
    "Producer": "producer",
    "RecordMetadata": "records",
    "TopicInfo": "records",
    "TopicPartition": "records",
    "errors": "errors",
    "murmur2": "partitioner",
    "open": "broker",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mqlog' has no attribute {name!r}")
    loaded = import_module(f".{module}", __name__)
    value = loaded if name == module else getattr(loaded, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
