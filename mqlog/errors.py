"""One exception tree for everything mqlog raises.

Every error derives from :class:`MqlogError`. Where an error is also a built-in
category it subclasses that too, so ``except ValueError`` keeps working for callers
that do not know mqlog (``InvalidTopicError`` is a ``ValueError``, ``KafkaTimeoutError``
is a ``TimeoutError``).

Names follow Kafka's (``OffsetOutOfRangeError``, ``CommitFailedError``...) so code moving
to or from kafka-python reads the same. ``retriable`` tells a caller whether trying the
same call again later can succeed.

Messages say what failed, the offending value and what to do. Exceptions stay
picklable: the fields go to ``BaseException.args`` and the text is built from them.
"""

from __future__ import annotations

__all__ = [
    "BrokerLockedError",
    "ClosedError",
    "CommitFailedError",
    "CorruptStoreError",
    "DiskFullError",
    "FencedInstanceIdError",
    "FormatVersionError",
    "IllegalStateError",
    "InconsistentGroupProtocolError",
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidRecordError",
    "InvalidTopicError",
    "KafkaTimeoutError",
    "MessageSizeTooLargeError",
    "MqlogError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceNumberError",
    "ProducerFencedError",
    "TopicExistsError",
    "TransactionAbortableError",
    "UnknownTopicOrPartitionError",
]


class MqlogError(Exception):
    """Base class of every mqlog error.

    Attributes:
        retriable: True when repeating the same call later may succeed.
    """

    retriable = False

    def __str__(self) -> str:
        # Subclasses pass one preformatted message; keep it as the text.
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()


class ClosedError(MqlogError, RuntimeError):
    """The broker, producer, consumer or admin handle was closed (or the process forked)."""


class IllegalStateError(MqlogError, RuntimeError):
    """The call is not valid in the object's current state (e.g. poll with no assignment)."""


class KafkaTimeoutError(MqlogError, TimeoutError):
    """A blocking call did not complete within its timeout."""

    retriable = True


class InvalidTopicError(MqlogError, ValueError):
    """A topic name breaks Kafka's naming rules."""


class TopicExistsError(MqlogError, ValueError):
    """``create_topic`` was asked for a name that already exists."""


class UnknownTopicOrPartitionError(MqlogError, KeyError):
    """The topic does not exist, or the partition number is out of range."""

    def __str__(self) -> str:
        # KeyError would quote the message; show it as written.
        return MqlogError.__str__(self)


class InvalidConfigError(MqlogError, ValueError):
    """A topic or client configuration key is unknown or its value is invalid."""


class InvalidPartitionsError(MqlogError, ValueError):
    """A partition count is invalid (below 1, or not larger than the current count)."""


class InvalidRecordError(MqlogError, ValueError):
    """The record is not acceptable for the topic (e.g. no key on a compacted topic)."""


class MessageSizeTooLargeError(MqlogError, ValueError):
    """A record is larger than ``max_request_size`` or the topic's ``max.message.bytes``."""


class OffsetOutOfRangeError(MqlogError):
    """A consumer position lies outside the partition's log and no reset policy applies.

    Attributes:
        partitions: ``{TopicPartition: offset}`` of the out-of-range positions.
    """

    def __init__(self, message: str, partitions: dict | None = None) -> None:
        super().__init__(message, partitions or {})
        self.partitions = partitions or {}

    def __str__(self) -> str:
        return str(self.args[0])


class CommitFailedError(MqlogError):
    """An offset commit was refused (stale group generation or partitions no longer owned)."""


class InconsistentGroupProtocolError(MqlogError, ValueError):
    """The members of a group share no ``partition_assignment_strategy``."""


class FencedInstanceIdError(MqlogError):
    """Another consumer joined the group with this consumer's ``group_instance_id``."""


class ProducerFencedError(MqlogError):
    """A newer producer with the same ``transactional_id`` has fenced this one (or its
    transaction outlived ``transaction_timeout_ms`` and was aborted). Fatal for the
    producer: close it and create a new one."""


class OutOfOrderSequenceNumberError(MqlogError):
    """An idempotent producer's batch skipped sequence numbers: records are missing
    between it and the last batch written for the partition."""


class TransactionAbortableError(MqlogError):
    """The current transaction cannot commit (a record in it failed, or its offsets were
    refused): call ``abort_transaction()`` and retry the work in a new transaction."""


class BrokerLockedError(MqlogError):
    """Another process (or another broker in this process) owns the directory for writing."""

    retriable = True


class FormatVersionError(MqlogError):
    """The store was written in an on-disk format this version of mqlog cannot read."""


class CorruptStoreError(MqlogError):
    """The store's files are damaged (truncated, bad checksum, broken invariants)."""


class DiskFullError(MqlogError, OSError):
    """The disk holding the store is full; nothing committed earlier was touched."""

    retriable = True

    def __str__(self) -> str:
        return MqlogError.__str__(self)
