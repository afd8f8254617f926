"""aiokafka's error names (``aiokafka.errors``), backed by mqlog.

aiokafka re-exports kafka-python's error tree (``KafkaError``, ``CommitFailedError``, the
numbered ``BrokerResponseError`` subclasses...) and adds a few of its own. Here the
shared names *are* :mod:`mqlog.kafka.errors`' classes, so one ``except`` clause catches
an error whichever drop-in raised it. aiokafka's own names:

* ``ConsumerStoppedError``, ``IllegalOperation``, ``RecordTooLargeError``,
  ``ProducerClosed``, ``ProducerFenced`` (a ``ProducerFencedError``), plus the
  kafka-python 1.x names aiokafka still exports (``KafkaUnavailableError``,
  ``AuthenticationFailedError``...) are defined here;
* its spellings of errors kafka-python 3.x renamed (``OutOfOrderSequenceNumber``,
  ``GroupCoordinatorNotAvailableError``, ``InvalidMessageError``...) are aliases of the
  kafka-python classes with the same error code.

:func:`translate` turns an error from mqlog's core into the class aiokafka code expects
(the original stays as ``__cause__``), with mqlog.kafka's mapping plus aiokafka's
differences: a stopped client raises ``ConsumerStoppedError``/``ProducerClosed``, a bad
setting stays a ``ValueError`` (``InvalidConfigError``), a fenced producer raises
``ProducerFenced``.

Thread-safety: classes and pure functions; thread-safe.
"""

from __future__ import annotations

from .. import errors as _core
from ..kafka import _translate
from ..kafka.errors import (
    BrokerNotAvailableError,
    BrokerResponseError,
    Cancelled,
    ClusterAuthorizationFailedError,
    CommitFailedError,
    ConcurrentTransactionsError,
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    CorrelationIdError,
    CorruptRecordException,
    DuplicateSequenceNumberError,
    GroupAuthorizationFailedError,
    GroupIdNotFoundError,
    IllegalArgumentError,
    IllegalGenerationError,
    IllegalSaslStateError,
    IllegalStateError,
    IncompatibleBrokerVersion,
    InconsistentGroupProtocolError,
    InvalidCommitOffsetSizeError,
    InvalidConfigurationError,
    InvalidFetchRequestError,
    InvalidGroupIdError,
    InvalidPartitionsError,
    InvalidProducerEpochError,
    InvalidProducerIdMappingError,
    InvalidReplicationAssignmentError,
    InvalidReplicationFactorError,
    InvalidRequestError,
    InvalidRequiredAcksError,
    InvalidSessionTimeoutError,
    InvalidTimestampError,
    InvalidTopicError,
    InvalidTransactionTimeoutError,
    InvalidTxnStateError,
    KafkaConfigurationError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    KafkaStorageError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MemberIdRequiredError,
    MessageSizeTooLargeError,
    MetadataEmptyBrokerList,
    NoBrokersAvailable,
    NodeNotReadyError,
    NoError,
    NonEmptyGroupError,
    NoOffsetForPartitionError,
    NotControllerError,
    NotCoordinatorError,
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    NotLeaderForPartitionError,
    OffsetMetadataTooLargeError,
    OffsetOutOfRangeError,
    OperationNotAttemptedError,
    OutOfOrderSequenceNumberError,
    PolicyViolationError,
    ProducerFencedError,
    QuotaViolationError,
    RebalanceInProgressError,
    RecordListTooLargeError,
    ReplicaNotAvailableError,
    RequestTimedOutError,
    SaslAuthenticationFailedError,
    SecurityDisabledError,
    StaleControllerEpochError,
    StaleMetadata,
    TooManyInFlightRequests,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
    TransactionCoordinatorFencedError,
    UnknownError,
    UnknownMemberIdError,
    UnknownProducerIdError,
    UnknownTopicOrPartitionError,
    UnrecognizedBrokerVersion,
    UnsupportedCodecError,
    UnsupportedForMessageFormatError,
    UnsupportedSaslMechanismError,
    UnsupportedVersionError,
    for_code,
    kafka_errors,
)

