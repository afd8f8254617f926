"""kafka-python's exception classes, by kafka-python 3.x's names, bases and error codes.

Code written for kafka-python catches these (``except kafka.errors.KafkaError``,
``except kafka.errors.CommitFailedError``...). Every ``mqlog.kafka`` client raises only
these classes for mqlog's own errors: an :class:`mqlog.errors.MqlogError` coming out of
the core is translated at the drop-in boundary into the class below that has the same
meaning (the original stays attached as ``__cause__``), see :mod:`mqlog.kafka._translate`.
Built-in exceptions (``TypeError``, ``ValueError``) pass through unchanged, as in
kafka-python.

Class attributes, as kafka-python's:

- ``retriable``: repeating the call later may succeed;
- ``invalid_metadata``: the client's view of the cluster was stale (never true in one
  process, kept for code that reads it);
- on :class:`BrokerResponseError` subclasses: ``errno`` (Kafka's protocol error code),
  ``message`` (Kafka's error name) and ``description``.

:func:`for_code` maps an error code to its class. Only the errors a client meets are
defined here; an unknown code gets a generated ``UnrecognizedBrokerError``.

Thread-safety: classes and pure functions; thread-safe.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any


class KafkaError(RuntimeError):
    """Base class of every kafka-python error."""

    retriable = False
    invalid_metadata = False

    # kafka-python compares errors by class and args; identity hash keeps them usable
    # in sets and as dict keys (kafka-python's are unhashable).
    __hash__ = Exception.__hash__

    def __str__(self) -> str:
        if not self.args:
            return type(self).__name__
        return f"{type(self).__name__}: {super().__str__()}"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.args == getattr(other, "args", None)


class RetriableError(KafkaError):
    """An error that may go away when the call is repeated."""

    retriable = True


class InvalidMetadataError(RetriableError):
    """The client's cluster metadata was out of date."""

    invalid_metadata = True


class Cancelled(RetriableError):
    """The request was cancelled (the client was closed meanwhile)."""


class CommitFailedError(KafkaError):
    """An offset commit was refused: the group rebalanced and gave the partitions to
    another member (or this member was fenced)."""

    def __init__(self, *args: Any) -> None:
        if not args:
            args = ("the commit cannot complete: the group rebalanced and assigned the "
                    "partitions to another member; poll() again and redo the work",)
        super().__init__(*args)


class IllegalArgumentError(KafkaError):
    """An argument is not acceptable."""


class IllegalStateError(KafkaError):
    """The call is not valid in the client's current state (e.g. used after close)."""


class KafkaConfigurationError(KafkaError):
    """A client configuration key is unknown or its value is invalid."""


class KafkaConnectionError(InvalidMetadataError):
    """The connection to a broker failed."""


class KafkaProtocolError(KafkaError):
    """A response broke the Kafka protocol."""


class CorrelationIdError(RetriableError, KafkaProtocolError):
    """A response did not match its request."""


class InvalidReceiveError(KafkaProtocolError):
    """A response frame could not be read."""


class KafkaTimeoutError(RetriableError):
    """A blocking call did not complete within its timeout."""


class MetadataEmptyBrokerList(RetriableError):
    """The cluster metadata named no broker."""


class NoBrokersAvailable(KafkaError):
    """No broker could be reached at the bootstrap addresses (kafka-python 2.x's name;
    raised here when an ``mqlog://`` store is owned by another process)."""

    retriable = True
    invalid_metadata = True


class NoOffsetForPartitionError(KafkaError):
    """A partition has no committed offset and ``auto_offset_reset`` is 'none'."""


class NodeNotReadyError(RetriableError):
    """The broker connection is not ready yet."""


class QuotaViolationError(KafkaError):
    """A client quota was exceeded."""


class StaleMetadata(InvalidMetadataError):
    """The cluster metadata is stale."""


class TooManyInFlightRequests(RetriableError):
    """Too many requests are waiting for a response on one connection."""


