"""The broker side of exactly-once: producer ids, sequence checks and transactions.

Kafka spreads this over a transaction coordinator, partition leaders and a two-phase
commit. In one process on one LMDB store it is simpler and stronger: the writer thread
checks every idempotent batch inside the transaction that stores it, and a transaction
ends with one LMDB transaction that writes the commit (or abort) marker of every
partition it touched together with the consumer offsets sent with it, so no crash can
separate them.

Idempotence: each idempotent producer gets a producer id (a counter in ``meta``) and
stamps its batches with ``(producer id, epoch, base sequence)``, the sequence counting
records per partition from 0. The writer keeps the last five batches per producer and
partition: a batch seen before (a retry whose first acknowledgement was lost) is not
written again and resolves to the offset it got the first time; a batch that skips
sequence numbers is refused with ``OutOfOrderSequenceNumberError``. The window lives in
memory: producers never outlive their process, and the sequence numbers themselves are
stored in every batch header.

Transactions: a ``transactional_id`` maps to a producer id and an epoch, stored in
``meta`` (``b"x" + u32``) together with the partitions of its open transaction (and each
one's first offset, which bounds the last stable offset). ``init_transactions`` bumps the
epoch, which fences any older producer with the same id, and aborts the transaction it
left open. Aborted transactions are indexed in ``meta`` (``b"a" + topic id + partition +
first offset`` -> producer id, marker offset) so ``read_committed`` consumers can skip
their records. At open, transactions left open by a previous process are aborted at
once: only one process writes a store, so nobody can ever finish them.

Thread-safety: :class:`TransactionCoordinator` is thread-safe. Its ``_lock`` guards the
registry of transactional ids; producer-id windows and the partitions' transaction facts
are changed only by the writer thread (inside writer jobs or batch writes).
"""

from __future__ import annotations

import copy
import logging
import struct
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from . import _store
from . import batch as _batch
from .errors import (
    CommitFailedError,
    MqlogError,
    OutOfOrderSequenceNumberError,
    ProducerFencedError,
)

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker
    from .log import PartitionLog

__all__ = ["TransactionCoordinator", "TransactionalId", "control_body"]

log = logging.getLogger("mqlog.transactions")

_U32 = struct.Struct(">I")
_ABORT_KEY = struct.Struct(">cIIQ")  # b"a", topic id, partition, first offset
_ABORT_VALUE = struct.Struct(">qQ")  # producer id, marker offset
_CONTROL_KEY = struct.Struct(">hh")  # Kafka's control record key: version, type
_CONTROL_VALUE = struct.Struct(">hi")  # version, coordinator epoch
CONTROL_ABORT = 0
CONTROL_COMMIT = 1
SEQ_LIMIT = 1 << 31  # sequence numbers wrap to 0 after 2**31 - 1, as Kafka's
_EPOCH_LIMIT = 32767
_WINDOW = 5  # batches remembered per producer and partition (Kafka keeps 5)
# A window unused this long is dropped (Kafka's producer.id.expiration.ms default, 1 day);
# if its producer comes back, the window is rebuilt from the log (see _window_from_log).
PRODUCER_ID_EXPIRATION_S = 86_400.0
_EXPIRY_CHECK_S = 60.0  # how often the writer looks for expired windows
# Rebuilding a window reads batch headers back from the partition's newest batch, at
# most this many batches (each read copies the batch out of LMDB, so also bytes).
_LOOKBACK_BATCHES = 1000
_LOOKBACK_BYTES = 64 << 20
# A transactional id with no open transaction and no live producer, unused this long,
# is forgotten by the cleaner (Kafka's transactional.id.expiration.ms default, 7 days).
TRANSACTIONAL_ID_EXPIRATION_MS = 604_800_000


def control_body(commit: bool, producer_id: int, epoch: int, now_ms: int) -> bytes:
    """The batch body of a commit or abort marker (Kafka's control record layout)."""
    return _batch.encode(
        [_CONTROL_VALUE.pack(0, 0)],
        [_CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)],
        now_ms, transactional=True, control=True, producer_id=producer_id,
        producer_epoch=epoch)