__all__ = [
    "AuthenticationFailedError",
    "AuthenticationMethodNotSupported",
    "BrokerNotAvailableError",
    "BrokerResponseError",
    "Cancelled",
    "ClusterAuthorizationFailedError",
    "CommitFailedError",
    "ConcurrentTransactions",
    "ConsumerStoppedError",
    "CoordinatorLoadInProgressError",
    "CoordinatorNotAvailableError",
    "CorrelationIdError",
    "CorruptRecordException",
    "DuplicateSequenceNumber",
    "GroupAuthorizationFailedError",
    "GroupCoordinatorNotAvailableError",
    "GroupIdNotFound",
    "GroupLoadInProgressError",
    "IllegalArgumentError",
    "IllegalGenerationError",
    "IllegalOperation",
    "IllegalSaslStateError",
    "IllegalStateError",
    "IncompatibleBrokerVersion",
    "InconsistentGroupProtocolError",
    "InvalidCommitOffsetSizeError",
    "InvalidConfigurationError",
    "InvalidFetchRequestError",
    "InvalidGroupIdError",
    "InvalidMessageError",
    "InvalidPartitionsError",
    "InvalidProducerEpoch",
    "InvalidProducerIdMapping",
    "InvalidReplicationAssignmentError",
    "InvalidReplicationFactorError",
    "InvalidRequestError",
    "InvalidRequiredAcksError",
    "InvalidSessionTimeoutError",
    "InvalidTimestampError",
    "InvalidTopicError",
    "InvalidTransactionTimeout",
    "InvalidTxnState",
    "KafkaConfigurationError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaProtocolError",
    "KafkaStorageError",
    "KafkaTimeoutError",
    "KafkaUnavailableError",
    "LeaderNotAvailableError",
    "MemberIdRequired",
    "MessageSizeTooLargeError",
    "MetadataEmptyBrokerList",
    "NoBrokersAvailable",
    "NoError",
    "NoOffsetForPartitionError",
    "NodeNotReadyError",
    "NonEmptyGroup",
    "NotControllerError",
    "NotCoordinatorError",
    "NotCoordinatorForGroupError",
    "NotEnoughReplicasAfterAppendError",
    "NotEnoughReplicasError",
    "NotLeaderForPartitionError",
    "OffsetMetadataTooLargeError",
    "OffsetOutOfRangeError",
    "OperationNotAttempted",
    "OutOfOrderSequenceNumber",
    "PolicyViolationError",
    "ProducerClosed",
    "ProducerFenced",
    "QuotaViolationError",
    "RebalanceInProgressError",
    "RecordListTooLargeError",
    "RecordTooLargeError",
    "ReplicaNotAvailableError",
    "RequestTimedOutError",
    "SaslAuthenticationFailed",
    "SecurityDisabled",
    "StaleControllerEpochError",
    "StaleLeaderEpochCodeError",
    "StaleMetadata",
    "TooManyInFlightRequests",
    "TopicAlreadyExistsError",
    "TopicAuthorizationFailedError",
    "TransactionCoordinatorFenced",
    "TransactionalIdAuthorizationFailed",
    "UnknownError",
    "UnknownMemberIdError",
    "UnknownProducerId",
    "UnknownTopicOrPartitionError",
    "UnrecognizedBrokerVersion",
    "UnsupportedCodecError",
    "UnsupportedForMessageFormatError",
    "UnsupportedSaslMechanismError",
    "UnsupportedVersionError",
    "for_code",
    "kafka_errors",
    "translate",
]


# -- aiokafka's own classes ---------------------------------------------------------


class ConsumerStoppedError(Exception):
    """The consumer was stopped: raised by ``getone``/``getmany`` (also ones already
    waiting); ``async for`` ends instead."""


class IllegalOperation(Exception):
    """The operation needs a configuration the client does not have (``commit``
    without ``group_id``, transactions without ``transactional_id``), or is not allowed
    in the transaction's current state (``send`` outside a transaction)."""


class RecordTooLargeError(KafkaError):
    """A fetched record is larger than the fetch limits (never raised by mqlog, which
    has no fetch size limit; kept for code that catches it)."""


class ProducerClosed(KafkaError):
    """The producer was stopped: create a new one."""


class ProducerFenced(ProducerFencedError):
    """A newer producer with the same ``transactional_id`` took over, or this one's
    transaction outlived ``transaction_timeout_ms``. Fatal: stop this producer."""

    def __init__(self, msg: str = ("a newer producer is using the same transactional_id, "
                                   "or the transaction timed out (keep processing below "
                                   "transaction_timeout_ms)")) -> None:
        super().__init__(msg)


class KafkaUnavailableError(KafkaError):
    """No broker could be used (kafka-python 1.x's name, exported by aiokafka)."""


class AuthenticationMethodNotSupported(KafkaError):
    """The SASL mechanism is not supported (never raised: mqlog does not authenticate)."""


class AuthenticationFailedError(KafkaError):
    """Authentication failed (never raised: mqlog does not authenticate)."""


class StaleLeaderEpochCodeError(BrokerResponseError):
    """Kafka's retired error code 13 under its old name (aiokafka still exports it)."""

    errno, message = 13, "STALE_LEADER_EPOCH_CODE"


# -- aiokafka's spellings of kafka-python's classes (same error codes) ------------------

GroupCoordinatorNotAvailableError = CoordinatorNotAvailableError
NotCoordinatorForGroupError = NotCoordinatorError
GroupLoadInProgressError = CoordinatorLoadInProgressError
InvalidMessageError = CorruptRecordException
OutOfOrderSequenceNumber = OutOfOrderSequenceNumberError
DuplicateSequenceNumber = DuplicateSequenceNumberError
InvalidProducerEpoch = InvalidProducerEpochError
InvalidTxnState = InvalidTxnStateError
InvalidProducerIdMapping = InvalidProducerIdMappingError
InvalidTransactionTimeout = InvalidTransactionTimeoutError
ConcurrentTransactions = ConcurrentTransactionsError
TransactionCoordinatorFenced = TransactionCoordinatorFencedError
TransactionalIdAuthorizationFailed = TransactionalIdAuthorizationFailedError
SecurityDisabled = SecurityDisabledError
OperationNotAttempted = OperationNotAttemptedError
SaslAuthenticationFailed = SaslAuthenticationFailedError
UnknownProducerId = UnknownProducerIdError
NonEmptyGroup = NonEmptyGroupError
GroupIdNotFound = GroupIdNotFoundError
MemberIdRequired = MemberIdRequiredError


def translate(exc: BaseException, closed: type[BaseException] | None = None
              ) -> BaseException:
    """The exception aiokafka code expects for ``exc`` raised by mqlog's core.

    Non-mqlog exceptions (Kafka errors included) are returned unchanged; so is
    ``InvalidConfigError``, a ``ValueError`` as aiokafka raises for a bad setting.
    ``ClosedError`` becomes ``closed`` when given (``ConsumerStoppedError``,
    ``ProducerClosed``). Everything else is mqlog.kafka's translation, with
    ``ProducerFenced`` for a fenced producer.
    """
    if not isinstance(exc, _core.MqlogError) or isinstance(exc, _core.InvalidConfigError):
        return exc
    overrides: dict[type, type] = {_core.ProducerFencedError: ProducerFenced}
    if closed is not None:
        overrides[_core.ClosedError] = closed
    return _translate.translate(exc, overrides)
