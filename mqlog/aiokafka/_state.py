"""What an ``AIOKafkaConsumer``'s user sees, kept on the event loop.

The worker thread (:mod:`._fetcher`) fetches ahead and reports each poll as a
:class:`~._fetcher.FetchResult`; :class:`ConsumerState` folds those results into a
buffer of records per partition plus the assignment, positions and paused partitions as
the user sees them, and hands records out.

Consumed offsets: the worker's core position runs ahead of what the user has received,
so the consumed offset of a partition is its first buffered record's offset, or the
core position (as of the last absorbed poll) once its buffer is empty. Every commit
made for the user uses consumed offsets, so nothing fetched but not handed out is ever
committed.

Epochs: a call that moves positions (``seek*``, ``assign``, ``unsubscribe``) takes the
next epoch; the worker reports with each poll the last epoch it had applied. Records of
a partition whose latest move the poll had not applied yet are dropped, and a reported
assignment older than the latest ``assign``/``unsubscribe`` is ignored.

Thread-safety: event loop only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Iterable

from ..records import ConsumerRecord, OffsetAndMetadata, TopicPartition
from ._fetcher import ConsumerThread, FetchResult
from .errors import IllegalStateError

__all__ = ["ConsumerState"]


class ConsumerState:
    """The loop side of one consumer: buffer, assignment, positions, epochs, errors."""

    def __init__(self, thread: ConsumerThread) -> None:
        self.thread = thread
        self.closed = False
        self.assignment: frozenset[TopicPartition] = frozenset()
        self.paused: set[TopicPartition] = set()
        self.topics: frozenset[str] | None = None  # the subscription as the user sees it
        self.follow_pattern = False  # topics come from the worker (pattern subscription)
        self.buf: dict[TopicPartition, deque[ConsumerRecord]] = {}
        self.pos: dict[TopicPartition, int] = {}  # core position as of the last poll
        self.highwater: dict[TopicPartition, int] = {}
        self.poll_ts: dict[TopicPartition, int] = {}
        self.epoch = 0
        self.tp_epoch: dict[TopicPartition, int] = {}
        self.assign_epoch = 0
        self.error: BaseException | None = None  # from the worker, raised by get*()
        self.data = asyncio.Event()  # set when records (or an error) arrive

    # -- worker results -------------------------------------------------------------

    def absorb(self, r: FetchResult) -> None:
        """Fold one poll's result in (posted by the worker, in poll order)."""
        if self.closed:
            return
        applied = r.applied
        if applied >= self.assign_epoch:
            if r.assignment != self.assignment:
                self.set_assignment(r.assignment)
            if self.follow_pattern and r.subscription is not None:
                self.topics = r.subscription
        tp_epoch, assignment, buf = self.tp_epoch, self.assignment, self.buf
        added, dropped = False, []
        for tp, recs in r.records.items():
            if tp not in assignment or tp_epoch.get(tp, 0) > applied:
                dropped.append(tp)  # fetched before a seek/reassignment took effect
                continue
            dq = buf.get(tp)
            if dq is None:
                buf[tp] = deque(recs)
            else:
                dq.extend(recs)
            self.poll_ts[tp] = r.at_ms
            added = True
        for tp, pos in r.positions.items():
            if tp in assignment and tp_epoch.get(tp, 0) <= applied:
                self.pos[tp] = pos
        self.highwater.update(r.highwater)
        if dropped:
            self.thread.unhold([tp for tp in dropped if tp not in buf])
        if added:
            self.data.set()

    def fail(self, exc: BaseException) -> None:
        """A worker error: raised by the next ``getone``/``getmany``."""
        if self.error is None:
            self.error = exc
        self.data.set()

    def take_error(self) -> BaseException | None:
        """The pending worker error (cleared; the worker may poll again)."""
        exc = self.error
        if exc is not None:
            self.error = None
            self.thread.error_seen()
        return exc

    # -- assignment and positions -------------------------------------------------------

    def set_assignment(self, new: frozenset[TopicPartition]) -> None:
        removed = self.assignment - new
        self.assignment = new
        for tp in removed:
            self.buf.pop(tp, None)
            self.pos.pop(tp, None)
            self.highwater.pop(tp, None)
            self.poll_ts.pop(tp, None)
            self.paused.discard(tp)
        if removed:
            self.thread.unhold(removed)
            self.thread.set_paused(frozenset(self.paused))

    def reassign(self, new: frozenset[TopicPartition]) -> int:
        """The user replaced the assignment (``assign``/``unsubscribe``): its epoch."""
        self.epoch += 1
        self.assign_epoch = self.epoch
        self.set_assignment(new)
        return self.epoch

    def move(self, tps: Iterable[TopicPartition]) -> int:
        """The user moves the positions of ``tps``: drop their buffered records; the
        epoch to send with the move."""
        self.epoch += 1
        for tp in tps:
            self.tp_epoch[tp] = self.epoch
            self.buf.pop(tp, None)
        return self.epoch

    def moved(self, epoch: int, positions: dict[TopicPartition, int]) -> None:
        """The worker applied the move of ``epoch``: the positions it left (posted in
        order with the fetches, so later fetches correct them)."""
        for tp, pos in positions.items():
            if self.tp_epoch.get(tp) == epoch:
                self.pos[tp] = pos

    def check_assigned(self, partitions: Iterable[Any]) -> None:
        """Check that every one of ``partitions`` is assigned.

        Raises:
            IllegalStateError: one is not (naming it and the assignment).
        """
        missing = [tp for tp in partitions if tp not in self.assignment]
        if missing:
            raise IllegalStateError(
                f"partitions {missing} are not assigned to this consumer (assigned: "
                f"{sorted(self.assignment)})")

    def consumed(self, tp: TopicPartition) -> int | None:
        """The offset of the next record the user gets from ``tp`` (None: unknown)."""
        dq = self.buf.get(tp)
        if dq:
            return dq[0].offset
        return self.pos.get(tp)

    def consumed_offsets(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Consumed offsets of every assigned partition with a known position."""
        out = {}
        for tp in self.assignment:
            offset = self.consumed(tp)
            if offset is not None:
                out[tp] = OffsetAndMetadata(offset, "")
        return out

    def revoke(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """``tps`` are being taken away: their consumed offsets, and their buffered
        records dropped (they belong to the next owner)."""
        found = {}
        for tp in tps:
            consumed = self.consumed(tp)
            self.buf.pop(tp, None)
            if consumed is not None:
                self.pos[tp] = consumed
                found[tp] = consumed
        self.thread.unhold(tps)
        return found

    # -- handing records out ------------------------------------------------------------

    def pop_one(self, partitions: tuple) -> ConsumerRecord | None:
        """The next record of ``partitions`` (default: any), skipping paused ones."""
        paused = self.paused
        for tp, dq in self.buf.items():
            if tp in paused or (partitions and tp not in partitions):
                continue
            rec = dq.popleft()
            if not dq:
                del self.buf[tp]  # we return at once: the iteration does not go on
                self.thread.unhold((tp,))
            return rec
        return None

    def take(self, partitions: tuple, limit: int | None
             ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to ``limit`` (None: all) buffered records by partition, in order."""
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        drained = []
        left = limit
        for tp in list(self.buf):
            if tp in self.paused or (partitions and tp not in partitions):
                continue
            dq = self.buf[tp]
            n = len(dq) if left is None else min(len(dq), left)
            out[tp] = [dq.popleft() for _ in range(n)]
            if not dq:
                del self.buf[tp]
                drained.append(tp)
            if left is not None:
                left -= n
                if left <= 0:
                    break
        if drained:
            self.thread.unhold(drained)
        return out