class UnrecognizedBrokerVersion(KafkaError):
    """The broker's version could not be determined."""


class UnsupportedCodecError(KafkaError):
    """The compression codec is not available."""


class TransactionAbortedError(KafkaError):
    """A record was not written because its transaction was aborted."""

    message = "Failing batch since transaction was aborted"


class BrokerResponseError(KafkaError):
    """An error code returned by a broker (``errno`` is Kafka's protocol code)."""

    errno: int | None = None
    message: str | None = None
    description: str | None = None

    def __str__(self) -> str:
        return f"[Error {self.errno}] {super().__str__()}"


class AuthorizationError(BrokerResponseError):
    """The client is not authorized for the operation."""


class NoError(BrokerResponseError):
    errno, message = 0, "NO_ERROR"
    description = "No error: the request succeeded."


class UnknownError(BrokerResponseError):
    errno, message = -1, "UNKNOWN"
    description = "An unexpected error on the broker."


class OffsetOutOfRangeError(BrokerResponseError):
    errno, message = 1, "OFFSET_OUT_OF_RANGE"
    description = "The offset asked for lies outside the partition's stored records."


class CorruptRecordError(BrokerResponseError):
    errno, message = 2, "CORRUPT_MESSAGE"
    description = "A record failed its checksum or is otherwise damaged."


CorruptRecordException = CorruptRecordError  # kafka-python's older name


class UnknownTopicOrPartitionError(InvalidMetadataError, BrokerResponseError):
    errno, message = 3, "UNKNOWN_TOPIC_OR_PARTITION"
    description = "The topic or partition does not exist."


class InvalidFetchRequestError(BrokerResponseError):
    errno, message = 4, "INVALID_FETCH_SIZE"
    description = "A fetch asked for a negative size."


class LeaderNotAvailableError(InvalidMetadataError, BrokerResponseError):
    errno, message = 5, "LEADER_NOT_AVAILABLE"
    description = "The partition has no leader right now (e.g. during an election)."


class NotLeaderForPartitionError(InvalidMetadataError, BrokerResponseError):
    errno, message = 6, "NOT_LEADER_FOR_PARTITION"
    description = "The request went to a broker that does not lead the partition."


class RequestTimedOutError(RetriableError, BrokerResponseError):
    errno, message = 7, "REQUEST_TIMED_OUT"
    description = "The broker did not complete the request in time."


class BrokerNotAvailableError(BrokerResponseError):
    errno, message = 8, "BROKER_NOT_AVAILABLE"
    description = "The broker is not available."


class ReplicaNotAvailableError(InvalidMetadataError, BrokerResponseError):
    errno, message = 9, "REPLICA_NOT_AVAILABLE"
    description = "A replica of the partition is not available."


class MessageSizeTooLargeError(BrokerResponseError):
    errno, message = 10, "MESSAGE_TOO_LARGE"
    description = "The record is larger than the producer or topic allows."


class StaleControllerEpochError(BrokerResponseError):
    errno, message = 11, "STALE_CONTROLLER_EPOCH"
    description = "The controller epoch is out of date."


class OffsetMetadataTooLargeError(BrokerResponseError):
    errno, message = 12, "OFFSET_METADATA_TOO_LARGE"
    description = "The metadata committed with an offset is too long."


class NetworkExceptionError(InvalidMetadataError, BrokerResponseError):
    errno, message = 13, "NETWORK_EXCEPTION"
    description = "The connection closed before the response arrived."


class CoordinatorLoadInProgressError(RetriableError, BrokerResponseError):
    errno, message = 14, "COORDINATOR_LOAD_IN_PROGRESS"
    description = "The group coordinator is still loading its state."


class CoordinatorNotAvailableError(RetriableError, BrokerResponseError):
    errno, message = 15, "COORDINATOR_NOT_AVAILABLE"
    description = "The group coordinator is not available."


class NotCoordinatorError(RetriableError, BrokerResponseError):
    errno, message = 16, "NOT_COORDINATOR"
    description = "The request went to a broker that does not coordinate the group."


