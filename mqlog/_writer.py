"""The broker's single writer: group commit of every pending write.

One thread turns everything pending — producer batches from all producers and all
partitions, and "jobs" (topic administration, offset commits) — into as few LMDB write
transactions as possible and at most one flush per cycle. Concurrent producers share
the cost of a commit and of a flush; the writer never sleeps while work waits.

A cycle: take the queued jobs and run them in one transaction (each job validates
before it writes, so a refused job leaves nothing behind), apply their in-memory
effects; then drain the producers' ready batches, encode them outside the transaction,
write them in one transaction, flush if any asked for ``acks="all"`` (or the broker
syncs every commit), advance the partitions' end offsets, wake consumers, and resolve
the producers' futures.

A thread waiting for its own record may run the producer part of a cycle itself
(:meth:`LogWriter.lead`) when the writer thread is idle: a ``send(...).get()`` then
costs no thread hand-off (the writer thread would be woken, and wake the caller).
Never the main thread: a signal handler (Ctrl-C's ``KeyboardInterrupt``) can raise
there between any two bytecodes, and a cycle cut short would strand the batches it
took; blocking signals in that thread does not help, as CPython runs handlers in the
main thread whichever thread the signal reached.
Cycles never overlap: the writer thread and a leading caller take turns under
``_cond``. So where docstrings across mqlog say "writer thread" for state a cycle
changes (end offsets, sequence numbers, windows, open transactions), read "the thread
running a writer cycle": still one thread at a time, ordered by ``_cond``. Jobs and
transaction timeouts stay with the writer thread, and producer callbacks always run on
it: a leading caller queues them for the writer thread.

Thread-safety: :meth:`LogWriter.submit`, :meth:`run`, :meth:`wake` and :meth:`lead` may
be called from any thread. Lock order: ``LogWriter._cond`` before a producer's ``_lock``
(the writer asks producers whether work is ready while holding ``_cond``), so producers
call :meth:`wake` only after releasing their lock. Futures are resolved and callbacks
run with no writer lock held.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable

from .batch import with_base_offset
from .errors import (
    ClosedError,
    DiskFullError,
    KafkaTimeoutError,
    MqlogError,
    UnknownTopicOrPartitionError,
)

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

__all__ = ["Job", "LogWriter"]

log = logging.getLogger("mqlog.writer")

# Producer batches per write transaction, in encoded bytes: bounds LMDB's dirty pages
# (private memory until commit) while keeping commits few (~4 µs each without fsync).
TXN_BYTES = 4 << 20
# A wait shorter than this never leads a cycle: a cycle (an fsync with it) may take
# longer than the caller asked to wait.
LEAD_MIN_TIMEOUT_S = 1.0


class Job:
    """A write to run in the writer's transaction, and its outcome.

    ``prepare(txn)`` runs inside the write transaction (perhaps more than once if the
    map must grow, so it must only write to ``txn``); it must validate before writing
    and raise to refuse. ``apply(result)`` runs after the commit, in the writer thread,
    to update in-memory state.
    """

    __slots__ = ("prepare", "apply", "sync", "result", "error", "_done")

    def __init__(self, prepare: Callable[[Any], Any], apply: Callable[[Any], Any] | None,
                 sync: bool) -> None:
        self.prepare = prepare
        self.apply = apply
        self.sync = sync
        self.result: Any = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job has committed; return its result or raise its error."""
        if not self._done.wait(timeout):
            raise KafkaTimeoutError(
                f"write did not complete within {timeout} s: the writer is busy or held; "
                "retry, or wait longer")
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def done(self) -> bool:
        return self._done.is_set()


