"""Wake-ups for threads waiting for records, by partition: the broker's ``Wakeups``.

A consumer's ``poll()`` and a parked wire Fetch wait for records in the partitions
they read. With one broker-wide condition, every commit woke every waiting thread, and
each paid a thread switch, an interpreter-lock hand-off and a fetch that found
nothing: tens of consumers idle on other topics cost a busy producer most of a CPU.
Instead each waiting thread owns a :class:`Waiter` watching its partitions; a commit
wakes the waiters of the partitions it appended to, and broker-wide events (a
rebalance, a deleted topic, the broker closing) wake every waiter.

A waiter never misses a wake-up: it reads :attr:`Waiter.wakes` before looking for
records and waits only if no notification came since. Notifications are counted
under the lock the wait holds, and whoever makes records visible does so before
notifying.

Thread-safety: :class:`Wakeups` is thread-safe. Its lock is the broker's data lock, a
leaf: held for bookkeeping and notifying only, never while waiting for anything else.
A :class:`Waiter` is waited on by the one thread that owns it, and notified from any.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Waiter", "Wakeups"]


class Waiter:
    """One thread's wait for records in the partitions it watches.

    Use: ``seen = waiter.wakes``, look for records, then ``with waiter:
    waiter.wait(seen, timeout)``. Waited on by one thread; notified by any.
    """

    __slots__ = ("_lock", "_cond", "wakes", "watched", "waiting", "on_wake",
                 "__weakref__")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._cond = threading.Condition(lock)
        self.wakes = 0  # notifications so far (changed under the lock)
        self.watched: tuple = ()  # the partitions watched, as given to Wakeups.watch
        self.waiting = False  # in wait(): a notification must signal the condition
        # Called after each wait (a seam for benchmarks/latency.py --stages).
        self.on_wake: Callable[[], None] | None = None

    def __enter__(self) -> Waiter:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def wait(self, seen: int, timeout: float | None) -> bool:
        """Wait until a notification after ``seen`` (a value of :attr:`wakes` read
        before looking for records) or for ``timeout`` seconds. Hold the lock (``with
        waiter:``). Returns whether a notification came."""
        if self.wakes == seen:
            self.waiting = True
            try:
                self._cond.wait(timeout)
            finally:
                self.waiting = False
            if self.on_wake is not None:
                self.on_wake()
        return self.wakes != seen

    def _notify(self) -> None:  # lock held
        self.wakes += 1
        if self.waiting:
            self._cond.notify()


class Wakeups:
    """The broker's waiters, by watched partition (see the module docstring).

    Args:
        lock: the lock every waiter's condition uses (the broker's data lock).
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._waiters: set[Waiter] = set()
        self._by_partition: dict[Any, set[Waiter]] = {}
        # Waiters whose owner was garbage-collected: queued without the lock (the
        # finaliser may run inside a collection on a thread that holds it), dropped
        # at the next watch or notify.
        self._dropped: deque[Waiter] = deque()

    def waiter(self) -> Waiter:
        """A new waiter, watching nothing yet (it still gets broker-wide events)."""
        waiter = Waiter(self._lock)
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def watch(self, waiter: Waiter, partitions: tuple) -> None:
        """Make ``partitions`` (PartitionLog objects) the ones ``waiter`` is woken for.
        A forgotten waiter (its owner closed meanwhile) stays forgotten.

        Cheap when nothing changes (no lock): callers pass their partitions on every
        poll. The watch changes only in the waiter's own thread, so the check holds."""
        if partitions == waiter.watched:
            return
        with self._lock:
            self._drop_collected()
            if waiter not in self._waiters:
                return
            self._unwatch(waiter)
            by_partition = self._by_partition
            for plog in partitions:
                watchers = by_partition.get(plog)
                if watchers is None:
                    watchers = by_partition[plog] = set()
                watchers.add(waiter)
            waiter.watched = partitions

    def forget(self, waiter: Waiter) -> None:
        """Stop waking ``waiter`` (its owner closed), after one last wake-up: a thread
        still waiting on it (a poll the close came from another thread for) must
        return and see the close. Idempotent."""
        with self._lock:
            waiter._notify()
            self._unwatch(waiter)
            self._waiters.discard(waiter)

    def collected(self, waiter: Waiter) -> None:
        """Forget ``waiter`` soon: its owner was garbage-collected. Lock-free (a
        finaliser runs wherever a collection happens, maybe under the lock)."""
        self._dropped.append(waiter)

    def _drop_collected(self) -> None:  # lock held
        dropped = self._dropped
        while dropped:
            waiter = dropped.popleft()
            self._unwatch(waiter)
            self._waiters.discard(waiter)

    def _unwatch(self, waiter: Waiter) -> None:  # lock held
        by_partition = self._by_partition
        for plog in waiter.watched:
            watchers = by_partition.get(plog)
            if watchers is not None:
                watchers.discard(waiter)
                if not watchers:
                    del by_partition[plog]
        waiter.watched = ()

    def poke(self, waiter: Waiter) -> None:
        """Wake one waiter (its owner's ``wakeup()``)."""
        with self._lock:
            waiter._notify()

    def notify(self, partitions: Iterable[Any] | None) -> None:
        """Wake the waiters watching any of ``partitions``; None: every waiter.
        The caller holds the lock (the broker notifies under its data lock)."""
        if self._dropped:
            self._drop_collected()
        if partitions is None:
            for waiter in self._waiters:
                waiter._notify()
            return
        by_partition = self._by_partition
        for plog in partitions:
            watchers = by_partition.get(plog)
            if watchers:
                for waiter in watchers:
                    waiter._notify()

    def watching(self, plog: Any) -> int:
        """How many waiters watch ``plog`` (for tests and stats)."""
        with self._lock:
            self._drop_collected()
            return len(self._by_partition.get(plog, ()))
