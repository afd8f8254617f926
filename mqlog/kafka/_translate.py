"""The drop-in boundary: mqlog's exceptions become kafka-python's.

The core raises :class:`mqlog.errors.MqlogError` subclasses; code written for
kafka-python catches :mod:`mqlog.kafka.errors` classes. Every public method of the
``mqlog.kafka`` clients runs the core inside :func:`translated` (or calls
:func:`translate` where an error is handed over rather than raised: send futures,
errbacks, commit callbacks), so no core error reaches kafka-python code untranslated.

The translated error keeps the core message, has the core error as ``__cause__`` and,
for offset errors, its ``partitions``. Translating the same core error twice gives the
same object (a batch failure reaches every record's future as one exception, as in
kafka-python).

Rejected alternative: making the kafka-python classes bases of the core's. That needs
the core's error tree to know kafka-python's; see docs/dropin-kafka-python.md.

Thread-safety: thread-safe (one lock guards the per-error cache).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

from .. import errors as core
from . import errors as kafka

__all__ = ["translate", "translated"]

# Core class -> kafka-python class; looked up along the core error's MRO.
_MAP: dict[type, type] = {
    core.UnknownTopicOrPartitionError: kafka.UnknownTopicOrPartitionError,
    core.TopicExistsError: kafka.TopicAlreadyExistsError,
    core.InvalidTopicError: kafka.InvalidTopicError,
    core.InvalidPartitionsError: kafka.InvalidPartitionsError,
    core.InvalidRecordError: kafka.InvalidRecordError,
    core.MessageSizeTooLargeError: kafka.MessageSizeTooLargeError,
    core.OffsetOutOfRangeError: kafka.OffsetOutOfRangeError,
    core.CommitFailedError: kafka.CommitFailedError,
    core.InconsistentGroupProtocolError: kafka.InconsistentGroupProtocolError,
    core.FencedInstanceIdError: kafka.FencedInstanceIdError,
    core.ProducerFencedError: kafka.ProducerFencedError,
    core.OutOfOrderSequenceNumberError: kafka.OutOfOrderSequenceNumberError,
    core.TransactionAbortableError: kafka.TransactionAbortableError,
    core.IllegalStateError: kafka.IllegalStateError,
    core.ClosedError: kafka.IllegalStateError,  # kafka-python: "... already closed"
    core.KafkaTimeoutError: kafka.KafkaTimeoutError,
    core.InvalidConfigError: kafka.KafkaConfigurationError,
    core.BrokerLockedError: kafka.NoBrokersAvailable,
    core.DiskFullError: kafka.KafkaStorageError,
    core.CorruptStoreError: kafka.KafkaStorageError,
    core.FormatVersionError: kafka.KafkaStorageError,
    core.MqlogError: kafka.KafkaError,
}

_lock = threading.Lock()  # guards the cached translation on core errors
_CACHE = "_mqlog_kafka_error"


def _kafka_class(exc: core.MqlogError, overrides: dict[type, type] | None) -> type:
    for cls in type(exc).__mro__:
        if overrides and cls in overrides:
            return overrides[cls]
        if cls in _MAP:
            found = _MAP[cls]
            # The core has one class for "out of range" and "no committed offset";
            # kafka-python tells them apart.
            if found is kafka.OffsetOutOfRangeError and \
                    str(exc).startswith("no committed offset"):
                return kafka.NoOffsetForPartitionError
            return found
    return kafka.KafkaError


def translate(exc: BaseException, overrides: dict[type, type] | None = None) -> BaseException:
    """The kafka-python exception for ``exc`` (``exc`` itself unless it is an
    :class:`~mqlog.errors.MqlogError`).

    Args:
        overrides: core class -> kafka class for this call site (e.g. the admin maps
            ``InvalidConfigError`` to the broker's ``InvalidConfigurationError``).
    """
    if not isinstance(exc, core.MqlogError):
        return exc
    with _lock:
        cached = exc.__dict__.get(_CACHE)
        if cached is not None and (overrides is None or type(cached) is
                                   _kafka_class(exc, overrides)):
            return cached
        out = _kafka_class(exc, overrides)(str(exc))
        out.__cause__ = exc
        partitions = getattr(exc, "partitions", None)
        if partitions is not None:
            out.partitions = partitions
        if overrides is None:
            exc.__dict__[_CACHE] = out
    return out


F = TypeVar("F", bound=Callable[..., Any])


def translated(fn: F) -> F:
    """Decorate a drop-in method: core errors it raises leave as kafka-python's."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except core.MqlogError as exc:
            raise translate(exc) from exc

    return wrapper  # type: ignore[return-value]