def abort_index_key(plog: PartitionLog, first: int) -> bytes:
    """The ``meta`` key of the aborted-index entry of ``plog``'s aborted transaction
    that began at offset ``first`` (its value: producer id, marker offset)."""
    return _ABORT_KEY.pack(b"a", plog.topic_id, plog.partition, first)


def control_type(key: bytes) -> str:
    """``"commit"`` or ``"abort"`` for a control record's key."""
    return "commit" if _CONTROL_KEY.unpack(key)[1] == CONTROL_COMMIT else "abort"


class _Window:
    """The recent batches of one producer in one partition (writer thread only)."""

    __slots__ = ("epoch", "last_seq", "recent", "used")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.last_seq = -1
        # (first sequence, last sequence, base offset) of the newest batches.
        self.recent: deque[tuple[int, int, int]] = deque(maxlen=_WINDOW)
        self.used = time.monotonic()

    def copy(self) -> _Window:
        w = _Window(self.epoch)
        w.last_seq = self.last_seq
        w.recent = deque(self.recent, maxlen=_WINDOW)
        return w


class TransactionalId:
    """One ``transactional_id``: its producer id, epoch and open transaction.

    ``open`` and ``deadline`` are changed by the writer thread only; ``epoch`` and
    ``producer_id`` under the coordinator's lock.
    """

    __slots__ = ("name", "xid", "producer_id", "epoch", "timeout", "open", "deadline",
                 "producer", "fenced_reason", "used_ms", "busy")

    def __init__(self, name: str, xid: int, producer_id: int, epoch: int) -> None:
        self.name = name
        self.xid = xid
        self.producer_id = producer_id
        self.epoch = epoch
        self.timeout = 60.0
        self.open: dict[PartitionLog, int] = {}  # partition -> first offset in the txn
        self.deadline: float | None = None  # monotonic time the open txn times out
        self.producer: Any = None  # weakref to the live producer holding the epoch
        self.fenced_reason = ""
        self.used_ms = _now_ms()  # wall clock of the last write of its state
        self.busy = 0  # init_transactions() calls in progress (under the lock)

    def doc(self, open_parts: dict[PartitionLog, int] | None = None) -> bytes:
        """The stored form; writing it counts as a use (see ``used_ms``)."""
        parts = self.open if open_parts is None else open_parts
        self.used_ms = _now_ms()
        return _store.dumps_json({
            "id": self.name, "pid": self.producer_id, "epoch": self.epoch,
            "used": self.used_ms,
            "open": [[p.topic_id, p.partition, first] for p, first in parts.items()]})

    def idle_since(self, cutoff_ms: int) -> bool:
        """No open transaction, no live producer, no init in progress, and unused since
        ``cutoff_ms`` (call under the coordinator's lock)."""
        return (not self.open and self.busy == 0 and self.used_ms < cutoff_ms
                and (self.producer is None or self.producer() is None))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TransactionCoordinator:
    """Producer ids, sequence windows and transactions of one broker (thread-safe)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._ids: dict[str, TransactionalId] = {}
        self._by_pid: dict[int, TransactionalId] = {}
        self._windows: dict[tuple[int, Any], _Window] = {}  # writer thread only
        # Producer ids below this were handed out by an earlier process: a missing
        # window for one of them may be in the log (set by load()).
        self._session_pids_from = 0
        self.producer_id_expiration_s = PRODUCER_ID_EXPIRATION_S
        self.transactional_id_expiration_ms = TRANSACTIONAL_ID_EXPIRATION_MS
        self._next_expiry_check = time.monotonic() + _EXPIRY_CHECK_S

    # -- loading and recovery --------------------------------------------------------

    def load(self, txn: Any, topics_by_id: dict[int, Any]) -> None:
        """Read transactional ids, open transactions and the aborted index (at open)."""
        ids: dict[str, TransactionalId] = {}
        for key, raw in txn.meta_items(b"x"):
            doc = _store.loads_json(raw)
            state = TransactionalId(doc["id"], _U32.unpack_from(key, 1)[0], doc["pid"],
                                    doc["epoch"])
            # Stores written before "used" was kept start their clock now.
            state.used_ms = doc.get("used", state.used_ms)
            for tid, part, first in doc["open"]:
                tlog = topics_by_id.get(tid)
                if tlog is not None and part < len(tlog.partitions):
                    plog = tlog.partitions[part]
                    state.open[plog] = first
                    plog.open_txns = {**plog.open_txns, state.producer_id: first}
            ids[state.name] = state
        for key, raw in txn.meta_items(b"a"):
            _, tid, part, first = _ABORT_KEY.unpack(key)
            pid, marker = _ABORT_VALUE.unpack(raw)
            tlog = topics_by_id.get(tid)
            if tlog is not None and part < len(tlog.partitions):
                tlog.partitions[part].add_aborted(pid, first, marker)
        raw = txn.get_meta(b"nP")
        with self._lock:
            self._ids = ids
            self._by_pid = {s.producer_id: s for s in ids.values()}
            self._session_pids_from = _U32.unpack(raw)[0] + 1 if raw else 0

    def recover(self) -> int:
        """Abort the transactions a previous process left open; returns how many."""
        with self._lock:
            stale = [s for s in self._ids.values() if s.open]
        for state in stale:
            # Bump the epoch too: a client of `mqlog serve` that outlived the restart
            # must not go on to commit the second half of a half-aborted transaction.
            self._broker._writer.run(*self._end_job(state, state.epoch, False, {},
                                                    bump=True), sync=True)
            state.fenced_reason = ("its transaction was aborted when the broker "
                                   "restarted; call init_transactions() again")
        if stale:
            log.info("aborted %d transaction(s) left open by a previous process",
                     len(stale))
        return len(stale)

    # -- producer ids -----------------------------------------------------------------

    def new_producer_id(self) -> int:
        """Allocate a producer id for an idempotent producer (a writer job)."""
        return self._broker._writer.run(lambda txn: txn.next_id(b"P"), sync=True)

    def forget_producer(self, producer_id: int) -> None:
        """Drop a closed producer's sequence windows (queued; no wait)."""

        def apply(_: Any) -> None:
            for key in [k for k in self._windows if k[0] == producer_id]:
                del self._windows[key]

        try:
            self._broker._writer.submit(lambda txn: None, apply)
        except Exception:  # the broker is closing: the windows go with it
            pass

    def init_transactions(self, producer: Any, name: str, timeout_ms: float
                          ) -> tuple[TransactionalId, int, int]:
        """Fence older producers with ``name``, abort their open transaction, bump the
        epoch; returns the state and the producer id and epoch the producer uses.

        Raises:
            ProducerFencedError: a racing ``init_transactions()`` for ``name`` bumped
                the epoch again after this one.
        """
        writer = self._broker._writer
        with self._lock:
            state = self._ids.get(name)
            if state is not None:
                state.busy += 1  # not expired while this call uses it
        if state is None:
            def create(txn: Any) -> TransactionalId:
                known = txn.scratch.setdefault("txn_ids", {})
                if name in known:
                    return known[name]
                with self._lock:  # a racing init created it in an earlier write
                    current = self._ids.get(name)
                if current is not None:  # (writer thread: earlier applies have run)
                    return current
                fresh = TransactionalId(name, txn.next_id(b"x"), txn.next_id(b"P"), -1)
                known[name] = fresh
                txn.put_meta(b"x" + _U32.pack(fresh.xid), fresh.doc())
                return fresh

            def adopt(fresh: TransactionalId) -> TransactionalId:
                with self._lock:
                    current = self._ids.setdefault(name, fresh)
                    self._by_pid[current.producer_id] = current
                    current.busy += 1
                return current

            state = writer.run(create, adopt, sync=True)
        try:
            # Abort what the previous holder left open, then bump the epoch: one job.
            producer_id, epoch = writer.run(
                *self._end_job(state, None, False, {}, bump=True), sync=True)
            with self._lock:
                # The epoch this call's own bump produced, never a later one: two
                # racing callers adopting the newest epoch would both write with it,
                # and each one's batches would pass for retries of the other's.
                if (state.producer_id, state.epoch) != (producer_id, epoch):
                    raise ProducerFencedError(
                        f"a newer producer with transactional_id {name!r} called "
                        f"init_transactions() at the same time and holds epoch "
                        f"{state.epoch}")
                old = state.producer() if state.producer is not None else None
                state.producer = weakref.ref(producer)
                state.timeout = timeout_ms / 1000.0
        finally:
            with self._lock:
                state.busy -= 1
        if old is not None and old is not producer:
            old._fence(f"a newer producer with transactional_id {name!r} called "
                       f"init_transactions() (epoch {epoch})")
        return state, producer_id, epoch

    # -- the writer's batch checks ------------------------------------------------------

    def admit(self, txn: Any, b: Any, plog: PartitionLog, pending: dict) -> Any:
        """Check an idempotent batch inside the write transaction ``txn``.

        Returns None to write it, an int (the base offset it got before) for a
        duplicate, or the exception to fail it with. ``pending`` holds windows changed
        earlier in this transaction (applied by :meth:`commit_windows` after commit).
        """
        key = (b.producer_id, plog)
        window = pending.get(key) or self._windows.get(key)
        unknown = False
        if window is None and (b.base_sequence != 0
                               or b.producer_id < self._session_pids_from):
            # A producer this process has no window for, yet it wrote before: a client
            # of `mqlog serve` that outlived a restart, or one idle past expiry.
            window = self._window_from_log(txn, b.producer_id, plog)
            if window is not None:
                pending[key] = window
            else:
                # None of its batches within the lookback (others wrote many since,
                # or retention took them): its state is unknown, and Kafka then takes
                # any sequence number rather than refuse a live producer as a gap.
                unknown = True
        if b.transactional:
            state = self._by_pid.get(b.producer_id)
            if state is None or state.epoch != b.epoch:
                return ProducerFencedError(
                    f"batch for {plog.topic}[{plog.partition}] carries epoch {b.epoch} of "
                    f"producer id {b.producer_id}, which was fenced: {_fence_text(state)}")
        n = len(b.values)
        first = b.base_sequence
        last = (first + n - 1) % SEQ_LIMIT
        if window is not None and window.epoch == b.epoch:
            for seq, seq_last, base in window.recent:
                if seq == first and seq_last == last:
                    return base  # a retry of a batch already written
            expected = (window.last_seq + 1) % SEQ_LIMIT
        elif window is not None and b.epoch < window.epoch:
            return ProducerFencedError(
                f"batch for {plog.topic}[{plog.partition}] carries epoch {b.epoch} but "
                f"epoch {window.epoch} already wrote there: this producer was fenced")
        else:
            expected = 0
        if first != expected and not unknown:
            return OutOfOrderSequenceNumberError(
                f"batch for {plog.topic}[{plog.partition}] from producer id "
                f"{b.producer_id} starts at sequence {first}, expected {expected}: records "
                "between them were never written; this producer's later records to the "
                "partition fail too; create a new producer and send the lost records again")
        return None

    def record(self, b: Any, plog: PartitionLog, base: int, pending: dict) -> None:
        """Note a written idempotent batch in ``pending`` (inside the transaction)."""
        key = (b.producer_id, plog)
        window = pending.get(key)  # this transaction's own (a copy, or rebuilt)
        if window is None or window.epoch != b.epoch:
            old = window or self._windows.get(key)
            window = old.copy() if old is not None and old.epoch == b.epoch \
                else _Window(b.epoch)  # a new epoch starts its sequences over
            pending[key] = window
        last = (b.base_sequence + len(b.values) - 1) % SEQ_LIMIT
        window.recent.append((b.base_sequence, last, base))
        window.last_seq = last

    def commit_windows(self, pending: dict) -> None:
        """Adopt the windows of a committed transaction (writer thread).

        Also drops windows unused for ``producer_id_expiration_s`` (checked once a
        minute), so producers that vanished without closing (clients of `mqlog serve`)
        do not hold memory forever.
        """
        now = time.monotonic()
        for window in pending.values():
            window.used = now
        self._windows.update(pending)
        if now >= self._next_expiry_check:
            self._next_expiry_check = now + _EXPIRY_CHECK_S
            self.expire_windows(now)

    def expire_windows(self, now: float) -> int:
        """Drop windows unused since ``now - producer_id_expiration_s`` (writer thread);
        returns how many."""
        cutoff = now - self.producer_id_expiration_s
        stale = [key for key, w in self._windows.items() if w.used < cutoff]
        for key in stale:
            del self._windows[key]
        return len(stale)

    def expire_ids(self, now_ms: int | None = None) -> int:
        """Forget transactional ids idle longer than ``transactional_id_expiration_ms``
        (no open transaction, no live producer); returns how many. Called by the
        cleaner. A later ``init_transactions()`` with the name starts afresh (a new
        producer id), as in Kafka.

        Thread-safe. The decision is made twice, before deleting the stored state and
        again before dropping it from memory: an ``init_transactions()`` that picks the
        state up in between keeps it (its own write stores it again).
        """
        if now_ms is None:
            now_ms = _now_ms()
        cutoff = now_ms - self.transactional_id_expiration_ms
        with self._lock:
            candidates = [s for s in self._ids.values() if s.idle_since(cutoff)]
        if not candidates:
            return 0

        def prepare(txn: Any) -> list[TransactionalId]:
            with self._lock:
                doomed = [s for s in candidates
                          if self._ids.get(s.name) is s and s.idle_since(cutoff)]
            for state in doomed:
                txn.delete_meta(b"x" + _U32.pack(state.xid))
            return doomed

        def apply(doomed: list[TransactionalId]) -> int:
            gone = []
            with self._lock:
                for state in doomed:
                    if self._ids.get(state.name) is state and state.idle_since(cutoff):
                        del self._ids[state.name]
                        self._by_pid.pop(state.producer_id, None)
                        gone.append(state.producer_id)
            for key in [k for k in self._windows if k[0] in gone]:
                del self._windows[key]  # (apply runs on the writer thread)
            if gone:
                log.info("forgot %d transactional id(s) unused for %g days", len(gone),
                         self.transactional_id_expiration_ms / 86_400_000)
            return len(gone)

        return self._broker._writer.run(prepare, apply)

    @staticmethod
    def _window_from_log(txn: Any, producer_id: int, plog: PartitionLog) -> _Window | None:
        """Rebuild a producer's window from the headers of the partition's newest
        batches (Kafka rebuilds producer state from the log the same way); None when
        none of the last ``_LOOKBACK_BATCHES`` batches is the producer's."""
        found: list[tuple[int, int, int]] = []
        epoch = None
        budget = _LOOKBACK_BYTES
        for i, (base, raw) in enumerate(txn.batches_newest_first(plog.topic_id,
                                                                 plog.partition)):
            budget -= len(raw)
            if i >= _LOOKBACK_BATCHES or budget < 0:
                break
            (_, _, _, attributes, last_delta, _, _, pid, ep, seq, _) = \
                _batch.header_fields(raw)
            if pid != producer_id or attributes & _batch.ATTR_CONTROL:
                continue
            if epoch is None:
                epoch = ep
            elif ep != epoch:
                break  # an older epoch: its sequence numbers no longer count
            # Compaction may drop records but keeps a batch's offset span, and a
            # batch's sequence numbers run along its offsets, as in Kafka.
            found.append((seq, (seq + last_delta) % SEQ_LIMIT, base))
            if len(found) == _WINDOW:
                break
        if epoch is None:
            return None
        window = _Window(epoch)
        window.last_seq = found[0][1]
        window.recent.extend(reversed(found))
        return window

    def opened(self, txn: Any, b: Any, plog: PartitionLog, base: int,
               opening: dict) -> None:
        """A transactional batch was written: if it is the first of its transaction in
        ``plog``, persist that (inside the transaction; applied by :meth:`adopt_open`)."""
        state = self._by_pid[b.producer_id]
        parts = opening.get(state)
        if parts is None:
            if plog in state.open:
                return
            parts = opening[state] = dict(state.open)
        if plog not in parts:
            parts[plog] = base
            txn.put_meta(b"x" + _U32.pack(state.xid), state.doc(parts))

    def adopt_open(self, opening: dict) -> None:
        """After the commit: publish newly opened transaction partitions (writer thread).

        Called before end offsets advance, so readers never see the records as stable.
        """
        now = time.monotonic()
        for state, parts in opening.items():
            for plog, first in parts.items():
                if plog not in state.open:
                    plog.open_txns = {**plog.open_txns, state.producer_id: first}
            state.open = parts
            if state.deadline is None:
                state.deadline = now + state.timeout

    # -- ending transactions -------------------------------------------------------------

    def end_transaction(self, state: TransactionalId, epoch: int, commit: bool,
                        offsets: dict[str, tuple[list, Callable[[], None] | None]],
                        before_commit: Callable[[], None] | None = None
                        ) -> MqlogError | None:
        """Write commit/abort markers (and, committing, the offsets) in one transaction.

        Args:
            offsets: per group id, the rows to store and the fencing check to run.

        Returns:
            None; or, when the transaction ended (it is committed or aborted in the
            store, visible to readers) but flushing it to disk failed, the error to
            raise once the caller has ended the transaction too: it must not be
            aborted or redone as if it had never happened.

        Raises:
            ProducerFencedError: ``epoch`` is no longer the id's epoch.
            CommitFailedError: a group refused the offsets (nothing was written).
            MqlogError: the write failed (nothing was written).
        """
        prepare, apply = self._end_job(state, epoch, commit, offsets)
        if before_commit is not None:
            inner = prepare

            def prepare(txn: Any) -> Any:  # noqa: F811 - a crash-test seam around it
                result = inner(txn)
                before_commit()
                return result

        ended: list[bool] = []

        def apply_and_note(result: Any) -> None:
            apply(result)
            ended.append(True)

        try:
            self._broker._writer.run(prepare, apply_and_note, sync=True)
        except MqlogError as exc:
            if not ended:
                raise
            # The writer hands one flush error to every job of the write: a copy
            # carries this transaction's text.
            error = copy.copy(exc)
            error.args = (
                f"the transaction of {state.name!r} was "
                f"{'committed' if commit else 'aborted'} (readers see it"
                f"{' and its offsets are stored' if commit else ''}) but flushing it to "
                f"disk failed: {exc}; do not redo or abort it; a power loss may still "
                "undo it",)
            error.__cause__ = exc
            return error
        return None

    def _end_job(self, state: TransactionalId, epoch: int | None, commit: bool,
                 offsets: dict, bump: bool = False) -> tuple[Callable, Callable]:
        """The writer job ending ``state``'s open transaction (``epoch`` None: any)."""
        broker = self._broker

        def prepare(txn: Any) -> tuple[list, dict, tuple[int, int, int]]:
            # An earlier job of this write may have ended the transaction or bumped the
            # epoch already (a zombie's commit and its successor's init_transactions()
            # in one write): judge by that, not by the memory its apply has yet to
            # change, or the transaction would get a second (abort) marker and the
            # epoch would go back.
            ended = txn.scratch.setdefault("txn_ends", {})
            pid_now, epoch_now = ended.get(state, (state.producer_id, state.epoch))
            if epoch is not None and epoch_now != epoch:
                raise ProducerFencedError(
                    f"transactional_id {state.name!r} was fenced: "
                    f"{_fence_text(state, epoch_now)}")
            for _group, (_rows, check) in offsets.items():
                if check is not None:
                    check()  # before any write: a refusal leaves nothing behind
            new_epoch = epoch_now
            producer_id = pid_now
            if bump:
                new_epoch = epoch_now + 1
                if new_epoch > _EPOCH_LIMIT:  # Kafka: a new producer id, epoch 0
                    producer_id, new_epoch = txn.next_id(b"P"), 0
            now_ms = time.time_ns() // 1_000_000
            ends = txn.scratch.setdefault("ends", {})
            markers = []
            for plog, first in ({} if state in ended else state.open).items():
                tlog = broker._topics_by_id.get(plog.topic_id)
                if tlog is None or plog.partition >= len(tlog.partitions) or \
                        tlog.partitions[plog.partition] is not plog:
                    markers.append((plog, None, first))  # the topic was deleted
                    continue
                base = ends.get(plog, plog.end_offset)
                body = control_body(commit, pid_now, epoch_now, now_ms)
                txn.put_batch(plog.topic_id, plog.partition, base,
                              _batch.with_base_offset(base, body))
                ends[plog] = base + 1
                if not commit:
                    txn.put_meta(abort_index_key(plog, first),
                                 _ABORT_VALUE.pack(pid_now, base))
                markers.append((plog, base, first))
            groups: dict[str, int] = {}
            if commit:
                for group, (rows, _check) in offsets.items():
                    gid = broker._group_id_in(txn, group)
                    for tid, part, value in rows:
                        txn.put_offset(gid, tid, part, value)
                groups = dict(txn.scratch.get("groups", {}))
            saved = TransactionalId(state.name, state.xid, producer_id, new_epoch)
            txn.put_meta(b"x" + _U32.pack(state.xid), saved.doc({}))
            ended[state] = (producer_id, new_epoch)  # last: a refused job changes nothing
            return markers, groups, (pid_now, producer_id, new_epoch)

        def apply(result: tuple[list, dict, tuple[int, int, int]]) -> tuple[int, int]:
            markers, groups, (old_pid, producer_id, new_epoch) = result
            for plog, base, first in markers:
                if base is None:
                    continue
                if not commit:
                    plog.add_aborted(old_pid, first, base)
                open_txns = dict(plog.open_txns)
                open_txns.pop(old_pid, None)
                plog.open_txns = open_txns
                plog.end_offset = max(plog.end_offset, base + 1)
            state.open = {}
            state.deadline = None
            state.used_ms = _now_ms()
            if groups:
                broker._adopt_groups(groups)
            with self._lock:
                if producer_id != state.producer_id:
                    self._by_pid.pop(state.producer_id, None)
                    self._by_pid[producer_id] = state
                state.producer_id = producer_id
                state.epoch = new_epoch
                if bump:  # a new fence: an older reason (a timeout) no longer applies
                    state.fenced_reason = ""
            if markers:  # the last stable offsets moved (read_committed readers)
                broker._notify_data([plog for plog, _, _ in markers])
            return producer_id, new_epoch

        return prepare, apply

    # -- timeouts (writer thread) --------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The monotonic time the soonest open transaction times out (None: none)."""
        soonest = None
        for state in list(self._by_pid.values()):
            d = state.deadline
            if d is not None and (soonest is None or d < soonest):
                soonest = d
        return soonest

    def expire(self, now: float, run_job: Callable[[Any, Any], None]) -> None:
        """Abort transactions open longer than their timeout and fence their producers
        (they may still be running: a zombie must not write into a later transaction)."""
        for state in list(self._by_pid.values()):
            if state.deadline is None or state.deadline > now:
                continue
            reason = (f"its transaction stayed open longer than transaction_timeout_ms="
                      f"{state.timeout * 1000:g} and was aborted")
            try:
                run_job(*self._end_job(state, None, False, {}, bump=True))
            except Exception as exc:
                if state.deadline is not None:  # nothing written (the disk is full?)
                    log.warning("aborting the timed-out transaction of %r failed: %s; "
                                "trying again in a second", state.name, exc)
                    state.deadline = now + 1.0
                    continue
                # Aborted (the job's apply ran), only the flush failed: fence now, or
                # the producer would learn of it as if a newer one had taken the id.
                log.warning("the timed-out transaction of %r was aborted but flushing "
                            "it failed: %s", state.name, exc)
            state.fenced_reason = reason
            producer = state.producer() if state.producer is not None else None
            if producer is not None:
                producer._fence(f"transactional_id {state.name!r}: {reason}")
            log.warning("transactional_id %r: %s", state.name, reason)

    def check_group_member(self, group_id: str, generation: int, member_id: str,
                           partitions: list) -> Callable[[], None] | None:
        """The fencing check for offsets sent with ``ConsumerGroupMetadata`` (None: no
        check, for offsets sent with a bare group id)."""
        coord = self._broker._coordinator
        if not member_id:
            # Kafka's pre-KIP-447 form is not fenced: its coordinator accepts
            # transactional offsets without a member even while the group has members
            # (the consume-transform-produce loop of a subscribed consumer). Rejected:
            # the manual-assignment rule of plain commits, which refused that loop.
            return None

        def check() -> None:
            member = coord.member(group_id, member_id)
            if member is None:
                raise CommitFailedError(
                    f"offsets for group {group_id!r} were refused: member {member_id!r} "
                    "is no longer in the group (it left, was evicted or fenced); abort "
                    "the transaction, poll() to rejoin and process again")
            coord.check_commit(group_id, member, generation, partitions)

        return check


def _fence_text(state: TransactionalId | None, epoch: int | None = None) -> str:
    if state is None:
        return "its transactional_id is unknown; call init_transactions()"
    return state.fenced_reason or (
        f"a newer producer with transactional_id {state.name!r} holds epoch "
        f"{state.epoch if epoch is None else epoch}; close this producer")
