"""confluent-kafka's error values: :class:`KafkaError` and :class:`KafkaException`.

``KafkaError`` carries librdkafka's numeric error code (negative codes are the
client's own "local" errors, ``_PARTITION_EOF``...; positive ones are Kafka protocol
errors, ``UNKNOWN_TOPIC_OR_PART``...) and the same constants as class attributes, so
``err.code() == KafkaError._PARTITION_EOF`` works unchanged. ``KafkaException`` is what
the clients raise; its ``args[0]`` is the ``KafkaError``.

:func:`to_kafka_error` turns an mqlog exception (``mqlog.errors``) into the
``KafkaError`` confluent-kafka reports for the same situation.

Thread-safety: the values are immutable; the functions are pure.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import errors as _errors

__all__ = ["KafkaError", "KafkaException", "to_kafka_error"]

# librdkafka's error codes and names (rdkafka.h). Local (client-side) errors are
# negative and their names start with "_".
_NAMES_TEXT = """
-199 _BAD_MSG -198 _BAD_COMPRESSION -197 _DESTROY -196 _FAIL -195 _TRANSPORT
-194 _CRIT_SYS_RESOURCE -193 _RESOLVE -192 _MSG_TIMED_OUT -191 _PARTITION_EOF
-190 _UNKNOWN_PARTITION -189 _FS -188 _UNKNOWN_TOPIC -187 _ALL_BROKERS_DOWN
-186 _INVALID_ARG -185 _TIMED_OUT -184 _QUEUE_FULL -183 _ISR_INSUFF -182 _NODE_UPDATE
-181 _SSL -180 _WAIT_COORD -179 _UNKNOWN_GROUP -178 _IN_PROGRESS -177 _PREV_IN_PROGRESS
-176 _EXISTING_SUBSCRIPTION -175 _ASSIGN_PARTITIONS -174 _REVOKE_PARTITIONS
-173 _CONFLICT -172 _STATE -171 _UNKNOWN_PROTOCOL -170 _NOT_IMPLEMENTED
-169 _AUTHENTICATION -168 _NO_OFFSET -167 _OUTDATED -166 _TIMED_OUT_QUEUE
-165 _UNSUPPORTED_FEATURE -164 _WAIT_CACHE -163 _INTR -162 _KEY_SERIALIZATION
-161 _VALUE_SERIALIZATION -160 _KEY_DESERIALIZATION -159 _VALUE_DESERIALIZATION
-158 _PARTIAL -157 _READ_ONLY -156 _NOENT -155 _UNDERFLOW -154 _INVALID_TYPE -153 _RETRY
-152 _PURGE_QUEUE -151 _PURGE_INFLIGHT -150 _FATAL -149 _INCONSISTENT
-148 _GAPLESS_GUARANTEE -147 _MAX_POLL_EXCEEDED -146 _UNKNOWN_BROKER
-145 _NOT_CONFIGURED -144 _FENCED -143 _APPLICATION -142 _ASSIGNMENT_LOST -141 _NOOP
-140 _AUTO_OFFSET_RESET -139 _LOG_TRUNCATION -138 _INVALID_DIFFERENT_RECORD
-137 _DESTROY_BROKER -1 UNKNOWN 0 NO_ERROR 1 OFFSET_OUT_OF_RANGE 2 INVALID_MSG
3 UNKNOWN_TOPIC_OR_PART 4 INVALID_MSG_SIZE 5 LEADER_NOT_AVAILABLE
6 NOT_LEADER_FOR_PARTITION 7 REQUEST_TIMED_OUT 8 BROKER_NOT_AVAILABLE
9 REPLICA_NOT_AVAILABLE 10 MSG_SIZE_TOO_LARGE 11 STALE_CTRL_EPOCH
12 OFFSET_METADATA_TOO_LARGE 13 NETWORK_EXCEPTION 14 COORDINATOR_LOAD_IN_PROGRESS
15 COORDINATOR_NOT_AVAILABLE 16 NOT_COORDINATOR 17 TOPIC_EXCEPTION
18 RECORD_LIST_TOO_LARGE 19 NOT_ENOUGH_REPLICAS 20 NOT_ENOUGH_REPLICAS_AFTER_APPEND
21 INVALID_REQUIRED_ACKS 22 ILLEGAL_GENERATION 23 INCONSISTENT_GROUP_PROTOCOL
24 INVALID_GROUP_ID 25 UNKNOWN_MEMBER_ID 26 INVALID_SESSION_TIMEOUT
27 REBALANCE_IN_PROGRESS 28 INVALID_COMMIT_OFFSET_SIZE 29 TOPIC_AUTHORIZATION_FAILED
30 GROUP_AUTHORIZATION_FAILED 31 CLUSTER_AUTHORIZATION_FAILED 32 INVALID_TIMESTAMP
33 UNSUPPORTED_SASL_MECHANISM 34 ILLEGAL_SASL_STATE 35 UNSUPPORTED_VERSION
36 TOPIC_ALREADY_EXISTS 37 INVALID_PARTITIONS 38 INVALID_REPLICATION_FACTOR
39 INVALID_REPLICA_ASSIGNMENT 40 INVALID_CONFIG 41 NOT_CONTROLLER 42 INVALID_REQUEST
43 UNSUPPORTED_FOR_MESSAGE_FORMAT 44 POLICY_VIOLATION 45 OUT_OF_ORDER_SEQUENCE_NUMBER
46 DUPLICATE_SEQUENCE_NUMBER 47 INVALID_PRODUCER_EPOCH 48 INVALID_TXN_STATE
49 INVALID_PRODUCER_ID_MAPPING 50 INVALID_TRANSACTION_TIMEOUT 51 CONCURRENT_TRANSACTIONS
52 TRANSACTION_COORDINATOR_FENCED 53 TRANSACTIONAL_ID_AUTHORIZATION_FAILED
54 SECURITY_DISABLED 55 OPERATION_NOT_ATTEMPTED 56 KAFKA_STORAGE_ERROR
57 LOG_DIR_NOT_FOUND 58 SASL_AUTHENTICATION_FAILED 59 UNKNOWN_PRODUCER_ID
60 REASSIGNMENT_IN_PROGRESS 61 DELEGATION_TOKEN_AUTH_DISABLED
62 DELEGATION_TOKEN_NOT_FOUND 63 DELEGATION_TOKEN_OWNER_MISMATCH
64 DELEGATION_TOKEN_REQUEST_NOT_ALLOWED 65 DELEGATION_TOKEN_AUTHORIZATION_FAILED
66 DELEGATION_TOKEN_EXPIRED 67 INVALID_PRINCIPAL_TYPE 68 NON_EMPTY_GROUP
69 GROUP_ID_NOT_FOUND 70 FETCH_SESSION_ID_NOT_FOUND 71 INVALID_FETCH_SESSION_EPOCH
72 LISTENER_NOT_FOUND 73 TOPIC_DELETION_DISABLED 74 FENCED_LEADER_EPOCH
75 UNKNOWN_LEADER_EPOCH 76 UNSUPPORTED_COMPRESSION_TYPE 77 STALE_BROKER_EPOCH
78 OFFSET_NOT_AVAILABLE 79 MEMBER_ID_REQUIRED 80 PREFERRED_LEADER_NOT_AVAILABLE
81 GROUP_MAX_SIZE_REACHED 82 FENCED_INSTANCE_ID 83 ELIGIBLE_LEADERS_NOT_AVAILABLE
84 ELECTION_NOT_NEEDED 85 NO_REASSIGNMENT_IN_PROGRESS 86 GROUP_SUBSCRIBED_TO_TOPIC
87 INVALID_RECORD 88 UNSTABLE_OFFSET_COMMIT 89 THROTTLING_QUOTA_EXCEEDED
90 PRODUCER_FENCED 91 RESOURCE_NOT_FOUND 92 DUPLICATE_RESOURCE 93 UNACCEPTABLE_CREDENTIAL
94 INCONSISTENT_VOTER_SET 95 INVALID_UPDATE_VERSION 96 FEATURE_UPDATE_FAILED
97 PRINCIPAL_DESERIALIZATION_FAILURE 100 UNKNOWN_TOPIC_ID 103 INCONSISTENT_TOPIC_ID
110 FENCED_MEMBER_EPOCH 111 UNRELEASED_INSTANCE_ID 112 UNSUPPORTED_ASSIGNOR
113 STALE_MEMBER_EPOCH 114 MISMATCHED_ENDPOINT_TYPE 115 UNSUPPORTED_ENDPOINT_TYPE
116 UNKNOWN_CONTROLLER_ID 117 UNKNOWN_SUBSCRIPTION_ID 118 TELEMETRY_TOO_LARGE
119 INVALID_REGISTRATION 120 TRANSACTION_ABORTABLE 121 INVALID_RECORD_STATE
122 SHARE_SESSION_NOT_FOUND 123 INVALID_SHARE_SESSION_EPOCH 124 FENCED_STATE_EPOCH
125 INVALID_VOTER_KEY 126 DUPLICATE_VOTER 127 VOTER_NOT_FOUND 128 INVALID_REGULAR_EXPRESSION
129 REBOOTSTRAP_REQUIRED 130 STREAMS_INVALID_TOPOLOGY 131 STREAMS_INVALID_TOPOLOGY_EPOCH
132 STREAMS_TOPOLOGY_FENCED 133 SHARE_SESSION_LIMIT_REACHED
"""


def _parse_names(text: str) -> dict[int, str]:
    words = text.split()
    return {int(words[i]): words[i + 1] for i in range(0, len(words), 2)}


NAMES: dict[int, str] = _parse_names(_NAMES_TEXT)
CODES: dict[str, int] = {name: code for code, name in NAMES.items()}

# Human-readable text for the codes mqlog reports (librdkafka's convention: "Local: "
# for client-side errors, "Broker: " for protocol errors). Other codes get a text
# derived from their name.
_TEXT = {
    "_PARTITION_EOF": "Broker: No more messages",
    "_MSG_TIMED_OUT": "Local: Message timed out",
    "_UNKNOWN_PARTITION": "Local: Unknown partition",
    "_UNKNOWN_TOPIC": "Local: Unknown topic",
    "_INVALID_ARG": "Local: Invalid argument or configuration",
    "_TIMED_OUT": "Local: Timed out",
    "_QUEUE_FULL": "Local: Queue full",
    "_STATE": "Local: Erroneous state",
    "_CONFLICT": "Local: Conflicting use",
    "_NO_OFFSET": "Local: No offset stored",
    "_FAIL": "Local: Failed",
    "_DESTROY": "Local: Broker handle destroyed",
    "_FENCED": "Local: This instance has been fenced by a newer instance",
    "_ASSIGNMENT_LOST": "Local: Group partition assignment lost",
    "_AUTO_OFFSET_RESET": "Local: No offset to automatically reset to",
    "_MAX_POLL_EXCEEDED": "Local: Maximum application poll interval exceeded",
    "_NOT_IMPLEMENTED": "Local: Not implemented",
    "_PURGE_QUEUE": "Local: Purged in queue",
    "_FS": "Local: File or filesystem error",
    "NO_ERROR": "Success",
    "OFFSET_OUT_OF_RANGE": "Broker: Offset out of range",
    "UNKNOWN_TOPIC_OR_PART": "Broker: Unknown topic or partition",
    "REQUEST_TIMED_OUT": "Broker: Request timed out",
    "MSG_SIZE_TOO_LARGE": "Broker: Message size too large",
    "TOPIC_EXCEPTION": "Broker: Invalid topic",
    "ILLEGAL_GENERATION": "Broker: Specified group generation id is not valid",
    "INCONSISTENT_GROUP_PROTOCOL": "Broker: Inconsistent group protocol",
    "REBALANCE_IN_PROGRESS": "Broker: Group rebalance in progress",
    "TOPIC_ALREADY_EXISTS": "Broker: Topic already exists",
    "INVALID_PARTITIONS": "Broker: Invalid number of partitions",
    "INVALID_CONFIG": "Broker: Configuration is invalid",
    "OUT_OF_ORDER_SEQUENCE_NUMBER": "Broker: Broker received an out of order sequence number",
    "KAFKA_STORAGE_ERROR": "Broker: Disk error when trying to access log file on disk",
    "NON_EMPTY_GROUP": "Broker: The group is not empty",
    "GROUP_ID_NOT_FOUND": "Broker: The group id does not exist",
    "FENCED_INSTANCE_ID": "Broker: Static consumer fenced by other consumer with same "
                          "group.instance.id",
    "INVALID_RECORD": "Broker: Broker failed to validate record",
    "PRODUCER_FENCED": "Broker: There is a newer producer with the same transactionalId "
                       "which fences the current one",
    "TRANSACTION_ABORTABLE": "Broker: Transaction is abortable",
}


def _text_for(code: int) -> str:
    name = NAMES.get(code)
    if name is None:
        return f"Err-{code}?"
    text = _TEXT.get(name)
    if text is not None:
        return text
    words = name.lstrip("_").replace("_", " ").lower()
    return ("Local: " if name.startswith("_") else "Broker: ") + words[:1].upper() + words[1:]


class KafkaError:
    """An error or event code with its text and flags (confluent-kafka's ``KafkaError``).

    Compares equal to another ``KafkaError`` or an ``int`` with the same code, and
    orders by code, as confluent-kafka's does. Immutable and hashable (by code).

    Args:
        code: a librdkafka error code (the class constants, e.g.
            ``KafkaError._PARTITION_EOF``).
        reason: the human-readable text (default: the code's standard text).
        fatal: the client instance can no longer be used.
        retriable: repeating the failed operation may succeed.
        txn_requires_abort: the current transaction must be aborted.
    """

    __slots__ = ("_code", "_reason", "_fatal", "_retriable", "_txn_requires_abort")

    def __init__(self, code: int, reason: str | None = None, fatal: bool = False,
                 retriable: bool = False, txn_requires_abort: bool = False) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"KafkaError code must be an int, got {type(code).__name__}")
        self._code = code
        self._reason = _text_for(code) if reason is None else str(reason)
        self._fatal = bool(fatal)
        self._retriable = bool(retriable)
        self._txn_requires_abort = bool(txn_requires_abort)

    def code(self) -> int:
        """The error/event code, for comparison with ``KafkaError.<NAME>``."""
        return self._code

    def name(self) -> str:
        """The code's name, e.g. ``"_PARTITION_EOF"`` (``"ERR_<code>?"`` if unknown)."""
        return NAMES.get(self._code, f"ERR_{self._code}?")

    def str(self) -> str:  # noqa: A003 - confluent-kafka's method name
        """The human-readable error text."""
        return self._reason

    def fatal(self) -> bool:
        """True if the client that reported it can no longer be used."""
        return self._fatal

    def retriable(self) -> bool:
        """True if repeating the failed operation may succeed."""
        return self._retriable

    def txn_requires_abort(self) -> bool:
        """True if the current transaction must be aborted (transactional producer)."""
        return self._txn_requires_abort

    def __repr__(self) -> str:
        flags = "FATAL," if self._fatal else ""
        return f'KafkaError{{{flags}code={self.name()},val={self._code},str="{self._reason}"}}'

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        if isinstance(other, int):
            return self._code == other
        return NotImplemented

    def __lt__(self, other: Any) -> bool:
        return self._code < (other._code if isinstance(other, KafkaError) else other)

    def __le__(self, other: Any) -> bool:
        return self._code <= (other._code if isinstance(other, KafkaError) else other)

    def __gt__(self, other: Any) -> bool:
        return self._code > (other._code if isinstance(other, KafkaError) else other)

    def __ge__(self, other: Any) -> bool:
        return self._code >= (other._code if isinstance(other, KafkaError) else other)

    def __hash__(self) -> int:
        return hash(self._code)

    def __reduce__(self) -> tuple:
        return (KafkaError, (self._code, self._reason, self._fatal, self._retriable,
                             self._txn_requires_abort))


for _code, _name in NAMES.items():
    setattr(KafkaError, _name, _code)
del _code, _name


class KafkaException(Exception):
    """Raised by the confluent-kafka drop-in clients; ``args[0]`` is a :class:`KafkaError`.

    ``str(exc)`` shows the error, as confluent-kafka's does.
    """


def error(name: str, reason: str | None = None, **flags: bool) -> KafkaError:
    """A :class:`KafkaError` by code name: ``error("_NO_OFFSET", "Commit failed: ...")``."""
    return KafkaError(CODES[name], reason, **flags)


def exception(name: str, reason: str | None = None, **flags: bool) -> KafkaException:
    """A :class:`KafkaException` carrying ``error(name, reason)``."""
    return KafkaException(error(name, reason, **flags))


# mqlog exception class -> code name, most specific first (checked with isinstance).
_BY_CLASS: tuple[tuple[type, str], ...] = (
    (_errors.MessageSizeTooLargeError, "MSG_SIZE_TOO_LARGE"),
    (_errors.UnknownTopicOrPartitionError, "UNKNOWN_TOPIC_OR_PART"),
    (_errors.OffsetOutOfRangeError, "OFFSET_OUT_OF_RANGE"),
    (_errors.CommitFailedError, "ILLEGAL_GENERATION"),
    (_errors.InvalidTopicError, "TOPIC_EXCEPTION"),
    (_errors.TopicExistsError, "TOPIC_ALREADY_EXISTS"),
    (_errors.InvalidPartitionsError, "INVALID_PARTITIONS"),
    (_errors.InvalidConfigError, "INVALID_CONFIG"),
    (_errors.InvalidRecordError, "INVALID_RECORD"),
    (_errors.InconsistentGroupProtocolError, "INCONSISTENT_GROUP_PROTOCOL"),
    (_errors.FencedInstanceIdError, "FENCED_INSTANCE_ID"),
    (_errors.ProducerFencedError, "_FENCED"),
    (_errors.OutOfOrderSequenceNumberError, "OUT_OF_ORDER_SEQUENCE_NUMBER"),
    (_errors.TransactionAbortableError, "TRANSACTION_ABORTABLE"),
    (_errors.IllegalStateError, "_STATE"),
    (_errors.ClosedError, "_DESTROY"),
    (_errors.DiskFullError, "KAFKA_STORAGE_ERROR"),
    (_errors.KafkaTimeoutError, "_TIMED_OUT"),
    (TimeoutError, "_TIMED_OUT"),
)
_FATAL = (_errors.ProducerFencedError, _errors.FencedInstanceIdError)


def _kafka_python_code_name(exc: BaseException) -> str:
    """The code name for a kafka-python / aiokafka error class (``mqlog.kafka.errors``,
    which ``aiokafka.errors`` shares), else ``"_FAIL"``.

    Why: with the pytest plugin's aliases a test may inject ``kafka.errors.X`` into an
    app that uses confluent-kafka (docs/testing.md's examples do); it must reach the
    app as the same condition, not as ``_FAIL``. Broker errors carry Kafka's protocol
    code (``errno``), which librdkafka's positive codes are.
    """
    kp = sys.modules.get("mqlog.kafka.errors")
    if kp is None or not isinstance(exc, kp.KafkaError):
        return "_FAIL"  # never imported: no kafka-python error can exist
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno in NAMES:
        return NAMES[errno]
    for cls_name, code_name in (("CommitFailedError", "ILLEGAL_GENERATION"),
                                ("KafkaTimeoutError", "_TIMED_OUT"),
                                ("IllegalStateError", "_STATE"),
                                ("NoBrokersAvailable", "_ALL_BROKERS_DOWN"),
                                ("KafkaConfigurationError", "_INVALID_ARG")):
        if isinstance(exc, getattr(kp, cls_name)):
            return code_name
    return "_FAIL"


def to_kafka_error(exc: BaseException, prefix: str = "", timeout_name: str = "_TIMED_OUT",
                   txn_requires_abort: bool = False) -> KafkaError:
    """The ``KafkaError`` confluent-kafka reports where mqlog raised ``exc``.

    A ``KafkaException`` (e.g. injected by a test with ``broker.faults``) keeps its
    error. Unknown exception types map to ``_FAIL``.

    Args:
        exc: the exception.
        prefix: text put before the exception's message (``"Commit failed: "``).
        timeout_name: the code for timeouts in this context (``_MSG_TIMED_OUT`` for
            deliveries, as librdkafka reports them).
        txn_requires_abort: set the flag (the caller knows the transaction failed).
    """
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    name = _kafka_python_code_name(exc)
    for cls, code_name in _BY_CLASS:
        if name != "_FAIL":
            break
        if isinstance(exc, cls):
            name = code_name
    if name == "_TIMED_OUT":
        name = timeout_name
    retriable = bool(getattr(exc, "retriable", False)) or name in (
        "_TIMED_OUT", "_MSG_TIMED_OUT", "KAFKA_STORAGE_ERROR")
    abort = txn_requires_abort or isinstance(exc, _errors.TransactionAbortableError)
    return KafkaError(CODES[name], f"{prefix}{exc}", fatal=isinstance(exc, _FATAL),
                      retriable=retriable, txn_requires_abort=abort)

