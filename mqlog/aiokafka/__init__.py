"""``mqlog.aiokafka``: aiokafka's API backed by mqlog, for asyncio code.

A drop-in for ``aiokafka`` (0.12 - 0.14): the same classes, coroutines, keywords and
errors, talking to an in-process mqlog broker instead of a cluster::

    from mqlog.aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async with AIOKafkaProducer(bootstrap_servers="mqlog:///data") as producer:
        await producer.send_and_wait("orders", b"hello")

Blocking work (LMDB reads and writes, waiting for records) runs off the event loop: a
consumer owns one worker thread, a producer uses the loop's executor. See
docs/dropin-aiokafka.md for what differs from the real library.

Submodules mirror aiokafka's: ``errors``, ``structs``, ``abc``, ``helpers``, ``admin``,
``producer``, ``consumer``, ``coordinator.assignors.*``.
"""

from . import abc, errors, helpers, structs
from .abc import ConsumerRebalanceListener
from .consumer import AIOKafkaConsumer
from .errors import ConsumerStoppedError, IllegalOperation
from .producer import AIOKafkaProducer
from .structs import (
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    RecordMetadata,
    TopicPartition,
)

__version__ = "0.12.0"  # the aiokafka API level this layer follows

__all__ = [
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "ConsumerStoppedError",
    "IllegalOperation",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "RecordMetadata",
    "TopicPartition",
    "__version__",
    "abc",
    "errors",
    "helpers",
    "structs",
]