class InvalidTopicError(BrokerResponseError):
    errno, message = 17, "INVALID_TOPIC_EXCEPTION"
    description = "The topic name is invalid (or the topic is internal)."


class RecordListTooLargeError(BrokerResponseError):
    errno, message = 18, "RECORD_LIST_TOO_LARGE"
    description = "A produce request's batch is larger than the segment size."


class NotEnoughReplicasError(RetriableError, BrokerResponseError):
    errno, message = 19, "NOT_ENOUGH_REPLICAS"
    description = "Fewer in-sync replicas than min.insync.replicas."


class NotEnoughReplicasAfterAppendError(RetriableError, BrokerResponseError):
    errno, message = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
    description = "Written, but with fewer in-sync replicas than required."


class InvalidRequiredAcksError(BrokerResponseError):
    errno, message = 21, "INVALID_REQUIRED_ACKS"
    description = "The acks value is not valid."


class IllegalGenerationError(BrokerResponseError):
    errno, message = 22, "ILLEGAL_GENERATION"
    description = "The group generation in the request is out of date."


class InconsistentGroupProtocolError(BrokerResponseError):
    errno, message = 23, "INCONSISTENT_GROUP_PROTOCOL"
    description = "The member shares no assignment strategy with the group."


class InvalidGroupIdError(BrokerResponseError):
    errno, message = 24, "INVALID_GROUP_ID"
    description = "The group id is empty or invalid."


class UnknownMemberIdError(BrokerResponseError):
    errno, message = 25, "UNKNOWN_MEMBER_ID"
    description = "The member id is not known to the group coordinator."


class InvalidSessionTimeoutError(BrokerResponseError):
    errno, message = 26, "INVALID_SESSION_TIMEOUT"
    description = "The session timeout is outside the allowed range."


class RebalanceInProgressError(BrokerResponseError):
    errno, message = 27, "REBALANCE_IN_PROGRESS"
    description = "The group is rebalancing: rejoin it."


class InvalidCommitOffsetSizeError(BrokerResponseError):
    errno, message = 28, "INVALID_COMMIT_OFFSET_SIZE"
    description = "The offset commit request is too large."


class TopicAuthorizationFailedError(AuthorizationError):
    errno, message = 29, "TOPIC_AUTHORIZATION_FAILED"
    description = "The client may not access the topic."


class GroupAuthorizationFailedError(AuthorizationError):
    errno, message = 30, "GROUP_AUTHORIZATION_FAILED"
    description = "The client may not access the group."


class ClusterAuthorizationFailedError(AuthorizationError):
    errno, message = 31, "CLUSTER_AUTHORIZATION_FAILED"
    description = "The client may not perform cluster operations."


class InvalidTimestampError(BrokerResponseError):
    errno, message = 32, "INVALID_TIMESTAMP"
    description = "A record timestamp is out of the accepted range."


class UnsupportedSaslMechanismError(BrokerResponseError):
    errno, message = 33, "UNSUPPORTED_SASL_MECHANISM"
    description = "The broker does not support the SASL mechanism."


class IllegalSaslStateError(BrokerResponseError):
    errno, message = 34, "ILLEGAL_SASL_STATE"
    description = "The request is not valid in the SASL state."


class UnsupportedVersionError(BrokerResponseError):
    errno, message = 35, "UNSUPPORTED_VERSION"
    description = "The broker does not support the request's version."


class IncompatibleBrokerVersion(UnsupportedVersionError):
    """The broker is too old for the requested feature."""


class TopicAlreadyExistsError(BrokerResponseError):
    errno, message = 36, "TOPIC_ALREADY_EXISTS"
    description = "A topic with this name already exists."


class InvalidPartitionsError(BrokerResponseError):
    errno, message = 37, "INVALID_PARTITIONS"
    description = "The number of partitions is invalid."