class LogWriter:
    """The writer thread of one broker. Thread-safe (see module docstring)."""

    def __init__(self, broker: Broker, sync_mode: bool | None) -> None:
        self._broker = broker
        self._store = broker._store
        self._txns = broker._txns
        # sync_mode: True = LMDB syncs each commit itself; None = flush when a batch
        # asks for acks="all"; False = never flush.
        self._sync_mode = sync_mode
        # Guards _jobs, _producers, _stopping and the _idle handshake with wake().
        self._cond = threading.Condition(threading.Lock())
        self._jobs: deque[Job] = deque()
        self._producers: list[Any] = []
        self._stopping = False
        self._idle = False
        # The thread id of a caller running a cycle (lead()); None: none is.
        self._leader: int | None = None
        # Producer callbacks a leading caller left for the writer thread to run.
        self._deferred: deque[Callable[[], None]] = deque()
        # wake() came while a leader ran: the leader notifies the writer when done.
        self._wake_pending = False
        # The writer thread waits for a leader's cycle to end: the leader notifies it,
        # and it looks again (a lingering batch's deadline, a timeout may be due).
        self._after_leader = False
        # The writer thread found a leader while it had work of its own (callbacks, a
        # transaction timeout): lead() refuses until it has had its turn (else a thread
        # leading in a loop would starve them).
        self._turn_wanted = False
        self._running_deferred = False  # the writer thread runs _deferred now
        # Test seams (STYLE 23): faults through seams, not patches.
        self._paused = False  # set by paused(): no cycle starts while it holds (_cond)
        self.fail_next_commit: BaseException | None = None  # raised by the next commit
        self.fail_next_sync: BaseException | None = None  # raised by the next flush
        # Fail the Nth commit / flush attempt (counted from 1) with DiskFullError.
        self.fail_commit_at: int | None = None
        self.fail_sync_at: int | None = None
        self.commit_attempts = 0
        self.sync_attempts = 0
        # Called with a point name ("before_commit", "after_commit", "before_sync",
        # "after_sync") as producer batches are written: crash tests kill there.
        self.on_point: Callable[[str], None] | None = None
        # Treat the acknowledgement of the next N producer commits as lost: the writer
        # writes the same batches again, as a producer retrying after a timeout would.
        self.lose_acks = 0
        self.commits = 0  # statistics: write transactions committed
        self.flushes = 0  # statistics: fsyncs done
        self._thread = threading.Thread(target=self._loop, name="mqlog-writer", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------

    def wake(self) -> None:
        """Tell an idle writer there is work. Cheap when the writer is busy."""
        if self._idle:
            with self._cond:
                if self._leader is not None:
                    self._wake_pending = True  # the leader notifies when it is done
                else:
                    self._cond.notify_all()

    def lead(self, timeout: float | None = None) -> None:
        """Write the producers' ready batches in the calling thread, if the writer
        thread is idle; return at once otherwise (the writer thread has the work).

        For a caller about to wait for its own record (``future.get()``, ``flush()``):
        it saves the two thread hand-offs of waking the writer and being woken. Only
        producer batches are written here; callbacks are queued for the writer thread,
        which also keeps jobs and transaction timeouts. The main thread never leads
        (see the module docstring), nor a wait shorter than ``LEAD_MIN_TIMEOUT_S``
        (``timeout``): they wait for the writer thread as before.
        """
        if timeout is not None and timeout < LEAD_MIN_TIMEOUT_S:
            return
        current = threading.current_thread()
        if current is self._thread or current is threading.main_thread():
            return
        me = current.ident
        with self._cond:
            if not self._idle or self._leader is not None or self._paused or \
                    self._stopping or self._jobs or self._deferred or self._turn_wanted:
                return
            self._leader = me
            producers = list(self._producers)
        try:
            self._write_ready(producers)
        except Exception:  # pragma: no cover - a bug; the writer thread carries on
            log.exception("mqlog writer cycle (run by a waiting caller) failed")
        finally:
            with self._cond:
                self._leader = None
                if self._after_leader or self._wake_pending or self._deferred or \
                        self._jobs or self._turn_wanted or self._paused:
                    # The writer thread waits for this cycle, or work for it came
                    # meanwhile (or paused() waits).
                    self._after_leader = self._wake_pending = False
                    self._cond.notify_all()

    def run_callbacks(self, calls: list[Callable[[], None]]) -> None:
        """Run producer callbacks on the writer thread: now when called there (or by
        no leader), else queued for it (a caller leading a cycle)."""
        if self._leader == threading.get_ident():
            with self._cond:
                self._deferred.extend(calls)
            return
        for call in calls:
            call()

    def queue_after_callbacks(self, call: Callable[[], None]) -> bool:
        """Queue ``call`` (a callback added to a future already resolved) behind the
        producer callbacks still waiting for the writer thread, so it does not overtake
        them; False when none wait (the caller runs it now, as before)."""
        if threading.current_thread() is self._thread:
            return False
        with self._cond:
            if not self._deferred and not self._running_deferred:
                return False
            self._deferred.append(call)
            self._cond.notify_all()
        return True

    def add_producer(self, producer: Any) -> None:
        with self._cond:
            self._producers.append(producer)

    def remove_producer(self, producer: Any) -> None:
        with self._cond:
            if producer in self._producers:
                self._producers.remove(producer)

    def submit(self, prepare: Callable[[Any], Any], apply: Callable[[Any], Any] | None = None,
               sync: bool = False) -> Job:
        """Queue a job; returns it at once (``job.wait()`` blocks for the outcome)."""
        job = Job(prepare, apply, sync)
        if threading.current_thread() is self._thread:
            # A producer callback running on the writer thread: run inline, never queue
            # behind ourselves.
            self._run_jobs([job])
            return job
        with self._cond:
            if self._stopping:
                raise ClosedError("the broker is closing; no more writes are accepted")
            self._jobs.append(job)
            self._cond.notify_all()
        return job

    def run(self, prepare: Callable[[Any], Any], apply: Callable[[Any], Any] | None = None,
            sync: bool = False, timeout: float | None = None) -> Any:
        """Run a job and wait for it; returns ``apply``'s (or ``prepare``'s) result."""
        return self.submit(prepare, apply, sync).wait(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Finish pending work, then end the thread."""
        with self._cond:
            self._stopping = True
            self._paused = False
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the writer for the duration of the block (a seam for tests).

        Work queued meanwhile is written when the block exits.
        """
        with self._cond:
            self._paused = True
            # Let a cycle in progress finish first (the writer thread's or a leader's).
            while not self._idle or self._leader is not None:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._paused = False
                self._cond.notify_all()

    def _maybe_fail(self) -> None:
        self.commit_attempts += 1
        exc = self.fail_next_commit
        if exc is not None:
            self.fail_next_commit = None
            raise exc
        if self.fail_commit_at == self.commit_attempts:
            raise DiskFullError(f"commit {self.commit_attempts} failed (injected)")

    def _sync(self) -> None:
        self.sync_attempts += 1
        exc = self.fail_next_sync
        if exc is not None:
            self.fail_next_sync = None
            raise exc
        if self.fail_sync_at == self.sync_attempts:
            raise DiskFullError(f"flush {self.sync_attempts} failed (injected)")
        self._store.sync()
        self.flushes += 1

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    # -- the writer thread ----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    # Idle before looking for work: a producer that appends after the
                    # look sees _idle and notifies (no lost wake-up).
                    self._idle = True
                    if self._paused:
                        self._cond.notify_all()  # paused() waits for the writer to idle
                        self._cond.wait()
                        continue
                    if self._leader is not None:
                        # A caller runs a cycle: wait for its end (it notifies), then
                        # look again. Callbacks to run or a transaction timeout due
                        # claim the next turn.
                        expiry = self._txns.next_deadline()
                        if self._deferred or (
                                expiry is not None and expiry <= time.monotonic()):
                            self._turn_wanted = True
                        self._after_leader = True
                        self._cond.wait()
                        continue
                    self._turn_wanted = False
                    producers = list(self._producers)
                    timeout = self._ready_in(producers)
                    expiry = self._txns.next_deadline()
                    if expiry is not None:
                        until = max(0.0, expiry - time.monotonic())
                        timeout = until if timeout is None else min(timeout, until)
                    if self._jobs or timeout == 0 or self._stopping or self._deferred:
                        self._idle = False
                        break
                    self._cond.wait(timeout)
                jobs = list(self._jobs)
                self._jobs.clear()
                stopping = self._stopping
            try:
                self._cycle(jobs, producers, stopping, expiry)
            except BaseException:  # pragma: no cover - a bug; keep the writer alive
                log.exception("mqlog writer cycle failed")
            # Nothing of this cycle stays referenced while the thread waits: a closed
            # producer must be free to go (a live one keeps its transactional id).
            jobs = producers = []
            if stopping:
                with self._cond:
                    if not self._jobs and self._ready_in(list(self._producers)) is None:
                        return

    def _cycle(self, jobs: list[Job], producers: list[Any], stopping: bool,
               expiry: float | None) -> None:
        """One round of the writer: callbacks a leader left, jobs, then every ready
        batch, then timeouts."""
        if self._deferred:  # in order, before any later batch's callbacks
            self._running_deferred = True
            try:
                while self._deferred:
                    self._deferred.popleft()()
            finally:
                self._running_deferred = False
        if jobs:
            self._run_jobs(jobs)
        self._write_ready(producers, force=stopping)
        if expiry is not None and expiry <= time.monotonic():
            self._txns.expire(time.monotonic(), self._run_job)

    def _write_ready(self, producers: list[Any], force: bool = False) -> None:
        """Write every batch the producers have ready (all of them when ``force``)."""
        batches = []
        for p in producers:
            batches.extend(p._drain(force=force))
        if batches:
            self._write_batches(batches)

    @staticmethod
    def _ready_in(producers: list[Any]) -> float | None:
        """Seconds until some producer has a batch ready (0 = now; None = nothing)."""
        soonest = None
        now = time.monotonic()
        for p in producers:
            t = p._ready_at()
            if t is not None:
                if t <= now:
                    return 0
                if soonest is None or t < soonest:
                    soonest = t
        return None if soonest is None else soonest - now

    def _run_job(self, prepare: Callable[[Any], Any], apply: Callable[[Any], Any]) -> Any:
        """Run one job now, in the writer thread (flushed); returns its result."""
        job = Job(prepare, apply, True)
        self._run_jobs([job])
        return job.wait(0)

    def _run_jobs(self, jobs: list[Job]) -> None:
        def prepare_all(txn: Any) -> list:
            results = []
            for job in jobs:
                try:
                    results.append((True, job.prepare(txn)))
                except MqlogError as exc:
                    results.append((False, exc))
                except (TypeError, ValueError, KeyError) as exc:
                    results.append((False, exc))
            return results

        try:
            self._maybe_fail()
            results = self._store.write(prepare_all)
            self.commits += 1
        except BaseException as exc:
            for job in jobs:
                job.error = exc
                job._done.set()
            return
        # Committed: memory must follow the store even if the flush below fails.
        sync_error = None
        if self._sync_mode is None and any(j.sync for j in jobs):
            try:
                self._sync()
            except MqlogError as exc:
                sync_error = exc
        for job, (ok, value) in zip(jobs, results):
            if not ok:
                job.error = value
            else:
                try:
                    job.result = job.apply(value) if job.apply is not None else value
                except BaseException as exc:  # pragma: no cover - a bug in apply
                    log.exception("applying a committed write failed")
                    job.error = exc
                if sync_error is not None and job.sync and job.error is None:
                    job.error = sync_error  # committed, but not known to be on disk
            job._done.set()

    def _write_batches(self, batches: list[Any]) -> None:
        """Write drained producer batches in transactions of about ``TXN_BYTES`` each.

        Bounding a transaction bounds LMDB's dirty pages (held in private memory until
        the commit) and lets ``acks=1`` futures resolve while later batches are still
        being written. ``acks="all"`` futures resolve after the one flush at the end.
        If a transaction fails, every later batch fails too, so no partition gets
        records after a hole.
        """
        broker = self._broker
        topics = broker._topics
        now_ms = time.time_ns() // 1_000_000
        need_flush: list[tuple[Any, int]] = []
        chunk: list[tuple] = []
        chunk_bytes = 0
        failure: BaseException | None = None
        for n, b in enumerate(batches):
            if failure is not None:
                b._fail(failure)
                continue
            tlog = topics.get(b.topic)
            if tlog is None or b.partition >= len(tlog.partitions):
                b._fail(UnknownTopicOrPartitionError(
                    f"topic {b.topic!r} partition {b.partition} no longer exists (deleted "
                    "while the record waited to be written); create it and send again"))
            else:
                plog = tlog.partitions[b.partition]
                if b.base_sequence < 0 and b.producer._pid >= 0:
                    b.producer._stamp(b, plog)  # idempotence: sequence numbers, in order
                try:
                    body, max_ts, span = b._encode(now_ms if tlog.log_append_time else None)
                except Exception as exc:  # inputs are checked in send(); never poison a cycle
                    log.exception("encoding a batch for %s[%d] failed", b.topic, b.partition)
                    _give_back_sequences([(b, plog)])
                    b._fail(exc)
                else:
                    chunk.append((b, plog, body, max_ts, span))
                    chunk_bytes += len(body)
            if chunk and (chunk_bytes >= TXN_BYTES or n == len(batches) - 1):
                failure = self._commit_chunk(chunk, need_flush)
                chunk = []
                chunk_bytes = 0
        if not need_flush:
            return
        sync_error = None
        try:
            if self.on_point is not None:
                self.on_point("before_sync")
            self._sync()
            if self.on_point is not None:
                self.on_point("after_sync")
        except MqlogError as exc:
            sync_error = exc
        for b, base in need_flush:
            if sync_error is None:
                b._resolve(base)
            else:
                b._fail(sync_error)

    def _commit_chunk(self, chunk: list[tuple], need_flush: list,
                      retry: bool = False) -> BaseException | None:
        """Commit encoded batches in one transaction; returns the error if it failed.

        Idempotent batches are checked inside the transaction: a duplicate resolves to
        the offset it got before and a refused one fails alone (its producer's later
        batches to the partition are then refused too, so no partition gets a hole).
        """
        txns = self._txns

        def write_all(txn: Any) -> tuple[dict, dict, list, dict, dict]:
            ends: dict[Any, int] = {}
            max_ts: dict[Any, int] = {}
            outcomes: list[Any] = []  # per batch: its base offset, or an exception
            windows: dict = {}  # idempotence state changed by this transaction
            opening: dict = {}  # transactions that started in a partition here
            for b, plog, body, ts, span in chunk:
                if b.producer_id >= 0:
                    verdict = txns.admit(txn, b, plog, windows)
                    if verdict is not None:
                        outcomes.append(verdict)
                        continue
                base = ends.get(plog, plog.end_offset)
                txn.put_batch(plog.topic_id, plog.partition, base,
                              with_base_offset(base, body))
                if ts > max_ts.get(plog, plog.max_timestamp):
                    txn.put_time_index(plog.topic_id, plog.partition, ts, base)
                    max_ts[plog] = ts
                ends[plog] = base + span
                if b.producer_id >= 0:
                    txns.record(b, plog, base, windows)
                    if b.transactional:
                        txns.opened(txn, b, plog, base, opening)
                outcomes.append(base)
            return ends, max_ts, outcomes, windows, opening

        try:
            if self.on_point is not None:
                self.on_point("before_commit")
            self._maybe_fail()
            ends, max_ts, outcomes, windows, opening = self._store.write(write_all)
            self.commits += 1
            if self.on_point is not None:
                self.on_point("after_commit")  # committed, nothing acknowledged yet
        except BaseException as exc:
            if not retry:  # a failed lose_acks retry: the first write stands
                _give_back_sequences([(b, plog) for b, plog, *_ in chunk])
            for b, *_ in chunk:
                b._fail(exc)
            return exc
        if windows:
            txns.commit_windows(windows)
        if opening:  # before the end offsets move: the records must not look stable
            txns.adopt_open(opening)
        for plog, ts in max_ts.items():
            plog.max_timestamp = ts
        for plog, end in ends.items():
            plog.end_offset = end
        self._broker._notify_data(ends)  # the partitions that got records
        if self.lose_acks:  # seam: the acknowledgement was lost; the producer retries
            self.lose_acks -= 1
            return self._commit_chunk(chunk, need_flush, retry=True)
        flush = self._sync_mode is None
        for (b, *_), outcome in zip(chunk, outcomes):
            if type(outcome) is not int:
                b._fail(outcome)
            elif flush and b.acks == -1 and not b.transactional:
                # A transaction's records are flushed by its commit: the marker's job
                # flushes after every earlier commit, and until the marker lands the
                # records do not count (a crash before it aborts the transaction).
                need_flush.append((b, outcome))
            else:
                b._resolve(outcome)
        return None


def _give_back_sequences(unwritten: list[tuple[Any, Any]]) -> None:
    """Rewind idempotent producers' sequence numbers over batches never written.

    The batches were stamped but nothing of them reached the store, so the window
    still expects their first sequence number: without the rewind every later batch of
    the producer to the partition would be refused as a gap, forever (a disk-full
    commit would poison an idempotent producer). Batches are stamped in order, so the
    first unwritten one of a producer and partition holds the number to go back to.
    Writer thread only (it owns the producers' ``_next_seq``).
    """
    seen = set()
    for b, plog in unwritten:
        p = b.producer
        if b.base_sequence < 0 or (id(p), plog) in seen:
            continue
        seen.add((id(p), plog))
        if p._seq_epoch == b.epoch:  # a new epoch counts from 0 again anyway
            p._next_seq[plog] = b.base_sequence
