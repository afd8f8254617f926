"""Fault injection for tests: make a broker's clients fail the way a Kafka cluster can.

Every broker has a :class:`Faults` registry (``broker.faults``). The drop-in clients
(``mqlog.kafka``, ``mqlog.confluent``, ``mqlog.aiokafka``) consult it at the start of
each operation, so a test can make the code under test meet the errors it must handle,
which no other Kafka fake allows::

    broker.faults.fail_next("send", KafkaTimeoutError, times=2)   # the next 2 sends
    broker.faults.fail_next("commit", CommitFailedError)
    broker.faults.delay("poll", 0.2)                               # 200 ms per poll
    broker.faults.expire_member("billing")                         # a session timeout

Operations: ``"send"`` (produce), ``"commit"`` (offset commits), ``"poll"`` (fetches).
An error is an exception instance, or a class (instantiated with a message saying it was
injected). The drop-ins deliver it where the real client would: raised from the call,
set on the send future, or passed to the delivery callback.

Thread-safety: :class:`Faults` is thread-safe.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = ["OPERATIONS", "Faults"]

OPERATIONS = ("send", "commit", "poll")


def _check_op(op: str) -> None:
    if op not in OPERATIONS:
        raise ValueError(f"operation {op!r} is not one of {', '.join(OPERATIONS)}")


class Faults:
    """Pending injected failures and latencies of one broker. Thread-safe."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._failures: dict[str, deque[Any]] = {op: deque() for op in OPERATIONS}
        self._latency: dict[str, float] = dict.fromkeys(OPERATIONS, 0.0)
        self.armed = False  # cheap check for the clients' hot paths

    def fail_next(self, op: str, error: Any, times: int = 1) -> None:
        """Make the next ``times`` calls of ``op`` fail with ``error``.

        Raises:
            ValueError: unknown operation or ``times`` < 1.
            TypeError: ``error`` is neither an exception nor an exception class.
        """
        _check_op(op)
        if not isinstance(times, int) or times < 1:
            raise ValueError(f"times={times!r} must be an int >= 1")
        if not (isinstance(error, BaseException) or (
                isinstance(error, type) and issubclass(error, BaseException))):
            raise TypeError(f"error must be an exception or exception class, got {error!r}")
        with self._lock:
            self._failures[op].extend([error] * times)
            self.armed = True

    def delay(self, op: str, seconds: float) -> None:
        """Add ``seconds`` of latency to every call of ``op`` (0 removes it)."""
        _check_op(op)
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"seconds={seconds!r} must be a number >= 0")
        with self._lock:
            self._latency[op] = float(seconds)
            self.armed = self._any()

    def expire_member(self, group_id: str, member_id: str | None = None) -> list[str]:
        """Expire a group member's session now (default: every member of the group).

        The member notices in its next poll (its partitions are lost and it rejoins).
        Returns the member ids expired.
        """
        return self._broker._coordinator.evict(group_id, member_id)

    def clear(self) -> None:
        """Forget every pending failure and latency."""
        with self._lock:
            for q in self._failures.values():
                q.clear()
            self._latency = dict.fromkeys(OPERATIONS, 0.0)
            self.armed = False

    def _any(self) -> bool:
        return any(self._failures.values()) or any(self._latency.values())

    def take(self, op: str) -> tuple[BaseException | None, float]:
        """For a client about to perform ``op``: the error to fail it with (or None)
        and the latency to add first, in seconds."""
        if not self.armed:
            return None, 0.0
        with self._lock:
            q = self._failures[op]
            error = q.popleft() if q else None
            latency = self._latency[op]
            self.armed = self._any()
        if isinstance(error, type):
            error = error(f"{op} failed: injected by broker.faults.fail_next({op!r}, ...)")
        return error, latency

    def check(self, op: str) -> None:
        """Wait the injected latency, then raise the injected error if one is due."""
        error, latency = self.take(op)
        if latency:
            threading.Event().wait(latency)  # injected latency, not synchronisation
        if error is not None:
            raise error