class InvalidReplicationFactorError(BrokerResponseError):
    errno, message = 38, "INVALID_REPLICATION_FACTOR"
    description = "The replication factor is invalid."


class InvalidReplicationAssignmentError(BrokerResponseError):
    errno, message = 39, "INVALID_REPLICA_ASSIGNMENT"
    description = "The replica assignment is invalid."


class InvalidConfigurationError(BrokerResponseError):
    errno, message = 40, "INVALID_CONFIG"
    description = "A topic configuration key or value is invalid."


class NotControllerError(RetriableError, BrokerResponseError):
    errno, message = 41, "NOT_CONTROLLER"
    description = "The request went to a broker that is not the controller."


class InvalidRequestError(BrokerResponseError):
    errno, message = 42, "INVALID_REQUEST"
    description = "The request is malformed or not valid for this broker."


class UnsupportedForMessageFormatError(BrokerResponseError):
    errno, message = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT"
    description = "The message format does not support the request."


class PolicyViolationError(BrokerResponseError):
    errno, message = 44, "POLICY_VIOLATION"
    description = "The request breaks a policy configured on the broker."


class OutOfOrderSequenceNumberError(BrokerResponseError):
    errno, message = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER"
    description = "The broker received an out of order sequence number."


class DuplicateSequenceNumberError(BrokerResponseError):
    errno, message = 46, "DUPLICATE_SEQUENCE_NUMBER"
    description = "The broker received a duplicate sequence number."


class InvalidProducerEpochError(BrokerResponseError):
    errno, message = 47, "INVALID_PRODUCER_EPOCH"
    description = "The producer's epoch is older than the broker's."


class InvalidTxnStateError(BrokerResponseError):
    errno, message = 48, "INVALID_TXN_STATE"
    description = "The transactional call is not valid in the transaction's state."


class InvalidProducerIdMappingError(BrokerResponseError):
    errno, message = 49, "INVALID_PRODUCER_ID_MAPPING"
    description = "The producer id does not match the transactional id."


class InvalidTransactionTimeoutError(BrokerResponseError):
    errno, message = 50, "INVALID_TRANSACTION_TIMEOUT"
    description = "The transaction timeout is above the broker's maximum."


class ConcurrentTransactionsError(RetriableError, BrokerResponseError):
    errno, message = 51, "CONCURRENT_TRANSACTIONS"
    description = "Another transaction of this producer is still completing."


class TransactionCoordinatorFencedError(BrokerResponseError):
    errno, message = 52, "TRANSACTION_COORDINATOR_FENCED"
    description = "The transaction coordinator was replaced."


class TransactionalIdAuthorizationFailedError(AuthorizationError):
    errno, message = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    description = "The client may not use the transactional id."


class SecurityDisabledError(BrokerResponseError):
    errno, message = 54, "SECURITY_DISABLED"
    description = "Security features are disabled on the broker."


class OperationNotAttemptedError(BrokerResponseError):
    errno, message = 55, "OPERATION_NOT_ATTEMPTED"
    description = "The operation was not attempted because another one in the batch failed."


class KafkaStorageError(InvalidMetadataError, BrokerResponseError):
    errno, message = 56, "KAFKA_STORAGE_ERROR"
    description = "The broker's disk is full, damaged or unreadable."


class SaslAuthenticationFailedError(BrokerResponseError):
    errno, message = 58, "SASL_AUTHENTICATION_FAILED"
    description = "SASL authentication failed."


class UnknownProducerIdError(BrokerResponseError):
    errno, message = 59, "UNKNOWN_PRODUCER_ID"
    description = "The broker holds no state for the producer id."


class NonEmptyGroupError(BrokerResponseError):
    errno, message = 68, "NON_EMPTY_GROUP"
    description = "The group still has members."


class GroupIdNotFoundError(BrokerResponseError):
    errno, message = 69, "GROUP_ID_NOT_FOUND"
    description = "The group does not exist."


class TopicDeletionDisabledError(BrokerResponseError):
    errno, message = 73, "TOPIC_DELETION_DISABLED"
    description = "Topic deletion is disabled on the broker."


