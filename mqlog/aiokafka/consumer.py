"""AIOKafkaConsumer: aiokafka's consumer API over mqlog's :class:`~mqlog.Consumer`.

The core consumer lives in a worker thread (:mod:`._fetcher`) that polls in the
background; what it fetched is folded into a :class:`~._state.ConsumerState` on the
event loop (records buffered per partition, the assignment and positions as the user
sees them). ``getone``/``getmany``/``async for`` take records from that buffer and,
when it is empty, wait on an :class:`asyncio.Event` the worker's results set: the loop
never blocks and never polls. Every commit made for the user (``commit()``,
auto-commit, the commit before a rebalance, ``stop()``) uses *consumed* offsets, so
nothing fetched but not yet handed out is ever committed (at-least-once, as aiokafka).

This module is the API: argument checks, aiokafka's errors, auto-commit, and the
rebalance callbacks the worker runs on the loop.

Thread-safety: use the consumer from the event loop that ran :meth:`start`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from typing import Any, Callable, Iterable

from .. import _bootstrap
from ..errors import ClosedError, MqlogError, TopicExistsError
from ._bridge import LoopPoster, check_offsets, injected_fault, maybe_await, reraise
from ._fetcher import ConsumerThread, FetchResult
from ._state import ConsumerState
from .abc import ConsumerRebalanceListener
from .errors import (
    ConsumerStoppedError,
    IllegalOperation,
    IllegalStateError,
    RecordTooLargeError,
)
from ..records import ConsumerRecord as _CoreRecord
from .structs import ConsumerRecord, OffsetAndMetadata, OffsetAndTimestamp, TopicPartition

__all__ = ["AIOKafkaConsumer"]

log = logging.getLogger("mqlog.aiokafka")

_API_VERSION = "0.12.0"
_DEFAULT_POLL_RECORDS = 500  # per core poll when max_poll_records is None ("no limit")
_new_record = tuple.__new__


def _is_tp(tp: Any) -> bool:
    return isinstance(tp, TopicPartition)


class AIOKafkaConsumer:
    """Consumes records from mqlog topics with aiokafka's API.

    Not thread-safe: use it from the event loop that ran :meth:`start`, as aiokafka
    (its blocking work runs in the consumer's own worker thread). ::

        consumer = AIOKafkaConsumer("orders", bootstrap_servers="mqlog:///data",
                                    group_id="billing", auto_offset_reset="earliest")
        await consumer.start()
        try:
            async for record in consumer:
                ...
        finally:
            await consumer.stop()

    Keywords are aiokafka's; ``bootstrap_servers`` selects the broker
    (:func:`mqlog._bootstrap.resolve`). Network, security, fetch-size and retry settings
    are accepted and ignored. An unknown keyword is a ``TypeError``, as with aiokafka.

    Rebalance listeners run on the event loop.

    Raises (constructor):
        ValueError: bad ``max_poll_records``, ``auto_offset_reset`` or
            ``isolation_level``, or ``group_instance_id`` without ``group_id``.
    """

    def __init__(
        self,
        *topics: str,
        loop: Any = None,
        bootstrap_servers: Any = "localhost",
        client_id: str = "aiokafka-" + _API_VERSION,
        group_id: str | None = None,
        group_instance_id: str | None = None,
        key_deserializer: Callable[[Any], Any] | None = None,
        value_deserializer: Callable[[Any], Any] | None = None,
        fetch_max_wait_ms: int = 500,
        fetch_max_bytes: int = 52428800,
        fetch_min_bytes: int = 1,
        max_partition_fetch_bytes: int = 1048576,
        request_timeout_ms: int = 40000,
        retry_backoff_ms: int = 100,
        auto_offset_reset: str = "latest",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        check_crcs: bool = True,
        metadata_max_age_ms: int = 300000,
        partition_assignment_strategy: Any = ("roundrobin",),
        max_poll_interval_ms: int = 300000,
        rebalance_timeout_ms: int | None = None,
        session_timeout_ms: int = 10000,
        heartbeat_interval_ms: int = 3000,
        consumer_timeout_ms: int = 200,
        max_poll_records: int | None = None,
        ssl_context: Any = None,
        security_protocol: str = "PLAINTEXT",
        api_version: str = "auto",
        exclude_internal_topics: bool = True,
        connections_max_idle_ms: int = 540000,
        isolation_level: str = "read_uncommitted",
        sasl_mechanism: str = "PLAIN",
        sasl_plain_password: str | None = None,
        sasl_plain_username: str | None = None,
        sasl_kerberos_service_name: str = "kafka",
        sasl_kerberos_domain_name: str | None = None,
        sasl_oauth_token_provider: Any = None,
    ) -> None:
        if loop is not None:
            warnings.warn("the loop argument is deprecated (as in aiokafka): the consumer "
                          "uses the loop that runs start()", DeprecationWarning, stacklevel=2)
        if max_poll_records is not None and (
                not isinstance(max_poll_records, int) or max_poll_records < 1):
            raise ValueError(f"max_poll_records={max_poll_records!r} must be an int >= 1 "
                             "or None (no limit)")
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(f"auto_offset_reset={auto_offset_reset!r} is not valid: use "
                             "'earliest', 'latest' or 'none'")
        if isolation_level not in ("read_uncommitted", "read_committed"):
            raise ValueError(f"isolation_level={isolation_level!r} is not valid: use "
                             "'read_uncommitted' or 'read_committed'")
        if group_instance_id is not None and group_id is None:
            raise ValueError(f"group_instance_id={group_instance_id!r} needs a group_id")
        self.client_id = client_id
        self._group_id = group_id
        self._bootstrap_servers = bootstrap_servers
        self._key_deserializer = key_deserializer
        self._value_deserializer = value_deserializer
        self._auto_commit = bool(enable_auto_commit) and group_id is not None
        self._auto_commit_interval = auto_commit_interval_ms / 1000.0
        self._max_poll_records = max_poll_records
        self._read_committed = isolation_level == "read_committed"
        # The core never auto-commits: its position runs ahead of what the user has
        # consumed (records wait in our buffer), so this layer commits consumed offsets.
        self._core_config: dict[str, Any] = dict(
            group_id=group_id, client_id=client_id, auto_offset_reset=auto_offset_reset,
            enable_auto_commit=False, max_poll_records=max_poll_records or
            _DEFAULT_POLL_RECORDS, max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=heartbeat_interval_ms,
            partition_assignment_strategy=partition_assignment_strategy,
            isolation_level=isolation_level, group_instance_id=group_instance_id)
        self._thread = ConsumerThread(self, f"mqlog-aiokafka-{client_id}",
                                      max_poll_records or _DEFAULT_POLL_RECORDS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._closed = False
        self._state = ConsumerState(self._thread)  # what the user sees
        self._mode: str | None = None  # None, "subscribe" or "assign"
        self._listener: Any = None
        self._assigned_once = asyncio.Event()  # the group gave us partitions once
        self._auto_commit_task: asyncio.Task | None = None
        self._last_auto_commit: dict | None = None
        if topics:
            self.subscribe(list(topics))

    def __repr__(self) -> str:
        state = "stopped" if self._closed else ("started" if self._loop else "new")
        return (f"<mqlog.aiokafka.AIOKafkaConsumer {self.client_id} group="
                f"{self._group_id!r} partitions={len(self._state.assignment)} {state}>")

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the broker, create the core consumer in its worker thread, apply the
        subscription or assignment, and (subscribed with a group) wait until the group
        has given this consumer its partitions, as aiokafka does.

        Raises:
            IllegalStateError: ``start()`` was called before.
            NoBrokersAvailable: the ``mqlog://`` directory is owned by another process.
            ValueError: a setting the core refuses.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not None or self._closed:
            raise IllegalStateError("start() was already called on this consumer: create "
                                    "a new one to start again")
        self._loop = loop
        try:
            broker = await loop.run_in_executor(
                None, _bootstrap.resolve, self._bootstrap_servers)
        except BaseException as exc:
            self._closed = True  # nothing was created; this consumer cannot be used
            if isinstance(exc, MqlogError):
                reraise(exc)
            raise
        self._broker = broker
        created = self._thread.start(loop, LoopPoster(loop),
                                     lambda: broker.consumer(**self._core_config))
        try:
            await self._command_result(created)
        except BaseException:
            self._closed = True  # the worker has ended; this consumer cannot be used
            raise
        await self._command(None, kind="fetch")  # join the group, prefetch
        if self._mode == "subscribe" and self._group_id is not None:
            await self._wait_assigned()
        if self._auto_commit and not broker.readonly:
            self._auto_commit_task = loop.create_task(self._auto_commit_loop())

    async def _wait_assigned(self) -> None:
        while not self._assigned_once.is_set():
            self._raise_pending()
            self._state.data.clear()
            waiters = [asyncio.ensure_future(self._assigned_once.wait()),
                       asyncio.ensure_future(self._state.data.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            if self._closed:
                raise ConsumerStoppedError("the consumer was stopped while starting")
        self._raise_pending()

    async def stop(self) -> None:
        """Commit consumed offsets (with ``enable_auto_commit``), leave the group and
        release the consumer. Idempotent. Waiting ``getone``/``getmany`` calls raise
        :class:`ConsumerStoppedError`; ``async for`` ends. No listener is called.

        Do not await ``stop()`` inside a rebalance listener (it waits for the rebalance).
        """
        if self._closed:
            return
        self._closed = self._state.closed = True
        self._state.data.set()
        self._assigned_once.set()
        if self._auto_commit_task is not None:
            self._auto_commit_task.cancel()
        if self._loop is None:
            return  # never started: nothing was created
        offsets = self._state.consumed_offsets() if self._auto_commit and self._mode else {}
        if offsets and not self._broker.readonly:
            error = await injected_fault(self._broker, "commit", ConsumerStoppedError)
            if error is not None:
                log.warning("final auto-commit of %s failed: %s", self.client_id, error)
                offsets = {}
        else:
            offsets = {}

        def close(t: ConsumerThread) -> None:
            t.suppress_listener = True
            try:
                if offsets:
                    try:
                        t.core.commit(offsets)
                    except MqlogError as exc:
                        log.warning("final auto-commit of %s failed: %s", t._name, exc)
                t.core.close(autocommit=False)
            finally:
                t.exit = True

        try:
            await self._thread.submit(close, reentrant=False, kind="close")
        except ClosedError:
            pass  # the worker had already ended (the broker was closed): nothing to do
        except MqlogError as exc:
            log.warning("closing consumer %s: %s", self.client_id, exc)

    async def __aenter__(self) -> AIOKafkaConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def _require_started(self) -> None:
        if self._closed:
            raise ConsumerStoppedError("the consumer was stopped")
        if self._loop is None:
            raise IllegalStateError("the consumer is not started: await consumer.start() "
                                    "(or use 'async with') first")

    async def _command(self, fn: Callable[[ConsumerThread], Any] | None, *,
                       epoch: int = 0, kind: str = "call") -> Any:
        self._require_started()
        return await self._command_result(
            self._thread.submit(fn, epoch=epoch, kind=kind))

    @staticmethod
    async def _command_result(fut: asyncio.Future) -> Any:
        try:
            return await fut
        except MqlogError as exc:
            reraise(exc, ConsumerStoppedError)

    # -- worker results and rebalance callbacks (called on the loop) --------------------

    def _absorb(self, r: FetchResult) -> None:
        self._state.absorb(r)

    def _thread_error(self, exc: BaseException) -> None:
        self._state.fail(exc)

    def _raise_pending(self) -> None:
        exc = self._state.take_error()
        if exc is not None:
            reraise(exc, ConsumerStoppedError)

    async def _bridge_revoke(self, tps: list[TopicPartition], lost: bool) -> dict:
        """Before ``tps`` go: their consumed offsets (to auto-commit unless lost), and
        their buffered records dropped (they belong to the next owner)."""
        consumed = self._state.revoke(tps)
        offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in consumed.items()
                   if self._auto_commit and not lost}
        if offsets:
            error = await injected_fault(self._broker, "commit", ConsumerStoppedError)
            if error is not None:
                log.warning("auto-commit before rebalance of %s failed: %s", self.client_id,
                            error)
                return {}
        return offsets

    async def _bridge_listener(self, name: str, tps: list[TopicPartition]) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            await maybe_await(getattr(listener, name)(tps))
        except Exception:  # as aiokafka: a failing listener is logged, not fatal
            log.exception("rebalance listener %s(%s) raised", name, tps)

    async def _bridge_assigned(self, tps: list[TopicPartition], assignment: frozenset,
                               applied: int) -> None:
        if applied >= self._state.assign_epoch:
            self._state.set_assignment(assignment)
        self._assigned_once.set()
        await self._bridge_listener("on_partitions_assigned", tps)

    # -- offsets --------------------------------------------------------------------

    async def _auto_commit_loop(self) -> None:
        try:
            while not self._closed:
                await asyncio.sleep(self._auto_commit_interval)  # a timer, not a wait
                await self._auto_commit_now()
        except asyncio.CancelledError:
            pass

    async def _auto_commit_now(self) -> None:
        offsets = self._state.consumed_offsets()
        if not offsets or offsets == self._last_auto_commit:
            return
        error = await injected_fault(self._broker, "commit", ConsumerStoppedError)
        try:
            if error is not None:
                raise error
            await self._command(lambda t: t.core.commit(offsets))
            self._last_auto_commit = offsets
        except (MqlogError, Exception) as exc:  # as aiokafka: logged, retried next time
            if isinstance(exc, ConsumerStoppedError):
                return
            log.warning("auto-commit of %s failed: %s", self.client_id, exc)

    async def commit(self, offsets: dict[TopicPartition, Any] | None = None) -> None:
        """Commit offsets for ``group_id`` (default: the consumed offsets of every
        assigned partition). A committed offset is the next offset to read.

        Args:
            offsets: ``{TopicPartition: offset | (offset, metadata) | OffsetAndMetadata}``.

        Raises:
            IllegalOperation: no ``group_id``.
            IllegalStateError: not subscribed/assigned, or a partition is not assigned.
            CommitFailedError: the group rebalanced or the partitions are not this
                member's (also injected with ``broker.faults.fail_next("commit", ...)``).
            ValueError: offsets of the wrong shape.
        Durability: stored (survives the process being killed) when this returns.
        """
        if self._group_id is None:
            raise IllegalOperation("commit() needs a group_id: create the consumer with "
                                   "group_id='...'")
        self._require_started()
        if self._mode is None:
            raise IllegalStateError("nothing to commit: the consumer is neither subscribed "
                                    "nor assigned; call subscribe() or assign() first")
        if offsets is None:
            formatted = self._state.consumed_offsets()
        else:
            formatted = check_offsets(offsets)
            for tp in formatted:
                if tp not in self._state.assignment:
                    raise IllegalStateError(
                        f"partition {tp} is not assigned to this consumer (assigned: "
                        f"{sorted(self._state.assignment)}): commit only assigned partitions")
        error = await injected_fault(self._broker, "commit", ConsumerStoppedError)
        if error is not None:
            raise error
        if formatted:
            await self._command(lambda t: t.core.commit(formatted))

    async def committed(self, partition: TopicPartition) -> int | None:
        """The committed offset of ``partition`` for ``group_id`` (None if none).

        Raises:
            IllegalOperation: no ``group_id``.
        """
        if self._group_id is None:
            raise IllegalOperation("committed() needs a group_id: create the consumer with "
                                   "group_id='...'")
        return await self._command(lambda t: t.core.committed(partition))

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record ``getone``/``getmany`` will return.

        Raises:
            IllegalStateError: ``partition`` is not assigned.
        """
        self._require_started()
        self._state.check_assigned([partition])
        consumed = self._state.buf.get(partition)
        if consumed:
            return consumed[0].offset
        pos = await self._command(lambda t: t.core.position(partition))
        buffered = self._state.buf.get(partition)  # fetched while we waited
        return buffered[0].offset if buffered else pos

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's end offset as of its last fetch (None before one); for a
        ``read_committed`` consumer, the last stable offset."""
        self._state.check_assigned([partition])
        return self._state.highwater.get(partition)

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        """The last stable offset as of the last fetch (``read_committed`` only; -1
        for ``read_uncommitted``, as aiokafka)."""
        self._state.check_assigned([partition])
        if not self._read_committed:
            return -1
        return self._state.highwater.get(partition)

    def last_poll_timestamp(self, partition: TopicPartition) -> int | None:
        """When records of ``partition`` last arrived (ms since the epoch)."""
        self._state.check_assigned([partition])
        return self._state.poll_ts.get(partition)

    # -- seeking --------------------------------------------------------------------

    def _targets(self, partitions: tuple) -> list[TopicPartition]:
        if not all(_is_tp(tp) for tp in partitions):
            raise TypeError(f"partitions must be TopicPartition instances, got {partitions!r}")
        if not partitions:
            if not self._state.assignment:
                raise IllegalStateError("no partitions are assigned to this consumer")
            return sorted(self._state.assignment)
        self._state.check_assigned(partitions)
        return list(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next offset ``getone``/``getmany`` return for ``partition``.

        Takes effect before the next fetch (also when called in a rebalance listener).
        An offset past the end is accepted; the next fetch applies ``auto_offset_reset``.

        Raises:
            ValueError: ``offset`` is not an int >= 0.
            IllegalStateError: ``partition`` is not assigned.
        """
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"seek offset {offset!r} must be an int >= 0")
        self._state.check_assigned([partition])
        epoch = self._state.move([partition])
        self._state.pos[partition] = offset
        self._thread.post(lambda t: t.core.seek(partition, offset), epoch=epoch)
        self._thread.unhold([partition])

    async def _seek_many(self, partitions: tuple, how: str) -> dict[TopicPartition, Any]:
        tps = self._targets(partitions)
        fallback = {tp: self._state.consumed(tp) for tp in tps}
        epoch = self._state.move(tps)

        def run(t: ConsumerThread) -> dict[TopicPartition, Any]:
            core = t.core
            found: dict[TopicPartition, Any] = {}
            if how == "beginning":
                core.seek_to_beginning(*tps)
            elif how == "end":
                core.seek_to_end(*tps)
            else:
                for tp in tps:
                    found[tp] = core.committed(tp)
                    target = found[tp] if found[tp] is not None else fallback[tp]
                    if target is not None:
                        core.seek(tp, target)
            t.report(state.moved, epoch, {tp: core.position(tp) for tp in tps})
            return found

        state = self._state
        fut = self._thread.submit(run, epoch=epoch)
        self._thread.unhold(tps)
        return await self._command_result(fut)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        """Move to the oldest offset still stored (default: every assigned partition).

        Raises:
            TypeError: an argument is not a TopicPartition.
            IllegalStateError: a partition is not assigned (or none is).
        """
        self._require_started()
        await self._seek_many(partitions, "beginning")
        return True

    async def seek_to_end(self, *partitions: TopicPartition) -> bool:
        """Move to the end (the last stable offset for ``read_committed``). Raises as
        :meth:`seek_to_beginning`."""
        self._require_started()
        await self._seek_many(partitions, "end")
        return True

    async def seek_to_committed(self, *partitions: TopicPartition
                                ) -> dict[TopicPartition, int | None]:
        """Move to the committed offsets; partitions without one keep their position.

        Returns:
            ``{TopicPartition: committed offset or None}``.

        Raises:
            IllegalOperation: no ``group_id``. Else as :meth:`seek_to_beginning`.
        """
        if self._group_id is None:
            raise IllegalOperation("seek_to_committed() needs a group_id")
        self._require_started()
        return await self._seek_many(partitions, "committed")

    async def offsets_for_times(self, timestamps: dict[TopicPartition, int]
                                ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """Per partition, the first record whose timestamp is >= the one given (ms).

        Raises:
            ValueError: a negative timestamp.
        """
        for tp, ts in timestamps.items():
            if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
                raise ValueError(f"timestamp {ts!r} for {tp} must be an int >= 0 (ms)")
        wanted = dict(timestamps)
        return await self._command(lambda t: t.core.offsets_for_times(wanted))

    async def beginning_offsets(self, partitions: Iterable[TopicPartition]
                                ) -> dict[TopicPartition, int]:
        """The oldest offset still stored, per partition (positions are unchanged)."""
        tps = list(partitions)
        return await self._command(lambda t: t.core.beginning_offsets(tps))

    async def end_offsets(self, partitions: Iterable[TopicPartition]
                          ) -> dict[TopicPartition, int]:
        """The offset the next record will get, per partition (the last stable offset
        for ``read_committed``)."""
        tps = list(partitions)
        return await self._command(lambda t: t.core.end_offsets(tps))

    # -- subscription -----------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None,
                  listener: ConsumerRebalanceListener | None = None) -> None:
        """Subscribe to topics (or a regex ``pattern``) with group management.

        Replaces an earlier subscription. Missing topics are created when the broker
        auto-creates topics (as a Kafka broker does for a consumer's metadata request).

        Raises:
            TypeError: neither or both of topics and pattern; a listener that is not a
                :class:`ConsumerRebalanceListener`; topics not a list/tuple/set of str.
            IllegalStateError: the consumer uses ``assign()``.
            ValueError: ``pattern`` is not a valid regular expression.
        """
        if bool(topics) == (pattern is not None):
            raise TypeError("subscribe() takes topics or pattern= (exactly one of them)")
        if listener is not None and not isinstance(listener, ConsumerRebalanceListener):
            raise TypeError(f"listener {listener!r} must be an instance of "
                            "ConsumerRebalanceListener (mqlog.aiokafka.abc)")
        if self._mode == "assign":
            raise IllegalStateError("this consumer uses assign(): subscription and manual "
                                    "assignment are exclusive; call unsubscribe() first")
        names: list[str] = []
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: "
                                 f"{exc}") from None
        else:
            if not isinstance(topics, (list, tuple, set, frozenset)) or not all(
                    isinstance(t, str) for t in topics):
                raise TypeError(f"topics must be a list of str, got {topics!r}")
            names = sorted(set(topics))
        self._mode = "subscribe"
        self._listener = listener
        self._state.follow_pattern = pattern is not None
        self._state.topics = frozenset(names)
        adapter = self._thread.listener

        def run(t: ConsumerThread) -> None:
            broker = t.core._broker
            if names and broker.auto_create_topics and not broker.readonly:
                existing = broker.topics()
                for name in names:
                    if name not in existing:
                        try:
                            broker.create_topic(name)
                        except TopicExistsError:
                            pass
            t.core.subscribe(names, pattern=pattern, listener=adapter)

        self._thread.post(run, reentrant=False)

    def subscription(self) -> frozenset[str]:
        """The subscribed topics (for a pattern: the topics it matched so far)."""
        return self._state.topics if self._state.topics is not None else frozenset()

    def unsubscribe(self) -> None:
        """Leave the group (committing consumed offsets with ``enable_auto_commit``) and
        drop the subscription and assignment. No listener is called."""
        offsets = self._state.consumed_offsets() if self._auto_commit and \
            self._mode == "subscribe" else {}
        self._mode = self._listener = self._state.topics = None
        self._state.follow_pattern = False
        epoch = self._state.reassign(frozenset())

        def run(t: ConsumerThread) -> None:
            if offsets:
                try:
                    t.core.commit(offsets)
                except MqlogError as exc:
                    log.warning("auto-commit on unsubscribe failed for %s: %s", t._name, exc)
            t.suppress_listener = True
            try:
                t.core.unsubscribe()
            finally:
                t.suppress_listener = False

        self._thread.post(run, epoch=epoch, reentrant=False)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (replacing an earlier assignment); no group
        management. An unknown partition is reported by the next ``getone``/``getmany``.

        Raises:
            IllegalStateError: the consumer is subscribed.
            TypeError: an element is not a TopicPartition.
        """
        if self._mode == "subscribe":
            raise IllegalStateError("this consumer is subscribed: subscription and manual "
                                    "assignment are exclusive; call unsubscribe() first")
        tps = []
        for tp in partitions:
            if not isinstance(tp, tuple) or len(tp) != 2:
                raise TypeError(f"assign() takes TopicPartition objects, got {tp!r}")
            tps.append(TopicPartition(*tp))
        new = frozenset(tps)
        self._mode = "assign"
        epoch = self._state.reassign(new)
        self._thread.post(lambda t: t.core.assign(sorted(new)), epoch=epoch,
                          reentrant=False)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return set(self._state.assignment)

    def pause(self, *partitions: TopicPartition) -> None:
        """Return no records of these partitions until :meth:`resume` (no rebalance).

        Raises:
            TypeError: an argument is not a TopicPartition.
            IllegalStateError: a partition is not assigned.
        """
        if not all(_is_tp(tp) for tp in partitions):
            raise TypeError(f"partitions must be TopicPartition instances, got {partitions!r}")
        self._state.check_assigned(partitions)
        self._state.paused.update(partitions)
        self._thread.set_paused(frozenset(self._state.paused))

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records of these paused partitions again."""
        if not all(_is_tp(tp) for tp in partitions):
            raise TypeError(f"partitions must be TopicPartition instances, got {partitions!r}")
        self._state.paused.difference_update(partitions)
        self._thread.set_paused(frozenset(self._state.paused))
        self._state.data.set()  # buffered records of these partitions are servable again

    def paused(self) -> set[TopicPartition]:
        """Partitions paused with :meth:`pause`."""
        return set(self._state.paused)

    async def topics(self) -> set[str]:
        """Every topic of the broker."""
        self._require_started()
        return set(self._broker.topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The topic's partition numbers, or None if it is unknown (or not started)."""
        if self._broker is None:
            return None
        info = self._broker.topics().get(topic)
        return None if info is None else set(range(info.partitions))

    # -- fetching -------------------------------------------------------------------

    def _deserialize(self, rec: ConsumerRecord) -> ConsumerRecord:
        kd, vd = self._key_deserializer, self._value_deserializer
        if kd is None and vd is None:
            return rec
        # As aiokafka: deserializers also get None. tuple.__new__: no field checks.
        return _new_record(_CoreRecord, (
            rec[0], rec[1], rec[2], rec[3], rec[4], rec[5],
            rec[6] if kd is None else kd(rec[6]), rec[7] if vd is None else vd(rec[7]),
            rec[8], rec[9], rec[10], rec[11], rec[12]))

    def _take(self, partitions: tuple, limit: int | None
              ) -> dict[TopicPartition, list[ConsumerRecord]]:
        out = self._state.take(partitions, limit)
        if self._key_deserializer is not None or self._value_deserializer is not None:
            for tp, recs in out.items():
                out[tp] = [self._deserialize(r) for r in recs]
        return out

    def _check_fetch(self, partitions: tuple) -> None:
        if not all(_is_tp(tp) for tp in partitions):
            raise TypeError(f"partitions must be TopicPartition instances, got {partitions!r}")
        if self._closed:
            raise ConsumerStoppedError("the consumer was stopped")
        self._require_started()
        if self._mode is None:
            raise IllegalStateError("nothing to fetch: call subscribe([...]) or "
                                    "assign([...]) first")

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord:
        """The next record (of ``partitions``, default any assigned); waits for one.

        Raises:
            ConsumerStoppedError: the consumer was stopped (also while waiting).
            OffsetOutOfRangeError: no valid position and ``auto_offset_reset='none'``.
            KafkaError: an error injected with ``broker.faults.fail_next("poll", ...)``.

        Cost: no thread hop while records are buffered; otherwise waits on an event
        set when the worker's next fetch arrives.
        """
        self._check_fetch(partitions)
        error = await injected_fault(self._broker, "poll", ConsumerStoppedError)
        if error is not None:
            raise error
        while True:
            rec = self._state.pop_one(partitions)
            if rec is not None:
                return self._deserialize(rec)
            self._raise_pending()
            if self._closed:
                raise ConsumerStoppedError("the consumer was stopped")
            self._state.data.clear()
            await self._state.data.wait()

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records by partition, waiting up to ``timeout_ms`` for some.

        With ``timeout_ms=0`` the worker fetches once first, so every record committed
        to the log before the call is seen (a deterministic read for tests).

        Args:
            partitions: limit to these (default: every assigned partition).
            timeout_ms: longest wait when nothing is buffered.
            max_records: most records returned (default ``max_poll_records``; None for
                no limit).

        Raises:
            ValueError: ``max_records`` is not a positive int. Else as :meth:`getone`.
        """
        self._check_fetch(partitions)
        if max_records is not None and (not isinstance(max_records, int) or
                                        isinstance(max_records, bool) or max_records < 1):
            raise ValueError(f"max_records={max_records!r} must be an int >= 1 or None")
        error = await injected_fault(self._broker, "poll", ConsumerStoppedError)
        if error is not None:
            raise error
        limit = max_records or self._max_poll_records
        out = self._take(partitions, limit)
        if out:
            return out
        self._raise_pending()
        loop = self._loop
        if timeout_ms <= 0:
            await self._command(None, kind="fetch")
            out = self._take(partitions, limit)
            if not out:
                self._raise_pending()
            return out
        deadline = loop.time() + timeout_ms / 1000.0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return {}
            self._state.data.clear()
            try:
                await asyncio.wait_for(self._state.data.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            if self._closed:
                raise ConsumerStoppedError("the consumer was stopped")
            out = self._take(partitions, limit)
            if out:
                return out
            self._raise_pending()

    def __aiter__(self) -> AIOKafkaConsumer:
        if self._closed:
            raise ConsumerStoppedError("the consumer was stopped")
        return self

    async def __anext__(self) -> ConsumerRecord:
        """The next record; iteration ends when the consumer is stopped."""
        while True:
            try:
                return await self.getone()
            except ConsumerStoppedError:
                raise StopAsyncIteration from None
            except RecordTooLargeError:  # as aiokafka: logged, iteration goes on
                log.exception("record too large in consumer iteration")
