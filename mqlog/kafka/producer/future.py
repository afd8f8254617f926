"""What ``KafkaProducer.send`` returns: kafka-python's ``FutureRecordMetadata``.

A thin view of the core producer's future that speaks kafka-python: errors come out as
:mod:`mqlog.kafka.errors` classes (from ``get()``, ``exception`` and errbacks), and a
send failed by an injected fault (``broker.faults.fail_next("send", ...)``) is a future
that failed before anything was written, as a broker error reaches kafka-python code.

Thread-safety: thread-safe; callbacks run on the broker's writer thread (or at once
when the future is already done): keep them short and never block in them.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from ...errors import MqlogError
from ...records import RecordMetadata
from .._translate import translate
from ..errors import RetriableError

__all__ = ["FutureRecordMetadata", "RecordMetadata"]

log = logging.getLogger("mqlog.kafka")


class FutureRecordMetadata:
    """The outcome of one ``send()``: resolves to :class:`RecordMetadata`.

    Attributes (as kafka-python's, read without blocking): ``is_done``, ``value`` (the
    metadata once it succeeded) and ``exception`` (the error once it failed).
    """

    __slots__ = ("_inner", "_error")

    def __init__(self, inner: Any, error: BaseException | None = None) -> None:
        self._inner = inner  # the core future; None when failed before sending
        self._error = error

    def __repr__(self) -> str:
        state = "failed" if self.failed() else "done" if self.is_done else "pending"
        return f"<mqlog.kafka FutureRecordMetadata {state}>"

    @property
    def is_done(self) -> bool:
        return self._error is not None or self._inner.is_done

    @property
    def exception(self) -> BaseException | None:
        if self._error is not None:
            return self._error
        error = self._inner.exception
        return None if error is None else translate(error)

    @property
    def value(self) -> RecordMetadata | None:
        return None if self._error is not None else self._inner.value

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def retriable(self) -> bool:
        """True if it failed with an error worth sending again."""
        return isinstance(self.exception, RetriableError)

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to ``timeout`` seconds for the write; return where the record landed.

        Raises:
            KafkaTimeoutError: not written within ``timeout``.
            KafkaError: the write failed (e.g. ``UnknownTopicOrPartitionError``,
                ``KafkaStorageError``), or the injected error.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._inner.get(timeout)
        except MqlogError as exc:
            raise translate(exc) from exc

    def add_callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any
                     ) -> FutureRecordMetadata:
        """Call ``fn(*args, metadata, **kwargs)`` when the write succeeds."""
        if self._error is None:
            self._inner.add_callback(fn, *args, **kwargs)
        return self

    def add_errback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any
                    ) -> FutureRecordMetadata:
        """Call ``fn(*args, exception, **kwargs)`` when the write fails."""
        bound = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        if self._error is None:
            self._inner.add_errback(lambda error: bound(translate(error)))
            return self
        try:
            bound(self._error)
        except Exception:  # a user callback must not break send()'s caller
            log.exception("producer errback %r raised", fn)
        return self

    def add_both(self, fn: Callable[..., Any], *args: Any, **kwargs: Any
                 ) -> FutureRecordMetadata:
        self.add_callback(fn, *args, **kwargs)
        return self.add_errback(fn, *args, **kwargs)