class FencedLeaderEpochError(InvalidMetadataError, BrokerResponseError):
    errno, message = 74, "FENCED_LEADER_EPOCH"
    description = "The request's leader epoch is older than the broker's."


class UnknownLeaderEpochError(InvalidMetadataError, BrokerResponseError):
    errno, message = 75, "UNKNOWN_LEADER_EPOCH"
    description = "The request's leader epoch is newer than the broker's."


class UnsupportedCompressionTypeError(BrokerResponseError):
    errno, message = 76, "UNSUPPORTED_COMPRESSION_TYPE"
    description = "The compression type is not supported."


class OffsetNotAvailableError(RetriableError, BrokerResponseError):
    errno, message = 78, "OFFSET_NOT_AVAILABLE"
    description = "The leader's high watermark has not caught up yet."


class MemberIdRequiredError(BrokerResponseError):
    errno, message = 79, "MEMBER_ID_REQUIRED"
    description = "The member must rejoin with the member id it was given."


class GroupMaxSizeReachedError(BrokerResponseError):
    errno, message = 81, "GROUP_MAX_SIZE_REACHED"
    description = "The group is full."


class FencedInstanceIdError(BrokerResponseError):
    errno, message = 82, "FENCED_INSTANCE_ID"
    description = "Another member joined with the same group_instance_id."


class GroupSubscribedToTopicError(BrokerResponseError):
    errno, message = 86, "GROUP_SUBSCRIBED_TO_TOPIC"
    description = "The group is subscribed to the topic of the offsets."


class InvalidRecordError(BrokerResponseError):
    errno, message = 87, "INVALID_RECORD"
    description = "The record failed the broker's validation (e.g. no key on a compacted topic)."


class UnstableOffsetCommitError(RetriableError, BrokerResponseError):
    errno, message = 88, "UNSTABLE_OFFSET_COMMIT"
    description = "Offsets of an open transaction are pending for the partition."


class ThrottlingQuotaExceededError(RetriableError, BrokerResponseError):
    errno, message = 89, "THROTTLING_QUOTA_EXCEEDED"
    description = "The request exceeded a throttling quota."


class ProducerFencedError(BrokerResponseError):
    errno, message = 90, "PRODUCER_FENCED"
    description = "A newer producer with the same transactional_id fenced this one."


class ResourceNotFoundError(BrokerResponseError):
    errno, message = 91, "RESOURCE_NOT_FOUND"
    description = "The resource does not exist."


class DuplicateResourceError(BrokerResponseError):
    errno, message = 92, "DUPLICATE_RESOURCE"
    description = "The request names the same resource twice."


class UnknownTopicIdError(InvalidMetadataError, BrokerResponseError):
    errno, message = 100, "UNKNOWN_TOPIC_ID"
    description = "No topic has this id."


class TransactionalIdNotFoundError(BrokerResponseError):
    errno, message = 105, "TRANSACTIONAL_ID_NOT_FOUND"
    description = "The transactional id is not known."


class TransactionAbortableError(BrokerResponseError):
    errno, message = 120, "TRANSACTION_ABORTABLE"
    description = "The transaction cannot commit: abort it and retry the work."


def _broker_errors() -> dict[int, type[BrokerResponseError]]:
    module = sys.modules[__name__]
    return {cls.errno: cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BrokerResponseError) and cls.errno is not None}


kafka_errors: dict[int, type[BrokerResponseError]] = _broker_errors()


def for_code(error_code: int) -> type[BrokerResponseError]:
    """The error class for Kafka protocol error code ``error_code``.

    An unknown code gets a generated ``UnrecognizedBrokerError`` subclass of
    :class:`UnknownError` carrying that ``errno``, so the code is never lost.
    """
    cls = kafka_errors.get(error_code)
    if cls is None:
        cls = type("UnrecognizedBrokerError", (UnknownError,), {"errno": error_code})
    return cls
