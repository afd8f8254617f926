"""kafka-python's ``Future``: the handle ``commit_async`` returns.

A one-shot result with callbacks: ``is_done``, ``value`` and ``exception`` attributes,
``succeeded()``/``failed()``/``retriable()``, and ``add_callback``/``add_errback``/
``add_both`` (``fn(*args, outcome, **kwargs)``). Callbacks added after completion run
at once; a raising callback is logged, never propagated.

Thread-safety: thread-safe; callbacks run in the thread that completes the future.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Callable

from .errors import RetriableError

__all__ = ["Future"]

log = logging.getLogger("mqlog.kafka")


class Future:
    """A result that arrives later (kafka-python's ``kafka.future.Future``)."""

    def __init__(self) -> None:
        self.is_done = False
        self.value: Any = None
        self.exception: BaseException | None = None
        self._lock = threading.Lock()  # guards is_done and the callback lists
        self._callbacks: list[Callable[[Any], Any]] = []
        self._errbacks: list[Callable[[Any], Any]] = []

    def __repr__(self) -> str:
        state = "failed" if self.failed() else "done" if self.is_done else "pending"
        return f"<mqlog.kafka.Future {state}>"

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def retriable(self) -> bool:
        """True if it failed with an error worth retrying."""
        return self.failed() and isinstance(self.exception, RetriableError)

    def success(self, value: Any) -> Future:
        """Complete with ``value`` and run the callbacks."""
        with self._lock:
            if self.is_done:
                raise RuntimeError(f"{self!r} was already completed")
            self.value, self.is_done = value, True
            callbacks, self._callbacks, self._errbacks = self._callbacks, [], []
        for fn in callbacks:
            _call(fn, value)
        return self

    def failure(self, error: BaseException | type[BaseException]) -> Future:
        """Complete with ``error`` (an exception or class) and run the errbacks."""
        exc = error() if isinstance(error, type) else error
        if not isinstance(exc, BaseException):
            raise TypeError(f"a future fails with an exception, got {error!r}")
        with self._lock:
            if self.is_done:
                raise RuntimeError(f"{self!r} was already completed")
            self.exception, self.is_done = exc, True
            errbacks, self._callbacks, self._errbacks = self._errbacks, [], []
        for fn in errbacks:
            _call(fn, exc)
        return self

    def add_callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Call ``fn(*args, value, **kwargs)`` on success."""
        return self._add(fn, args, kwargs, errback=False)

    def add_errback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Call ``fn(*args, exception, **kwargs)`` on failure."""
        return self._add(fn, args, kwargs, errback=True)

    def add_both(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        self.add_callback(fn, *args, **kwargs)
        return self.add_errback(fn, *args, **kwargs)

    def _add(self, fn: Callable[..., Any], args: tuple, kwargs: dict, errback: bool) -> Future:
        if args or kwargs:
            fn = functools.partial(fn, *args, **kwargs)
        with self._lock:
            if not self.is_done:
                (self._errbacks if errback else self._callbacks).append(fn)
                return self
        if errback and self.exception is not None:
            _call(fn, self.exception)
        elif not errback and self.exception is None:
            _call(fn, self.value)
        return self


def _call(fn: Callable[[Any], Any], outcome: Any) -> None:
    try:
        fn(outcome)
    except Exception:  # a user callback must not break the caller
        log.exception("future callback %r raised", fn)
