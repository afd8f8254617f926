"""The worker thread of an ``AIOKafkaConsumer``: the one thread that uses its core
:class:`~mqlog.Consumer`.

Kafka's rule is one thread per consumer, and mqlog's ``Consumer.poll()`` blocks, so each
``AIOKafkaConsumer`` owns a :class:`ConsumerThread` that does all of its core work:

* commands from the event loop (commit, seek, position, subscribe, close...) run here,
  in the order they were issued;
* between commands it polls in the background, as aiokafka's fetcher and coordinator
  tasks do: records, positions and the assignment as of that poll travel to the loop
  together (one :class:`FetchResult`), in order. A poll blocks on the broker's
  condition: new records, a group change, or ``core.wakeup()`` (sent with every command)
  end it. No polling loop; a bounded chunk only lets the thread notice a closed loop.
* partitions whose records still wait in the loop's buffer are paused in the core
  ("held"), so prefetch stays at about one poll per partition, and a group member keeps
  taking part in rebalances even while its user is busy.

Rebalance callbacks run inside the core's poll, in this thread. :class:`_Listener`
carries them to the loop (``run_coroutine_threadsafe``) and waits, serving the loop's
reentrant commands meanwhile: a listener may ``await consumer.committed(tp)`` or call
``consumer.seek()``. The loop never blocks waiting for this thread, so the wait cannot
deadlock.

Thread-safety: ``submit``, ``post``, ``unhold`` and ``set_paused`` are for the event loop
thread; everything else runs in the worker thread. Locks: ``_cond`` is never held while
calling into the core (``core.wakeup()`` takes the broker's data lock).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

from ..consumer import ConsumerRebalanceListener as _CoreListener
from ..errors import ClosedError, MqlogError
from ..records import TopicPartition
from ._bridge import LoopPoster, settle

__all__ = ["ConsumerThread", "FetchResult"]

log = logging.getLogger("mqlog.aiokafka")

BACKGROUND_POLL_MS = 1000  # longest blocking poll: bounds noticing a closed loop
IDLE_WAIT = 1.0            # same, while there is nothing to poll
BRIDGE_WAIT = 0.5          # same, while a listener runs on the loop


class FetchResult:
    """What one background poll found, as of the end of that poll."""

    __slots__ = ("records", "positions", "highwater", "assignment", "subscription",
                 "applied", "at_ms")

    def __init__(self, records: dict, positions: dict, highwater: dict,
                 assignment: frozenset, subscription: frozenset | None, applied: int,
                 at_ms: int) -> None:
        self.records = records          # {tp: [ConsumerRecord]}, raw (not deserialized)
        self.positions = positions      # {tp: next offset to fetch} for every assigned tp
        self.highwater = highwater      # {tp: end offset} for the tps in records
        self.assignment = assignment
        self.subscription = subscription  # topics matched (pattern subscriptions)
        self.applied = applied          # epoch of the last command run before the fetch
        self.at_ms = at_ms


class _Command:
    __slots__ = ("fn", "future", "epoch", "reentrant", "kind")

    def __init__(self, fn: Callable[[ConsumerThread], Any] | None,
                 future: asyncio.Future | None, epoch: int, reentrant: bool,
                 kind: str) -> None:
        self.fn = fn
        self.future = future
        self.epoch = epoch
        self.reentrant = reentrant  # may run while a listener is on the loop
        self.kind = kind            # "call", "fetch" (poll now) or "close"


class _Listener(_CoreListener):
    """The listener given to the core: forwards each callback to the thread."""

    def __init__(self, thread: ConsumerThread) -> None:
        self._thread = thread

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._thread.revoked(revoked, lost=False)

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self._thread.revoked(lost, lost=True)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._thread.assigned(assigned)


class ConsumerThread:
    """Runs one core consumer: commands, background polls and rebalance callbacks.

    Its public methods are for the event loop's thread (see the module docstring); the
    rest runs in the worker thread it starts.

    ``hooks`` is the owning ``AIOKafkaConsumer``; the thread calls (on the loop) its
    ``_absorb(FetchResult)``, ``_thread_error(exc)``, and awaits its coroutines
    ``_bridge_revoke(tps, lost)`` (returns offsets to auto-commit),
    ``_bridge_listener(name, tps)`` and ``_bridge_assigned(tps, assignment, applied)``.
    """

    def __init__(self, hooks: Any, name: str, max_records: int) -> None:
        self._hooks = hooks
        self._name = name
        self._max_records = max_records
        self.listener = _Listener(self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._poster: LoopPoster | None = None
        # Guards _commands, _held, _user_paused, _error_pending, _dead.
        self._cond = threading.Condition()
        self._commands: deque[_Command] = deque()
        self._dead = False  # the thread has ended; commands are refused
        self._held: set[TopicPartition] = set()
        self._user_paused: frozenset[TopicPartition] = frozenset()
        self._error_pending = False  # a poll failed; wait until the loop raised it
        # Worker-thread state.
        self.core: Any = None        # read by the loop only to call wakeup()
        self.exit = False            # set by the close command (or a lost loop)
        self.suppress_listener = False  # stop()/unsubscribe(): no user callbacks
        self._applied = 0            # epoch of the last command run
        self._last_post: tuple | None = None
        self._thread: threading.Thread | None = None

    # -- event loop side ------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, poster: LoopPoster,
              create: Callable[[], Any]) -> asyncio.Future:
        """Start the thread; it first runs ``create()`` to make the core consumer, then
        the commands queued before ``start``. Returns the creation's future."""
        self.loop = loop
        self._poster = poster
        fut = loop.create_future()

        def make(t: ConsumerThread) -> None:
            try:
                t.core = create()
            except BaseException:
                t.exit = True  # nothing to run: the thread ends after this command
                raise

        with self._cond:
            self._commands.appendleft(_Command(make, fut, 0, False, "call"))
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return fut

    def submit(self, fn: Callable[[ConsumerThread], Any] | None, *, epoch: int = 0,
               reentrant: bool = True, kind: str = "call") -> asyncio.Future:
        """Queue ``fn(thread)``; returns a future of its result (raw core errors)."""
        assert self.loop is not None, "the consumer thread is not started"
        fut = self.loop.create_future()
        self._queue(_Command(fn, fut, epoch, reentrant, kind))
        return fut

    def post(self, fn: Callable[[ConsumerThread], Any], *, epoch: int = 0,
             reentrant: bool = True) -> None:
        """Queue ``fn(thread)`` without a result; an error goes to the next get*()."""
        self._queue(_Command(fn, None, epoch, reentrant, "call"))

    def _queue(self, cmd: _Command) -> None:
        with self._cond:
            if not self._dead:
                self._commands.append(cmd)
                self._cond.notify_all()
        if self._dead:  # the thread has ended: nothing will run it
            if cmd.future is not None and not cmd.future.done():
                cmd.future.set_exception(ClosedError("the consumer was stopped"))
            return
        self._interrupt()

    def unhold(self, tps: Iterable[TopicPartition]) -> None:
        """The loop's buffer no longer holds records of ``tps``: fetch them again."""
        with self._cond:
            before = len(self._held)
            self._held.difference_update(tps)
            changed = len(self._held) != before
            if changed:
                self._cond.notify_all()
        if changed:
            self._interrupt()

    def set_paused(self, paused: frozenset[TopicPartition]) -> None:
        """The partitions the user paused (``pause()``/``resume()``)."""
        with self._cond:
            self._user_paused = paused
            self._cond.notify_all()
        self._interrupt()

    def error_seen(self) -> None:
        """The loop raised the last poll error: background polling may resume."""
        with self._cond:
            self._error_pending = False
            self._cond.notify_all()

    def report(self, fn: Callable[..., Any], *args: Any) -> None:
        """From a command: run ``fn(*args)`` on the loop, in order with the fetch
        results posted before and after it (worker thread)."""
        self._poster.post(fn, *args)

    def _interrupt(self) -> None:
        core = self.core
        if core is not None and not core.closed:
            core.wakeup()  # ends a blocking poll; harmless when none is running

    # -- worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self.exit:
                self._run_commands(in_bridge=False)
                if self.exit:
                    break
                with self._cond:
                    if self._commands:
                        continue
                    can_poll = self.core is not None and not self._error_pending
                if can_poll and self._active():
                    self._poll_once(BACKGROUND_POLL_MS)
                else:
                    with self._cond:
                        if not self._commands:
                            self._cond.wait(IDLE_WAIT)
                if self.loop.is_closed():
                    break  # the application ended without stop(): nobody is listening
        except BaseException as exc:  # a bug: tell the loop rather than die silently
            log.exception("consumer thread %s failed", self._name)
            self._poster.post(self._hooks._thread_error, exc)
        finally:
            self._finish()

    def _finish(self) -> None:
        with self._cond:
            self._dead = True
            left = list(self._commands)
            self._commands.clear()
        for cmd in left:
            if cmd.future is not None:
                self._poster.post(settle, cmd.future, None,
                                  ClosedError("the consumer was stopped"))
        core = self.core
        if core is not None and not core.closed:
            self.suppress_listener = True
            try:
                core.close(autocommit=False)
            except MqlogError as exc:
                log.warning("closing consumer %s: %s", self._name, exc)

    def _active(self) -> bool:
        core = self.core
        return core.subscription() is not None or bool(core.assignment())

    def _run_commands(self, in_bridge: bool) -> None:
        while not self.exit:
            with self._cond:
                cmd = self._next_command(in_bridge)
            if cmd is None:
                return
            self._execute(cmd, in_bridge)

    def _next_command(self, in_bridge: bool) -> _Command | None:
        """The next command to run (lock held); inside a listener, reentrant ones only."""
        if not in_bridge:
            return self._commands.popleft() if self._commands else None
        for i, cmd in enumerate(self._commands):
            if cmd.reentrant:
                del self._commands[i]
                return cmd
        return None

    def _execute(self, cmd: _Command, in_bridge: bool) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            if cmd.kind == "fetch":
                # Inside a listener the core is mid-poll: nothing to fetch from here.
                if not in_bridge and self.core is not None and self._active():
                    self._poll_once(0)
            else:
                result = cmd.fn(self)
        except Exception as exc:
            error = exc
        if cmd.epoch > self._applied:
            self._applied = cmd.epoch
        if cmd.future is not None:
            self._poster.post(settle, cmd.future, result, error)
        elif error is not None:
            self._poster.post(self._hooks._thread_error, error)

    def _sync_paused(self, core: Any) -> None:
        """Pause in the core what the user paused plus what the loop still holds."""
        assigned = core.assignment()
        with self._cond:
            desired = (self._held | self._user_paused) & assigned
        current = core.paused()
        if desired != current:
            if desired - current:
                core.pause(*(desired - current))
            if current - desired:
                core.resume(*(current - desired))

    def _poll_once(self, timeout_ms: float) -> None:
        core = self.core
        try:
            self._sync_paused(core)
            records = core.poll(timeout_ms=timeout_ms, max_records=self._max_records)
        except MqlogError as exc:
            with self._cond:
                self._error_pending = True
            if isinstance(exc, ClosedError):
                self.exit = True
            self._poster.post(self._hooks._thread_error, exc)
            return
        # Commands run inside this poll ran in listeners, before its last fetch: the
        # records returned already reflect them.
        applied = self._applied
        assignment = frozenset(core.assignment())
        positions: dict[TopicPartition, int] = {}
        for tp in assignment:
            try:
                positions[tp] = core.position(tp)
            except MqlogError:
                pass  # no valid position yet (e.g. auto_offset_reset='none')
        subscription = core.subscription()
        if subscription is not None:
            subscription = frozenset(subscription)
        state = (assignment, positions, subscription)
        if not records and state == self._last_post:
            return  # nothing new for the loop
        self._last_post = state
        highwater: dict[TopicPartition, int] = {}
        if records:
            with self._cond:
                self._held.update(records)
            try:
                highwater = core.end_offsets(list(records))
            except MqlogError:
                pass
        self._poster.post(self._hooks._absorb, FetchResult(
            records, positions, highwater, assignment, subscription, applied,
            time.time_ns() // 1_000_000))

    # -- rebalance callbacks (worker thread, inside core.poll) ---------------------------

    def bridge(self, coro: Any) -> Any:
        """Run ``coro`` on the loop and wait for its result, serving reentrant commands
        meanwhile. Returns None if the loop is gone or the coroutine raised (logged)."""
        try:
            cfut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            self.exit = True
            return None

        def wake(_: Any) -> None:
            with self._cond:
                self._cond.notify_all()

        cfut.add_done_callback(wake)
        while True:
            self._run_commands(in_bridge=True)
            with self._cond:
                if cfut.done():
                    break
                if not any(c.reentrant for c in self._commands):
                    self._cond.wait(BRIDGE_WAIT)
            if self.loop.is_closed() and not cfut.done():
                cfut.cancel()
                self.exit = True
                return None
        try:
            return cfut.result()
        except Exception:
            log.exception("rebalance handling on the event loop failed")
            return None

    def revoked(self, tps: list[TopicPartition], lost: bool) -> None:
        if self.suppress_listener or self.exit:
            return
        offsets = self.bridge(self._hooks._bridge_revoke(list(tps), lost))
        if offsets:
            try:  # auto-commit before the partitions go (Kafka's order)
                self.core.commit(offsets)
            except MqlogError as exc:
                log.warning("auto-commit before rebalance failed for %s: %s", self._name, exc)
        if self._hooks._listener is not None and not self.exit:
            self.bridge(self._hooks._bridge_listener("on_partitions_revoked", list(tps)))

    def assigned(self, tps: list[TopicPartition]) -> None:
        if self.suppress_listener or self.exit:
            return
        assignment = frozenset(self.core.assignment())
        self.bridge(self._hooks._bridge_assigned(list(tps), assignment, self._applied))
